"""The BLAS thread count around compiled programs. OpenBLAS's
``openblas_set_num_threads_local`` sets the whole process's count in numpy's
wheels, so compiled programs hold it at 1 while any of them runs, in any
thread, and put the user's count back when the last one ends (round 27: a
thread's restore gave another thread's running program two BLAS threads,
whose products differ in the last bits, and the helper thread left the
process at one thread)."""

import _thread
import threading

import numpy as np

import fmicrograd as fm
from fmicrograd.compiler import threads as th


def _count(set_to: int) -> int:
    """The process's BLAS thread count, then ``set_to`` (0 without OpenBLAS)."""
    return th._SET(set_to) if th._SET is not None else 0


def test_the_count_stays_one_while_another_threads_program_runs():
    start = _count(2)
    inside, go_on = threading.Event(), threading.Event()
    seen: dict = {}

    def later(_):
        inside.set()
        go_on.wait(10)  # runs on after the first thread's program has ended
        seen["count"] = _count(1)
        return 1.0

    other = threading.Thread(target=lambda: th.single_thread(later, None))

    def first(_):
        other.start()
        inside.wait(10)
        return 2.0

    assert th.single_thread(first, None) == 2.0
    go_on.set()
    other.join(10)
    if th._SET is not None:
        assert seen["count"] == 1  # it was 2: the first thread had restored its count
        assert _count(start) == 2  # the last program to end put the count back


def test_the_helper_thread_leaves_the_count_as_it_found_it():
    start = _count(2)
    helper = th._Helper()
    done = _thread.allocate_lock()
    done.acquire()
    task = [lambda v: v * 2.0, 3.0, None, None, done]
    with helper.mutex:
        helper.task = task
    helper.go.release()
    assert done.acquire(True, 10)
    assert task[2] == 6.0
    if th._SET is not None:
        assert _count(start) == 2  # it was 1: the helper set it for the process at its start


def test_a_large_step_in_several_threads_gives_the_bits_of_one_call():
    model = fm.nn.MLP.init(2, [32, 32, 1], key=fm.random.key(0))
    loss = lambda m, X, Y: fm.mean(fm.vmap(  # noqa: E731
        lambda a, b, y: (m([a, b]) - y) ** 2)(X[:, 0], X[:, 1], Y))
    step = fm.jit(fm.value_and_grad(loss))
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(5000, 2)), rng.normal(size=5000)) for _ in range(3)]
    flat = lambda d: np.array(fm.tree.leaves(step(model, *d)))  # noqa: E731
    alone = [flat(d) for d in data]
    results: list = [None] * len(data)
    barrier = threading.Barrier(len(data))

    def work(i: int) -> None:
        barrier.wait()
        results[i] = [flat(data[i]) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(data))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for i, runs in enumerate(results):
        for got in runs:
            assert np.array_equal(got, alone[i])


def test_a_ctrl_c_right_after_the_count_was_set_does_not_save_the_one(monkeypatch):
    # an interrupt landing after _SET(1) and before the count was saved let another
    # thread, taking the lock first, save that 1 as the user's: every program after ended
    # by "restoring" 1 (a helper's thread fuzzing, once in ~34,000 interrupts; made
    # deterministic here with wrapped globals, as the helper's reproducer did)
    import time

    class Interrupt(BaseException):
        pass

    f = fm.jit(lambda a: (a @ a.T).sum())
    a = np.ones((3, 4))
    assert f(a) == 36.0
    real_set, real_lock = th._SET, th._COUNT_LOCK
    if real_set is None:  # (numpy without OpenBLAS: there is no count to keep)
        return
    before = _count(2)  # the user's count: 2, which a wrongly saved 1 would replace
    main, go = threading.current_thread(), threading.Event()
    state = {"armed": True, "interrupted": False}

    def set_then_interrupt(n):
        old = real_set(n)
        if threading.current_thread() is main and state["armed"] and n == 1:
            state["armed"], state["interrupted"] = False, True
            go.set()
            time.sleep(0.2)  # the other thread now waits for the lock
            raise Interrupt  # the signal lands right after the C call
        return old

    class SlowAfterTheInterrupt:
        def __enter__(self):
            if threading.current_thread() is main and state["interrupted"]:
                state["interrupted"] = False
                time.sleep(0.3)  # this thread's `finally` comes after the other's call
            return real_lock.__enter__()

        def __exit__(self, *e):
            return real_lock.__exit__(*e)

    def other():
        go.wait(10)
        assert f(a) == 36.0

    monkeypatch.setattr(th, "_SET", set_then_interrupt)
    monkeypatch.setattr(th, "_COUNT_LOCK", SlowAfterTheInterrupt())
    worker = threading.Thread(target=other)
    worker.start()
    try:
        f(a)
    except Interrupt:
        pass
    worker.join(10)
    monkeypatch.undo()
    assert f(a) == 36.0
    after = _count(before)
    assert after == 2 and not th._PROGRAMS
