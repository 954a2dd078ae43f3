"""Errors for values that cannot leave the graph name what the value is: an
array that entered the computation outside ``vmap`` is not blamed on a
``vmap``, and each message names the fix."""

import numpy as np
import pytest

import fmicrograd as fm

X = np.array([1.0, 2.0, 3.0])


def test_an_array_node_outside_vmap_is_named_as_such():
    with pytest.raises(TypeError, match=r"array of shape \(3,\): a numpy array entered the "
                                        r"computation.*fm\.sum"):
        fm.grad(lambda w: float(w * X))(2.0)
    with pytest.raises(ValueError, match=r"`>` on an fm\.Expr holding an array.*fm\.where"):
        fm.grad(lambda w: 1.0 if w * X > 5.0 else w)(2.0)
    # inside vmap the batch is still named
    with pytest.raises(TypeError, match=r"one value per example \(inside fm\.vmap\)"):
        fm.grad(lambda w: fm.vmap(lambda x: float(x * w))(X))(2.0)
    with pytest.raises(ValueError, match=r"`>` inside fm\.vmap"):
        fm.grad(lambda w: fm.vmap(lambda x: 1.0 if x * w > 3.0 else 0.0)(X))(2.0)


def test_a_traced_count_and_a_traced_array_conversion_name_the_fix():
    with pytest.raises(TypeError, match=r"repeating a list n times.*static_argnums"):
        fm.jit(lambda x, n: fm.sum([x] * n))(1.0, 3)
    assert fm.jit(lambda x, n: fm.sum([x] * n), static_argnums=1)(1.0, 3) == 3.0
    with pytest.raises(TypeError, match=r"np\.asarray\(a, dtype=float\).*convert before"):
        fm.jit(lambda a: fm.sum(list(np.asarray(a, dtype=float))))(X)


def test_tree_stack_of_nodes_points_at_the_transforms_result():
    f = lambda p, x: p[0] * p[0] * x + p[1]
    per = lambda p: fm.vmap(fm.grad(f), in_axes=(None, 0))(p, X)
    # following the old advice (.value of the nodes) froze the first call's gradients
    with pytest.raises(TypeError, match=r"graph node .*call it on the transform's result"):
        fm.jit(lambda p: fm.tree.stack(per(p)))((2.0, 0.5))
    assert [a.tolist() for a in fm.tree.stack(fm.jit(per)((2.0, 0.5)))] == \
        [[4.0, 8.0, 12.0], [1.0, 1.0, 1.0]]


def test_numpy_functions_on_a_node_name_fms_and_numpys_operators_are_the_nodes():
    x = fm.Var(0.5)
    for call, name in ((lambda: np.sin(x), "fm.sin"), (lambda: np.exp(x), "fm.exp"),
                       (lambda: np.maximum(x, 0.0), "fm.maximum"),
                       (lambda: np.arctan2(x, 1.0), "fm.atan2")):
        with pytest.raises(TypeError, match=rf"on an fm node: .*use {name} instead"):
            call()
    with pytest.raises(TypeError, match=r"np\.sin on an fm node"):
        fm.grad(lambda w: np.sin(w))(0.5)
    # operators: the node's own, under grad and jit too
    assert fm.grad(lambda w: np.float64(2.0) * w + np.float32(3.0) / w)(1.0) == 2.0 - 3.0
    assert fm.jit(fm.grad(lambda w: w * np.float64(2.0) - np.float64(1.0) * w))(1.0) == 1.0
    assert (np.float64(1.0) < x, np.float64(1.0) > x, np.float64(0.5) == x) == \
        (False, True, True)
    assert fm.grad(lambda w: fm.sum(list(np.array([1.0, 2.0]) * np.array([w, w]))))(1.0) == 3.0
    a = np.array([1.0, 2.0])
    with pytest.raises(TypeError, match=r"np.add in place \(arr \+= x, or out=arr\) of a "
                                        r"numpy float64 array"):
        a += x  # (until round 31 it rebound a to a node: a helper's caller kept its array)
    assert a.tolist() == [1.0, 2.0]
