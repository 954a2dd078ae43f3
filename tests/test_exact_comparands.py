"""Per-example comparisons under ``vmap`` with a number a float64 may not hold
(a ``Fraction``, a ``np.longdouble``, a numpy int beyond 2**53, a torch scalar)
answer as Python answers each float: exactly. ``fm.where``'s choice, and so the
value and derivative, follow that answer.

Until round 30 ``fm.where``'s node compared with the number rounded to a float64:
``fm.vmap(lambda x: fm.where(x < Fraction(1, 3), 2 * x, 3 * x))`` took the wrong
branch at ``x = 1/3`` (the float just below a third), and ``vmap(grad)`` gave 3.0
for 2.0; a torch float32 scalar compared in float64, a float64 one raised
numpy's AttributeError."""

from __future__ import annotations

import operator
from fractions import Fraction

import numpy as np
import pytest
import torch

import fmicrograd as fm

OPS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]
THIRD = 1 / 3  # the float just below 1/3


def _points(b):
    near = float(b)
    return (0.3, near, float(np.nextafter(near, -1.0)), float(np.nextafter(near, 2.0)),
            0.34, -1e300, 1e300)


@pytest.mark.parametrize("b", [Fraction(1, 3), np.longdouble(1) / 3, -Fraction(1, 10 ** 400),
                               np.int64(2 ** 62 + 1), np.uint64(2 ** 64 - 1)],
                         ids=["third", "longdouble", "tiny", "int64", "uint64"])
@pytest.mark.parametrize("op", OPS, ids=lambda o: o.__name__)
def test_where_chooses_as_python_compares(b, op):
    pts = _points(b)

    def g(x):
        return fm.where(op(x, b), x * 2.0, x * 3.0)

    want = tuple(p * 2.0 if op(p, b) else p * 3.0 for p in pts)
    slopes = tuple(2.0 if op(p, b) else 3.0 for p in pts)
    if op not in (operator.eq, operator.ne):  # (b is no float64: never equal to one)
        assert len({bool(op(p, b)) for p in pts}) == 2  # the examples disagree
    assert fm.vmap(g)(pts) == want
    assert fm.jit(fm.vmap(g))(pts) == want
    assert fm.vmap(fm.grad(g))(pts) == slopes


def test_the_third_is_on_the_right_side():
    assert THIRD < Fraction(1, 3)  # (what the test above relies on)
    got = fm.vmap(fm.grad(lambda x: fm.where(x < Fraction(1, 3), x * 2.0, x * 3.0)))(
        (0.3, THIRD, 0.34))
    assert got == (2.0, 2.0, 3.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_scalars_compare_as_python_does(dtype):
    c = torch.tensor(0.1, dtype=dtype)
    pts = (0.1, 0.2, float(np.float32(0.1)))

    def f(x):
        return fm.where(x == c, x * 2.0, x * 3.0)

    want = tuple(p * 2.0 if bool(p == c) else p * 3.0 for p in pts)
    assert fm.vmap(f)(pts) == want
    assert fm.vmap(fm.grad(f))(pts) == tuple(2.0 if bool(p == c) else 3.0 for p in pts)


@pytest.mark.parametrize("b", [torch.tensor(2 ** 53 + 1), torch.tensor(True),
                               torch.tensor(0.1, dtype=torch.bfloat16)],
                         ids=["int64", "bool", "bfloat16"])
def test_a_torch_number_torch_rounds_its_own_way_is_refused(b):
    # torch answers x <= tensor(2**53 + 1) after its own rounding; fm's per-example
    # comparison would not agree with it: an error naming the conversion
    with pytest.raises(TypeError, match=r"convert it first \(t.item\(\)"):
        fm.vmap(lambda x: fm.where(x <= b, 1.0, 0.0))((2.0 ** 53 + 2, 1.0))
