"""A numpy array of fm nodes (``np.array([a, 2 * a])``) combined with a node
is a TypeError naming the fix: as a constant, its entries' derivatives were
dropped with no error (round 29's probe: ``jacrev`` gave ``[0, 0]`` for
``[1, 2]``)."""

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
    lambda: fm.grad(lambda a: fm.sum(list(a * np.array([a, a * a]))))(2.0),
    lambda: _f(fm.Var(1.0), fm.Var(2.0)),
], ids=["jacrev", "jacfwd", "vjp", "jvp", "jit(jacrev)", "grad, node on the left", "eager Vars"])
def test_an_array_of_nodes_with_a_node_is_an_error(call):
    with pytest.raises(TypeError, match="numpy array of fm nodes"):
        call()


def test_jit_alone_still_runs_such_a_function_on_numbers():
    jf = fm.jit(_f)
    assert jf(1.0, 2.0).tolist() == [3.0, 4.0]
    assert jf(3.0, 2.0).tolist() == [5.0, 8.0]


def test_a_float_array_with_a_node_is_unchanged():
    x = fm.Var(3.0) * np.array([1.0, 2.0])
    assert x.value.tolist() == [3.0, 6.0]
