"""Module-level caches stay bounded in bytes, not only in entries (round 28: a
memory probe found 0.8 MB kept for each long tuple length seen once, and up to
256 MB of cached zero arrays)."""

import numpy as np

import fmicrograd as fm
from fmicrograd.compiler import autobatch
from fmicrograd.core import pytree


def test_the_treedefs_of_long_runs_hold_a_bounded_number_of_leaves():
    for k in range(40):
        fm.tree.leaves((0.5,) * (300_000 + k))
    assert sum(n for _, n in pytree._RUNS) <= 1 << 20
    assert fm.tree.structure((0.5,) * 300_001) == fm.tree.structure((1.0,) * 300_001)


def test_the_zeros_relu_compares_with_hold_at_most_32_mb():
    for k in range(10):
        x = np.full((600_000 + k,), -1.0)
        assert autobatch._relu(x).max() == 0.0
    assert sum(a.nbytes for a in autobatch._ZEROS.values()) <= 1 << 25
