"""Round 37: glibc's malloc thresholds, set once when ``jit`` first builds
array code, so that a compiled step's arrays are not faulted in again on
every call (``compiler.heap``)."""

import os
import resource

import numpy as np
from test_hoist_round37 import loss  # an MLP's hinge loss over fm.vmap, with L2

import fmicrograd as fm
from fmicrograd.compiler import heap


class FakeLibc:
    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return self.answer


def test_the_thresholds_are_the_heuristics_largest():
    libc = FakeLibc()
    assert heap._set({}, libc)
    assert libc.calls == [(-3, 32 << 20), (-1, 64 << 20)]


def test_the_users_own_settings_and_the_opt_out_are_left_alone():
    for environ in ({"FMICROGRAD_MALLOC": "default"}, {"FMICROGRAD_MALLOC": " Default "},
                    {"MALLOC_TRIM_THRESHOLD_": "0"}, {"MALLOC_MMAP_THRESHOLD_": "1"},
                    {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}):
        libc = FakeLibc()
        assert not heap._set(environ, libc) and libc.calls == []


def test_a_libc_without_mallopt_or_refusing_it_is_reported():
    assert not heap._set({}, object())
    assert not heap._set({}, FakeLibc(answer=0))


def test_a_compiled_step_of_128_kb_arrays_takes_no_page_faults_per_call():
    rng = np.random.default_rng(0)
    params = tuple(tuple((tuple(rng.normal(size=a).tolist()), 0.1) for _ in range(b))
                   for a, b in ((2, 16), (16, 16), (16, 1)))
    xs, ys = rng.normal(size=(1000, 2)), np.where(rng.random(1000) < 0.5, -1.0, 1.0)
    step = fm.jit(fm.value_and_grad(loss))
    for _ in range(20):
        step(params, xs, ys)
    glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc") and not any(
        name in os.environ for name in heap._USERS + ("FMICROGRAD_MALLOC",))
    assert heap._DONE == [glibc]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        step(params, xs, ys)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 50
    if glibc:  # (155-187 a call in the processes whose heap top glibc trimmed each time)
        assert faults < 10
