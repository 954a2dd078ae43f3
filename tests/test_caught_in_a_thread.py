"""An error a transform raises in a thread the function started, caught there
or by the function, is raised again when the function returns, as on the
calling thread (until round 29 it was lost with the thread's context, and the
function's fallback value came out: ``fm.grad`` gave 1.0 for 6.0)."""

import contextvars
from concurrent.futures import ThreadPoolExecutor

import pytest

import fmicrograd as fm

_POOL = ThreadPoolExecutor(2)


def _in_copied_context(fn, x):
    return _POOL.submit(contextvars.copy_context().run, fn, x).result()


def _in_plain_thread(fn, x):
    return _POOL.submit(fn, x).result()


@pytest.mark.parametrize("submit", [_in_copied_context, _in_plain_thread],
                         ids=["copied context", "plain thread"])
@pytest.mark.parametrize("wrap", [fm.jit, fm.grad, lambda f: fm.jit(fm.grad(f))],
                         ids=["jit", "grad", "jit(grad)"])
def test_a_caught_float_in_a_worker_is_raised_again(submit, wrap):
    def f(x):
        try:
            v = submit(float, x)
        except TypeError:
            v = 1.0
        return x * v

    assert f(3.0) == 9.0
    with pytest.raises(TypeError, match="the function caught this error"):
        wrap(f)(3.0)


def test_a_caught_branch_in_a_worker_under_jit_is_raised_again():
    def g(x):
        try:
            return _in_plain_thread(lambda v: v if v > 0.0 else -v, x)
        except TypeError:
            return x

    with pytest.raises(TypeError, match="the function caught this error"):
        fm.jit(g)(-2.0)


def test_a_caught_per_example_branch_in_a_worker_under_vmap_is_raised_again():
    def h(x):
        try:
            return _in_copied_context(lambda v: v if v > 0.0 else -v, x)
        except ValueError:
            return x

    with pytest.raises(ValueError, match="the function caught this error"):
        fm.vmap(h)((1.0, -2.0))


def test_workers_that_raise_nothing_are_unchanged():
    def f(x):
        return x * _in_copied_context(lambda v: v * 2.0, x)

    assert fm.grad(f)(3.0) == 12.0
    assert fm.jit(f)(3.0) == 18.0
    assert fm.vmap(f)((1.0, 2.0)) == (2.0, 8.0)


def test_a_worker_that_outlives_its_vmap_leaves_nothing_noted():
    import threading

    from fmicrograd.core import control

    returned, caught, workers = threading.Event(), [], []

    def h(x):
        def late():  # a branch on disagreeing examples, after the vmap has returned
            returned.wait(5.0)
            try:
                bool(x > 0.0)
            except ValueError as e:
                caught.append(e)

        workers.append(threading.Thread(target=contextvars.copy_context().run, args=(late,)))
        workers[-1].start()
        return x * 2.0

    assert fm.vmap(h)((1.0, -2.0)) == (2.0, -4.0)
    returned.set()
    workers[0].join(5.0)
    assert len(caught) == 1  # the late branch raised, and was caught
    assert control.RAISED_ANYWHERE == {}


def test_a_caught_float_of_a_batch_in_a_plain_worker_under_grad_is_raised_again():
    def sq(v):
        try:
            return v * float(v)
        except TypeError:
            return v

    def loss(x):
        return fm.sum(fm.vmap(lambda e: _in_plain_thread(sq, e))((x, 2.0)))

    with pytest.raises(TypeError, match="the function caught this error"):
        fm.grad(loss)(3.0)


def test_a_caught_branch_under_to_torch_is_raised_again():
    torch = pytest.importorskip("torch")

    def f(x):
        try:
            return x * 3.0 if x > 0.0 else -x
        except ValueError:
            return x

    with pytest.raises(ValueError, match="the function caught this error"):
        fm.to_torch(f)(torch.tensor([1.0, -2.0], dtype=torch.float64))
