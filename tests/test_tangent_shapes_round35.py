"""Round 35's transforms-against-JAX probe: a numpy array given as the
tangent of a number. JAX refuses it; round 34 gave one tangent per entry
(``[3., 6., 9.]`` for ``x * x`` at 1.5), the sum through a ``custom_vjp``
(18.0), or numpy's own ``TypeError`` under ``jit``."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm

T = np.array([1.0, 2.0, 3.0])


def _custom_vjp():
    cv = fm.custom_vjp(lambda x: x * x)
    cv.defvjp(lambda x: (x * x, x), lambda r, g: (2 * r * g,))
    return cv


def _custom_jvp():
    cj = fm.custom_jvp(lambda x: x * x)
    cj.defjvp(lambda p, t: (cj(p[0]), 2 * p[0] * t[0]))
    return cj


CALLS = {
    "jvp": lambda: fm.jvp(lambda x: x * x, (1.5,), (T,)),
    "jvp of a custom_vjp": lambda: fm.jvp(_custom_vjp(), (1.5,), (T,)),
    "jvp of jit of a custom_jvp": lambda: fm.jvp(fm.jit(_custom_jvp()), (1.5,), (T,)),
    "linearize of a custom_vjp": lambda: fm.linearize(_custom_vjp(), 1.5)[1](T),
    "jvp, pytree": lambda: fm.jvp(lambda p: p["a"] * p["b"], ({"a": 1.0, "b": 2.0},),
                                  ({"a": 1.0, "b": T},)),
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_an_array_tangent_for_a_number_is_refused(name):
    with pytest.raises(ValueError, match=r"tangent at .* is an array of shape \(3,\) for a "
                                         r"number.*fm.vmap"):
        CALLS[name]()


def test_the_fix_it_names_gives_each_tangent():
    assert fm.vmap(lambda t: fm.jvp(lambda x: x * x, (1.5,), (t,))[1])(T) == (3.0, 6.0, 9.0)
    assert fm.vmap(lambda t: fm.jvp(_custom_vjp(), (1.5,), (t,))[1])(T) == (3.0, 6.0, 9.0)


def test_numbers_and_0d_arrays_stay_tangents():
    assert fm.jvp(lambda x: x * x, (np.float64(1.5),), (np.array(2.0),)) == (2.25, 6.0)
    _, f_jvp = fm.linearize(lambda x: x * x, 1.5)
    assert f_jvp(np.float32(2.0)) == 6.0
