"""Regressions and holes a review of round 28's changes found (each fails on
the round's code before the review's fixes)."""

import math
import pickle

import numpy as np
import pytest

import fmicrograd as fm


def test_an_unmapped_2d_array_returned_by_vmap_is_every_examples_whole():
    w = np.arange(4.0).reshape(2, 2)
    out = fm.vmap(lambda x, a: (x, a), in_axes=(0, None))(np.array([1.0, 2.0]), w)
    assert [o[0] for o in out] == [1.0, 2.0]
    assert all(np.array_equal(o[1], w) for o in out)


def test_a_torch_tensor_times_a_node_keeps_the_tensor():
    torch = pytest.importorskip("torch")
    t = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    product = (fm.Var(2.0) * t).value
    assert isinstance(product, torch.Tensor)
    product.backward()
    assert t.grad.item() == 2.0


def test_checked_nodes_pickle_and_unpickle():
    """``Prim`` and ``CheckedVar`` read ``.value`` through a checked property;
    unpickling sets it, which a property without a setter refused."""
    from fmicrograd.core import expr

    x = fm.Var(2.0)
    node = expr.prim("batch_sum", 3.0, (x,), (0,))
    checked = expr._init_var(expr._new(expr.CheckedVar), 2.5, None, 7, ())
    for n in (node, checked):
        back = pickle.loads(pickle.dumps(n))
        assert type(back) is type(n) and back.value == n.value


def test_float32_constants_compared_from_the_left_or_as_0d_arrays_under_vmap():
    b = np.float32(0.1)
    just_above = float(np.nextafter(float(b), 1.0))  # rounds to b in float32: not > b
    xs = np.array([just_above, 0.0, 0.2])
    want = [1.0 if b < x else 0.0 for x in xs.tolist()]
    assert fm.vmap(lambda x: fm.where(b < x, 1.0, 0.0))(xs) == tuple(want)
    assert fm.vmap(lambda x: fm.where(x > np.array(b), 1.0, 0.0))(xs) == tuple(want)


def test_a_0d_bool_tangent_is_refused():
    with pytest.raises(TypeError, match="is the bool"):
        fm.jvp(lambda a: a * a, (2.0,), (np.array(True),))


def test_grad_under_vmap_of_an_array_not_one_per_example_is_refused():
    with pytest.raises(TypeError, match="must return a scalar"):
        fm.vmap(fm.grad(lambda x: np.ones(5)))(np.array([1.0, 2.0]))


def test_a_first_neuron_of_another_width_is_named_not_the_input():
    m = fm.nn.MLP.init(3, [2, 1], key=fm.random.key(0))
    bad = fm.tree.at(lambda mm: mm.layers[0].neurons[0].w, m, (1.0, 2.0))
    with pytest.raises(ValueError, match=r"different numbers of weights \(\[2, 3\]\)"):
        bad((1.0, 2.0, 3.0))


def test_uniform_draws_float64_for_narrow_or_int_bounds():
    k = fm.random.key(0)
    xs = fm.random.uniform(k, 200, np.float16(-60000), np.float16(60000))
    assert all(type(x) is float and -60000 <= x < 60000 for x in xs)
    xs = fm.random.uniform(k, 200, -10 ** 308, 10 ** 308)
    assert all(math.isfinite(x) for x in xs)
    with pytest.raises(ValueError, match="finite bounds"):
        fm.random.uniform(k, 2, -10 ** 400, 1.0)


def test_has_aux_takes_a_two_item_list_as_jax_does():
    assert fm.grad(lambda x: [x * x, "a"], has_aux=True)(3.0) == (6.0, "a")
    assert fm.jit(fm.grad(lambda x: [x * x, x + 1.0], has_aux=True))(3.0) == (6.0, 4.0)
    with pytest.raises(TypeError, match="must return a pair"):
        fm.grad(lambda x: [x, x, x], has_aux=True)(3.0)


def test_a_math_nan_test_under_grad_names_the_node_comparison():
    with pytest.raises(TypeError, match=r"x != x"):
        fm.grad(lambda x: 0.0 if math.isnan(x) else x * 2.0)(1.0)
    assert fm.grad(lambda x: 0.0 if x != x else x * 2.0)(1.0) == 2.0


def test_derivatives_through_variables_of_a_returned_transform_are_kept():
    """A change this round (reverted) read a returned transform's variables as
    constants: these derivatives were dropped (12.0 for 24.0) and debug_nans
    missed an inner derivative's NaN."""
    t = fm.trace(lambda x: x)(2.0)
    g = fm.grad(lambda y: t * y * y)(3.0)
    assert fm.viz.node_grads(g * t)[t] == 24.0

    class P(fm.Var):
        pass

    x = P(2.0)
    assert fm.viz.node_grads(fm.grad(lambda y: x * y * y)(3.0) * x)[x] == 24.0
    with pytest.raises(FloatingPointError, match="produced nan"):
        fm.debug_nans(lambda a: fm.grad(lambda y: fm.sqrt(y) * (a * 0.0))(0.0))(1.0)
