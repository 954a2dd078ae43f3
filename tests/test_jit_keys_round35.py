"""Round 35's jit-keys probe: an argument whose state changes as it is used
(numpy's random generators, iterators, a dict's values view) was a static
leaf keyed by identity, so every call replayed what it gave at the trace
(``rng.standard_normal()``: the same number at every call). JAX refuses
them too."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

import fmicrograd as fm

MAKERS = {
    "numpy Generator": lambda: np.random.default_rng(0),
    "numpy RandomState": lambda: np.random.RandomState(0),
    "iterator": lambda: iter([1.0, 2.0, 3.0]),
    "generator": lambda: (float(i) for i in range(3)),
    "itertools.count": lambda: itertools.count(1.0),
    "dict values": lambda: {"a": 1.0}.values(),
    "random.Random": lambda: random.Random(0),
}


def _draw(x, source):
    if isinstance(source, (np.random.Generator, np.random.RandomState)):
        return x + 0.1 * source.standard_normal()
    if isinstance(source, random.Random):
        return x + source.random()
    return x + next(iter(source))


@pytest.mark.parametrize("name", sorted(MAKERS))
@pytest.mark.parametrize("how", ["jit", "grad of jit", "jit in a tuple"])
def test_an_argument_that_changes_as_used_is_refused(name, how):
    J = fm.jit(_draw)
    call = {"jit": lambda s: J(1.0, s),
            "grad of jit": lambda s: fm.grad(lambda x: J(x, s))(1.0),
            "jit in a tuple": lambda s: fm.jit(lambda x, p: _draw(x, p[0]))(1.0, (s,))}[how]
    with pytest.raises(TypeError, match="state changes as it is used.*pass them in"):
        call(MAKERS[name]())


def test_functions_classes_and_modules_stay_static():
    J = fm.jit(lambda x, f: f(x))
    assert J(0.5, fm.sin) == fm.sin(0.5)
    assert J(-2.0, abs) == 2.0
    assert fm.jit(lambda x, m: m.sqrt(x))(4.0, fm) == 2.0


def test_a_file_to_print_to_stays_static():
    import io

    out = io.StringIO()
    J = fm.jit(lambda x, f: (print("traced", file=f), x * 2.0)[1])
    assert J(1.5, out) == 3.0 and J(2.5, out) == 5.0
