"""The ops of issue 10 beyond the rule tables (tests/test_ops.py and
tests/test_second_order_ops.py compare them with torch on hypothesis inputs): IEEE
special values and kink conventions as torch, ``where`` under vmap and jit, and the same
numbers from every backend (eager, both jit backends, vmap, to_torch)."""

import math

import numpy as np
import pytest
import torch

import fmicrograd as fm
from fmicrograd.core import numeric as num
from fmicrograd.testing import OPS

NEW = ("tan sinh cosh asin acos atan atan2 asinh acosh atanh erf erfc log1p expm1 log2 "
       "log10 softplus log_sigmoid sign square hypot clip where logsumexp softmax "
       "log_softmax").split()
inf, nan = math.inf, math.nan


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("fn, x, want, dwant", [
    (fm.asin, 2.0, nan, nan), (fm.acos, -2.0, nan, nan), (fm.acosh, 0.5, nan, nan),
    (fm.atanh, 1.0, inf, inf), (fm.atanh, -1.0, -inf, inf), (fm.log1p, -1.0, -inf, inf),
    (fm.log1p, -2.0, nan, -1.0), (fm.erf, inf, 1.0, 0.0), (fm.erf, -inf, -1.0, 0.0),
    (fm.erfc, inf, 0.0, -0.0), (fm.softplus, 1000.0, 1000.0, 1.0),
    (fm.softplus, -1000.0, 0.0, 0.0), (fm.log_sigmoid, -1000.0, -1000.0, 1.0),
    (fm.log_sigmoid, 1000.0, 0.0, 0.0), (fm.expm1, 1000.0, inf, inf),
    (fm.sinh, -1000.0, -inf, inf), (fm.cosh, 1000.0, inf, inf), (fm.tan, inf, nan, nan),
    (fm.log2, 0.0, -inf, inf), (fm.log10, 0.0, -inf, inf), (fm.sign, nan, 0.0, 0.0),
])
def test_special_values_are_ieee_like_torch(fn, x, want, dwant):
    value, slope = fm.value_and_grad(fn)(x)
    assert _same(value, want) and _same(slope, dwant), (value, slope)
    name = fn.__name__
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = OPS[name].torch(torch, t)
    (g,) = torch.autograd.grad(out, t)
    assert _same(value, out.item()) and _same(slope, g.item())


def test_stable_reductions_with_large_inputs():
    xs = (1000.0, 1000.0, -1000.0)
    assert fm.logsumexp(xs) == 1000.0 + math.log(2.0)
    assert fm.softmax(xs) == (0.5, 0.5, 0.0)
    assert fm.log_softmax(xs)[0] == -math.log(2.0)
    assert fm.grad(lambda a: fm.logsumexp((a, 1000.0, -1000.0)))(1000.0) == 0.5
    assert fm.logsumexp((-inf, -inf)) == -inf and fm.logsumexp((inf, 0.0)) == inf
    assert fm.logsumexp((1e308, 1e308)) < inf
    with pytest.raises(ValueError, match="empty"):
        fm.softmax(())


@pytest.mark.parametrize("xs", [(inf, 1000.0), (inf, 1.0, -inf), (-inf, -inf), (inf, inf),
                                (710.0, inf, -1000.0), (inf, math.nan)])
def test_logsumexp_at_infinite_and_overflowing_entries_is_torchs(xs):
    # a finite entry beside +inf weighs exp(x - inf) = 0 in the derivative; with the
    # infinite maximum replaced by 0, exp(1000.0) overflowed and inf / inf was nan
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    value = torch.logsumexp(t, 0)
    want = [value.item()] + torch.autograd.grad(value, t)[0].tolist()
    f = lambda *a: fm.logsumexp(a)  # noqa: E731
    argnums = tuple(range(len(xs)))
    for g in (fm.value_and_grad(f, argnums), fm.jit(fm.value_and_grad(f, argnums))):
        v, d = g(*xs)
        assert repr([v, *d]) == repr(want)


def test_kink_conventions_like_torch():
    assert fm.grad(fm.sign)(0.0) == 0.0 and fm.grad(fm.sign)(3.0) == 0.0
    clip = lambda x: fm.clip(x, -1.0, 1.0)
    assert [fm.grad(clip)(x) for x in (-1.0, 1.0, 1.5, -3.0)] == [1.0, 1.0, 0.0, 0.0]
    # the bounds take the derivative where they bind; hi wins if lo > hi
    assert fm.grad(fm.clip, argnums=(0, 1, 2))(-3.0, -1.0, 1.0) == (0.0, 1.0, 0.0)
    assert fm.grad(fm.clip, argnums=(0, 1, 2))(0.0, 2.0, 1.0) == (0.0, 0.0, 1.0)
    # where(x > 0, ...) at a tie takes the false branch, and only it gets a derivative
    relu_like = lambda x: fm.where(fm.greater(x, 0.0), x, 0.0 * x)
    assert fm.grad(relu_like)(0.0) == 0.0 and fm.grad(relu_like)(2.0) == 1.0
    assert fm.grad(fm.atan2, argnums=(0, 1))(0.0, 0.0) == (0.0, 0.0)


def test_where_accepts_bools_and_predicates():
    assert fm.where(True, 1, 2) == 1.0 and isinstance(fm.where(False, 1, 2), float)
    x = fm.Var(2.0)
    assert fm.where(x > 1.0, x, 0.0) is x  # a bool chooses now
    node = fm.where(fm.less(x, 1.0), x, -x)
    assert node.op == "where" and node.value == -2.0
    assert fm.greater_equal(1.0, 1.0) == 1.0 and fm.less_equal(2.0, 1.0) == 0.0
    # the untaken branch gets a zero cotangent; as in torch, 0 times a nan partial
    # (sqrt at -1) is still nan: guard the input too (the "double where")
    assert fm.grad(lambda x: fm.where(fm.greater(x, 0.0), fm.log(x), x))(-1.0) == 1.0
    assert math.isnan(fm.grad(lambda x: fm.where(fm.greater(x, 0.0), fm.sqrt(x), x))(-1.0))
    safe = lambda x: fm.where(fm.greater(x, 0.0), fm.sqrt(fm.where(fm.greater(x, 0.0), x, 1.0)), x)
    assert fm.grad(safe)(-1.0) == 1.0


def huber(x):
    a = abs(x)
    return fm.where(fm.less(a, 1.0), 0.5 * x * x, a - 0.5)


def test_where_under_vmap_is_per_example():
    xs = np.array([0.5, -3.0, 2.0, -0.25])
    assert fm.vmap(huber)(xs) == tuple(huber(float(x)) for x in xs)
    assert fm.vmap(fm.grad(huber))(xs) == (0.5, -1.0, 1.0, -0.25)
    total = lambda s: fm.sum(fm.vmap(lambda x: huber(s * x))(xs))
    assert fm.grad(total)(1.0) == pytest.approx(
        sum(fm.grad(huber)(float(x)) * float(x) for x in xs), rel=1e-15)


def test_where_under_jit_is_a_select_not_a_guard():
    traces = []

    def f(x):
        traces.append(x)
        return huber(x)

    jf = fm.jit(f)
    assert [jf(x) for x in (0.5, -3.0, 2.0)] == [huber(x) for x in (0.5, -3.0, 2.0)]
    assert len(traces) == 1  # both branches compiled once, no retrace when they flip
    jg = fm.jit(fm.grad(huber))
    assert [jg(x) for x in (0.5, -3.0)] == [0.5, -1.0]


def _inputs(case, k):
    return tuple(lo + (hi - lo) * ((0.13 + 0.29 * i + 0.17 * k) % 1.0)
                 for i, (lo, hi) in enumerate(case.domain))


@pytest.mark.parametrize("op", NEW)
def test_every_backend_gives_the_same_numbers(op):
    """Eager floats, jit (straight-line floats; batched arrays through jit of vmap),
    vmap and to_torch, for value and gradient."""
    case = OPS[op]
    n = len(case.domain)
    points = [_inputs(case, k) for k in range(4)]
    grad = fm.grad(case.call, argnums=tuple(range(n)))
    values = [case.call(*p) for p in points]
    grads = [grad(*p) for p in points]
    cols = [np.array([p[i] for p in points]) for i in range(n)]
    close = lambda a, b: np.allclose(a, b, rtol=1e-13, atol=1e-15)
    jf, jg = fm.jit(case.call), fm.jit(grad)
    assert all(close(jf(*p), v) for p, v in zip(points, values))
    assert all(close(jg(*p), g) for p, g in zip(points, grads))
    assert close(fm.vmap(case.call)(*cols), values)
    assert close(fm.vmap(grad)(*cols), grads)
    assert close(fm.jit(fm.vmap(case.call))(*cols), values)
    assert close(fm.jit(fm.vmap(grad))(*cols), grads)
    tensors = [torch.tensor(c, dtype=torch.float64, requires_grad=True) for c in cols]
    out = fm.to_torch(case.call)(*tensors)
    assert close(out.detach().numpy(), values)
    torch_grads = torch.autograd.grad(out.sum(), tensors)
    assert close(np.stack([g.numpy() for g in torch_grads], axis=1), np.reshape(grads, (4, n)))


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_erf_on_arrays_is_the_float_erf_within_two_ulp_of_torch(name):
    xs = np.linspace(-6.0, 26.0, 3201)
    got = getattr(num, name)(xs)
    assert got.tolist() == [getattr(math, name)(x) for x in xs]
    want = getattr(torch, name)(torch.tensor(xs, dtype=torch.float64)).numpy()
    assert np.all(np.abs(got - want) <= 5e-16 * np.abs(want))


def test_softplus_second_derivative_at_the_threshold_is_torchs():
    # torch switches the slope to 1 above 20 but the curvature to 0 from 20 on
    for v in (19.999999, 20.0, 20.000001):
        x = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(torch.nn.functional.softplus(x), x, create_graph=True)
        (h,) = torch.autograd.grad(g, x)
        assert fm.grad(fm.softplus)(v) == pytest.approx(g.item(), rel=1e-15, abs=0)
        assert fm.hessian(fm.softplus)(v) == pytest.approx(h.item(), rel=1e-7, abs=0)


def test_expm1_slope_is_exp_where_out_plus_one_rounds_away():
    import math

    # torch's (and round 26's) rule, out + 1, is 0.0 at -40: exp(-40) is 4.25e-18
    for x in (-40.0, -10.0, 0.0, 1e-10, 700.0):
        assert fm.grad(fm.expm1)(x) == math.exp(x)
        assert fm.jit(fm.grad(fm.expm1))(x) == math.exp(x)
        assert fm.jvp(fm.expm1, (x,), (1.0,))[1] == math.exp(x)
        assert fm.grad(fm.grad(fm.expm1))(x) == math.exp(x)
    assert fm.vmap(fm.grad(fm.expm1))((-40.0, 1.0)) == (math.exp(-40.0), math.exp(1.0))


@pytest.mark.parametrize("y, x, dy, dx", [
    (1e-200, 1e-200, 5e199, -5e199),   # r ** 2 underflows to 0 (torch's slope: 0)
    (1e200, 3e200, 3e-201, -1e-201),   # r ** 2 overflows to inf (torch's slope: 0)
])
def test_atan2_slopes_at_tiny_and_huge_radii(y, x, dy, dx):
    # (round 29's probe of the ops against mpmath: (0.0, -0.0) for (5e199, -5e199))
    g = fm.grad(fm.atan2, argnums=(0, 1))
    for got in (g(y, x), fm.jit(g)(y, x)):
        assert got == pytest.approx((dy, dx), rel=1e-15, abs=0.0)
    assert fm.grad(fm.atan2, argnums=(0, 1))(0.0, 0.0) == (0.0, 0.0)  # torch's 0 at the origin
