"""A ``vjp_fn`` returned at top level and called inside a transform gives
numbers, as JAX's does: the ``vjp``'s own variables are closed when it
returns (until round 29 the result was a graph of them, with the right value)."""

import pytest

import fmicrograd as fm


def _cube_vjp():
    return fm.vjp(lambda a: a * a * a, 2.0)[1]


def test_grad_through_a_returned_vjp_fn_is_a_float():
    vfn = _cube_vjp()
    g = fm.grad(lambda c: vfn(c)[0])(1.0)
    assert g.__class__ is float and g == 12.0


def test_every_transform_through_it_gives_numbers():
    vfn = _cube_vjp()
    jf = fm.jit(lambda c: vfn(c * c)[0])
    assert (jf(1.0), jf(2.0)) == (12.0, 48.0)
    assert fm.vmap(lambda c: vfn(c)[0])((1.0, 2.0)) == (12.0, 24.0)
    h = fm.hessian(lambda c: vfn(c * c)[0])(1.5)
    assert h.__class__ is float and h == 24.0
    out, tangent = fm.jvp(lambda c: vfn(c)[0], (1.0,), (2.0,))
    assert (out, tangent) == (12.0, 24.0) and tangent.__class__ is float


def test_a_users_variable_in_the_function_keeps_its_derivative():
    x = fm.Var(2.0)
    vfn = fm.vjp(lambda a: a * a * x, 3.0)[1]
    r = fm.grad(lambda c: vfn(c)[0])(1.0)  # 2 * a * x: a is closed, x is the user's
    assert isinstance(r, fm.Expr) and r.value == 12.0
    assert fm.viz.node_grads(r)[x] == 6.0


def test_a_checkpoint_closing_over_a_users_variable_keeps_its_derivative():
    x = fm.Var(0.7)
    vfn = fm.vjp(lambda a: fm.checkpoint(lambda u: fm.sin(u * x) * u)(a), 2.0)[1]
    r = fm.grad(lambda c: vfn(c * c)[0])(1.5)  # the checkpoint's rerun reads x
    assert fm.viz.node_grads(r)[x] == pytest.approx(-6.238172017100171, rel=1e-12)
