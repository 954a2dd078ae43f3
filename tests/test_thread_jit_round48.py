"""A jitted function called in a worker thread that does not share the
caller's context, on a value a ``jit`` traces in the caller (round 48, a
helper's concurrency fuzzing): the worker, where no transform runs, made the
call a compiled node seen through for the trace, whose sweep later ran the
function on traced nodes and raised ``NotThrough`` with no message from
inside the library (``grad(jit(f))``, ``jit(grad(f))``, ``jit(hessian(f))``,
``jit(vmap(f))``). It is the documented thread ``TypeError`` now; with the
context copied, or under ``grad`` alone, the numbers."""

import contextvars
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.compiler.through import NotThrough

INNER = fm.jit(lambda x: x * x * 0.5 + fm.sin(x))


def _bare(x):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(INNER, x).result()


def _copied(x):
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(contextvars.copy_context().run, INNER, x).result()


OUTERS = {
    "grad(jit)": lambda g: fm.grad(fm.jit(g)),
    "jit(grad)": lambda g: fm.jit(fm.grad(g)),
    "jit(hessian)": lambda g: fm.jit(fm.hessian(g)),
    "jit": lambda g: fm.jit(g),
    "jit(vmap)": lambda g: fm.jit(lambda x: fm.vmap(g)(np.array([x, x + 1.0]))),
}


@pytest.mark.parametrize("outer", sorted(OUTERS))
def test_a_bare_worker_under_a_trace_is_the_thread_error(outer):
    with pytest.raises(TypeError, match=r"copy_context\(\)\.run") as e:
        OUTERS[outer](_bare)(0.7)
    assert not isinstance(e.value, NotThrough)


@pytest.mark.parametrize("outer", sorted(OUTERS))
def test_a_worker_in_the_callers_context_gives_the_numbers(outer):
    want = OUTERS[outer](lambda x: INNER(x))(0.7)
    assert fm.tree.leaves(OUTERS[outer](_copied)(0.7)) == pytest.approx(
        fm.tree.leaves(want), rel=1e-15)


def test_grad_alone_follows_a_bare_workers_call():
    assert fm.grad(_bare)(0.7) == pytest.approx(0.7 + np.cos(0.7), rel=1e-15)
