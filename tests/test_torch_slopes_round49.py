"""Slopes at finite extremes (a numerics review, round 49): ``fm.to_torch``
exported ``expm1`` and ``atan2`` with torch's own backward, which cancels or
under/overflows where fm's rules do not (``expm1'`` 0 at -40 for 4.2e-18,
``atan2``'s slopes inf or 0 at radius 1e-160 / 1e160); and fm's own
``asinh``/``acosh`` slopes were 0 above 1.4e154 (``a * a`` overflowed). The export
computes with plain torch ops, so every torch.func order differentiates it (a
custom ``autograd.Function``'s forward rule gave forward-over-forward 0)."""

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
    for got, expected in zip(zip(dy, dx), want):  # (to the last bit but one)
        assert got == pytest.approx(expected, rel=4.5e-16, abs=0.0)
    assert want[0] == (5e159, -5e159) and want[2][0] > 0.0  # (torch: inf and 0.0)


@pytest.mark.parametrize("op, x, true", [
    ("asinh", 1e155, 1e-155), ("asinh", -1e300, 1e-300), ("acosh", 1e200, 1e-200),
])
def test_inverse_hyperbolic_slopes_do_not_overflow(op, x, true):
    f = getattr(fm, op)
    assert fm.grad(f)(x) == pytest.approx(true, rel=1e-15, abs=0.0)
    assert fm.jit(fm.grad(f))(x) == fm.grad(f)(x)


@pytest.mark.parametrize("op", ["asin", "acos", "atanh", "acosh"])
def test_second_derivatives_at_one_and_zero_are_torchs(op):
    # (a first version computed 1 - a * a as (1 - a)(1 + a), which keeps digits near 1 but
    # made 0 * inf a NaN at 1 and lost the sign of a zero second derivative: a review's find)
    f, tf = getattr(fm, op), getattr(torch, op)
    for x in (1.0, -1.0, 0.0, -0.0, 0.3, 2.5):
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        g, = torch.autograd.grad(tf(t), t, create_graph=True)
        h, = torch.autograd.grad(g, t)
        for got in (fm.grad(fm.grad(f))(x), fm.jacfwd(fm.jacfwd(f))(x),
                    fm.jit(fm.hessian(f))(x)):
            if math.isnan(h.item()):
                assert math.isnan(got)
            else:
                assert got == pytest.approx(h.item(), rel=1e-13, abs=0.0)
                assert math.copysign(1.0, got) == math.copysign(1.0, h.item())


@pytest.mark.parametrize("op, point", [("expm1", (-50.0,)), ("expm1", (0.5,)),
                                       ("atan2", (0.3, -0.7)), ("atan2", (1e-160, 3e-160))])
def test_every_torch_func_order_differentiates_the_export(op, point):
    from torch.func import hessian, jacfwd, jacrev

    g = fm.to_torch(getattr(fm, op))
    args = [torch.tensor([p], dtype=torch.float64) for p in point]
    f = lambda a: g(a, *args[1:]).sum()  # noqa: E731
    f(args[0])  # (the first call traces, on plain tensors)
    want = fm.hessian(lambda a: getattr(fm, op)(a, *point[1:]))(point[0])
    for order in (jacfwd(jacfwd(f)), jacrev(jacrev(f)), jacfwd(jacrev(f)), hessian(f)):
        assert order(args[0]).item() == pytest.approx(want, rel=1e-15, abs=0.0)
