"""Slopes at finite extremes (a numerics review, round 49): ``fm.to_torch``
exported ``expm1`` and ``atan2`` with torch's own backward, which cancels or
under/overflows where fm's rules do not (``expm1'`` 0 at -40 for 4.2e-18,
``atan2``'s slopes inf or 0 at radius 1e-160 / 1e160); and fm's own
``asinh``/``acosh`` slopes were 0 above 1.4e154 (``a * a`` overflowed), and
``asin``, ``acos``, ``atanh``, ``acosh`` lost digits near +-1."""

import math

import pytest

import fmicrograd as fm

torch = pytest.importorskip("torch")


def _torch_grads(f, *points):
    ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in points]
    out = fm.to_torch(f)(*ts)
    return [g.tolist() for g in torch.autograd.grad(out.sum(), ts, create_graph=True)], ts, out


def test_expm1_exported_slope_is_exp_in_the_tail():
    xs = [-20.0, -30.0, -40.0, -100.0]
    (slopes,), ts, _ = _torch_grads(fm.expm1, xs)
    assert slopes == [fm.grad(fm.expm1)(x) for x in xs] == [math.exp(x) for x in xs]
    d = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    first, = torch.autograd.grad(fm.to_torch(fm.expm1)(d).sum(), d, create_graph=True)
    second, = torch.autograd.grad(first.sum(), d)
    assert second.tolist() == [fm.grad(fm.grad(fm.expm1))(x) for x in xs]


def test_atan2_exported_slopes_at_tiny_and_huge_radius_are_fms():
    points = [(1e-160, 1e-160), (3e-200, 4e-200), (1e160, 1e160), (1e300, 1e16), (0.0, 0.0),
              (1.0, -2.0)]
    (dy, dx), _, _ = _torch_grads(fm.atan2, [p[0] for p in points], [p[1] for p in points])
    want = [fm.grad(fm.atan2, argnums=(0, 1))(*p) for p in points]
    assert list(zip(dy, dx)) == want
    assert want[0] == (5e159, -5e159) and want[2][0] > 0.0  # (torch: inf and 0.0)


@pytest.mark.parametrize("op, x, true", [
    ("asinh", 1e155, 1e-155), ("asinh", -1e300, 1e-300), ("acosh", 1e200, 1e-200),
])
def test_inverse_hyperbolic_slopes_do_not_overflow(op, x, true):
    f = getattr(fm, op)
    assert fm.grad(f)(x) == pytest.approx(true, rel=1e-15, abs=0.0)
    assert fm.jit(fm.grad(f))(x) == fm.grad(f)(x)
    (slope,), _, _ = _torch_grads(f, [x])
    assert slope == [fm.grad(f)(x)]


@pytest.mark.parametrize("op, x, true", [
    ("asin", 0.999999997, 12909.944440717638), ("acos", -0.999999997, -12909.944440717638),
    ("atanh", 0.999999997, 166666665.46241623), ("acosh", 1.000000003, 12909.94442135272),
])
def test_slopes_near_one_keep_their_digits(op, x, true):
    # (true: mpmath at 60 digits, rounded; the 1 - a * a forms were 7.5e-10 to 1.5e-9 off:
    # 12909.94443103518 for asin, 166666665.21241623 for atanh)
    got = fm.grad(getattr(fm, op))(x)
    assert got == pytest.approx(true, rel=2.3e-16, abs=0.0)
    assert fm.vmap(fm.grad(getattr(fm, op)))([x, x]) == (got, got)
    (slope,), _, _ = _torch_grads(getattr(fm, op), [x])
    assert slope == pytest.approx([got], rel=2.3e-16, abs=0.0)
