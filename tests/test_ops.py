"""Every primitive's value and first derivative against torch float64, on inputs
hypothesis draws from the op's domain, plus torch's conventions at kinks."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.testing import OPS


def _torch_value_and_grad(case, args):
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    out = case.torch(torch, *ts)
    grads = torch.autograd.grad(out, ts, allow_unused=True)
    return out.item(), [0.0 if g is None else g.item() for g in grads]


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=1e-12, abs=1e-12)


def _inputs(domain):
    return st.tuples(*[st.floats(lo, hi, allow_nan=False) for lo, hi in domain])


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_value_and_gradient_match_torch(op, data):
    case = OPS[op]
    args = data.draw(_inputs(case.domain))
    want_value, want_grads = _torch_value_and_grad(case, args)
    value, grads = fm.value_and_grad(lambda *xs: case.call(*xs), argnums=tuple(range(len(args))))(
        *args)
    assert _close(value, want_value), (value, want_value)
    assert _close(case.call(*args), want_value)
    for got, want in zip(grads, want_grads):
        assert _close(got, want), (args, grads, want_grads)


@pytest.mark.parametrize("op", sorted(OPS))
def test_gradient_matches_torch_at_special_points(op):
    """Kinks, zeros, ties and infinities: torch's conventions, exactly."""
    case = OPS[op]
    specials = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, 2.5]
    n = len(case.domain)
    points = [tuple(specials[(i + k) % len(specials)] for k in range(n))
              for i in range(len(specials))]
    points += [(0.0,) * n, (1.5,) * n]
    for args in points:
        want_value, want_grads = _torch_value_and_grad(case, args)
        value, grads = fm.value_and_grad(lambda *xs: case.call(*xs),
                                         argnums=tuple(range(n)))(*args)
        assert _close(value, want_value), (op, args, value, want_value)
        for got, want in zip(grads, want_grads):
            assert _close(got, want), (op, args, grads, want_grads)


def test_kink_conventions():
    assert fm.grad(fm.relu)(0.0) == 0.0
    assert fm.grad(abs)(0.0) == 0.0
    assert fm.grad(fm.maximum, argnums=(0, 1))(1.0, 1.0) == (0.5, 0.5)
    assert fm.grad(fm.minimum, argnums=(0, 1))(2.0, 2.0) == (0.5, 0.5)
    # pow at a zero exponent or a zero base, as torch masks them
    assert fm.grad(lambda x: x ** 0.0)(0.0) == 0.0
    assert fm.grad(lambda y: fm.power(0.0, y))(2.0) == 0.0
    assert fm.grad(lambda x: x ** 2.0)(-3.0) == -6.0


@pytest.mark.parametrize("z", [-30.0, -10.0, 0.5, 10.0, 20.0, 30.0])
def test_sigmoid_slope_keeps_its_digits_in_the_saturated_tail(z):
    # sigmoid'(z) = sigmoid(z) * sigmoid(-z); the old rule out * (1 - out) cancelled for
    # large z (1 - out loses ~log10(e^z) digits: 5e-12 relative at z = 10, 2e-3 at z = 30),
    # which made grad(vmap) and the loop of grads disagree on an exp(into(cosh x)) graph
    slope = math.exp(-abs(z)) / (1.0 + math.exp(-abs(z))) ** 2  # even in z, no cancellation
    assert fm.grad(fm.sigmoid)(z) == pytest.approx(slope, rel=4e-15, abs=0.0)
    assert fm.grad(fm.grad(fm.sigmoid))(z) == pytest.approx(
        -math.tanh(z / 2.0) * slope, rel=1e-14, abs=0.0)


def test_plain_numpy_scalars_and_huge_ints_are_computed_in_float64():
    # numpy kept a float32 a float32 (exp(100) was inf); math.exp(-10 ** 400) overflowed to inf
    import numpy as np

    got = fm.exp(np.float32(100.0))
    assert type(got) is float and got == math.exp(100.0)
    assert fm.log(np.float32(0.1)) == math.log(float(np.float32(0.1)))
    assert type(fm.maximum(np.float32(0.5), 0.0)) is float
    assert fm.exp(np.int64(2)) == math.exp(2.0)
    assert (fm.exp(-10 ** 400), fm.sigmoid(-10 ** 400), fm.softplus(-10 ** 400)) == (0.0,) * 3
    assert fm.log_sigmoid(10 ** 400) == 0.0 and fm.exp(10 ** 400) == math.inf
    assert fm.atan2(1.0, 10 ** 400) == 0.0


def test_power_one_half_is_the_square_root_eager_compiled_and_mapped():
    # C's pow gave inf at -inf and 0.0 at -0.0 eager, numpy's (vmap) and torch's nan and -0.0
    import numpy as np

    xs = np.array([-np.inf, -0.0, 4.0, np.inf, 0.0, -1.0])
    f = lambda x: x ** 0.5
    eager = [f(fm.Var(float(v))).value for v in xs]
    want = torch.tensor(xs).pow(0.5).tolist()
    assert list(map(repr, eager)) == list(map(repr, want))
    assert list(map(repr, fm.vmap(f)(xs))) == list(map(repr, want))
    assert list(map(repr, fm.jit(fm.vmap(f))(xs))) == list(map(repr, want))
    assert [repr(fm.jit(f)(float(v))) for v in xs] == list(map(repr, want))
