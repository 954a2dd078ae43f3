"""A refusal fm makes where a float would answer (a comparison with a Decimal or
with a numpy array outside vmap, ``%``, pickle), caught by the function under a
transform, is raised again when the function returns, as ``float()``'s is: the
fallback a float would never take is not a result.

Until round 30 each of these gave the fallback's number (``fm.grad`` 3.0 where
the float program's slope is 2.0)."""

from __future__ import annotations

import pickle
from decimal import Decimal

import numpy as np
import pytest

import fmicrograd as fm


def _decimal(x):
    try:
        big = x > Decimal("0.1")  # floats compare with a Decimal exactly
    except TypeError:
        big = False
    return x * 2.0 if big else x * 3.0


def _array(x):
    try:
        big = x < np.array([0.5, 2.0])  # floats give an array of answers
    except TypeError:
        big = False
    return x * 2.0 if big is False else x * 3.0


def _mod(x):
    try:
        r = x % 2.0
    except TypeError:
        r = x
    return r * x


def _pickle(x):
    try:
        pickle.dumps(x)
        c = 1.0
    except TypeError:
        c = 2.0
    return x * c


@pytest.mark.parametrize("f, message", [(_decimal, "Decimal"), (_array, "numpy array"),
                                        (_mod, "no % or //"), (_pickle, "pickle")])
@pytest.mark.parametrize("transform", ["grad", "jit", "hessian", "jit_grad"])
def test_a_caught_refusal_is_raised_again(f, message, transform):
    t = fm.jit(fm.grad(f)) if transform == "jit_grad" else getattr(fm, transform)(f)
    with pytest.raises(TypeError, match=message):
        t(3.0)


@pytest.mark.parametrize("f", [_decimal, _mod])
def test_under_vmap_too(f):
    with pytest.raises(TypeError):
        fm.vmap(f)([1.0, 3.0])


def test_without_a_transform_the_function_runs_as_written():
    # nothing differentiates, maps or traces the node: its refusal is the function's
    # own business (the fallback is what it asked for)
    assert _decimal(fm.Var(3.0)).value == 9.0
    assert _mod(fm.Var(3.0)).value == 9.0
    assert _pickle(3.0) == 3.0
    # and a value no transform depends on is not noted
    assert fm.grad(lambda x: x * _decimal(fm.Var(1.0)))(2.0) == 3.0


def test_what_a_float_refuses_too_is_the_functions_own():
    # 1.5 % None raises for a float as well: the fallback is what the float program does
    def f(w):
        try:
            return w * (w % None)
        except TypeError:
            return w * 2.0

    assert fm.grad(f)(1.5) == 2.0
    assert fm.vmap(f)([1.0, 2.0]) == (2.0, 4.0)
