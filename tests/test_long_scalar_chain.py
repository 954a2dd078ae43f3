"""A long scalar program with nothing to batch (a chain) runs as float code:
until round 31 a program of over 20,000 operations always took the array
backend, one numpy call per operation (a 90,000-operation chain: 61 ms a call
where float code takes 3 ms, and a first call of 2.8 s where it is 1.0 s)."""

from __future__ import annotations

import pytest

import fmicrograd as fm


def _chain(x):
    for _ in range(7000):
        x = fm.sin(x) * 0.999 + 0.001
    return x


def test_a_long_chain_takes_the_float_backend_with_eager_numbers():
    j = fm.jit(_chain)
    assert j.lower(0.5).as_text().startswith("# fm.jit(_chain): scalar backend")
    assert j(0.5) == _chain(0.5) and j(0.6) == _chain(0.6)


def test_a_sum_of_thousands_of_terms_compiles():
    # (one ``a + b + ...`` line of 3,000 terms: CPython's compiler raised RecursionError)
    def f(x):
        y, s = x, 0.0
        for _ in range(3000):
            y = fm.sin(y) * 0.999 + 0.001
            s = s + y
        return s

    j = fm.jit(f)
    assert j(0.3) == f(0.3)
    assert fm.jit(fm.grad(f))(0.3) == fm.grad(f)(0.3)


def test_a_custom_rules_fwd_runs_on_floats_in_array_code():
    import fmicrograd.compiler.autobatch as autobatch

    f = fm.custom_vjp(lambda x: 1.0 / x)
    f.defvjp(lambda x: (1.0 / x, x), lambda x, g: (-g / (x * x),))
    forced = autobatch.worth_it
    autobatch.worth_it = lambda p: True  # (the array backend, which gave inf)
    try:
        j = fm.jit(lambda x: f(x) + x)
        assert j(2.0) == 2.5
        with pytest.raises(ZeroDivisionError):
            j(0.0)
    finally:
        autobatch.worth_it = forced


def test_a_long_dot_in_array_code_compiles():
    # (a review's catch: array code wrote a 3,000-term dot of batched and unbatched values
    # as one ``+`` line, which CPython's parser refused with RecursionError)
    import numpy as np

    n = 3000
    ws = [0.001 * k for k in range(n)]

    def f(a, ws):
        return fm.vmap(lambda t: fm.dot([t * float(k) if k % 2 else ws[k] for k in range(n)],
                                        list(ws)))(a)

    a = np.array([0.5, 1.5])
    assert tuple(fm.jit(f)(a, ws)) == tuple(f(a, ws))
