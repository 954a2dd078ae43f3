"""A trace's float operands share one constant leaf per value (``expr.operand``):
``p - lr * g`` over 85,002 parameters made a leaf each. Zeros of either sign and
NaNs keep their own; outside a trace every operand gets a new leaf."""

import math

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.core import expr
from fmicrograd.core.control import TRACING


def test_one_leaf_per_value_while_a_trace_runs(monkeypatch):
    assert expr.operand(0.5) is not expr.operand(0.5)  # no trace: a leaf each
    monkeypatch.setitem(TRACING, -1, "fm.jit")
    assert expr.operand(0.5) is expr.operand(0.5) and expr.operand(0.5).value == 0.5
    assert expr.operand(math.inf) is expr.operand(math.inf)
    zeros = [expr.operand(0.0), expr.operand(-0.0)]
    assert zeros[0] is not expr.operand(0.0) and math.copysign(1.0, zeros[1].value) == -1.0
    assert expr.operand(math.nan) is not expr.operand(math.nan)


def test_a_jitted_update_with_shared_constants_keeps_its_values():
    def step(p, xs):
        def loss(q):
            return fm.mean(fm.vmap(lambda x: (q[0] * x - q[1]) ** 2 + 0.5 * q[2] * x)(xs))
        g = fm.grad(loss)(p)
        # the same floats on every leaf, and -0.0 and 0.0 kept apart
        return tuple(a - 0.1 * d + (-0.0) * a for a, d in zip(p, g)), tuple(0.0 * d for d in g)

    p, xs = (1.0, -2.0, 0.25), np.linspace(-1.0, 1.0, 50)
    f = fm.jit(step)
    for _ in range(3):
        got, want = f(p, xs), step(p, xs)
        assert fm.tree.leaves(got) == pytest.approx(fm.tree.leaves(want), rel=1e-12, abs=1e-15)
        assert [math.copysign(1.0, z) for z in got[1]] == [math.copysign(1.0, z) for z in want[1]]
        p = got[0]
