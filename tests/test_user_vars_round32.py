"""Until round 32: a ``checkpoint`` closing over an ``fm.Var`` the user made
returned, under ``fm.grad`` (or ``jacrev``, ``vjp``...), a number where the
same function without ``checkpoint`` returns a node that still reaches the Var
(``node_grads(fm.grad(ck)(3.0) * w)[w]`` was 12.0 for 24.0); at the top level
it was an error. ``checkpoint(f)`` is ``f``: it now runs as ``f`` there.

And micrograd's prebuilt-graph mistake (``c = x * x`` built before, then a
transform of ``lambda x: c``) gave 0.0 under nested transforms (``hessian``,
``grad(grad)``, ``jacfwd(jacrev)``), where the outermost transform is handed
the user's node; the top level's ``ValueError`` now, at any depth."""

from __future__ import annotations

import pytest

import fmicrograd as fm


def _ck(w):
    return fm.checkpoint(lambda a: a * a * w)


@pytest.mark.parametrize("transform", [
    lambda f: fm.grad(f), lambda f: fm.jacrev(f), lambda f: fm.jacfwd(f),
    lambda f: (lambda x: fm.vjp(f, x)[1](1.0)[0]),
    lambda f: (lambda x: fm.value_and_grad(f)(x)[1]),
], ids=["grad", "jacrev", "jacfwd", "vjp", "value_and_grad"])
def test_a_checkpoint_closing_over_a_users_var_keeps_the_var_under_a_transform(transform):
    w = fm.Var(2.0, name="w")
    plain = transform(lambda a: a * a * w)(3.0)
    ck = transform(_ck(w))(3.0)
    assert isinstance(ck, fm.Expr) and ck.value == plain.value == 12.0
    assert fm.viz.node_grads(ck * w)[w] == fm.viz.node_grads(plain * w)[w] == 24.0


def test_a_checkpoint_closing_over_a_users_var_at_the_top_level_is_that_function():
    w, x = fm.Var(2.0, name="w"), fm.Var(3.0, name="x")
    out = _ck(w)(x)
    g = fm.viz.node_grads(out)
    assert out.value == 18.0 and g[w] == 9.0 and g[x] == 12.0


def test_a_checkpoint_closing_over_a_users_var_under_hessian():
    w = fm.Var(2.0, name="w")
    h = fm.hessian(_ck(w))(3.0)  # 2 * w
    assert h.value == 4.0 and fm.viz.node_grads(h)[w] == 2.0


@pytest.mark.parametrize("transform", [
    lambda f: fm.hessian(f), lambda f: fm.grad(fm.grad(f)),
    lambda f: fm.jacfwd(fm.jacrev(f)), lambda f: fm.grad(fm.jacfwd(f)),
    lambda f: fm.grad(lambda x: fm.grad(f)(x) * x),
], ids=["hessian", "grad(grad)", "jacfwd(jacrev)", "grad(jacfwd)", "grad(closure)"])
def test_a_prebuilt_output_names_the_fix_under_nested_transforms(transform):
    a = fm.Var(3.0)
    c = a * a
    with pytest.raises(ValueError, match="built before the call from the node passed"):
        transform(lambda x: c)(a)


def test_nested_closures_over_an_enclosing_variable_stay_allowed():
    # the inner output reaches the outer transform's variable only: 0, as JAX
    assert fm.grad(lambda x: fm.grad(lambda y: x * x)(x))(3.0) == 0.0
    a = fm.Var(3.0)
    h = fm.grad(lambda x: fm.grad(lambda y: x * x * y)(x))(a)  # 2 x at a user Var: a node
    assert h.value == 6.0 and fm.viz.node_grads(h)[a] == 2.0
    h = fm.hessian(lambda x: x * x * a)(a)  # 2 a
    assert h.value == 6.0 and fm.viz.node_grads(h)[a] == 2.0
