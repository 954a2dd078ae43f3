"""Round 37: a small program's views of its input made once (``compiler.hoist``)
and its helper calls inlined (``compiler.inline``): the same bits as the
program without them, under threads, reentry and outputs that alias the input."""

import threading

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.compiler import autobatch, hoist


def loss(params, xs, ys):
    def one(x, y):
        h = x
        for layer in params[:-1]:
            h = [fm.relu(sum((w * v for w, v in zip(ws, h)), b)) for ws, b in layer]
        (ws, b), = params[-1]
        score = sum((w * v for w, v in zip(ws, h)), b)
        return fm.relu(1.0 - y * score)
    l2 = sum(p * p for p in fm.tree.leaves(params))
    return fm.mean(fm.vmap(one)(xs, ys)) + 1e-4 * l2


def step(params, xs, ys):
    value, grads = fm.value_and_grad(loss)(params, xs, ys)
    return value, fm.tree.map(lambda p, g: p - 0.1 * g, params, grads)


def mlp(sizes, seed):
    rng = np.random.default_rng(seed)
    return tuple(tuple((tuple(rng.normal(size=a).tolist()), float(rng.normal()))
                       for _ in range(b)) for a, b in zip(sizes, sizes[1:]))


def data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.where(rng.random(n) < 0.5, -1.0, 1.0)


@pytest.fixture
def plain(monkeypatch):
    """A jit whose programs are built without the two passes."""
    def make():
        monkeypatch.setattr(hoist, "MOST", 0)
        monkeypatch.setattr(autobatch, "inline", lambda body, shapes, name: body)
        return fm.jit(step)
    return make


def test_a_step_hoisted_and_inlined_has_the_bits_of_the_plain_program(monkeypatch, plain):
    params, (xs, ys) = mlp((2, 8, 8, 1), 1), data(50, 2)
    fast = fm.jit(step)
    got = [fast(params, xs, ys)]
    for _ in range(3):
        got.append(fast(got[-1][1], xs, ys))
    source = fast.lower(params, xs, ys).as_text()
    assert "V0" not in source and "I[" in source  # ``lower`` shows the program inline
    run = fast._entries.order[0].variants[0][0]
    assert "def views(I)" in run.__fm_hoisted__ and "_np.maximum(" in run.__fm_hoisted__
    slow = plain()
    want = [slow(params, xs, ys)]
    for _ in range(3):
        want.append(slow(want[-1][1], xs, ys))
    slow_run = slow._entries.order[0].variants[0][0]
    assert "V0" not in slow_run.__fm_hoisted__ and "_relu(" in slow_run.__fm_hoisted__
    assert fm.tree.leaves(got) == fm.tree.leaves(want)  # bit for bit


def test_threads_calling_one_program_at_once_get_their_own_numbers():
    fast = fm.jit(step)
    xs, ys = data(40, 2)
    starts = [mlp((2, 6, 1), seed) for seed in range(4)]
    fast(starts[0], xs, ys)  # compiled once

    def run_from(p):
        out = []
        for _ in range(60):
            value, p = fast(p, xs, ys)
            out.append(value)
        return out, fm.tree.leaves(p)

    want = [run_from(p) for p in starts]  # one at a time
    got: list = [None] * 4
    errors = []

    def worker(k):
        try:
            got[k] = run_from(starts[k])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and got == want


def test_an_output_that_is_a_view_of_the_input_is_not_refilled_by_the_next_call():
    # the parameters come back unchanged: the program's output reads the input vector
    def f(p, xs):
        return p, fm.mean(fm.vmap(lambda x: (p[0] * x - p[1]) ** 2)(xs))

    xs = np.linspace(0.0, 1.0, 30)
    jitted = fm.jit(f)
    first, _ = jitted.deferred((1.0, 2.0), xs)
    jitted.deferred((3.0, 4.0), xs)
    jitted((5.0, 6.0), xs)
    assert fm.compiler.compile.built(first) == (1.0, 2.0)
    a, _ = jitted((7.0, 8.0), xs)
    jitted((9.0, 10.0), xs)
    assert a == (7.0, 8.0)


def test_a_call_from_inside_the_running_program_uses_its_own_views():
    seen = []

    def body(v, V0):
        seen.append(v)
        if v[0] > 0:  # a rule calling the program again, on other numbers, before the
            return run(v - 1.0) + V0 * 10.0  # outer call reads its view
        return V0 * 1.0

    run = hoist.held(body, lambda v: (v[1:3],), 3)
    given = np.array([2.0, 1.0, 2.0])
    # outer [1, 2] * 10 + (inner [0, 1] * 10 + innermost [-1, 0])
    assert run(given).tolist() == [9.0, 30.0]
    assert seen[0] is not given and seen[1] is not seen[0] and seen[2] is not seen[0]
    assert given.tolist() == [2.0, 1.0, 2.0]
    assert run.fill([np.array([0.0]), np.array([5.0, 6.0])]).tolist() == [5.0, 6.0]


def test_an_output_view_of_the_buffer_is_copied():
    run = hoist.held(lambda v, V0: V0, lambda v: (v[0:2],), 3)
    a = run(np.array([1.0, 2.0, 3.0]))
    b = run.fill([np.array([4.0, 5.0, 6.0])])
    assert a.tolist() == [1.0, 2.0] and b.tolist() == [4.0, 5.0]


def test_a_wrong_sized_or_non_array_input_takes_the_plain_path():
    run = hoist.held(lambda v, V0: V0 * 1.0, lambda v: (v[0:2],), 3)
    assert run(np.array([1.0, 2.0])).tolist() == [1.0, 2.0]
    assert run(np.array([1.0, 2.0, 3.0, 4.0])).tolist() == [1.0, 2.0]
    ints = run(np.array([1, 2, 3]))  # (a vector not of float64: its own arithmetic, as before)
    assert ints.dtype == np.float64 and ints.tolist() == [1.0, 2.0]
    halves = hoist.held(lambda v, V0: V0 / 2, lambda v: (v[0:2],), 3)
    assert halves(np.array([1, 3, 5])).tolist() == [0.5, 1.5]
    assert halves(np.array([1, 3, 5], dtype=np.int8)).dtype == np.float64
    with pytest.raises(ValueError):
        run.fill([np.array([1.0, 2.0])])  # the parts must fill the buffer


def test_hoist_leaves_copies_and_elements_in_their_lines():
    lines = ["    g0 = I[3]", "    g1 = I[0:4][2]", "    g2 = I[i0]", "    g3 = I[0:4:2] + I[0:2]"]
    body, texts = hoist.hoist(lines, 4)
    assert body[:3] == lines[:3] and texts == ["I[0:4:2]", "I[0:2]"]


def test_an_output_that_is_the_whole_input_vector_is_copied_out_of_the_buffer():
    # (a review's find: ``return _out(I)`` handed back the buffer itself; a guard kept in
    # the body, with over 20,000 nodes behind it, reads a view of ``I``)
    def f(p):
        x = list(p[:32])
        for _ in range(250):
            x = [fm.sin(v * 0.999) + v for v in x]
        if fm.sum(x) > 0.0:
            return (p,)
        return (tuple(-v for v in p),)

    jitted = fm.jit(f)
    a = tuple(float(i) / 64 for i in range(64))
    b = tuple(float(i) / 64 + 7.0 for i in range(64))
    jitted(a)
    da, = jitted.deferred(a)
    db, = jitted.deferred(b)
    assert fm.compiler.compile.built(da) == a and fm.compiler.compile.built(db) == b
    assert jitted(a) == (a,) and jitted(b) == (b,)


def test_a_custom_rule_that_keeps_its_argument_keeps_that_calls_numbers():
    # (a review's find: the rule's argument was a view of the program's buffer)
    seen = []

    @fm.custom_vjp
    def tap(x):
        return x

    def tap_fwd(x):
        seen.append(x)
        return x, None

    tap.defvjp(tap_fwd, lambda r, g: (g,))

    def f(p, xs):
        return fm.mean(fm.vmap(lambda x: fm.relu(p[0] * tap(x) - p[1]))(xs))

    jitted = fm.jit(f)
    for k in range(3):
        jitted((0.5, 0.1), np.full(4, float(k + 1)))
    kept = [np.asarray(getattr(x, "value", x), dtype=float).tolist() for x in seen[-3:]]
    assert kept == [[1.0] * 4, [2.0] * 4, [3.0] * 4]
