"""The work of ``fm.jit``'s first call, counted, never timed.

What it compiles for a batched training step does not grow with the batch:
under ``fm.vmap`` the graph holds one node per neuron operation whatever the
batch size, so the program (and the work of building it) is the same at 10
examples as at 1000; only the input vector is longer. And the cyclic garbage
collector, paused while a trace compiles, is always restored."""

import gc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.compiler import ir, rewrite, schedule
from fmicrograd.core.expr import Expr, next_level, variable
from fmicrograd.testing import dags


def mlp(p, x):
    for i, layer in enumerate(p):
        x = [fm.dot(w, x) + b for w, b in layer]
        if i < len(p) - 1:
            x = [fm.tanh(v) for v in x]
    return x


def loss(p, xs, ys):
    def per_example(p, x, y):
        return fm.relu(1.0 - y * mlp(p, x)[0])

    return fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, xs, ys)) + 1e-4 * fm.losses.l2(p)


def step(p, xs, ys):
    value, g = fm.value_and_grad(loss)(p, xs, ys)
    return value, fm.tree.map(lambda a, d: a - 0.01 * d, p, g)


def params(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(tuple((tuple(rng.uniform(-1, 1, a).tolist()), 0.0) for _ in range(b))
                 for a, b in zip(sizes, sizes[1:]))


def compiled(batch, monkeypatch):
    """The optimized program of the jitted step at ``batch`` examples, and its text."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(batch, 3))
    y = np.where(rng.random(batch) < 0.5, -1.0, 1.0)
    seen = []
    real = ir.optimize
    monkeypatch.setattr(ir, "optimize", lambda p: seen.append(real(p)) or seen[-1])
    lowered = fm.jit(step).lower(params((3, 6, 5, 1)), x, y)
    (program,) = seen
    return program, lowered


@pytest.mark.parametrize("small, large", [(10, 1000), (7, 300)])
def test_program_is_the_same_size_at_any_batch(small, large, monkeypatch):
    p_small, l_small = compiled(small, monkeypatch)
    p_large, l_large = compiled(large, monkeypatch)
    assert l_small.backend == l_large.backend == "batched"
    # the inputs are the parameters plus the batch (x: 3 per example, y: 1)
    n_params = sum(len(w) + 1 for layer in params((3, 6, 5, 1)) for w, _ in layer)
    # (the input vector's length: a large array's entries, ``unread``, have no node each)
    assert p_small.width == n_params + 4 * small
    assert p_large.width == n_params + 4 * large
    # everything else is one node per neuron operation, whatever the batch
    assert p_small.size - p_small.n_inputs == p_large.size - p_large.n_inputs
    assert p_small.ops[p_small.n_inputs:] == p_large.ops[p_large.n_inputs:]
    assert len(schedule.groups(p_small)) == len(schedule.groups(p_large))
    assert l_small.n_operations == l_large.n_operations


def test_the_batch_changes_only_the_batch_axis(monkeypatch):
    # the same program at two batch sizes: its batched nodes' shapes differ only
    # in the batch axis
    p_small, _ = compiled(10, monkeypatch)
    p_large, _ = compiled(1000, monkeypatch)
    shapes = {(s, t) for s, t in zip(p_small.shapes[p_small.n_inputs:],
                                     p_large.shapes[p_large.n_inputs:]) if s != t}
    assert shapes and all(s[1:] == t[1:] and (s[0], t[0]) == (10, 1000) for s, t in shapes)


def test_the_collector_is_paused_while_tracing_and_restored_after():
    states = []

    def f(x):
        states.append(gc.isenabled())
        return x * 2.0

    assert gc.isenabled()
    assert fm.jit(f)(1.0) == 2.0
    assert states == [False] and gc.isenabled()

    def fails(x):
        raise ZeroDivisionError("in the traced function")

    with pytest.raises(ZeroDivisionError):
        fm.jit(fails)(1.0)
    assert gc.isenabled()
    gc.disable()  # a user's choice is left alone
    try:
        assert fm.jit(f)(3.0) == 6.0
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- optimize without its pass ------------------------------------------------------
# ir.optimize skips its rewriting pass when the pass would only rename + to sum,
# move a product that stands alone in a sum and drop the constants nothing uses
# (rewrite._Rewrite.as_is), which is what a traced training step asks of it.

def _program(p):
    return p.ops, p.args, p.shapes, p.params, p.outputs, p.guards


def _the_pass(p):
    return rewrite._prune(rewrite._Rewrite(p).run())


def _same_edges(q):
    # the edges a program carries from optimize are those of its arguments
    carried = q.edges()
    q._edges = None
    return all(np.array_equal(a, b) for a, b in zip(carried, q.edges()))


@settings(max_examples=40, deadline=None)
@given(dags(max_inputs=3, max_steps=10), st.floats(0.1, 2.0))
def test_optimize_without_the_pass_gives_what_the_pass_gives(dag, lr):
    fn, n, xs = dag
    level = next_level()
    inputs = [variable(x, level) for x in xs]
    value, g = fm.value_and_grad(fn, argnums=tuple(range(n)))(*inputs)
    outs = [value, *(x - lr * d for x, d in zip(inputs, g)), *((x + 1.0) * 0.0 for x in xs)]
    p = ir.lower([o for o in outs if isinstance(o, Expr)], inputs, [], level)
    q = ir.optimize(p)
    assert _program(q) == _program(_the_pass(p)) and _same_edges(q)


def test_a_training_step_is_optimized_without_the_pass(monkeypatch):
    # the step has + nodes (dot + b), a product alone in a sum (the L2 term of the
    # loss) and constants folded away: all three, and the same program as the pass
    seen = []
    real = ir.optimize
    monkeypatch.setattr(ir, "optimize", lambda p: seen.append((p, real(p))) or seen[-1][1])
    rng = np.random.default_rng(2)
    fm.jit(step)(params((3, 6, 5, 1)), rng.normal(size=(30, 3)), rng.normal(size=30))
    ((p, q),) = seen
    skipped = rewrite._Rewrite(p)
    assert "+" in p.ops and skipped.waits.any() and (skipped.used == 0).any()
    assert skipped.as_is() is not None
    assert _program(q) == _program(_the_pass(p)) and _same_edges(q)


def _groups_by_definition(p):
    """``schedule.groups`` by its definition: a node's level is one more than
    its deepest argument's (sources at -1), and a group is the nodes of one
    level, op, parameter, shape and argument shapes, groups by level."""
    level, found = {}, {}
    for i in range(p.size):
        if p.ops[i] in ("in", "const"):
            level[i] = -1
            continue
        level[i] = max((level[a] for a in p.args[i]), default=-1) + 1
        key = (level[i], p.ops[i], schedule.param_key(p.ops[i], p.params[i]), p.shapes[i],
               *(p.shapes[a] for a in p.args[i]))
        found.setdefault(key, []).append(i)
    return [members for _, members in sorted(found.items(), key=lambda kv: kv[0][0])]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.lists(st.integers(0, 10**6), min_size=5,
                                                       max_size=5)), min_size=1, max_size=40))
def test_groups_level_each_node_after_its_deepest_argument_whatever_its_arity(spec):
    p = ir.Program()
    nodes = [p.add("in", (), k, ()) for k in range(3)]
    p.n_inputs = 3
    nodes.append(p.const(2.0))
    for arity, picks in spec:
        args = tuple(nodes[r % len(nodes)] for r in picks[:arity])
        op = "*" if arity == 2 and picks[4] % 2 else "sum"
        nodes.append(p.add(op, args, None, ()))
    assert schedule.groups(p) == _groups_by_definition(p)


def test_an_unused_constant_keeps_the_numbers_of_the_nodes_after_it():
    # ``x - 0.0`` is ``x``: its constant, numbered first, is used by nothing. Dropping
    # it would renumber every later node (a 28k-parameter step rebuilt 170k argument
    # tuples for it); it stays, on both paths of ``optimize``, and costs nothing
    lv = next_level()
    x, y = variable(2.0, lv), variable(3.0, lv)
    p = ir.lower([(x - 0.0) * y, x * y + y], [x, y], [], lv)
    (dead,) = [i for i in range(p.size) if p.ops[i] == "const"]
    assert all(dead not in a for a in p.args)
    q = ir.optimize(p)
    assert q.ops == [("sum" if op == "+" else op) for op in p.ops] and q.args == p.args
    assert rewrite._prune(rewrite._Rewrite(p).run()).args == p.args
    c = fm.jit(lambda a, b: ((a - 0.0) * b, a * b + b))
    assert c(2.0, 3.0) == (6.0, 9.0)


def _classifier_step(p, xs, ys):
    def per_example(p, x, y):  # cross-entropy written out: log-sum-exp without the shift
        h = [fm.tanh(fm.dot(w, x) + b) for w, b in p[0]]
        logits = [fm.dot(w, h) + b for w, b in p[1]]
        return fm.log(fm.sum([fm.exp(z) for z in logits])) - fm.dot(list(y), logits)

    value, g = fm.value_and_grad(
        lambda p: fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, xs, ys))
        + 1e-3 * fm.losses.l2(p))(p)
    return value, fm.tree.map(lambda a, d: a - 0.1 * d, p, g)


def test_a_softmax_step_is_optimized_without_the_pass(monkeypatch):
    # a softmax classifier's backward pass (with L2) has sums of two single-use products:
    # of equal shapes (one ``dot``), and of a scalar and a batch (each emitted as it is). ``as_is``
    # does both, with the pass's program (a 64-256-256-10 step: 0.24 s against 0.54 s)
    seen = []
    real = ir.optimize
    monkeypatch.setattr(ir, "optimize", lambda p: seen.append((p, real(p))) or seen[-1][1])
    rng = np.random.default_rng(0)
    p = tuple(tuple((tuple(rng.normal(size=i).tolist()), 0.0) for _ in range(o))
              for i, o in ((3, 4), (4, 3)))
    xs, ys = rng.normal(size=(8, 3)), np.eye(3)[rng.integers(0, 3, 8)]
    out = fm.jit(_classifier_step)(p, xs, ys)
    np.testing.assert_allclose(fm.tree.leaves(out), fm.tree.leaves(_classifier_step(p, xs, ys)),
                               rtol=1e-12, atol=1e-15)
    ((p, q),) = seen
    r = rewrite._Rewrite(p)
    deferred = np.flatnonzero(r.waits)
    users = np.searchsorted(r.ends, [np.flatnonzero(r.edges == m)[0] for m in deferred],
                            side="right")
    pairs = {tuple(p.shapes[a] for a in p.args[m]) for m in deferred}
    assert len(set(users.tolist())) < len(users) and len(pairs) > 1  # both kinds of sum
    assert r.as_is() is not None and "dot" in {q.ops[i] for i in range(p.n_inputs, q.size)}
    assert _program(q) == _program(_the_pass(p)) and _same_edges(q)


@pytest.mark.parametrize("make", [
    lambda x, y: [fm.sum([x * y, y * y, x])],  # a dot of two products, then the sum
    lambda x, y: [x * x + y * y],  # a + of two products: the dot alone
    lambda x, y: [x * x + y * y, fm.dot([x, y], [x, y])],  # that dot is there already
    lambda x, y: [x * y + x, fm.sum([x * y, x])],  # a + and a sum of the same terms
])
def test_sums_of_products_are_optimized_as_the_pass_does(make):
    lv = next_level()
    x, y = variable(2.0, lv), variable(3.0, lv)
    p = ir.lower(make(x, y), [x, y], [], lv)
    q = ir.optimize(p)
    assert _program(q) == _program(_the_pass(p)) and _same_edges(q)


def test_many_sums_of_products_take_the_fast_path():
    # 200 deferred products (the old limit was 64), each use found in one array pass
    lv = next_level()
    x = variable(0.5, lv)
    ys = [variable(float(k), lv) for k in range(100)]
    p = ir.lower([fm.sum([x * y, y * y, x]) for y in ys], [x, *ys], [], lv)
    r = rewrite._Rewrite(p)
    assert r.waits.sum() == 200 and r.as_is() is not None
    q = ir.optimize(p)
    assert _program(q) == _program(_the_pass(p)) and _same_edges(q)
