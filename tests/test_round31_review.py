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


def test_a_zero_d_accumulator_still_adds_up():
    def f(x):
        acc = np.zeros(())
        acc += x * x
        return acc

    assert fm.grad(f)(3.0) == 6.0 and fm.jit(f)(3.0) == 9.0
    assert fm.vmap(f)((1.0, 2.0)) == (1.0, 4.0)


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


def test_a_linear_rule_with_slopes_near_the_largest_float():
    @fm.custom_jvp
    def logratio(x, y):
        return fm.log(x) - fm.log(y)

    @logratio.defjvp
    def _(p, t):
        (x, y), (tx, ty) = p, t
        return logratio(x, y), tx / x - ty / y

    x, y = 1e-308, 1.2e-308
    assert fm.jvp(logratio, (x, y), (1.0, 1.0))[1] == pytest.approx(1 / x - 1 / y, rel=1e-12)


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
