"""``vmap`` over an array argument of ``fm.jit``: each column is one node of
the trace (``batching/traced_arrays.py``), so the trace does not grow with
the batch, and the numbers are those of the function run as it is."""

import numpy as np
import pytest
from helpers import jit_trace_nodes

import fmicrograd as fm


def _trace_size(f, *args):
    """How many nodes the jit trace of ``f`` at ``args`` reaches from its outputs."""
    return len(jit_trace_nodes(f, *args))


def _loss(p, xs):
    def per_example(p, x):
        h = [fm.tanh(fm.dot(w, x) + b) for w, b in p]
        return fm.sum(h) ** 2

    return fm.mean(fm.vmap(per_example, in_axes=(None, 0))(p, xs))


def _params(rng, n_in, width):
    return tuple((tuple(rng.normal(size=n_in).tolist()), float(rng.normal())) for _ in range(width))


def _step(p, xs):
    value, g = fm.value_and_grad(_loss)(p, xs)
    return value, fm.tree.map(lambda a, d: a - 0.1 * d, p, g)


def test_the_trace_of_a_step_does_not_grow_with_the_batch():
    rng = np.random.default_rng(0)
    p = _params(rng, 3, 4)
    small = _trace_size(_step, p, rng.normal(size=(8, 3)))
    large = _trace_size(_step, p, rng.normal(size=(800, 3)))
    assert small == large  # (a column per feature: 3 nodes, whatever the batch)


@pytest.mark.parametrize("batch", [1, 2, 7, 64])
def test_a_step_over_an_array_argument_gives_the_uncompiled_numbers(batch):
    rng = np.random.default_rng(batch)
    p = _params(rng, 3, 5)
    step = fm.jit(_step)
    for _ in range(3):  # the compiled call reads each call's data
        xs = rng.normal(size=(batch, 3))
        (v, q), (v0, q0) = step(p, xs), _step(p, xs)
        assert abs(v - v0) <= 1e-12 * max(1.0, abs(v0))
        np.testing.assert_allclose(fm.tree.leaves(q), fm.tree.leaves(q0), rtol=1e-12, atol=1e-12)
        p = q


def test_arrays_of_three_axes_and_of_one_axis():
    rng = np.random.default_rng(1)
    cube = rng.normal(size=(6, 2, 3))
    line = rng.normal(size=6)

    def f(w, c, s):
        per = fm.vmap(lambda m, t: fm.sum([fm.dot(w, row) for row in m]) * fm.sin(t))(c, s)
        return fm.sum(per)

    for args in ((tuple(rng.normal(size=3).tolist()), cube, line),
                 (tuple(rng.normal(size=3).tolist()), cube * 2.0, line - 1.0)):
        assert fm.jit(f)(*args) == pytest.approx(f(*args), rel=1e-12)
        g, g0 = fm.jit(fm.grad(f))(*args), fm.grad(f)(*args)
        np.testing.assert_allclose(g, g0, rtol=1e-12)


def test_an_array_changed_in_place_by_the_function_is_mapped_as_changed():
    rng = np.random.default_rng(2)
    xs = rng.normal(size=(5, 2))

    def f(w, xs):
        if xs.dtype != object:  # (run as it is: a float array cannot hold a node)
            xs = xs.astype(object)
        xs[0, 1] = xs[0, 1] * w  # under jit: the traced array's entry, replaced in place
        return fm.sum(fm.vmap(lambda x: x[0] * x[1] * w)(xs))

    for w in (0.5, -2.0):
        expected = f(w, xs.copy())
        assert fm.jit(f)(w, xs) == pytest.approx(expected, rel=1e-12)
        assert fm.grad(fm.jit(f))(w, xs) == pytest.approx(fm.grad(f)(w, xs.copy()), rel=1e-12)


def test_an_array_reshaped_in_place_is_mapped_in_its_new_shape():
    def f(xs):
        a = fm.vmap(lambda m: m[0][0])(xs)
        xs.shape = (2, 3, 2)  # the same object, reshaped
        b = fm.vmap(lambda m: m[1][0])(xs)
        return fm.sum(a), fm.sum(b)

    def g(xs):
        a = fm.vmap(lambda x: x[0] * x[1])(xs)
        xs.shape = (3, 2)
        return fm.sum(a) + fm.sum(fm.vmap(lambda x: x[0] * x[1])(xs))

    cube = np.arange(12.0).reshape(2, 2, 3)
    assert fm.jit(f)(cube.copy()) == f(cube.copy()) == (6.0, 10.0)
    square = np.arange(6.0).reshape(2, 3)
    assert fm.jit(g)(square.copy()) == g(square.copy()) == 12.0 + 26.0


def test_slices_transposes_and_a_second_map_of_the_same_array():
    rng = np.random.default_rng(3)
    xs = rng.normal(size=(6, 3))

    def f(w, xs):
        a = fm.vmap(lambda x: fm.dot(w, x))(xs)
        b = fm.vmap(lambda x: fm.dot(w, x) ** 2)(xs)  # the same columns again
        c = fm.vmap(lambda x: fm.sum(x))(xs[1:4])
        d = fm.vmap(lambda col: col[0] * col[5])(xs.T)
        return fm.sum(a) + fm.sum(b) * 0.5 + fm.sum(c) + fm.sum(d)

    w = tuple(rng.normal(size=3).tolist())
    jf = fm.jit(f)
    for data in (xs, xs[::-1].copy()):
        assert jf(w, data) == pytest.approx(f(w, data), rel=1e-12)
        np.testing.assert_allclose(fm.jit(fm.grad(f))(w, data), fm.grad(f)(w, data), rtol=1e-12)


def test_derivatives_with_respect_to_the_mapped_examples():
    rng = np.random.default_rng(4)
    xs = rng.normal(size=(4, 2))
    h = lambda w, x: fm.tanh(w * x[0]) * x[1]  # noqa: E731

    def f(w, xs):  # per-example gradients with respect to the data, and to w
        gx = fm.vmap(fm.grad(lambda x: h(w, x)))(xs)
        gw = fm.vmap(fm.grad(h), in_axes=(None, 0))(w, xs)
        return fm.sum([fm.sum(c) for c in gx]) * fm.sum(gw)

    for w in (0.7, -1.3):
        assert fm.jit(f)(w, xs) == pytest.approx(f(w, xs), rel=1e-12)
        assert fm.jit(fm.grad(f))(w, xs) == pytest.approx(fm.grad(f)(w, xs), rel=1e-12)
        assert fm.grad(fm.jit(f))(w, xs) == pytest.approx(fm.grad(f)(w, xs), rel=1e-12)


def test_nested_maps_over_a_traced_array():
    rng = np.random.default_rng(5)
    xs = rng.normal(size=(3, 4))

    def f(w, xs):
        rows = fm.vmap(lambda x: fm.sum(fm.vmap(lambda y: fm.exp(w * y), in_axes=0)(x)))(xs)
        inner = fm.vmap(lambda v: fm.sum(fm.vmap(lambda x: x[0] * v, in_axes=(0,))(xs)))(
            np.array([1.0, 2.0]))
        return fm.sum(rows) + fm.sum(inner)

    for w in (0.3, -0.4):
        assert fm.jit(f)(w, xs) == pytest.approx(f(w, xs), rel=1e-12)
        assert fm.jit(fm.grad(f))(w, xs) == pytest.approx(fm.grad(f)(w, xs), rel=1e-12)


def test_the_trace_sums_a_layer_over_the_batch_as_matrix_vector_products():
    from fmicrograd.core import accumulate, control, dot_cotangents

    rng = np.random.default_rng(1)
    cols = [rng.normal(size=300) for _ in range(12)]
    weights = rng.normal(size=12).tolist()
    exact = accumulate.products_sum(weights, cols, 0.0)  # the eager sum, term by term
    cache = [None]
    token = control.TRACE_VALUES.set(cache)
    try:
        fast = accumulate.products_sum(weights, cols, 0.0)
        stacked = cache[0][2]
        again = accumulate.products_sum(cols, weights[::-1])  # the same columns: one stack
        assert cache[0][2] is stacked
        g = rng.normal(size=300)
        sums = list(dot_cotangents.batch_values(g, [fm.core.expr.const(c) for c in cols]))
    finally:
        control.TRACE_VALUES.reset(token)
    np.testing.assert_allclose(fast, exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(again, sum(c * w for c, w in zip(cols, weights[::-1])),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sums, [float(g @ c) for c in cols], rtol=1e-12, atol=1e-12)
    # a layer over a batch the trace sums this way: the compiled numbers are the step's own
    p = _params(rng, 12, 16)
    xs = rng.normal(size=(400, 12))
    value, new = fm.jit(_step)(p, xs)
    want_value, want = _step(p, xs)
    assert value == pytest.approx(want_value, rel=1e-12)
    np.testing.assert_allclose(fm.tree.leaves(new), fm.tree.leaves(want), rtol=1e-12, atol=1e-13)
