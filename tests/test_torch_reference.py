"""The torch reference itself is accurate where torch's own backward is not.

torch computes sigmoid's derivative as ``out * (1 - out)``, which cancels in
the tail (9 digits lost at 16), and the second derivatives of ``softplus``
and ``log_sigmoid`` lose 3 digits at 10. The tests compare fmicrograd against
torch at 1e-12, so ``core.torch_ops`` gives these three ops their derivative
as differentiable torch ops. Checked here against mpmath at 50 digits, to
second order, in both tails and at softplus's threshold.
"""

import mpmath as mp
import pytest
import torch

import fmicrograd as fm
from fmicrograd.core.torch_ops import TORCH

mp.mp.dps = 50
EXACT = {
    "sigmoid": lambda z: 1 / (1 + mp.exp(-z)),
    "softplus": lambda z: mp.log(1 + mp.exp(z)),
    "log_sigmoid": lambda z: -mp.log(1 + mp.exp(-z)),
}
FM = {"sigmoid": fm.sigmoid, "softplus": fm.softplus, "log_sigmoid": fm.log_sigmoid}
POINTS = (-30.0, -16.0, -10.0, -1.5, 0.0, 0.5, 10.0, 16.0, 19.5)


def _torch_derivatives(op, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(TORCH[op](torch, t), t, create_graph=True)
    (h,) = torch.autograd.grad(g, t)
    return g.item(), h.item()


def _close(got, want):
    assert got == pytest.approx(float(want), rel=1e-14, abs=1e-16)


@pytest.mark.parametrize("op", sorted(EXACT))
@pytest.mark.parametrize("x", POINTS)
def test_reference_and_fm_derivatives_match_mpmath(op, x):
    want_g, want_h = mp.diff(EXACT[op], x, 1), mp.diff(EXACT[op], x, 2)
    g, h = _torch_derivatives(op, x)
    _close(g, want_g)
    _close(h, want_h)
    _close(fm.grad(FM[op])(x), want_g)
    _close(fm.grad(fm.grad(FM[op]))(x), want_h)


def test_softplus_above_the_threshold_is_linear_in_both():
    # torch and fmicrograd: slope exactly 1 above 20, curvature 0 from 20 on
    for x in (20.0, 25.0):
        g, h = _torch_derivatives("softplus", x)
        assert h == 0.0 and fm.grad(fm.grad(fm.softplus))(x) == 0.0
        assert g == fm.grad(fm.softplus)(x)
    assert _torch_derivatives("softplus", 25.0)[0] == 1.0


def test_the_reference_ops_work_under_torch_func():
    # to_torch lowers to these ops; torch.func transforms must accept them
    xs = torch.tensor([-12.0, 0.3, 12.0], dtype=torch.float64)
    for op in EXACT:
        got = torch.func.vmap(torch.func.grad(lambda a, op=op: TORCH[op](torch, a)))(xs)
        want = [fm.grad(FM[op])(x) for x in xs.tolist()]
        assert got.tolist() == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("op", ["sigmoid", "softplus", "log_sigmoid", "relu", "maximum",
                                "minimum"])
def test_forward_mode_agrees_with_reverse_mode(op):
    # the ops with a derivative of their own (an autograd Function) work under
    # torch.func.jvp and jacfwd too, not only under backward
    x = torch.tensor([-30.0, -1.0, 0.0, 0.3, 2.0, 19.5], dtype=torch.float64)
    y = torch.tensor([0.5, -1.0, -2.0, 0.3, 3.0, 1.0], dtype=torch.float64)
    args = (x,) if op in FM or op == "relu" else (x, y)
    ones = tuple(torch.full_like(a, 1.0 + k) for k, a in enumerate(args))
    _, forward = torch.func.jvp(lambda *a: TORCH[op](torch, *a), args, ones)
    grads = torch.func.vmap(torch.func.grad(lambda *a: TORCH[op](torch, *a),
                                            argnums=tuple(range(len(args)))))(*args)
    assert torch.equal(forward, sum(g * d for g, d in zip(grads, ones)))
    def first(a, *rest):
        return TORCH[op](torch, a, *rest)

    hess_fwd = torch.func.vmap(torch.func.jacfwd(torch.func.grad(first)))(*args)
    hess_rev = torch.func.vmap(torch.func.jacrev(torch.func.grad(first)))(*args)
    assert torch.allclose(hess_fwd, hess_rev, rtol=1e-12, atol=1e-300)
