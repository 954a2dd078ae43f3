"""Round 35's fm.random probe: an infinite bound given as a numpy float or a
node drew forever (the check read Python floats only), and ``normal`` drew
in float32/float16 for a numpy float32/float16 ``mean`` or ``std``."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd import random as R

K = R.key(3)


@pytest.mark.parametrize("call", [
    lambda: R.uniform(K, None, 0.0, np.float64(math.inf)),
    lambda: R.uniform(K, 2, np.float64(-math.inf), 0.0),
    lambda: fm.grad(lambda h: R.uniform(K, None, 0.0, h))(math.inf),
    lambda: fm.jit(lambda h: R.uniform(K, None, 0.0, h))(math.inf),
], ids=["numpy float", "numpy float, n", "grad", "jit"])
def test_an_infinite_bound_is_an_error(call):
    with pytest.raises(ValueError, match="needs finite bounds"):
        call()  # (round 34: drew forever)


def test_a_width_beyond_float64_is_weighed_for_every_kind_of_bound():
    plain = R.uniform(K, None, -1e308, 1e308)
    assert math.isfinite(plain)
    assert R.uniform(K, None, np.float64(-1e308), np.float64(1e308)) == plain
    slope = fm.grad(lambda h: R.uniform(K, None, -h, h))(1e308)  # (round 34: drew forever)
    assert slope == pytest.approx(plain / 1e308, rel=1e-12)


@pytest.mark.parametrize("kind", [np.float32, np.float16])
def test_normal_draws_in_float64(kind):
    want = R.normal(K, 3, 0.5, 0.5)
    got = R.normal(K, 3, kind(0.5), kind(0.5))
    assert got == want and all(x.__class__ is float for x in got)


def test_per_example_bounds_wider_than_float64_are_weighed():
    # review 2: under vmap the width check read 0.0 and the draw looped forever
    lows, highs = np.array([-1e308, -1e308]), np.array([1e308, 1e308])
    got = fm.vmap(lambda a, b: R.uniform(K, None, a, b))(lows, highs)
    assert all(math.isfinite(v) and -1e308 <= v < 1e308 for v in got)
    assert got[0] == R.uniform(K, None, -1e308, 1e308)


def test_normal_with_a_mean_beyond_float64_is_an_error():
    with pytest.raises(ValueError, match="needs a finite mean and std"):
        R.normal(K, 2, 10 ** 400, 1.0)
