"""``atan2``'s slopes at a subnormal radius are ``x / r / r`` and ``-y / r / r``:
until round 31 they were computed through ``1 / r``, which overflows below
5.6e-309, giving -inf or NaN where the slope is finite (mpmath:
-9.9999999838169e+304 at (1e-315, 1e-310))."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm

PATHS = {
    "grad": lambda f: f,
    "jit": fm.jit,
}


@pytest.mark.parametrize("wrap", PATHS.values(), ids=PATHS)
def test_slopes_at_a_subnormal_radius(wrap):
    g = wrap(fm.grad(fm.atan2, argnums=(0, 1)))
    dy, dx = g(1e-315, 1e-310)
    assert dy == float("inf")
    assert dx == pytest.approx(-9.9999999838169e+304, rel=1e-12)
    assert g(0.0, 1e-310) == (float("inf"), -0.0)


def test_under_vmap():
    g = fm.jit(fm.vmap(fm.grad(fm.atan2, argnums=(0, 1))))
    first, second = g(np.array([1e-315, 3.0]), np.array([1e-310, 4.0]))  # (per example)
    assert first[1] == pytest.approx(-9.9999999838169e+304, rel=1e-12)
    assert second == pytest.approx((4.0 / 25.0, -3.0 / 25.0), rel=1e-15)
