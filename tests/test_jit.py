"""fm.jit: same numbers as plain evaluation, every composition, guards, caches."""

import gc
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyrsistent import PMap

import fmicrograd as fm
from fmicrograd.compiler import autobatch, codegen, ir, rewrite
from fmicrograd.core.expr import Expr, next_level, variable
from fmicrograd.testing import dags, programs
from fmicrograd.testing.strategies import Dag, Program

TOL = 1e-12


def close(a, b):
    """Pytrees equal to 1e-12 (relative and absolute); nan matches nan."""
    la, ta = fm.tree.flatten(a)
    lb, tb = fm.tree.flatten(b)
    assert fm.tree.persistent(ta) == fm.tree.persistent(tb), (ta, tb)
    for x, y in zip(la, lb):
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=TOL, atol=TOL, equal_nan=True)


# --- random expression graphs ---------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(dags(max_inputs=3, max_steps=8))
def test_random_graphs_match_plain_evaluation(dag):
    fn, n, xs = dag
    close(fm.jit(fn)(*xs), fn(*xs))
    grad = fm.grad(fn, argnums=tuple(range(n)))
    close(fm.jit(grad)(*xs), grad(*xs))
    close(fm.grad(fm.jit(fn), argnums=tuple(range(n)))(*xs), grad(*xs))
    vg = fm.value_and_grad(fn, argnums=tuple(range(n)))
    close(fm.jit(vg)(*xs), vg(*xs))


@settings(max_examples=25, deadline=None)
@given(dags(max_inputs=2, max_steps=6), st.floats(-2.0, 2.0))
def test_second_order_of_random_graphs(dag, shift):
    fn, n, xs = dag
    g2 = fm.grad(fm.grad(lambda x: fn(*([x] + list(xs[1:])))))
    close(fm.jit(g2)(xs[0] + shift), g2(xs[0] + shift))


def _both_backends(f, xs):
    """Run f's traced graph through the scalar and the batched backend."""
    level = next_level()
    inputs = [variable(x, level) for x in xs]
    outs = fm.tree.leaves(f(*inputs))
    expected = [o.value if isinstance(o, Expr) else o for o in outs]
    p = ir.optimize(ir.lower(outs, inputs, [], level))
    got_scalar = codegen.scalar_program(p)(list(xs))
    got_batched = autobatch.batched_program(p)(np.array(xs, dtype=float))
    return expected, got_scalar, got_batched


# exp(into(v4)) saturates the sigmoid: with the old slope out * (1 - out), a 1-ulp difference
# between the backends' sigmoid values became 2.3e-10 in the gradient (see test_ops.py)
_SATURATED_SIGMOID = Dag(Program(2, (("*", (0, 0)), ("dot", (0, 0, 0, 1)), ("*", (0, 3)),
                                     ("*", (0, 0)), ("abs", (0,)), ("exp", (4,)),
                                     ("sum", (2, 5, 6, 7))), (8,)), 2, (1.0, 0.0))


@settings(max_examples=40, deadline=None)
@given(dags(max_inputs=3, max_steps=8), st.lists(st.floats(-2.0, 2.0), min_size=4,
                                                 max_size=4))
@example(_SATURATED_SIGMOID, [0.0, 0.0, 0.0, 0.625])
def test_backends_agree_on_unrolled_graphs(dag, shifts):
    """Many copies of one graph (same ops, different inputs) form real groups."""
    fn, n, xs = dag

    def many(*ins):
        per_copy = [fm.value_and_grad(fn, argnums=tuple(range(n)))(
            *[x * (1.0 + s) + s for x in ins]) for s in shifts]
        return per_copy, fm.sum([v for v, _ in per_copy])

    expected, scalar, batched = _both_backends(many, xs)
    close(scalar, expected)
    close(batched, expected)


# --- the MLP workload ------------------------------------------------------------------

def mlp(params, x):
    for i, layer in enumerate(params):
        x = [fm.dot(w, x) + b for w, b in layer]
        if i < len(params) - 1:
            x = [fm.relu(v) for v in x]
    return x[0]


def per_example(params, x, y):
    return fm.relu(1.0 - y * mlp(params, x))


def loss_vmap(params, X, Y):
    data = fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(params, X, Y))
    ps = fm.tree.leaves(params)
    return data + 1e-4 * fm.dot(ps, ps)


def loss_loop(params, X, Y):
    data = fm.mean([per_example(params, x, y) for x, y in zip(X, Y)])
    ps = fm.tree.leaves(params)
    return data + 1e-4 * fm.dot(ps, ps)


def make_params(sizes, seed):
    rng = np.random.default_rng(seed)
    return tuple(tuple((tuple(rng.uniform(-1, 1, nin).tolist()), float(rng.uniform(-0.1, 0.1)))
                       for _ in range(nout)) for nin, nout in zip(sizes, sizes[1:]))


def make_data(n, seed):
    xs, ys = fm.datasets.moons(n, noise=0.1, seed=seed)
    return tuple(map(tuple, xs)), tuple(map(float, ys))


@pytest.mark.parametrize("loss", [loss_vmap, loss_loop])
@pytest.mark.parametrize("as_array", [False, True])
def test_mlp_step_matches_uncompiled(loss, as_array):
    params = make_params((2, 8, 8, 1), 0)
    xs, ys = make_data(40, 1)
    data = (np.array(xs), np.array(ys)) if as_array else (xs, ys)
    ref = fm.value_and_grad(loss_loop)(params, xs, ys)
    step = fm.jit(fm.value_and_grad(loss))
    for _ in range(3):  # later calls run the cached program, across relu sign changes
        close(step(params, *data), ref)
        params = fm.tree.map(lambda p, g: p - 0.5 * g, params, ref[1])
        ref = fm.value_and_grad(loss_loop)(params, xs, ys)
    assert type(step(params, *data)[1]) is tuple


def test_nn_mlp_model_through_jit_and_vmap():
    model = fm.nn.MLP.init(2, [6, 6, 1], key=fm.random.key(3))
    xs, ys = make_data(20, 2)

    def loss(m, X, Y):
        per = fm.vmap(lambda m, x, y: fm.relu(1.0 - y * m(x)), in_axes=(None, 0, 0))
        return fm.mean(per(m, X, Y))

    def reference(m):
        return fm.mean([fm.relu(1.0 - y * m(x)) for x, y in zip(xs, ys)])

    value, grads = fm.jit(fm.value_and_grad(loss))(model, np.array(xs), np.array(ys))
    close((value, grads), fm.value_and_grad(reference)(model))
    assert isinstance(grads, fm.nn.MLP)


# --- compositions ------------------------------------------------------------------------

def f3(x, y):
    return fm.tanh(x * y) + fm.exp(-x) * fm.sin(y) + x ** 3


def test_grad_of_jit_and_jit_of_grad_and_jit_of_jit():
    g = fm.grad(f3, argnums=(0, 1))
    close(fm.grad(fm.jit(f3), argnums=(0, 1))(0.3, -1.2), g(0.3, -1.2))
    close(fm.jit(g)(0.3, -1.2), g(0.3, -1.2))
    close(fm.jit(fm.jit(g))(0.7, 0.2), g(0.7, 0.2))
    h = fm.hessian(f3, argnums=(0, 1))
    close(fm.jit(h)(0.3, -1.2), h(0.3, -1.2))


def test_jit_of_vmap_and_vmap_of_jit_and_grad_of_jit_of_vmap():
    xs = np.linspace(-2, 2, 7)
    f = fm.jit(lambda w, X: fm.vmap(lambda x: fm.tanh(w * x), in_axes=0)(X))
    out = f(0.5, xs)
    assert len(out) == 7
    close(tuple(out), tuple(math.tanh(0.5 * x) for x in xs))
    close(fm.vmap(fm.jit(lambda x: x * x + 1.0))(xs), tuple(x * x + 1.0 for x in xs))

    def loss(w):
        return fm.mean(fm.jit(lambda w, X: fm.vmap(lambda x: fm.tanh(w * x))(X))(w, xs))

    expected = fm.grad(lambda w: fm.mean([fm.tanh(w * x) for x in xs]))(0.5)
    close(fm.grad(loss)(0.5), expected)
    close(fm.jit(fm.grad(loss))(0.5), expected)


def test_closing_over_an_outer_variable_runs_correctly():
    outer = fm.grad(lambda w: fm.jit(lambda x: w * x * x)(3.0))
    assert outer(2.0) == 9.0 and outer(5.0) == 9.0


def test_custom_vjp_under_jit():
    @fm.custom_vjp
    def clip(x):
        return x

    clip.defvjp(lambda x: (x, None), lambda res, g: (fm.minimum(fm.maximum(g, -1.0), 1.0),))
    g = fm.grad(lambda x: 5.0 * clip(x * x) + clip(x))
    f = fm.jit(g)
    for x in (0.1, 3.0, -2.0):  # the gradient reaching clip is 5: clipped to 1
        assert f(x) == g(x) == 2.0 * x + 1.0
    assert fm.jit(lambda x: clip(x * x) * 2.0)(3.0) == 18.0


# --- value-dependent derivative rules are recomputed, not frozen ---------------------------

@pytest.mark.parametrize("fn", [
    lambda x: fm.relu(x) * 3.0,
    lambda x: abs(x) * x,
    lambda x: fm.maximum(x, 0.5) + fm.minimum(x, -0.5),
    lambda x: (x * x) ** x,
])
def test_kinks_follow_runtime_values_without_retracing(fn):
    traces = []

    def counted(x):
        traces.append(1)
        return fm.grad(fn)(x)

    f = fm.jit(counted)
    for x in (1.5, -1.5, 0.5, -0.5, 0.0, 2.0):
        close(f(x), fm.grad(fn)(x))
    assert len(traces) == 1


# --- control flow ------------------------------------------------------------------------

def test_guard_takes_the_right_branch_on_both_sides():
    traces = []

    def f(x):
        traces.append(x)
        return x * 2.0 if x > 0 else -x * x

    jf = fm.jit(f)
    assert [jf(v) for v in (1.0, -3.0, 2.0, -1.0, 0.0)] == [2.0, -9.0, 4.0, -1.0, -0.0]
    assert len(traces) == 2  # one trace per branch, then both variants are reused
    g = fm.jit(fm.grad(f))
    assert (g(3.0), g(-3.0)) == (2.0, 6.0)


def _branch_on_computed_values(i, j, offset):
    def f(xs):  # big enough for array code; the guard compares two computed values
        ys = [x * 2.0 for x in xs]
        zs = [fm.tanh(y) + 1.0 for y in ys]
        if ys[i] > zs[j] + offset:
            return [z * 3.0 for z in zs]
        return [y - 1.0 for y in ys]

    return f


def test_a_guard_in_array_code_is_checked_once_its_values_exist():
    # it used to be emitted before its operands' arrays and read the input vector instead
    f = _branch_on_computed_values(0, 1, -0.5)
    jf = fm.jit(f)
    xs = tuple(np.linspace(-1.0, 1.0, 300).tolist())
    close(jf(xs), f(xs))
    assert jf.lower(xs).backend == "batched"
    flipped = (5.0,) + xs[1:]
    close(jf(flipped), f(flipped))
    close(jf(xs), f(xs))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 299), st.integers(0, 299), st.floats(-1.0, 1.0),
       st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3))
def test_guards_on_computed_values_in_array_code_follow_each_call(i, j, offset, firsts):
    f = _branch_on_computed_values(i, j, offset)
    jf = fm.jit(f)
    base = np.linspace(-1.0, 1.0, 300)
    for v in firsts:
        xs = base.copy()
        xs[i] = v
        args = tuple(xs.tolist())
        close(jf(args), f(args))


_GUARD_OPS = ("+", "-", "*", "/", "relu", "tanh", "exp", "maximum", "abs", "sin")


@settings(max_examples=40, deadline=None)
@given(programs(min_inputs=2, max_inputs=3, max_steps=6, ops=_GUARD_OPS),
       st.floats(-1.0, 1.0), st.integers(0, 2**31),
       st.sampled_from(["jit", "grad of jit", "jit of grad", "vmap of jit"]))
def test_branches_on_shared_scalars_beside_vmapped_arrays(fn, offset, seed, mode):
    # array code (a vmap over 40 examples) with a Python branch on a computed scalar
    n = fn.n_inputs

    def f(w, xs):
        s = fn(*w, w[0] * 0.5)
        per = fm.vmap(lambda x: fn(*w[:-1], x, x * 0.3) if n == 3 else fn(w[0], x))(xs)
        return fm.sum(per) * 2.0 + s if s > offset else fm.sum(per) - s * s

    rng = np.random.default_rng(seed)
    for _ in range(4):
        w = tuple(rng.uniform(-2.0, 2.0, n - 1).tolist())
        xs = rng.uniform(-2.0, 2.0, 40)
        if mode == "jit":
            close(fm.jit(f)(w, xs), f(w, xs))
        elif mode == "grad of jit":
            close(fm.grad(fm.jit(f))(w, xs), fm.grad(f)(w, xs))
        elif mode == "jit of grad":
            close(fm.jit(fm.grad(f))(w, xs), fm.grad(f)(w, xs))
        else:
            batches = rng.uniform(-2.0, 2.0, (5, 40))
            close(fm.vmap(fm.jit(f), in_axes=(None, 0))(w, batches),
                  fm.vmap(f, in_axes=(None, 0))(w, batches))


def test_data_dependent_loop_retraces_when_the_trip_count_changes():
    def halve_until_small(x):
        while x > 1.0:
            x = x / 2.0
        return x

    f = fm.jit(halve_until_small)
    for v in (10.0, 0.5, 3.0, 100.0, 7.0):
        assert f(v) == halve_until_small(v)


def test_float_of_a_traced_value_is_a_clear_error():
    with pytest.raises(TypeError, match="float\\(\\).*static_argnums"):
        fm.jit(lambda x: math.exp(x))(1.0)
    assert fm.jit(lambda x: x * float(fm.Const(2.0)))(3.0) == 6.0


# --- arguments, static arguments, outputs --------------------------------------------------

def test_static_argnums():
    traces = []

    def power(x, n):
        traces.append(n)
        return x ** n

    f = fm.jit(power, static_argnums=1)
    assert (f(2.0, 3), f(3.0, 3), f(2.0, 4)) == (8.0, 27.0, 16.0)
    assert traces == [3, 4]
    with pytest.raises(TypeError, match="static argument 1 must be hashable"):
        f(2.0, [3])
    with pytest.raises(ValueError, match="static_argnums 5 is out of range"):
        fm.jit(power, static_argnums=5)(2.0, 3)
    with pytest.raises(ValueError, match="static_argnums"):
        fm.jit(power, static_argnums="1")


def test_structures_kwargs_and_output_types():
    f = fm.jit(lambda p, scale=1.0: {"sum": (p["a"] + p["b"][0]) * scale, "none": None,
                                     "name": "x"})
    assert f({"a": 1.0, "b": [2.0]}) == {"sum": 3.0, "none": None, "name": "x"}
    assert f({"a": 1.0, "b": [2.0]}, scale=2.0)["sum"] == 6.0
    assert f({"a": 1.0, "b": [2.0, 5.0]})["sum"] == 3.0  # a new structure
    grads = fm.jit(fm.grad(lambda p: p["a"] * p["b"]))({"a": 2.0, "b": 3.0})
    assert isinstance(grads, PMap) and dict(grads) == {"a": 3.0, "b": 2.0}
    assert fm.jit(lambda x, s: x * len(s))(2.0, "abc") == 6.0  # a string leaf is static
    assert fm.jit(lambda x: x * 2)(3) == 6.0  # ints are inputs too


def test_array_arguments_are_inputs():
    f = fm.jit(lambda X: fm.sum([fm.dot(row, row) for row in X]))
    a = np.arange(6.0).reshape(3, 2)
    assert f(a) == float((a * a).sum())
    assert f(a + 1.0) == float(((a + 1) * (a + 1)).sum())
    assert f(np.ones((2, 2))) == 4.0


# --- caches --------------------------------------------------------------------------------

def test_cache_memory_stays_flat_over_a_thousand_calls():
    params = make_params((2, 4, 1), 0)
    xs, ys = make_data(10, 0)
    step = fm.jit(fm.value_and_grad(loss_vmap))
    X, Y = np.array(xs), np.array(ys)
    for _ in range(50):
        params = fm.tree.map(lambda p, g: p - 0.01 * g, params, step(params, X, Y)[1])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for _ in range(1000):
            params = fm.tree.map(lambda p, g: p - 0.01 * g, params, step(params, X, Y)[1])
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over 1000 calls"


def test_caches_are_bounded_and_hold_no_graph():
    from fmicrograd.compiler.compile import MAX_STRUCTURES

    f = fm.jit(lambda x, n: x * n, static_argnums=1)
    for n in range(3 * MAX_STRUCTURES):
        assert f(2.0, n) == 2.0 * n
    entries = f._entries
    assert len(entries) == MAX_STRUCTURES
    for entry in entries.values():
        for run, build, *_ in entry.variants:
            for fn in (run, build, entry.match):
                assert not any(isinstance(v, Expr) for v in fn.__globals__.values())


def test_operation_batching_turns_layers_into_matrix_products():
    params = make_params((2, 16, 16, 1), 0)
    xs, ys = make_data(100, 0)
    step = fm.jit(fm.value_and_grad(loss_vmap))
    step(params, np.array(xs), np.array(ys))
    (entry,) = step._entries.values()
    source = entry.variants[0][0].__fm_source__
    groups = [line for line in source.splitlines() if line.strip().startswith("g")]
    assert len(groups) < 50  # a 337-parameter forward and backward pass in a few dozen ops
    # each hidden layer's 16 dot nodes (weights against the same inputs) is one product
    def product(g):
        return "matmul" in g or "@" in g

    # per layer a forward and a weight-gradient product, the 16x16 layer's gradient
    # to its inputs, and the L2 term's sum of squares (1 output neuron's gradient to
    # its inputs is a broadcast product, the data gets none): 3 + 3 + 1 + 1
    assert sum(product(g) for g in groups) == 8


class _Everything:
    def __contains__(self, op):
        return True


def _program(p):
    return p.ops, p.args, p.shapes, p.params, p.outputs, p.guards


def test_optimize_merges_nodes_that_become_identical():
    level = next_level()
    a, b, c = (variable(float(i + 1), level) for i in range(3))
    # both sums become sum(a, b, c); then the two exps, built before and after, are one node
    p = ir.lower([fm.exp((a + b) + c) * fm.exp(a + (b + c)), fm.exp(a * b)], [a, b, c], [],
                 level)
    q = ir.optimize(p)
    assert list(zip(q.ops, q.args))[3:] == [("*", (0, 1)), ("exp", (3,)), ("sum", (0, 1, 2)),
                                            ("exp", (5,)), ("*", (6, 6))]


@settings(max_examples=40, deadline=None)
@given(dags(max_inputs=3, max_steps=10))
def test_optimize_merges_as_if_it_looked_every_node_up(dag):
    # optimize looks up only the kinds of node it makes until two old nodes become one
    fn, n, xs = dag
    level = next_level()
    inputs = [variable(x, level) for x in xs]
    copies = [fm.value_and_grad(fn, argnums=tuple(range(n)))(*[x + s for x in inputs])
              for s in (0.0, 0.5)]  # the gradients repeat sums in other orders
    u, v, w = copies[0][0], copies[1][0], inputs[0]
    outs = [o for o in fm.tree.leaves(copies) if isinstance(o, Expr)]
    outs += [fm.exp((u + v) + w) * 2.0, fm.exp(u + (v + w)) * 3.0]  # one sum, then one exp
    p = ir.lower(outs, inputs, [], level)
    fast = ir.optimize(p)
    real = rewrite._MADE
    try:
        rewrite._MADE = _Everything()
        slow = ir.optimize(p)
    finally:
        rewrite._MADE = real
    assert _program(fast) == _program(slow)
