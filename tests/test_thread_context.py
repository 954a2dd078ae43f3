"""Code that a transformed function runs in another thread: Python threads do
not inherit context variables, so a transform cannot see what happens there.
A comparison jit would not guard, or a float() grad would not see, is an error
naming the fix (``contextvars.copy_context().run``), never a frozen branch or a
lost derivative; with the fix the numbers are the eager ones."""

import contextvars
import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.core import comparisons, control

FIX = r"contextvars\.copy_context\(\)\.run"


@pytest.fixture(scope="module")
def pool():
    with ThreadPoolExecutor(2) as ex:
        yield ex


def branchy(pool, share):
    def f(x):
        work = lambda: x * 2.0 if x > 0 else -x * 3.0  # noqa: E731
        if share:
            return pool.submit(contextvars.copy_context().run, work).result()
        return pool.submit(work).result()
    return f


def test_a_branch_in_a_thread_under_jit_is_an_error_naming_the_fix(pool):
    # it was compiled with the branch of the first call: jit(f)(-1.0) gave -2.0, not 3.0
    for g in (fm.jit(branchy(pool, False)), fm.jit(fm.grad(branchy(pool, False)))):
        with pytest.raises(TypeError, match=r"`>` on a value that fm.jit is tracing.*" + FIX):
            g(1.0)
    assert control._ANYWHERE == {} and control.TRACING == {}


def test_in_the_callers_context_the_branch_is_guarded(pool):
    f = branchy(pool, True)
    jf, jg = fm.jit(f), fm.jit(fm.grad(f))
    for x in (1.0, -1.0, 2.5, -0.5):
        assert jf(x) == (x * 2.0 if x > 0 else -x * 3.0)
        assert jg(x) == (2.0 if x > 0 else -3.0) == fm.grad(f)(x)


def test_float_in_a_thread_under_grad_is_an_error_not_a_zero_derivative(pool):
    lost = lambda x: pool.submit(lambda: float(x) * 2.0).result()  # noqa: E731
    with pytest.raises(TypeError, match=r"float\(\) on a value that fm.grad depends on.*" + FIX):
        fm.grad(lost)(1.0)  # was 0.0
    with pytest.raises(TypeError, match=r"float\(\) on a value that fm.jit depends on"):
        fm.jit(lost)(1.0)
    shared = lambda x: pool.submit(contextvars.copy_context().run,  # noqa: E731
                                   lambda: float(x) * 2.0).result()
    with pytest.raises(TypeError, match=r"float\(\) on an fm.Expr that fm.grad differentiates"):
        fm.grad(shared)(1.0)


def test_formatting_in_a_thread_under_a_transform_is_an_error_not_a_frozen_number(pool):
    # the text was the trace's number: jit(f) at -3.0 gave -6.0 for 9.0, and grad 0.7 for
    # 1.4 with the number parsed back (a helper's thread fuzzing, round 46)
    parsed = lambda x: x * pool.submit(lambda: float(f"{x:.17g}")).result()  # noqa: E731
    for g, who in ((fm.jit(parsed), "fm.jit"), (fm.grad(parsed), "fm.grad")):
        with pytest.raises(TypeError, match=rf'f"{{x:.17g}}" \(format\) on a value that '
                                            rf"{who} depends on.*" + FIX):
            g(0.7)
    with pytest.raises(TypeError, match="fm.jit depends on"):
        fm.jit(lambda x: x * pool.submit(lambda: len(format(x, ".3f"))).result())(2.0)
    for text in (str, repr, lambda v: f"{v}"):  # (the value is in each: parsed back, frozen)
        with pytest.raises(TypeError, match=r"str\(\) or repr\(\) on a value that fm.jit"):
            fm.jit(lambda x, t=text: x * pool.submit(lambda: len(t(x * 2.0))).result())(1.0)
    shared = lambda x: x * pool.submit(contextvars.copy_context().run,  # noqa: E731
                                       lambda: len(f"{x:.3f}")).result()
    with pytest.warns(RuntimeWarning, match="runs as Python"):
        assert fm.jit(shared)(2.0) == 10.0  # in the caller's context: it runs as Python
    assert pool.submit(lambda: f"{fm.Var(2.0):.1f}").result() == "2.0"  # no transform


def test_what_a_thread_may_do_without_the_callers_context(pool):
    # comparisons under grad need no guard, and a thread's own transforms are its own
    f = branchy(pool, False)
    assert [fm.grad(f)(x) for x in (1.0, -1.0)] == [2.0, -3.0]
    own = lambda x: pool.submit(lambda: fm.grad(lambda y: y ** 3)(2.0)).result() * x  # noqa: E731
    assert fm.grad(own)(3.0) == 12.0
    assert fm.jit(lambda x: pool.submit(lambda: math.sqrt(4.0)).result() * x)(3.0) == 6.0


def test_a_trace_in_one_thread_leaves_other_threads_alone():
    tracing, checked = threading.Event(), threading.Event()
    seen = []

    def slow(x):
        tracing.set()
        checked.wait(10)
        return x * 2.0 if x > 0 else x

    def other():
        tracing.wait(10)
        v = fm.Var(3.0)  # eager work of this thread's own, while the other traces
        seen.append((v > 1.0, float(v * 2.0), fm.grad(lambda y: y if y > 0 else -y)(-2.0)))
        checked.set()

    t = threading.Thread(target=other)
    t.start()
    assert fm.jit(slow)(1.0) == 2.0
    t.join(10)
    assert seen == [(True, 6.0, -1.0)]


def test_vmap_in_a_thread_says_so(pool):
    f = lambda x: pool.submit(lambda: max(x, 0.5)).result()  # noqa: E731
    with pytest.raises(ValueError, match="in a thread.*" + FIX):
        fm.vmap(f)((1.0, -2.0))
    g = lambda x: pool.submit(contextvars.copy_context().run,  # noqa: E731
                              lambda: fm.where(x > 0.5, x, 0.5)).result()
    assert fm.vmap(g)((1.0, -2.0)) == (1.0, 0.5)
    assert control.VMAPS == {}
    with pytest.raises(ValueError, match="compare scalars$"):  # no vmap running: no hint
        bool(comparisons.Mask(">", None, 0.0, np.array([True, False])))


def test_a_vmap_in_a_thread_over_another_vmaps_batch_is_an_error_not_a_pairing(pool):
    # a worker with a fresh context took the outer batch's axis for its own vmap's:
    # at equal sizes the examples were paired entry by entry, (1.0, 1.0) for (1.5, 0.75)
    inner = lambda x: fm.sum(fm.vmap(lambda t: t * x)((1.0, 2.0)))  # noqa: E731
    f = lambda x: pool.submit(inner, x).result()  # noqa: E731
    loop = tuple(inner(x) for x in (0.5, 0.25))
    assert loop == (1.5, 0.75)
    for call in (lambda: fm.vmap(f)((0.5, 0.25)),
                 lambda: fm.grad(lambda w: fm.sum(fm.vmap(f)((w, 0.25))))(0.5),
                 lambda: fm.jit(fm.vmap(f))((0.5, 0.25)),
                 lambda: fm.vmap(lambda x: contextvars.Context().run(inner, x))((0.5, 0.25))):
        with pytest.raises(ValueError, match="another fm.vmap's batch.*" + FIX):
            call()
    with pytest.raises(ValueError, match="broadcast.*" + FIX):  # at other sizes: numpy's, hinted
        fm.vmap(f)((0.5, 0.25, 1.0))
    shared = lambda x: pool.submit(contextvars.copy_context().run, inner, x).result()  # noqa: E731
    assert fm.vmap(shared)((0.5, 0.25)) == loop
    assert fm.grad(lambda w: fm.sum(fm.vmap(shared)((w, 0.25))))(0.5) == 3.0
    assert control.VMAPS == {}


def test_vmaps_in_several_threads_at_once_each_on_its_own_batch():
    xs = np.linspace(0.0, 1.0, 50)
    job = lambda k: fm.vmap(lambda t: fm.sin(t) * k)(xs)  # noqa: E731
    with ThreadPoolExecutor(4) as ex:
        outs = list(ex.map(job, range(40)))
    assert outs == [job(k) for k in range(40)]  # as one at a time
    assert outs[3] == pytest.approx(tuple(math.sin(x) * 3 for x in xs), rel=1e-15)


def _while_a_vmap_runs_elsewhere(over, work):
    """``work()`` on this thread while another thread is inside ``fm.vmap`` over ``over``."""
    started, done = threading.Event(), threading.Event()

    def background():
        fm.vmap(lambda t: (started.set(), done.wait(10), t)[2])(over)

    thread = threading.Thread(target=background)
    thread.start()
    try:
        assert started.wait(10)
        return work()
    finally:
        done.set()
        thread.join()


def test_a_vmap_result_shared_by_threads_is_no_other_vmaps_batch():
    # a review's catch of this round's check: mapping a Batched that another thread
    # maps too (or one made from it) was taken for using the other vmap's batch
    w = fm.Var(2.0)
    b = fm.vmap(lambda x: w * x)(np.array([1.0, 2.0, 3.0]))
    c = fm.vmap(lambda t: t * t)(b)
    got = _while_a_vmap_runs_elsewhere(b, lambda: [
        [float(e.value) for e in fm.vmap(lambda t: t + 1.0)(c)],
        [float(e.value) for e in fm.vmap(lambda y: y * b[0])((1.0, 2.0))]])
    assert got == [[5.0, 17.0, 37.0], [2.0, 4.0]]


def test_the_functions_own_value_error_is_not_renamed_while_a_vmap_runs_elsewhere():
    class MyError(ValueError):
        pass

    def f(x):
        raise MyError("cannot broadcast the user's own thing")

    with pytest.raises(MyError, match="own thing$"):
        _while_a_vmap_runs_elsewhere((1.0, 2.0), lambda: fm.vmap(f)((1.0, 2.0)))


def test_a_vmap_in_a_thread_over_a_tuple_of_the_callers_per_example_values(pool):
    # the second review's catch: the worker's mapped leaf is a stack of the caller's
    # per-example values, and the check stopped there (three 3x3 arrays, no error)
    inner = lambda x: fm.sum(fm.vmap(lambda y: y * y)((x, x * 2.0, x * 3.0)))  # noqa: E731
    xs = np.array([0.5, 1.5, 2.0])
    assert tuple(inner(float(x)) for x in xs) == (3.5, 31.5, 56.0)
    with pytest.raises(ValueError, match="another fm.vmap's batch.*" + FIX):
        fm.vmap(lambda x: pool.submit(inner, x).result())(xs)
    shared = lambda x: pool.submit(contextvars.copy_context().run, inner, x).result()  # noqa: E731
    assert fm.vmap(shared)(xs) == (3.5, 31.5, 56.0)
