"""``vjp_fn`` called with a cotangent that another running transform
differentiates, where the function's own graph is on numbers.

The sweep ran on values: a rule's cotangent lost its dependence on the
enclosing variable (through a ``checkpoint`` under ``vmap``, forward over
reverse gave a derivative of 0.0), or a rule on arrays met a node (``x ** y``
under ``vmap``: a ``TypeError`` from ``np.where``). Found by a composition
fuzzer (seed 5440) as ``jacfwd(jacrev(f))`` disagreeing with ``jacrev(jacfwd(f))``.
"""

import math

import pytest

import fmicrograd as fm

CS = (0.5, -1.25)
Y = 0.7


def _body(kind):
    if kind == "power":
        return lambda a: fm.power(1.5, a)
    if kind == "rpow_tanh":
        return lambda a: 1.5 ** fm.tanh(a)
    return lambda a: fm.exp(a * math.log(1.5))


def _slope(kind):
    """d/dy of sum_c body(y * c) at Y, by hand."""
    if kind == "rpow_tanh":
        return sum(c * 1.5 ** math.tanh(Y * c) * math.log(1.5) * (1 - math.tanh(Y * c) ** 2)
                   for c in CS)
    return sum(c * 1.5 ** (Y * c) * math.log(1.5) for c in CS)


def _wrapped(kind, wrapper):
    body = _body(kind)
    return fm.checkpoint(body) if wrapper == "checkpoint" else body


@pytest.mark.parametrize("kind", ["power", "rpow_tanh", "exp"])
@pytest.mark.parametrize("wrapper", ["checkpoint", "none"])
def test_jvp_of_a_vjp_fn_given_the_tangents_variable(kind, wrapper):
    b = _wrapped(kind, wrapper)
    g = lambda y: fm.sum(fm.vmap(lambda c: b(y * c))(CS))
    back = lambda x: fm.vjp(g, Y)[1](x)[0]
    value, tangent = fm.jvp(back, (2.0,), (1.0,))
    assert value == pytest.approx(2.0 * _slope(kind), rel=1e-13)
    assert tangent == pytest.approx(_slope(kind), rel=1e-13)
    assert fm.jit(lambda x: fm.jvp(back, (x,), (1.0,)))(2.0)[1] == pytest.approx(
        _slope(kind), rel=1e-13)


@pytest.mark.parametrize("kind", ["power", "rpow_tanh"])
@pytest.mark.parametrize("wrapper", ["checkpoint", "none"])
def test_forward_over_reverse_matches_reverse_over_reverse(kind, wrapper):
    b = _wrapped(kind, wrapper)
    f = lambda x, y: x * fm.sum(fm.vmap(lambda c: b(y * c))(CS))
    cross = fm.grad(fm.grad(f, argnums=1), argnums=0)(2.0, Y)
    assert cross == pytest.approx(_slope(kind), rel=1e-13)
    assert fm.jacfwd(fm.grad(f, argnums=1), argnums=0)(2.0, Y) == pytest.approx(cross, rel=1e-13)
    h = fm.jacfwd(fm.jacrev(lambda p: f(p[0], p[1])))((2.0, Y))
    assert h[1][0] == pytest.approx(h[0][1], rel=1e-13)
    assert h[0][1] == pytest.approx(cross, rel=1e-13)


def test_a_cotangent_computed_from_vmaps_examples_is_its_values():
    """A ``vjp_fn`` cotangent computed from ``vmap``'s examples (a node that
    no running transform depends on) met ``x ** 2``'s rule on arrays as a
    node: numpy's ``where`` on it raised (an outside probe, seed 250)."""
    def f1(x, e):
        return fm.sum(fm.vmap(lambda z, y: fm.log1p((z * e) ** 2) * fm.log1p(y ** 2),
                              in_axes=(None, 0))(x, (x * x, -0.02 - x)))

    def f3(x, e):
        out, back = fm.vjp(lambda y: fm.sum(fm.vmap(lambda v: f1(v, e))((y, 0.5 * y))), x)
        return out + back(fm.tanh(x) - 0.47)[0]

    x = 1.041
    ys = (x, 0.47 * x + 0.2, 0.3)
    got = fm.sum(fm.vmap(lambda y, z: f3(y, z), in_axes=(0, None))(ys, x))
    assert got == pytest.approx(sum(f3(y, x) for y in ys), rel=1e-14)


def test_a_saved_sweep_over_an_inner_vmap_called_under_vmap_is_refused():
    # linearize's f_jvp and vjp_fn, built outside a vmap over a function with a vmap of its
    # own and then called under fm.vmap, paired the inner examples with the outer batch's:
    # (2.956,) * 4 where the loop gives 0.988, 1.975, 2.963, 3.950 (an outside probe)
    xs = [0.1, 0.2, 0.3, 0.4]
    f = lambda w: fm.sum(fm.vmap(lambda x: fm.sin(x * w))(xs))  # noqa: E731
    _, f_jvp = fm.linearize(f, 0.5)
    _, pull = fm.vjp(f, 0.5)
    with pytest.raises(TypeError, match="linearize's f_jvp called under fm.vmap, of a function "
                                        "that runs a vmap of its own"):
        fm.vmap(f_jvp)([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(TypeError, match="vjp_fn called under fm.vmap"):
        fm.vmap(pull)([1.0, 2.0, 3.0])
    loop = tuple(f_jvp(t) for t in (1.0, 2.0, 3.0))
    assert fm.vmap(lambda t: fm.jvp(f, (0.5,), (t,))[1])([1.0, 2.0, 3.0]) == \
        pytest.approx(loop, rel=1e-15)
    g = lambda w: fm.sin(w) * w  # noqa: E731  (no vmap inside: calls under vmap work)
    _, g_jvp = fm.linearize(g, 0.5)
    assert fm.vmap(g_jvp)([1.0, 2.0]) == (g_jvp(1.0), g_jvp(2.0))
