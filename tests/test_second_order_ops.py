"""Second derivatives of every primitive against torch float64 (hypothesis inputs in
each op's domain, plus special points), finite-difference checks to third order,
and third-order spot checks against torch. First order is tests/test_ops.py."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.testing import OPS, check_grads
from fmicrograd.testing.strategies import op_args


def _close(got, want):
    if math.isnan(want):
        return math.isnan(got)
    return got == pytest.approx(want, rel=1e-12, abs=1e-12)


def _torch_hessian(case, args):
    ts = tuple(torch.tensor(a, dtype=torch.float64) for a in args)
    h = torch.autograd.functional.hessian(lambda *a: case.torch(torch, *a), ts)
    return [[h[i][j].item() for j in range(len(args))] for i in range(len(args))]


def _torch_third(case, args):
    """d^3 f / dx_i dx_j dx_k by nested torch.autograd.grad."""
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    n = len(ts)
    out = case.torch(torch, *ts)
    g = torch.autograd.grad(out, ts, create_graph=True, allow_unused=True)
    third = [[[0.0] * n for _ in range(n)] for _ in range(n)]
    for i in range(n):
        if g[i] is None or not g[i].requires_grad:  # a constant first derivative: zero
            continue
        hi = torch.autograd.grad(g[i], ts, create_graph=True, allow_unused=True)
        for j in range(n):
            if hi[j] is None or not hi[j].requires_grad:
                continue
            tk = torch.autograd.grad(hi[j], ts, retain_graph=True, allow_unused=True)
            for k in range(n):
                third[i][j][k] = 0.0 if tk[k] is None else tk[k].item()
    return third


def _reference_hessian(case, args):
    """torch's Hessian, except where torch is known wrong: at an exponent of exactly 0
    torch masks d/da of ``a ** b`` to a constant and loses its dependence on b (an
    asymmetric Hessian); the true mixed derivative is ``1 / a``."""
    want = _torch_hessian(case, args)
    if case.op == "**" and args[1] == 0.0 and args[0] != 0.0:
        want[0][1] = want[1][0] = 1.0 / args[0]
    return want


def _fm_hessian(case, args):
    return fm.hessian(case.call, argnums=tuple(range(len(args))))(*args)


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_hessian_matches_torch(op, data):
    case = OPS[op]
    args = data.draw(op_args(op))
    got, want = _fm_hessian(case, args), _reference_hessian(case, args)
    n = len(args)
    for i in range(n):
        for j in range(n):
            assert _close(got[i][j], want[i][j]), (op, args, i, j, got, want)


@pytest.mark.parametrize("op", sorted(OPS))
def test_hessian_matches_torch_at_special_points(op):
    """Kinks, zeros and ties: torch's conventions hold at second order too."""
    case = OPS[op]
    specials = [0.0, -0.0, 1.0, -1.0, 2.5]
    n = len(case.domain)
    points = [tuple(specials[(i + k) % len(specials)] for k in range(n))
              for i in range(len(specials))] + [(0.0,) * n, (1.5,) * n]
    for args in points:
        if op == "**" and args[0] == 0.0:
            continue  # singular: see test_power_at_a_zero_base_is_zero_not_nan
        got, want = _fm_hessian(case, args), _reference_hessian(case, args)
        for i in range(n):
            for j in range(n):
                assert _close(got[i][j], want[i][j]), (op, args, i, j, got, want)


def test_power_at_a_zero_base_is_zero_not_nan():
    """A deliberate difference: at base 0 the first-order masks (as torch) select the
    constant 0, so no branch with log(0) is ever built and the second derivatives are
    0; torch's where-style mask still differentiates the discarded log(0) branch and
    returns nan."""
    case = OPS["**"]
    assert math.isnan(_torch_hessian(case, (0.0, 0.0))[0][0])
    assert fm.hessian(lambda a, b: a ** b, argnums=(0, 1))(0.0, 0.0) == ((0.0, 0.0), (0.0, 0.0))
    assert fm.hessian(lambda b: 0.0 ** b)(1.0) == 0.0


def test_power_hessian_at_a_zero_exponent_is_symmetric_and_exact():
    a = 2.0
    h = fm.hessian(lambda a, b: a ** b, argnums=(0, 1))(a, 0.0)
    assert h[0][0] == 0.0 and h[0][1] == h[1][0] == pytest.approx(1 / a, rel=1e-15)
    assert h[1][1] == pytest.approx(math.log(a) ** 2, rel=1e-15)
    check_grads(lambda a, b: a ** b, (2.0, 1.0), order=3)


def test_kink_conventions_at_second_order():
    assert fm.grad(fm.grad(fm.relu))(0.0) == 0.0
    assert fm.grad(fm.grad(abs))(0.0) == 0.0
    assert fm.hessian(fm.maximum, argnums=(0, 1))(1.0, 1.0) == ((0.0, 0.0), (0.0, 0.0))


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_derivatives_to_third_order_match_finite_differences(op, data):
    case = OPS[op]
    args = data.draw(op_args(op))
    # stay off the kinks, where finite differences straddle two branches
    assume(all(abs(a - k) > 1e-3 for a in args for k in case.kinks))
    if op in ("maximum", "minimum"):
        assume(abs(args[0] - args[1]) > 1e-3)
    if op == "clip":  # x at a bound
        assume(abs(args[0] - args[1]) > 1e-3 and abs(args[0] - args[2]) > 1e-3)
    check_grads(case.call, args, order=3)


def _spot_point(case):
    """A point well inside the domain and off every kink."""
    return tuple(lo + (hi - lo) * (0.37 + 0.21 * i) for i, (lo, hi) in enumerate(case.domain))


@pytest.mark.parametrize("op", sorted(OPS))
def test_third_derivatives_match_torch_spot_check(op):
    case = OPS[op]
    args = _spot_point(case)
    n = len(args)
    want = _torch_third(case, args)
    got = fm.jacrev(lambda *a: _fm_hessian(case, a), argnums=tuple(range(n)))(*args)
    for i in range(n):
        for j in range(n):
            for k in range(n):
                assert _close(got[i][j][k], want[i][j][k]), (op, args, i, j, k)
    if n == 1:
        third = fm.grad(fm.grad(fm.grad(case.call)))(*args)
        assert _close(third, want[0][0][0])


@pytest.mark.parametrize("a", [5e-324, 1e-310, 1e-200, 1e-160, -1e-200, float("nan"), 3.0])
def test_power_with_a_zero_exponent_has_no_nan_derivatives_at_tiny_bases(a):
    # b * a ** (b - 1) was 0 * inf below a ~ 1e-308, and its derivative below ~1e-154
    assert fm.grad(lambda x: x ** 0.0)(a) == 0.0  # torch: 0
    assert fm.grad(fm.grad(lambda x: x ** 0.0))(a) == 0.0
    assert fm.grad(fm.grad(lambda x: x ** 1.0))(a) == 0.0
    assert fm.hessian(lambda x: 3.0 * x ** 0.0 + x ** 2.0)(a) == 2.0
    assert fm.grad(lambda x, p: x ** p)(a, 0.0) == 0.0
    assert fm.jit(fm.grad(lambda x, p: x ** p))(a, 0.0) == 0.0
    mapped = fm.vmap(fm.grad(lambda x: x ** 0.0))(np.array([a, 2.0]))
    assert mapped == (0.0, 0.0)


def test_power_derivatives_in_the_exponent_stay_exact_at_a_zero_exponent():
    for a in (0.5, 2.0, 1e-200):
        h = fm.hessian(lambda a, b: a ** b, argnums=(0, 1))(a, 0.0)
        assert h[0][0] == 0.0 and h[0][1] == h[1][0] == pytest.approx(1 / a, rel=1e-15)
        d3 = fm.grad(fm.grad(fm.grad(lambda a, b: a ** b, argnums=1), argnums=1))(a, 0.0)
        assert d3 == pytest.approx(2 * math.log(a) / a, rel=1e-14)  # d3 / da db db
    assert fm.hessian(lambda a, b: a ** b, argnums=(0, 1))(5e-324, 0.0)[0] == (0.0, math.inf)
