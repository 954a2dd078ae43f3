"""numpy's in-place arithmetic with a node. Into an array of Python objects
each entry's ``entry + x`` is written in place, as numpy does for objects; a
float array cannot hold a node: a TypeError naming the fix. And numpy's
functions on a node name an fm function that exists.

Until round 31 both in-place forms handed back a new node, leaving the array
as it was: a helper ``def acc(buf, v): buf += v`` left its caller's buffer at
zeros (``fm.grad`` 1.0 where the float program's slope is 13.0; ``jit``
3.0 for 21.0); and ``np.abs(x)`` said "use fm.abs", which does not exist."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm


def _accumulate(buf, v):
    buf += v


def _with_floats(x):
    buf = np.zeros(2)
    _accumulate(buf, x * x)
    return x + fm.sum(buf.tolist())


def _with_objects(x):
    buf = np.array([1.0, x], dtype=object)
    np.multiply(buf, x, out=buf)
    _accumulate(buf, x)
    return fm.sum(buf.tolist())  # float program: (x + x) + (x * x + x) = 3 x + x ** 2


@pytest.mark.parametrize("transform", [
    lambda f: f, fm.grad, fm.jit, lambda f: lambda x: fm.jvp(f, (x,), (1.0,)),
    lambda f: lambda x: fm.vmap(f)((x, x)),
], ids=["plain", "grad", "jit", "jvp", "vmap"])
def test_a_float_array_updated_in_place_with_a_node_is_an_error(transform):
    with pytest.raises(TypeError, match=r"np.add in place .* arr = arr \+ x"):
        transform(_with_floats)(fm.Var(3.0) if transform is not fm.grad else 3.0)


def test_an_object_array_is_updated_in_place():
    assert _with_objects(3.0) == 18.0
    assert fm.grad(_with_objects)(3.0) == 9.0
    j = fm.jit(_with_objects)
    assert (j(3.0), j(2.0)) == (18.0, 10.0)
    assert fm.grad(fm.jit(_with_objects))(2.0) == 7.0


@pytest.mark.parametrize("ufunc, fix", [
    (np.abs, r"write abs\(x\)"), (np.arcsin, "use fm.asin"), (np.isnan, "write x != x"),
    (np.floor, "fm has no floor"),
], ids=["abs", "arcsin", "isnan", "floor"])
def test_numpy_functions_name_a_fix_that_exists(ufunc, fix):
    with pytest.raises(TypeError, match=fix):
        ufunc(fm.Var(0.5))


def test_a_zero_d_array_holding_a_node_is_the_node():
    # (np.where of a node is a 0-d object array: grad said "reduce it with fm.sum", which fails)
    f = lambda x: np.where(x > 0.0, x * x, 0.0)  # noqa: E731
    assert fm.grad(f)(3.0) == 6.0 and fm.value_and_grad(f)(-1.0) == (0.0, 0.0)
    with pytest.raises(TypeError, match=r"shape \(\)\); .*return arr.item\(\)"):
        fm.jvp(f, (3.0,), (1.0,))
