"""A batched program cut in two batch halves run on two threads (``compiler/split.py``).

Each test compiles the same function cut (``split.MIN_WORK = 0``) and uncut
(out of reach) and checks what the cut must keep: the values, to the rounding
a change of summation order allows (the halves' batch sums are added); the
same bits on every call, whichever thread computed a half; the inputs as they
were; and programs it must not cut are left whole."""

import os
import threading
import time

import numpy as np
import pytest
from helpers import mlp_params, relu_mlp_step
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.compiler import split, threads
from fmicrograd.compiler.compile import _inputs
from fmicrograd.testing import programs

EPS = np.finfo(float).eps


def _compiled(fn, args, cut):
    """``fm.jit(fn)`` compiled cut or uncut, its first output and its program."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(split, "MIN_WORK", 0 if cut else 10**18)
        f = fm.jit(fn)
        out = f(*args)
    run = f._entries.order[0].variants[0][0]
    return f, out, run


def _data(batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, 3)), np.where(rng.random(batch) < 0.5, -1.0, 1.0)


def test_a_training_step_is_cut_and_keeps_its_values():
    xs, ys = _data(200)
    args = (mlp_params((3, 8, 8, 1), 1), xs, ys)
    f, cut, run = _compiled(relu_mlp_step, args, True)
    _, whole, _ = _compiled(relu_mlp_step, args, False)
    text = f.lower(*args).as_text()
    assert "two halves of 100 examples" in text and "def half(" in text
    np.testing.assert_allclose(fm.tree.leaves(cut), fm.tree.leaves(whole), rtol=1e-12,
                               atol=1e-15)
    eager = fm.tree.leaves(relu_mlp_step(*args))
    np.testing.assert_allclose(fm.tree.leaves(cut), eager, rtol=1e-12, atol=1e-15)
    # the same bits on every call, and the input vector as it was
    inputs = _inputs(*f._entries.order[0].match(args, {}))
    kept = inputs.copy()
    first = run(inputs).tobytes()
    assert all(run(inputs).tobytes() == first for _ in range(20))
    assert np.array_equal(inputs, kept)


def test_each_half_gives_the_same_bits_on_either_thread(monkeypatch):
    # the caller computes both halves (the helper busy elsewhere): the same bits
    xs, ys = _data(200)
    args = (mlp_params((3, 8, 8, 1), 2), xs, ys)
    f, _, run = _compiled(relu_mlp_step, args, True)
    inputs = _inputs(*f._entries.order[0].match(args, {}))
    shared = run(inputs).tobytes()
    monkeypatch.setattr(threads, "both", lambda fn, a, b, *pace: (fn(a), fn(b)))
    monkeypatch.setattr(split, "both", lambda fn, a, b, *pace: (fn(a), fn(b)))
    assert run(inputs).tobytes() == shared


@settings(max_examples=30, deadline=None)
@given(programs(min_inputs=2, max_inputs=3, max_steps=8,
                ops=("+", "-", "*", "relu", "tanh", "maximum", "abs", "sin")),
       st.sampled_from([128, 130, 256]), st.integers(0, 2**31))
def test_random_batch_sums_agree_cut_and_uncut(fn, batch, seed):
    # fn's first input per example, the others shared: the loss is a batch mean,
    # the gradients of the shared inputs batch sums (the cut's ``bsum``/``bdot``)
    rng = np.random.default_rng(seed)
    col = rng.uniform(-2, 2, size=batch)
    shared = tuple(rng.uniform(-2, 2, size=fn.n_inputs - 1).tolist())
    per_example = fm.value_and_grad(fn, argnums=tuple(range(1, fn.n_inputs)))

    def step(ps, xs):
        def loss(*ps):
            return fm.mean(fm.vmap(lambda x: fn(x, *ps))(xs))
        return fm.value_and_grad(loss, argnums=tuple(range(len(ps))))(*ps)

    _, cut, _ = _compiled(step, (shared, col), True)
    _, whole, _ = _compiled(step, (shared, col), False)
    # the terms summed: each example's value and gradients; a sum of n terms in
    # another order moves by at most about n * eps * the sum of their sizes
    terms = [per_example(x, *shared) for x in col.tolist()]
    sizes = [np.mean([abs(v) for v, _ in terms])] + [
        np.mean([abs(g[k]) for _, g in terms]) for k in range(fn.n_inputs - 1)]
    got = [cut[0], *cut[1]]
    want = [whole[0], *whole[1]]
    for a, b, size in zip(got, want, sizes):
        assert abs(a - b) <= 2 * batch * EPS * size + 1e-300


def test_a_closed_over_batched_constant_is_cut_too():
    # the examples are constants of the program (closed over), not inputs
    xs = np.linspace(-3.0, 3.0, 256)

    def loss(w, b):
        return fm.mean(fm.vmap(lambda x: fm.tanh(w * x + b) ** 2)(xs))

    step = fm.value_and_grad(loss, argnums=(0, 1))
    f, cut, _ = _compiled(step, (0.7, -0.2), True)
    _, whole, _ = _compiled(step, (0.7, -0.2), False)
    assert "two halves" in f.lower(0.7, -0.2).as_text()
    np.testing.assert_allclose([cut[0], *cut[1]], [whole[0], *whole[1]], rtol=1e-13)


@pytest.mark.parametrize("batch", [129, 64])
def test_odd_and_small_batches_are_not_cut(batch):
    xs, ys = _data(batch)
    args = (mlp_params((3, 4, 1), 0), xs, ys)
    f, _, _ = _compiled(relu_mlp_step, args, True)
    assert "two halves" not in f.lower(*args).as_text()


def test_a_value_that_needs_the_whole_batch_first_is_not_cut():
    # centering by the batch mean: per-example nodes read a batch sum
    xs = np.linspace(-1.0, 2.0, 200)

    def loss(w):
        ys = fm.vmap(lambda x: w * x)(xs)
        mean = fm.mean(ys)
        return fm.mean(fm.vmap(lambda y: (y - mean) ** 2)(ys))

    f, cut, _ = _compiled(fm.value_and_grad(loss), (1.5,), True)
    assert "two halves" not in f.lower(1.5).as_text()
    value, g = fm.value_and_grad(loss)(1.5)
    assert cut[0] == pytest.approx(value, rel=1e-12) and cut[1] == pytest.approx(g, rel=1e-12)


def test_per_example_outputs_are_not_cut():
    xs = np.linspace(-1.0, 1.0, 200)
    f, out, _ = _compiled(lambda w: fm.vmap(lambda x: fm.relu(w * x))(xs), (2.0,), True)
    assert "two halves" not in f.lower(2.0).as_text()
    np.testing.assert_array_equal(out, np.maximum(2.0 * xs, 0.0))


# threads.both ---------------------------------------------------------------------------


@pytest.fixture
def helper():
    """The process's helper, with no pause left over from an earlier call."""
    threads.both(abs, 1, 2)
    h = threads._HELPER[0]
    h.skip = h.backoff = 0
    return h


def _on_helper():
    return threading.current_thread().name == "fmicrograd-helper"


def _noting(seen):
    """``v * 10``, noting in ``seen`` whether ``v``'s call ran on the helper."""
    def fn(v):
        time.sleep(0.1)  # long enough for the helper to wake and take its call
        seen[v] = _on_helper()
        return v * 10
    return fn


def test_both_runs_the_second_call_on_the_helper_thread(helper):
    seen = {}
    assert threads.both(_noting(seen), 1, 2) == (10, 20)
    assert seen == {1: False, 2: True} and helper.skip == 0


def test_both_takes_back_a_call_the_helper_is_late_on(helper):
    # the helper's call stalls (as a thread kept from a core): the caller computes it
    # itself after as long again as its own call took, and returns
    slow = threading.Event()

    def fn(v):
        if _on_helper():
            slow.wait(2.0)
        return v + 1

    start = time.perf_counter()
    assert threads.both(fn, 1, 2) == (2, 3)
    assert time.perf_counter() - start < 1.0
    slow.set()
    # the helper did not pay: the next call runs on the caller alone, then it is tried
    # again, and a second miss pauses it for two calls
    assert helper.skip == helper.backoff == 1
    seen = []
    assert threads.both(lambda v: seen.append(_on_helper()) or v, 1, 2) == (1, 2)
    assert seen == [False, False] and helper.skip == 0
    slow.clear()
    assert threads.both(fn, 1, 2) == (2, 3)
    slow.set()
    assert helper.skip == helper.backoff == 2


def test_both_hands_the_helpers_error_to_the_caller(helper):
    def fn(v):
        if _on_helper():
            raise ValueError(f"bad {v}")
        time.sleep(0.05)  # the helper is done first
        return v

    with pytest.raises(ValueError, match="bad 2"):
        threads.both(fn, 1, 2)
    assert threads.both(lambda v: -v, 3, 4) == (-3, -4)  # and still works after


def test_both_from_two_threads_at_once():
    results = {}

    def call(k):
        results[k] = [threads.both(lambda v: v * v, k, k + 1) for _ in range(50)]

    workers = [threading.Thread(target=call, args=(k,)) for k in (3, 7)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(10)
    assert results == {3: [(9, 16)] * 50, 7: [(49, 64)] * 50}


def test_pace_takes_the_faster_way_and_tries_the_other_now_and_then():
    pace = threads.Pace()
    assert not pace.share()  # the first call: the halves alone, to time them
    pace.record(False, 2.0e-3)
    assert pace.share()
    pace.record(True, 2.5e-3)  # slower shared: 1 call alone, then tried again
    assert (pace.skip, pace.backoff) == (1, 1)
    assert [pace.share(), pace.share()] == [False, True]
    pace.record(True, 3.0e-3)  # lost again: twice as long a pause
    assert (pace.skip, pace.backoff) == (2, 2)
    assert [pace.share() for _ in range(3)] == [False, False, True]
    pace.record(True, 1.0e-3)  # faster shared: kept, the pause forgotten
    assert (pace.skip, pace.backoff) == (0, 0)
    shared = [pace.share() for _ in range(threads.REFRESH - 1)]
    for _ in shared:
        pace.record(True, 1.0e-3)
    # after REFRESH calls shared in a row, one alone measures the halves again
    assert all(shared) and not pace.share() and pace.share()
    for _ in range(20):  # the pause never grows past PAUSE calls
        pace.record(True, 9.0)
    assert pace.backoff == threads.PAUSE


def test_both_runs_alone_where_the_pace_says_so(helper):
    seen = []
    pace = threads.Pace()  # (its first call: alone)
    assert threads.both(lambda v: seen.append(_on_helper()) or v + 1, 1, 2, pace) == (2, 3)
    assert seen == [False, False] and pace.alone > 0.0 and pace.shared == 0.0


def test_both_times_a_shared_pair_for_the_pace(helper):
    seen = {}
    pace = threads.Pace()
    pace.skip, pace.alone = 0, 10.0  # the halves alone took 10 s: sharing pays
    assert threads.both(_noting(seen), 1, 2, pace) == (10, 20)
    assert seen == {1: False, 2: True}
    assert 0.1 <= pace.shared < 10.0 and pace.skip == pace.backoff == 0


def test_a_cut_program_gives_the_same_bits_alone_and_shared(monkeypatch):
    # the pace decides by timing which way the halves run: never the numbers
    xs, ys = _data(256, seed=3)
    args = (mlp_params((3, 8, 8, 1), 3), xs, ys)
    f, _, run = _compiled(relu_mlp_step, args, True)
    inputs = _inputs(*f._entries.order[0].match(args, {}))
    pace = dict(zip(run.__code__.co_freevars, run.__closure__))["pace"].cell_contents
    outs = set()
    for alone in (True, False, True, False):
        monkeypatch.setattr(pace, "skip", 1 if alone else 0)
        monkeypatch.setattr(pace, "alone", 10.0)  # (shared always pays when tried)
        outs.add(run(inputs).tobytes())
    assert len(outs) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_both_works_in_a_forked_child():
    threads.both(abs, -1, -2)  # the parent's helper exists
    pid = os.fork()
    if pid == 0:  # the child: a fresh helper, since the parent's thread is not here
        try:
            os._exit(0 if threads.both(abs, -1, -2) == (1, 2) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.longdouble])
def test_examples_closed_over_in_other_dtypes_agree_with_eager(dtype):
    # vmap reads them as float64 values: cut or not, the numbers eager gives
    xs = np.arange(-128, 128).astype(dtype) / (1 if dtype is np.int64 else 64)

    def loss(w):
        return fm.mean(fm.vmap(lambda x: fm.relu(w * x) * x)(xs))

    _, cut, _ = _compiled(fm.value_and_grad(loss), (0.5,), True)
    value, g = fm.value_and_grad(loss)(0.5)
    assert cut[0] == pytest.approx(value, rel=1e-13) and cut[1] == pytest.approx(g, rel=1e-13)


def test_fit_with_jit_follows_eager_when_its_step_is_cut(monkeypatch):
    # the whole compiled step (adam's update included, in the part after the
    # batch sums) on 200 examples over vmap: eager's trajectory
    xs, ys = fm.datasets.moons(200, 0.1, seed=3)
    model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(5))

    def loss(m, batch):
        bx, by = batch
        per = fm.vmap(lambda x, y: fm.relu(1.0 - y * m(x)))(np.array(bx), np.array(by))
        return fm.mean(per) + 1e-4 * fm.losses.l2(m)

    monkeypatch.setattr(split, "MIN_WORK", 0)
    cuts = []
    real = split.split
    monkeypatch.setattr(split, "split", lambda p, *a, **k: cuts.append(real(p, *a, **k))
                        or cuts[-1])
    plain, h1 = fm.train.fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], epochs=6)
    compiled, h2 = fm.train.fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], epochs=6,
                                jit=True)
    assert any(c is not None for c in cuts)
    np.testing.assert_allclose(fm.tree.leaves(compiled), fm.tree.leaves(plain), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(list(h2["loss"]), list(h1["loss"]), rtol=1e-12)


def test_a_thread_count_in_the_environment_caps_the_cores():
    # torchrun sets OMP_NUM_THREADS=1 for each of several processes: no helper then
    assert threads.cores({"OMP_NUM_THREADS": "1"}) == 1
    assert threads.cores({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "8"}) == 1
    mine = threads.cores({})
    assert mine >= 1 and threads.cores({"OMP_NUM_THREADS": "nonsense"}) == mine
    assert threads.cores({"OMP_NUM_THREADS": "64"}) == mine


def test_overflowing_half_sums_add_up_silently_as_uncut():
    # each half's sum is finite, their sum overflows: inf, as the uncut program
    # gives, and the compiled calls warn of nothing (the trace's own eager sum may)
    import warnings

    xs = np.full(200, 1e306)

    def loss(w):
        return fm.sum(fm.vmap(lambda x: w * x)(xs))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f_cut, _, _ = _compiled(fm.value_and_grad(loss), (1.0,), True)
        f_whole, _, _ = _compiled(fm.value_and_grad(loss), (1.0,), False)
    assert "two halves" in f_cut.lower(1.0).as_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert f_cut(1.0) == f_whole(1.0) == (np.inf, np.inf)


def test_a_cut_step_called_from_several_threads_at_once_keeps_its_bits():
    # the helper serves one caller at a time; the others compute both halves
    # themselves: every call, on every thread, the same bits
    xs, ys = _data(200)
    args = (mlp_params((3, 8, 8, 1), 4), xs, ys)
    f, out, _ = _compiled(relu_mlp_step, args, True)
    want = [np.float64(v).tobytes() for v in fm.tree.leaves(out)]
    seen = []

    def call():
        for _ in range(20):
            seen.append([np.float64(v).tobytes() for v in fm.tree.leaves(f(*args))])

    workers = [threading.Thread(target=call) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert len(seen) == 80 and all(s == want for s in seen)


def test_the_halves_carry_the_edges_of_their_arguments(monkeypatch):
    # ``_copy`` hands each new program the edge arrays it computed anyway (not
    # counted again from 170k argument tuples): they must be those of its arguments
    made = []
    real = split.batched_program
    monkeypatch.setattr(split, "batched_program", lambda q, *a, **k: made.append(q) or
                        real(q, *a, **k))
    xs, ys = _data(200)
    _compiled(relu_mlp_step, (mlp_params((3, 8, 8, 1), 1), xs, ys), True)
    assert len(made) == 2
    for q in made:
        assert q._edges is not None and len(q._edges[0]) == q.size  # carried, not stale
        carried = q.edges()
        q._edges = None
        counted = q.edges()
        assert carried[0].dtype == counted[0].dtype and carried[1].dtype == counted[1].dtype
        assert all(np.array_equal(a, b) for a, b in zip(carried, counted))


def test_constants_left_over_from_folding_are_not_half_inputs(monkeypatch):
    # ``0.0 * k`` folds the examples ``k`` into a new constant; ``optimize`` keeps the
    # old one in place, unused, and the halves must not gather its rows on every call
    seen = []
    real = split.batched_program
    monkeypatch.setattr(split, "batched_program", lambda q, *a, **k: seen.append(q) or
                        real(q, *a, **k))
    xs, ks = np.linspace(-3.0, 3.0, 256), np.arange(256.0)

    def loss(w, b):
        return fm.mean(fm.vmap(lambda x, k: fm.tanh(w * x + b) ** 2 + 0.0 * k)(xs, ks))

    step = fm.value_and_grad(loss, argnums=(0, 1))
    f, cut, _ = _compiled(step, (0.7, -0.2), True)
    assert "two halves" in f.lower(0.7, -0.2).as_text()
    np.testing.assert_allclose([cut[0], *cut[1]], [*fm.tree.leaves(step(0.7, -0.2))],
                               rtol=1e-13)
    half = seen[0]
    used = {a for args in half.args for a in args}
    batched_inputs = [i for i in range(half.n_inputs) if half.shapes[i] != ()]
    assert batched_inputs and all(i in used for i in batched_inputs)


@pytest.mark.parametrize("data_first", [False, True])
def test_the_halves_take_the_parameters_without_the_data_behind_them(data_first):
    # float leaves come first in the input vector, arrays after them: the halves and
    # the rest read the data through the halves' rows only, whatever the argument order
    xs, ys = _data(200, 3)
    params = mlp_params((3, 8, 8, 1), 3)
    n_params = len(fm.tree.leaves(params))
    if data_first:
        def step(xs, ys, p):
            return relu_mlp_step(p, xs, ys)
        args = (xs, ys, params)
    else:
        step, args = relu_mlp_step, (params, xs, ys)
    f, cut, run = _compiled(step, args, True)
    _, whole, _ = _compiled(step, args, False)
    assert f"    I = I[:{n_params}]" in f.lower(*args).as_text()
    np.testing.assert_allclose(fm.tree.leaves(cut), fm.tree.leaves(whole), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(fm.tree.leaves(cut), fm.tree.leaves(step(*args)), rtol=1e-12,
                               atol=1e-15)


def test_a_parameter_array_after_the_data_keeps_the_whole_input_vector():
    xs, ys = _data(200, 4)

    def step(xs, ys, w):
        def loss(w):
            return fm.mean(fm.vmap(lambda x, y: fm.relu(1.0 - y * fm.dot(w, x)))(xs, ys))
        value, g = fm.value_and_grad(loss)(tuple(w))
        return value, [a - 0.1 * d for a, d in zip(w, g)]

    args = (xs, ys, np.array([0.5, -0.25, 1.0]))
    f, cut, _ = _compiled(step, args, True)
    _, whole, _ = _compiled(step, args, False)
    text = f.lower(*args).as_text()
    assert "two halves" in text and "    I = I[:" not in text
    np.testing.assert_allclose(cut[1], whole[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(cut[1], step(*args)[1], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("most", [100, 300])  # both arrays large; only xs (ys after it)
def test_a_large_arrays_columns_are_cut_with_the_same_bits(monkeypatch, most):
    # traced with placeholders (``unread``), the data's columns are ``col`` nodes of
    # the input vector, not stacks of input nodes: the halves read the same rows
    from fmicrograd.compiler import unread

    xs, ys = _data(200, 3)
    args = (mlp_params((3, 8, 8, 1), 2), xs, ys)
    _, with_nodes, _ = _compiled(relu_mlp_step, args, True)
    monkeypatch.setattr(unread, "MOST", most)
    f, cut, run = _compiled(relu_mlp_step, args, True)
    assert "two halves of 100 examples" in f.lower(*args).as_text()
    assert fm.tree.leaves(cut) == fm.tree.leaves(with_nodes)  # the same bits
    _, whole, _ = _compiled(relu_mlp_step, args, False)
    np.testing.assert_allclose(fm.tree.leaves(whole), fm.tree.leaves(relu_mlp_step(*args)),
                               rtol=1e-12, atol=1e-15)
    xs2, ys2 = _data(200, 4)  # the next call's data, read from its own arrays
    assert fm.tree.leaves(f(args[0], xs2, ys2)) == fm.tree.leaves(
        _compiled(relu_mlp_step, (args[0], xs2, ys2), True)[1])
