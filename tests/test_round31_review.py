"""Regression guards from reviews of round 31's own changes, and two probes'
catches: ``vmap``'s per-example comparison used as a set or dict key picked one
branch for the whole batch (``(x > 1.0) in {True}``: 6.0 for 4.0), and forward
mode gave ``1 / sign(x)`` at 0 a NaN tangent (``(-inf) * 0.0``; grad and JAX: 0.0)."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm


def test_in_place_on_a_slice_of_a_jit_argument():
    def f(a, x):
        a[:, :2] *= x  # (a non-contiguous block of jit's object array)
        return fm.sum(list(a.ravel()))

    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert fm.jit(f)(a, 10.0) == 129.0
    assert fm.jit(fm.grad(f, argnums=1))(a, 10.0) == 12.0
    assert a.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]  # (the caller's array)


def test_a_zero_d_accumulator_is_refused_too():
    # (a second review asked for ``acc += x`` on ``np.zeros(())`` to rebind, as in round 30;
    # a third showed that a helper's ``buf += v`` then leaves its caller's buffer: 1.0 for 5.0)
    def add_into(buf, v):
        buf += v

    def f(x):
        buf = np.zeros(())
        add_into(buf, x * x)
        return buf + x

    with pytest.raises(TypeError, match=r"arr = arr \+ x"):
        fm.grad(f)(2.0)


def test_an_output_leaf_the_collector_does_not_track():
    def f(x):
        return x * 3.0, np.array([x * 2.0, x + 1.0], dtype=object).flat

    j = fm.jit(f)
    j(1.0)
    assert [float(getattr(v, "value", v)) for v in j(5.0)[1]] == [10.0, 6.0]


def _safe_sqrt():
    @fm.custom_jvp
    def safe_sqrt(x):
        return fm.sqrt(x)

    @safe_sqrt.defjvp
    def _(p, t):
        y = safe_sqrt(p[0])
        return y, t[0] / (2.0 * y)

    return safe_sqrt


def test_a_rule_dividing_by_zero_gives_inf_in_forward_mode():
    f = _safe_sqrt()
    assert fm.jvp(f, (0.0,), (1.0,)) == (0.0, float("inf"))
    assert fm.jacfwd(f)(0.0) == fm.grad(f)(0.0) == float("inf")


@pytest.mark.parametrize("f", [
    lambda x: x * (2.0 if (x > 1.0) in {True} else 3.0),
    lambda x: {True: 2.0, False: 3.0}[x > 1.0] * x,
], ids=["in a set", "a dict key"])
def test_a_per_example_comparison_as_a_key_is_the_if_error(f):
    with pytest.raises(ValueError, match="inside fm.vmap: Python control flow"):
        fm.vmap(f)((2.0, 0.5))
    assert fm.vmap(f)((2.0, 3.0)) == (4.0, 6.0)  # (examples that agree: one truth)


def test_a_zero_slope_op_gives_no_tangent():
    f = lambda x: 1.0 / fm.sign(x)  # noqa: E731
    assert fm.jvp(f, (0.0,), (1.0,)) == (float("inf"), 0.0) and fm.grad(f)(0.0) == 0.0
    g = lambda x: fm.sign(x) * x + fm.where(x > 0.0, x, 2.0 * x)  # noqa: E731
    for x in (0.0, 1.5, -1.5):
        assert fm.jvp(g, (x,), (1.0,))[1] == fm.grad(g)(x) == fm.jacfwd(g)(x)


def test_a_closure_over_a_stopped_users_var_is_fine():
    w, x = fm.Var(2.0), fm.Var(3.0)
    sw = fm.stop_gradient(w)
    assert fm.checkpoint(lambda a: a * sw)(x).value == 6.0


def test_jit_of_a_rule_closing_over_a_users_var_keeps_its_derivative():
    w = fm.Var(2.0)
    f = fm.custom_vjp(lambda a: a * a * w)
    f.defvjp(lambda a: (a * a * w, a), lambda a, g: (2.0 * a * w * g,))
    out = fm.jit(lambda a: f(a))(3.0)
    assert fm.viz.node_grads(out)[w] == 9.0


def test_the_prebuilt_check_reads_every_leaf_and_leaves_constants_beside_used_outputs():
    a, b = fm.Var(2.0), fm.Var(-3.0)
    c = a * b
    with pytest.raises(ValueError, match="built before the call"):
        fm.grad(lambda xs: c)([1.0, a])
    assert fm.jacrev(lambda x: (x * 2.0, c))(a) == (2.0, 0.0)


def test_thirty_chains_side_by_side_stay_array_code():
    def f(x):
        ys = [x * (1.0 + k / 30.0) for k in range(30)]
        for _ in range(700):
            ys = [fm.sin(y) * 0.999 + 0.001 for y in ys]
        return fm.sum(ys)

    j = fm.jit(f)
    assert "batched backend" in j.lower(0.3).as_text().splitlines()[0]
    assert j(0.3) == pytest.approx(f(0.3), rel=1e-14)


def test_two_chains_side_by_side_take_float_code():
    # (a fourth review: groups of exactly two operations went to array code, 5x slower a call)
    def f(x):
        a, b = x, x * 1.5
        for _ in range(3500):
            a, b = fm.sin(a) * 0.999 + 0.001, fm.sin(b) * 0.999 + 0.001
        return a + b

    j = fm.jit(f)
    assert "scalar backend" in j.lower(0.3).as_text().splitlines()[0]
    assert j(0.3) == f(0.3)


def test_an_interrupt_in_a_jit_trace_under_vmap_leaves_no_guard_log():
    # (a probe's catch: the log stayed set in the thread, and a later jitted function whose
    # comparison ran in that thread froze its branch: 4.0 for 2.0)
    from fmicrograd.core.expr import GUARDS

    def g(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fm.vmap(fm.jit(g))(np.array([1.0, 2.0]))
    assert GUARDS.get() is None
