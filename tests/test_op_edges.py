"""Op numerics at edge inputs (signed zeros, infinities, NaN, tails): the
compiled paths (jit's scalar code, its numpy code, vmap) give eager's numbers,
and eager's are torch's (float64) or the exact ones (mpmath)."""

import math

import mpmath
import numpy as np
import pytest
import torch

import fmicrograd as fm
from fmicrograd.compiler import autobatch

inf, nan = math.inf, math.nan


def _same(a, b):
    """Equal floats, NaN equal to NaN, and 0.0 told from -0.0."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _leaves(r):
    return [float(v) for v in fm.tree.leaves(r)]


def _all_paths(f, *args):
    """``f(*args)`` eager, jitted (scalar code and, forced, numpy code), and
    under vmap and jit(vmap) over a batch of two copies of the point."""
    batch = [np.array([a, a]) for a in args]
    forced = fm.jit(f)
    old = autobatch.worth_it
    autobatch.worth_it = lambda p: True
    try:
        batched = _leaves(forced(*args))
    finally:
        autobatch.worth_it = old
    return {
        "eager": _leaves(f(*args)),
        "jit": _leaves(fm.jit(f)(*args)),
        "jit numpy": batched,
        "vmap": _leaves(fm.vmap(f)(*batch)[0]),
        "jit(vmap)": _leaves(fm.jit(fm.vmap(f))(*batch)[0]),
    }


def _agree(f, *args):
    runs = _all_paths(f, *args)
    want = runs["eager"]
    for name, got in runs.items():
        assert len(got) == len(want) and all(map(_same, got, want)), (name, got, want)
    return want


@pytest.mark.parametrize("f, want", [
    (lambda x: fm.div(1.0, x + 0.0), inf),      # -0.0 + 0.0 is 0.0
    (lambda x: fm.div(1.0, 0.0 + x), inf),
    (lambda x: fm.div(1.0, x - (-0.0)), inf),
    (lambda x: fm.div(1.0, x - 0.0), -inf),     # -0.0 - 0.0 is -0.0
    (lambda x: fm.div(1.0, x + (-0.0)), -inf),
    (lambda x: fm.atan2(x + 0.0, -1.0), math.pi),
])
def test_adding_a_zero_is_not_dropped_where_it_changes_a_signed_zero(f, want):
    assert _same(_agree(f, -0.0)[0], want)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # vmap's trace computes inf * 0, masked
def test_a_masked_pow_derivative_stays_zero_at_an_infinite_cotangent():
    # d/da a ** b is 0 where b == 0 (torch's mask), also when the cotangent is inf
    def f(a, b):
        return fm.sqrt(fm.power(a, b) - 1.0)

    a = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    torch.sqrt(torch.pow(a, b) - 1.0).backward()
    want = [a.grad.item(), b.grad.item()]
    assert _agree(fm.grad(f, argnums=(0, 1)), 2.0, 0.0) == want


@pytest.mark.parametrize("base", [-1.0, -2.0, 3.0])
def test_pow_hessian_at_a_zero_exponent_is_the_same_compiled_and_torchs(base):
    def f(a, b):
        return fm.power(a, b)

    got = _agree(fm.hessian(f, argnums=(0, 1)), base, 0.0)
    if base > 0:  # exact and symmetric (torch masks d/da at b == 0, so its d2/da db is 0)
        want = [0.0, 1.0 / base, 1.0 / base, math.log(base) ** 2]
    else:  # log(a) is nan: as torch
        p = torch.tensor([base, 0.0], dtype=torch.float64)
        want = torch.autograd.functional.hessian(lambda t: torch.pow(t[0], t[1]), p)
        want = want.flatten().tolist()
    assert all(map(_same, got, want)), (got, want)


@pytest.mark.parametrize("x", [-745.0, -700.0, -36.0, -30.0, -20.0, -1e-8, 0.0, 1e-8, 3.0,
                               20.0, 30.0, 36.0, 700.0])
def test_sigmoid_on_arrays_is_as_exact_as_on_floats(x):
    # exp(-logaddexp(0, -x)) was 8 ulp off at -30 (vmap's arrays only)
    exact = float(1 / (1 + mpmath.exp(-mpmath.mpf(x))))
    eager = fm.sigmoid(x)
    tol = 2 * math.ulp(exact)
    assert abs(eager - exact) <= tol
    for got in (fm.vmap(fm.sigmoid)(np.array([x, 1.0]))[0],
                fm.jit(fm.vmap(fm.sigmoid))(np.array([x, 1.0]))[0],
                fm.vmap(fm.grad(fm.log_sigmoid))(np.array([-x, 1.0]))[0]):
        assert abs(got - exact) <= tol, (got, exact, eager)


@pytest.mark.parametrize("a", [-inf, -0.0, 0.0, 4.0, -1.0, inf])
def test_a_half_exponent_is_sqrt_on_arrays_too(a):
    # numpy and torch take sqrt for a number exponent 0.5 and C's pow for an
    # array one: inf at -inf, 0.0 at -0.0
    want = math.sqrt(a) if a >= 0 else nan
    assert _same(_agree(fm.power, a, 0.5)[0], want)
    assert _same(_agree(lambda x: fm.power(x, 0.5), a)[0], want)
    _agree(fm.grad(lambda x: fm.power(x, 1.5)), a)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 0 * inf in the loss's formula
@pytest.mark.parametrize("z", [inf, -inf])
@pytest.mark.parametrize("y", [0.0, 0.25, 1.0])
def test_bce_at_an_infinite_logit_is_the_same_with_a_traced_label(z, y):
    bce = fm.losses.binary_cross_entropy_with_logits
    want = bce(z, y)
    assert _same(_agree(bce, z, y)[0], want)
    t = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor(z, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)).item()
    if t == t:  # torch's own formula gives nan for some of these (inf - inf)
        assert want == t
    # a differentiated label: the value stays the loss's, not 0 * inf = nan
    value, _ = fm.value_and_grad(bce, argnums=1)(z, y)
    assert _same(value, want)


@pytest.mark.parametrize("z", [-30.0, -1.0, 0.0, 1e-8, 2.5, 40.0])
def test_bce_slope_in_a_label_is_minus_the_logit(z):
    bce = fm.losses.binary_cross_entropy_with_logits
    assert fm.grad(bce, argnums=1)(z, 0.3) == -z
    assert fm.jit(fm.grad(bce, argnums=1))(z, 0.3) == -z
    h = fm.hessian(lambda p: bce(p[0], p[1]))((z, 0.3))
    assert h[0][1] == h[1][0] == -1.0


@pytest.mark.parametrize("a, b", [(1e155, 3.0), (1e300, 2.5), (1e300, 2.0), (1e300, 3.0),
                                  (2.0, 3.0), (0.5, -1.5)])
def test_the_hessian_of_a_power_is_torchs_where_the_power_overflows(a, b):
    # the masked branch of d/da read ``a ** b`` itself (inf here), whose partials met the
    # branch's zero cotangent: d2/da2 and d2/da db were nan where torch has 6e155, 1.38e303
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(x ** y, (x, y), create_graph=True)
    want = [[float(v) for v in torch.autograd.grad(gi, (x, y), retain_graph=True)] for gi in g]
    f = lambda u, v: u ** v  # noqa: E731
    for h in (fm.hessian(f, argnums=(0, 1)), fm.jit(fm.hessian(f, argnums=(0, 1)))):
        got = h(a, b)
        for i in range(2):
            for j in range(2):
                assert got[i][j] == pytest.approx(want[i][j], rel=1e-12, nan_ok=True), (i, j)


@pytest.mark.parametrize("b", [inf, -inf, 3.0, 0.0, -2.5])
def test_the_second_derivative_of_a_power_with_a_node_exponent_is_the_float_exponents(b):
    # the masked branch of d/da read ``1 ** b``, whose slope in its base is b: at an
    # infinite exponent forward mode met inf * 0 there, and a traced or mapped exponent
    # gave nan for d2/da2 at a = 1 where a float exponent gives inf (until round 24)
    f = lambda x, y: x ** y  # noqa: E731
    d2 = lambda g: fm.jacfwd(fm.jacfwd(g))  # noqa: E731
    for a in (1.0, 2.0, 0.5):
        want = d2(lambda x: x ** b)(a)  # a float exponent: the constant rule
        assert _same(fm.jit(d2(f))(a, b), want)
        assert _same(d2(fm.jit(f))(a, b), want)
        assert _same(fm.vmap(lambda y, a=a: d2(lambda x: x ** y)(a))(np.array([b, 2.0]))[0], want)
        # both arguments differentiated: forward over forward is reverse's d2/da2
        both = fm.jacfwd(fm.jacfwd(f, argnums=(0, 1)), argnums=(0, 1))(a, b)
        assert _same(both[0][0], fm.hessian(f, argnums=(0, 1))(a, b)[0][0])
