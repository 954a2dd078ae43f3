"""A numpy array of fm nodes (``np.array([a, 2 * a])``) combined with a node:
as a constant, its entries' derivatives were dropped with no error (round 29's
probe: ``jacrev`` gave ``[0, 0]`` for ``[1, 2]``); then a TypeError naming the
fix; since round 32 numpy's, entry by entry (an array of nodes, each with its
derivatives), which an output leaf may not be: the error names ``tuple``."""

import numpy as np
import pytest

import fmicrograd as fm


def _f(a, b):
    return np.array([a, 2.0 * a]) + b


@pytest.mark.parametrize("call", [
    lambda: fm.jacrev(_f, argnums=(0, 1))(1.0, 2.0),
    lambda: fm.jacfwd(_f, argnums=(0, 1))(1.0, 2.0),
    lambda: fm.vjp(_f, 1.0, 2.0)[1](np.array([1.0, 1.0])),
    lambda: fm.jvp(_f, (1.0, 2.0), (1.0, 0.0)),
    lambda: fm.jit(fm.jacrev(_f, argnums=(0, 1)))(1.0, 2.0),
], ids=["jacrev", "jacfwd", "vjp", "jvp", "jit(jacrev)"])
def test_an_array_of_nodes_as_an_output_names_tuple(call):
    with pytest.raises(TypeError, match=r"numpy array of fm nodes.*tuple\(arr\.tolist\(\)\)"):
        call()


def test_an_array_of_nodes_with_a_node_is_entry_by_entry():
    # a * [a, a * a] is [a * a, a * a * a]: 2a + 3a^2 = 16 at 2 (a constant gave 4.0)
    assert fm.grad(lambda a: fm.sum(list(a * np.array([a, a * a]))))(2.0) == 16.0
    a, b = fm.Var(1.0), fm.Var(2.0)
    out = _f(a, b)
    assert out.dtype == object and [e.value for e in out] == [3.0, 4.0]
    g = fm.viz.node_grads(out[1])
    assert (g[a], g[b]) == (2.0, 1.0)
    assert fm.jacrev(lambda a, b: tuple(_f(a, b).tolist()), argnums=(0, 1))(1.0, 2.0) == \
        ((1.0, 1.0), (2.0, 1.0))


def test_jit_alone_still_runs_such_a_function_on_numbers():
    jf = fm.jit(_f)
    assert jf(1.0, 2.0).tolist() == [3.0, 4.0]
    assert jf(3.0, 2.0).tolist() == [5.0, 8.0]


def test_a_float_array_with_a_node_is_unchanged():
    x = fm.Var(3.0) * np.array([1.0, 2.0])
    assert x.value.tolist() == [3.0, 6.0]


def _array_out(a):
    return np.array([a * a, 2.0 * a])


@pytest.mark.parametrize("call", [
    lambda: fm.vjp(_array_out, 1.3)[1](np.ones(2)),
    lambda: fm.jvp(_array_out, (1.3,), (1.0,)),
    lambda: fm.linearize(_array_out, 1.3)[1](1.0),
], ids=["vjp", "jvp", "linearize"])
def test_an_array_of_nodes_as_output_is_an_error(call):
    # (the sweeps read it as a constant: vjp gave (0.0,) for (4.6,), as jacrev refuses)
    with pytest.raises(TypeError, match="output has a leaf at <root> that is a numpy array"):
        call()


def test_a_constant_or_variable_of_nodes_is_an_error():
    a = fm.Var(1.3)
    with pytest.raises(TypeError, match=r"fm\.Const\(value\): a numpy array of fm nodes"):
        fm.jacrev(lambda a: fm.Const(np.array([a * a, 2.0 * a])) * a)(1.3)
    with pytest.raises(TypeError, match=r"fm\.Var\(value\): a numpy array of fm nodes"):
        fm.Var(np.array([a]))
    assert fm.Const(np.array([1.0, 2.0])).value.tolist() == [1.0, 2.0]


def test_np_sum_of_a_node_names_fm_sum():
    with pytest.raises(TypeError, match="reduce a sequence of nodes with fm.sum"):
        np.sum(fm.Var(2.0))


def test_fm_trace_records_no_array_of_nodes_as_a_constant():
    # (round 29's review: fm.trace counted as a jit trace, and node_grads gave 6.0 for 12.0)
    out = fm.trace(lambda x: fm.sum(list(x * np.array([x, 2.0 * x]))))(2.0)
    assert fm.viz.node_grads(out)[out.children[0].children[0]] == 12.0


def test_an_array_of_constant_nodes_is_a_constant():
    assert fm.Const(np.array([fm.Const(1.0)])).value[0].value == 1.0


def test_np_max_of_a_node_names_fm_maximum():
    with pytest.raises(TypeError, match="use fm.maximum"):
        np.max(fm.Var(2.0))


class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("wrap", [lambda a: a.view(_Sub), np.asmatrix], ids=["subclass", "matrix"])
def test_an_ndarray_subclass_of_nodes_is_entry_by_entry_too(wrap):
    # (an ndarray subclass slipped past the check: jacrev gave [0, 0] for [1, 2] again)
    def f(a, b):
        return tuple(np.asarray(wrap(np.array([a, 2.0 * a], dtype=object)) + b).ravel().tolist())

    assert fm.jacrev(f, argnums=(0, 1))(1.0, 2.0) == ((1.0, 1.0), (2.0, 1.0))
