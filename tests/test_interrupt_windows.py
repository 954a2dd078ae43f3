"""A Ctrl-C (any BaseException from a signal handler) can land between any two
bytecodes, also right after a context variable was set and before the token
that undoes it was stored. State set there must not outlive the call: a
leaked vmap depth broke every later ``vmap`` in the thread, a leaked
``RUNNING`` made every ``jit`` call run as Python, a leaked guard log kept
nodes alive, the collector stayed off, numpy's BLAS stayed on one thread.

Each case makes the first ``set`` of one variable raise right after it took
effect (the worst place for an interrupt), then checks the variable is as it
was and the same program gives its number."""

import gc
import importlib

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.compiler import threads


class Interrupt(BaseException):
    """What a signal handler raising KeyboardInterrupt looks like to the code."""


class SetThenInterrupt:
    """A context variable whose first ``set`` takes effect, then raises."""

    def __init__(self, var):
        self.var, self.fired = var, False

    def get(self, *default):
        return self.var.get(*default)

    def set(self, value):
        token = self.var.set(value)
        if not self.fired:
            self.fired = True
            raise Interrupt
        return token

    def reset(self, token):
        self.var.reset(token)


def _vmap():
    return fm.vmap(lambda x: x * x)((1.0, 2.0))


def _grad():
    return fm.grad(lambda x: fm.tanh(x) * x)(0.5)


def _jit():
    return fm.jit(lambda x: x * x + 1.0)(3.0)


def _jit_vmap():
    return fm.jit(lambda xs: fm.sum(fm.vmap(lambda x: x * x)(xs)))(np.array([1.0, 2.0]))


CASES = [  # (module, variable, a program that sets it)
    ("fmicrograd.batching.vectorize", "DEPTH", _vmap),
    ("fmicrograd.batching.vectorize", "BATCHES", _vmap),
    ("fmicrograd.batching.vectorize", "VMAP_NOW", _vmap),
    ("fmicrograd.core.control", "RUNNING", _grad),
    ("fmicrograd.core.sweep", "SWEEPING", _grad),
    ("fmicrograd.compiler.compile", "GUARDS", _jit),
    ("fmicrograd.compiler.compile", "TRACED", _jit),
    ("fmicrograd.compiler.compile", "TRACE_VALUES", _jit),
    ("fmicrograd.compiler.compile", "CHECKS", _jit_vmap),
]


@pytest.mark.parametrize("module,name,program", CASES, ids=[f"{m.split('.')[-1]}.{n}"
                                                            for m, n, _ in CASES])
def test_an_interrupt_right_after_a_set_leaves_nothing_set(module, name, program, monkeypatch):
    mod = importlib.import_module(module)
    var = getattr(mod, name)
    before = var.get()
    want = program()
    monkeypatch.setattr(mod, name, SetThenInterrupt(var))
    with pytest.raises(Interrupt):
        program()  # (a new jitted function each time: it traces again)
    monkeypatch.undo()
    assert var.get() is before or var.get() == before
    assert program() == want
    assert _vmap() == (1.0, 4.0)


def test_an_interrupt_right_after_the_collector_is_paused_turns_it_back_on(monkeypatch):
    from fmicrograd.compiler import compile as compile_module

    class Paused:
        def __getattr__(self, name):
            return getattr(gc, name)

        @staticmethod
        def disable():
            gc.disable()
            raise Interrupt

    assert gc.isenabled()
    monkeypatch.setattr(compile_module, "gc", Paused())
    with pytest.raises(Interrupt):
        _jit()
    monkeypatch.undo()
    assert gc.isenabled()


@pytest.mark.skipif(threads._SET is None, reason="numpy's BLAS is not OpenBLAS")
def test_an_interrupt_right_after_the_blas_count_drops_puts_it_back(monkeypatch):
    real = threads._SET
    before = threads._count_now()
    calls = []

    def set_then_interrupt(n):
        old = real(n)
        calls.append(n)
        if len(calls) == 1:
            raise Interrupt
        return old

    f = fm.jit(lambda a: (a @ a.T).sum())
    a = np.ones((3, 4))
    assert f(a) == 36.0
    monkeypatch.setattr(threads, "_SET", set_then_interrupt)
    with pytest.raises(Interrupt):
        f(a)
    monkeypatch.undo()
    assert threads._count_now() == before
    assert threads._PROGRAMS == set()
    assert f(a) == 36.0


@pytest.mark.skipif(threads._SET is None, reason="numpy's BLAS is not OpenBLAS")
def test_an_interrupt_before_the_count_is_set_back_is_undone_by_the_next_program(monkeypatch):
    real = threads._SET
    before = threads._count_now()
    f = fm.jit(lambda a: (a @ a.T).sum())
    a = np.ones((3, 4))
    assert f(a) == 36.0
    calls = []

    def interrupt_the_restore(n):
        calls.append(n)
        if len(calls) == 2:  # the last one out, about to set the user's count back
            raise Interrupt
        return real(n)

    monkeypatch.setattr(threads, "_SET", interrupt_the_restore)
    with pytest.raises(Interrupt):
        f(a)
    monkeypatch.undo()
    assert f(a) == 36.0  # the next program ends with the user's count, not the 1 it found
    assert threads._count_now() == before
