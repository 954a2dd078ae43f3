"""A 0-d numpy array of a real number as a parameter leaf: ``fm.jit(fm.grad(f))``
read it as its number while ``fm.grad(f)`` refused it (round 48's known item).
Every transform reads it as ``jit`` does now, with the same numbers."""

import numpy as np
import pytest

import fmicrograd as fm


def loss(p):
    return p["a"] * p["a"] * 3.0 + fm.tanh(p["b"]) * p["a"]


POINT = {"a": np.array(2.0), "b": np.array(0.5, dtype=np.float32)}
FLOATS = {"a": 2.0, "b": 0.5}


@pytest.mark.parametrize("transform", [fm.grad, lambda f: fm.jit(fm.grad(f))])
def test_grad_reads_a_zero_d_array_as_its_number(transform):
    got = transform(loss)(POINT)
    want = fm.grad(loss)(FLOATS)
    assert dict(got) == dict(want)
    assert all(type(v) is float for v in got.values())


def test_value_and_grad_hessian_and_jvp_agree_with_floats():
    value, g = fm.value_and_grad(loss)(POINT)
    assert (value, dict(g)) == (loss(FLOATS), dict(fm.grad(loss)(FLOATS)))
    h = fm.hessian(lambda a: a * a * a)(np.array(3.0))
    assert h == fm.hessian(lambda a: a * a * a)(3.0) == 18.0
    out, tangent = fm.jvp(lambda a: a * a, (np.array(3),), (1.0,))
    assert (out, tangent) == (9.0, 6.0)


def test_an_int_array_counts_as_an_int_and_bools_complex_stay_refused():
    assert fm.grad(lambda a: a * a)(np.array(4)) == 8.0
    with pytest.raises(ValueError, match=r"beyond 2\*\*53"):
        fm.grad(lambda a: a * a)(np.array(2**60))
    with pytest.raises(TypeError, match="masked array"):
        fm.grad(lambda a: a * a)(np.ma.array(2.0, mask=True))
    for bad in (np.array(True), np.array(1 + 0j)):
        with pytest.raises(TypeError, match="expected a float"):
            fm.grad(lambda a: a * a)(bad)
    with pytest.raises(TypeError, match="numpy array of shape"):
        fm.grad(lambda a: a[0] * 2.0)(np.zeros(2))


def test_the_callers_arrays_are_not_changed():
    a = np.array(2.0)
    fm.grad(lambda x: x * x)(a)
    assert a.shape == () and a == 2.0
