"""State ``fm.jit`` keeps between calls that gave a stale program (round 47,
a helper's model-based fuzzing of call sequences): its own output passed back
by identity with a registered node's aux data equal but not the same (``1``
and ``True``, ``0.0`` and ``-0.0``), and ``Jitted.deferred`` called inside
another transform with arguments that hold no node."""

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.compiler.compile import built


@dataclasses.dataclass(frozen=True)
class Scaled:
    v: float
    k: Any  # aux data: keys the compiled program by type and bits


fm.tree.register(Scaled, lambda s: ((s.v,), s.k), lambda k, c: Scaled(c[0], k), immutable=True)


def _flip(s):
    return Scaled(s.v * math.copysign(2.0, s.k), -s.k)


def _bump(s):
    return Scaled(s.v * (3.0 if s.k is True else 2.0), True if s.k == 1 else s.k)


@pytest.mark.parametrize("f, start", [(_flip, Scaled(1.0, 0.0)), (_bump, Scaled(1.0, 1))],
                         ids=["zero-sign", "one-and-true"])
@pytest.mark.parametrize("deferred", [False, True])
def test_an_output_passed_back_runs_the_program_of_its_own_aux_data(f, start, deferred):
    jitted = fm.jit(f)
    call = jitted.deferred if deferred else jitted
    out = built(call(start))
    again = built(call(out))  # the function's own output, by identity
    assert again == f(out) == jitted(Scaled(out.v, out.k))
    assert repr(again.k) == repr(f(out).k)


def _via(call, cell):
    def h(x):
        cell["x"] = x  # read by the jitted function from its closure
        return call(1.0)[0]
    return h


def test_deferred_inside_a_transform_runs_as_the_plain_call_does():
    cell = {"x": 2.0}
    jitted = fm.jit(lambda y: (cell["x"] * y, y + 1.0))
    jitted(1.0)  # compiled at the top level, with 2.0 read from the closure
    xs = np.array([1.0, 2.0, 3.0])
    for call in (jitted, jitted.deferred):
        assert fm.value_and_grad(_via(call, cell))(5.0) == (5.0, 1.0)
        assert fm.vmap(_via(call, cell))(xs) == (1.0, 2.0, 3.0)
        assert fm.jit(_via(call, cell))(7.0) == 7.0


def test_an_output_whose_aux_data_compares_by_raising_is_not_carried():
    # np.float64(1.0) == (1, 2) raises numpy's "truth value ... is ambiguous"
    f = fm.jit(lambda s: Scaled(s.v * 2.0, (1, 2)))
    assert f(Scaled(1.0, np.float64(1.0))) == Scaled(2.0, (1, 2))
