"""Nested ``vmap`` under ``jit`` (a helper's fuzzing, round 48): a dense
layer's bias fused into its product read the (rows, inner, outer) array of
``[X; 1]`` as a stack of matrices, so a jitted ``vmap(vmap(...))`` of ``dot
+ bias`` mixed the examples (or raised numpy's matmul error); and an
unmapped argument's array of two or more axes returned as it is was split
across the examples wherever the values were batched (under ``grad``, under
an enclosing ``vmap``, under ``jit``)."""

import numpy as np
import pytest

import fmicrograd as fm


def _twice(h):
    return fm.vmap(fm.vmap(h, in_axes=(None, 0)), in_axes=(None, 0))


def test_jitted_nested_vmap_of_dot_plus_bias_is_the_loop():
    f = lambda p, x: fm.dot([p * x], [p]) + p  # noqa: E731
    xs = [[0.25, 0.75], [1.25, 1.75], [2.25, 2.75]]
    loop = tuple(tuple(f(1.0, x) for x in row) for row in xs)
    assert loop == ((1.25, 1.75), (2.25, 2.75), (3.25, 3.75))
    assert _twice(f)(1.0, xs) == loop
    assert _twice(fm.jit(f))(1.0, xs) == loop
    assert fm.jit(_twice(f))(1.0, xs) == loop


@pytest.mark.parametrize("shape", [(4, 4), (3, 4), (2, 5), (5, 2), (1, 1)])
def test_jitted_mlp_on_a_grid_is_the_loop(shape):
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
    g = lambda m, x: m((x, 1.0 - x))  # noqa: E731
    grid = (np.arange(shape[0] * shape[1]).reshape(shape) / 8.0 - 1.0).tolist()
    want = np.array([[g(model, x) for x in row] for row in grid])
    got = np.array(fm.jit(_twice(g))(model, grid))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2, 5)])
def test_jitted_gradient_over_a_two_axis_batch_is_eager(shape):
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(1))
    f = lambda m, x: m((x, x * x)) ** 2  # noqa: E731
    loss = lambda m, xs: fm.sum([fm.sum(r) for r in _twice(f)(m, xs)])  # noqa: E731
    xs = (np.arange(shape[0] * shape[1]).reshape(shape) / 5.0 - 1.0).tolist()
    eager = np.array(fm.nn.parameters(fm.grad(loss)(model, xs)))
    jitted = np.array(fm.nn.parameters(fm.jit(fm.grad(loss))(model, xs)))
    np.testing.assert_allclose(jitted, eager, rtol=1e-12, atol=1e-14)


U = np.array([[1.0, 2.0], [3.0, 4.0]])


def test_one_vmap_gives_every_example_the_whole_unmapped_matrix():
    out = fm.vmap(lambda x, u: (x * 2.0, u), in_axes=(0, None))([0.5, 1.5], U)
    assert [o[0] for o in out] == [1.0, 3.0]
    for o in out:
        assert o[1].tolist() == U.tolist()


@pytest.mark.parametrize("where", ["nested", "grad", "jit"])
def test_an_unmapped_matrix_returned_where_values_are_batched_is_refused(where):
    g = lambda x, u: (x * 2.0, u)  # noqa: E731
    one = fm.vmap(g, in_axes=(0, None))
    with pytest.raises(TypeError, match=r"returns, at \[1\], the numpy array of shape \(2, 2\)"):
        if where == "nested":
            fm.vmap(one, in_axes=(0, None))([[0.5, 1.5], [2.5, 3.5]], U)
        elif where == "grad":
            fm.grad(lambda s: fm.sum([a for a, _ in one([0.5 * s, 1.5 * s], U)]))(1.0)
        else:
            fm.jit(one)((1.0, 2.0), U)
    assert U.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_vmap_of_a_jitted_loss_that_maps_a_layer_is_the_loop():
    """(A second helper's finding, the same fusion: 0.0 for every example.)"""
    def loss(p, xs, ys, lr):
        w1, b1, w2, b2 = p
        per = lambda x, y: y * (fm.dot((w2,), [fm.relu(w1 * x + b1)]) + b2)  # noqa: E731
        return fm.mean(fm.vmap(per)(xs, ys)) * lr

    p, xs, ys = (0.3, 0.1, 0.7, 0.2), np.array([0.5, -1.0]), np.array([1.0, -1.0])
    lrs = np.array([0.5, 1.0])
    want = tuple(loss(p, xs, ys, lr) for lr in lrs.tolist())
    np.testing.assert_allclose(want, (0.04375, 0.0875), rtol=1e-14)
    assert fm.vmap(lambda lr: fm.jit(loss)(p, xs, ys, lr))(lrs) == pytest.approx(want, rel=1e-14)


def test_an_unmapped_matrix_returned_as_grads_aux_under_nested_vmap_is_refused():
    """(A review of the fix: grad wrapped the returned array in a constant node
    under vmap, so the check did not see whose it was, and it was split.)"""
    g = fm.grad(lambda x, u: (x * x, u), has_aux=True)
    one = fm.vmap(g, in_axes=(0, None))
    out = one([0.5, 1.5], U)
    assert [o[0] for o in out] == [1.0, 3.0] and all(o[1].tolist() == U.tolist() for o in out)
    with pytest.raises(TypeError, match=r"the numpy array of shape \(2, 2\)"):
        fm.vmap(one, in_axes=(0, None))([[0.5, 1.5], [2.5, 3.5]], U)


@pytest.mark.parametrize("u", [np.array([5.0]), np.array([[5.0]])], ids=["(1,)", "(1, 1)"])
def test_a_one_number_array_is_every_examples_number(u):
    """(A review of the fix: a 1 x 1 array was refused; one number is never split.)"""
    g = lambda x, v: (x * 2.0, v)  # noqa: E731
    one = fm.vmap(g, in_axes=(0, None))
    out = fm.vmap(one, in_axes=(0, None))([[0.5, 1.5], [2.5, 3.5]], u)
    assert [[b for _, b in row] for row in out] == [[5.0, 5.0], [5.0, 5.0]]
    total = fm.grad(lambda s: fm.sum([a for a, _ in one([0.5 * s, 1.5 * s], u)]))(1.0)
    assert total == 4.0
