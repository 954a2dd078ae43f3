"""A long scalar program with nothing to batch (a chain) runs as float code:
until round 31 a program of over 20,000 operations always took the array
backend, one numpy call per operation (a 90,000-operation chain: 61 ms a call
where float code takes 3 ms, and a first call of 2.8 s where it is 1.0 s)."""

from __future__ import annotations

import fmicrograd as fm


def _chain(x):
    for _ in range(7000):
        x = fm.sin(x) * 0.999 + 0.001
    return x


def test_a_long_chain_takes_the_float_backend_with_eager_numbers():
    j = fm.jit(_chain)
    assert j.lower(0.5).as_text().startswith("# fm.jit(_chain): scalar backend")
    assert j(0.5) == _chain(0.5) and j(0.6) == _chain(0.6)
