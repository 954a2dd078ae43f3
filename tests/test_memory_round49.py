"""What a review of memory in long runs found kept alive (round 49): graphs
``foreign`` remembered while another thread's transform ran, errors a thread
without a transform caught (with their frames), and the last task of the
helper thread that runs a batch half. Each is let go now."""

import _thread
import gc
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import fmicrograd as fm
from fmicrograd.compiler import threads
from fmicrograd.core import control


def _grad_waiting_in_a_thread():
    started, go, node = threading.Event(), threading.Event(), []

    def body(x):
        node.append(x * 3.0)
        started.set()
        go.wait(30)
        return x * x

    def run():
        try:
            fm.grad(body)(1.0)
        except TypeError:  # (the grad's own: a thread caught an error raised for it)
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    started.wait(30)
    return t, go, node[0]


def test_foreign_remembers_a_bounded_number_of_nodes():
    t, go, _ = _grad_waiting_in_a_thread()
    try:
        for _ in range(40):  # 40 graphs of 1,000 nodes, each dropped after its float()
            v = fm.Var(0.5)
            for _ in range(500):
                v = v * 1.0001 + 0.001
            assert float(v) > 0.5
            del v
        gc.collect()
        known = sum(len(memo) for memo in control._CLEAR.values())
        assert known <= control.KNOWN_MOST + 1_001  # (40,040 before: every graph kept)
    finally:
        go.set()
        t.join(30)
    assert not control._CLEAR  # (emptied when the transform ends)


def test_a_thread_without_a_transform_keeps_no_error_it_caught():
    t, go, node = _grad_waiting_in_a_thread()
    pool = ThreadPoolExecutor(1)

    def work():
        big = np.ones(10_000)
        try:
            float(node)  # a value the other thread's grad depends on: refused
        except TypeError:
            pass
        return weakref.ref(big), len(control.RAISED.get())

    try:
        found = [pool.submit(work).result() for _ in range(5)]
    finally:
        go.set()
        try:
            t.join(30)
        finally:
            pool.shutdown()
    gc.collect()
    assert all(count == 0 for _, count in found)  # (1, 2, ... 5 before: kept for good)
    assert all(ref() is None for ref, _ in found)


def test_the_helper_thread_lets_go_of_its_last_task():
    helper = threads._Helper()
    arg, done = np.ones(1_000), _thread.allocate_lock()
    done.acquire()
    held = weakref.ref(arg)
    helper.task = [np.sum, arg, None, None, done]
    helper.go.release()
    assert done.acquire(timeout=30)
    del arg, helper.task
    deadline = time.monotonic() + 5
    while held() is not None and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.01)
    assert held() is None  # (held by the helper's loop until its next task before)


def test_a_static_tuple_passed_again_matches_by_identity_and_equal_ones_still_match():
    # (the matcher built the tuple's key at every call: 33 ms a call for 100,000 indices;
    # the same object now matches at once, an equal one by its key, a changed one retraces)
    traces = []
    f = fm.jit(lambda x, idx: (traces.append(1), x * len(idx) + idx[-1])[1], static_argnums=1)
    idx = tuple(range(10_000))
    assert f(1.0, idx) == f(1.0, idx) == 19_999.0 and len(traces) == 1
    assert f(2.0, tuple(range(10_000))) == 29_999.0 and len(traces) == 1
    assert f(1.0, (*idx[:-1], -1.0)) == 9_999.0 and len(traces) == 2  # (a float item: retraced)
    assert f(1.0, (*idx[:-1], -1)) == 9_999.0 and len(traces) == 3
