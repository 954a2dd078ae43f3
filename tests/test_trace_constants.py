"""A trace's float operands share one constant leaf per value (``expr.operand``,
``control.TRACE_CONSTS``): ``p - lr * g`` over 85,002 parameters made a leaf each.
Zeros of either sign and NaNs keep their own; outside a trace (and in another
thread, or a trace inside it) every operand gets a new leaf."""

import math
import threading

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.core import expr
from fmicrograd.core.control import TRACE_CONSTS, TRACING, running


def test_one_leaf_per_value_while_a_trace_runs():
    assert expr.operand(0.5) is not expr.operand(0.5)  # no trace: a leaf each
    with running(expr.next_level(), "fm.jit", traces=True):
        assert expr.operand(0.5) is expr.operand(0.5) and expr.operand(0.5).value == 0.5
        assert expr.operand(math.inf) is expr.operand(math.inf)
        zeros = [expr.operand(0.0), expr.operand(-0.0)]
        assert zeros[0] is not expr.operand(0.0) and math.copysign(1.0, zeros[1].value) == -1.0
        assert expr.operand(math.nan) is not expr.operand(math.nan)
        kept = expr.operand(0.5)
        with running(expr.next_level(), "fm.jit", traces=True):  # a trace of its own
            assert expr.operand(0.5) is not kept
        assert expr.operand(0.5) is kept
    assert not TRACING and TRACE_CONSTS.get() is None  # nothing left after the trace
    assert expr.operand(0.5) is not expr.operand(0.5)


def test_another_threads_trace_shares_no_leaf():
    # TRACING says a trace runs somewhere; this thread's operands are not its leaves
    seen = []
    with running(expr.next_level(), "fm.jit", traces=True):
        thread = threading.Thread(target=lambda: seen.append(
            expr.operand(0.25) is expr.operand(0.25)))
        thread.start()
        thread.join()
    assert seen == [False]


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
