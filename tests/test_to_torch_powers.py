"""``fm.to_torch``: a constant exponent's ``**`` and a traced exponent's in one
function: torch's second derivatives are fm's, and ``** 0.5`` is ``sqrt`` (NaN
at ``-inf``) whichever path computes it.

Until round 30 the two ``**`` shared one torch operation under the traced
exponent's rule, whose ``d/db`` row of the constant one is NaN at a negative
base: torch's double backward passed it to the base (``x ** 3.0 + 2.0 ** x``
had a NaN second derivative at ``x = -2.5``, where fm's is -14.9); and a
traced exponent's ``(-inf) ** 0.5`` was ``inf`` (C's pow) when the inputs
required grad."""

from __future__ import annotations

import math

import pytest
import torch

import fmicrograd as fm


def _second(f, x, in_axes):
    t = fm.to_torch(f, in_axes=in_axes)
    x = torch.tensor(x if in_axes is None else [x], dtype=torch.float64, requires_grad=True)
    g, = torch.autograd.grad(t(x).sum(), x, create_graph=True)
    h, = torch.autograd.grad(g.sum(), x)
    return g.reshape(-1)[0].item(), h.reshape(-1)[0].item()


@pytest.mark.parametrize("in_axes", [None, 0])
@pytest.mark.parametrize("x", [-2.5, -0.5, 1.5])
def test_a_constant_and_a_traced_exponent(in_axes, x):
    def f(v):
        return v ** 3.0 + 2.0 ** v

    g, h = _second(f, x, in_axes)
    assert g == pytest.approx(fm.grad(f)(x), rel=1e-12)
    assert h == pytest.approx(fm.hessian(f)(x), rel=1e-12)


def test_a_traced_exponent_of_one_half_at_minus_infinity():
    t = fm.to_torch(lambda x, y: x ** y, in_axes=None)
    for grad in (True, False):
        x = torch.tensor(-math.inf, dtype=torch.float64, requires_grad=grad)
        y = torch.tensor(0.5, dtype=torch.float64, requires_grad=grad)
        assert math.isnan(t(x, y).item())


def test_grouped_constant_exponents_at_minus_infinity():
    t = fm.to_torch(lambda x: x[0] ** 3.0 + x[1] ** 0.5)
    got = t(torch.tensor([[-1.0, -math.inf]], dtype=torch.float64))
    assert math.isnan(got.item())


def test_keyword_arguments_are_refused_by_name():
    def f(x, y=1.0):
        return x * y

    with pytest.raises(TypeError, match=r"fm.to_torch\(f\): keyword arguments \(y\)"):
        fm.to_torch(f)(torch.tensor([1.0], dtype=torch.float64), y=2.0)


def test_a_closed_over_torch_tensor():
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    w = torch.tensor(2.0, dtype=torch.float64)
    # a torch number is a float64, as a numpy scalar is ("x * w" was numpy's TypeError)
    assert fm.to_torch(lambda v: v * w)(x).tolist() == [2.0, 4.0]
    assert fm.grad(lambda v: v * w)(3.0) == 2.0
    # one torch's autograd should see (or an array) is refused, naming the argument way
    for c in (w.clone().requires_grad_(), torch.ones(3, dtype=torch.float64)):
        with pytest.raises(TypeError, match="pass the tensor as an argument"):
            fm.to_torch(lambda v, c=c: v * c)(x)
    wg = w.clone().requires_grad_()
    out = fm.to_torch(lambda v, c: v * c, in_axes=(0, None))(x, wg)
    (dw,) = torch.autograd.grad(out.sum(), wg)
    assert dw.item() == 3.0
