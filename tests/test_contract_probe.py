"""Departures from the contract an outside conformance suite found: plain
numbers in give floats out, fm.trace keeps ints, unflatten's count error,
argnums as numpy ints, and errors naming the fix for grad misuse."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

import fmicrograd as fm


@pytest.mark.parametrize("f, args, want", [
    (fm.relu, (1,), 1.0), (fm.square, (3,), 9.0), (fm.maximum, (1, 2), 2.0),
    (fm.minimum, (1, 2), 1.0), (fm.relu, (True,), 1.0), (fm.exp, (0,), 1.0),
])
def test_plain_ints_in_give_floats_out(f, args, want) -> None:
    out = f(*args)
    assert type(out) is float and out == want


def test_trace_keeps_int_arguments() -> None:
    out = fm.trace(lambda x, n: x * n)(2.0, 3)
    assert [c.op for c in out.children] == ["var", "const"]
    total = fm.trace(lambda x, n: fm.sum([x * i for i in range(n)]))(2.0, 3)
    assert total.value == 6.0


class _NT(NamedTuple):
    a: float
    b: float


@pytest.mark.parametrize("tree", [_NT(1.0, 2.0), {"x": [_NT(1.0, 2.0)]}])
def test_unflatten_too_few_leaves_is_a_value_error(tree) -> None:
    with pytest.raises(ValueError, match="needs 2 leaves, got 1"):
        fm.tree.unflatten(fm.tree.structure(tree), [9.0])


def test_unflatten_a_constructor_error_is_not_hidden() -> None:
    class Checked(NamedTuple):
        a: float

    fm.tree.register(Checked, lambda c: ((c.a,), None), lambda meta, ch: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        fm.tree.unflatten(fm.tree.structure(Checked(1.0)), [2.0])


def test_argnums_takes_numpy_ints() -> None:
    assert fm.grad(lambda x, y: x * y, argnums=np.int64(1))(2.0, 3.0) == 2.0
    assert fm.grad(lambda x, y: x * y, argnums=(np.int32(0), 1))(2.0, 3.0) == (3.0, 2.0)


def test_grad_of_a_value_names_the_fix() -> None:
    with pytest.raises(TypeError, match=r"not fm.grad\(loss\(params\)\)"):
        fm.grad(3.0)
    with pytest.raises(TypeError, match="fm.value_and_grad: expected a function"):
        fm.value_and_grad(None)  # type: ignore[arg-type]


def test_a_pair_output_names_has_aux() -> None:
    with pytest.raises(TypeError, match="has_aux=True"):
        fm.grad(lambda x: (x * x, x))(1.0)


def test_grad_of_a_graph_built_before_the_call_is_an_error() -> None:
    a, b = fm.Var(2.0), fm.Var(-3.0)
    c = a * b + b ** 3
    with pytest.raises(ValueError, match="built before the call"):
        fm.grad(lambda x: c)(a)
    with pytest.raises(ValueError, match="node_grads"):
        fm.value_and_grad(lambda x, y: c, argnums=(0, 1))(a, b)
    assert fm.viz.node_grads(c)[a] == -3.0


def test_closures_over_an_argument_node_that_uses_the_parameter_still_work() -> None:
    w = fm.Var(2.0)
    assert fm.grad(lambda p: p * w)(w).value == 2.0
    assert fm.grad(lambda y: fm.grad(lambda x: x * y)(y))(2.0) == 1.0
    assert fm.grad(lambda x: fm.grad(lambda z: z * x * x)(x))(3.0) == 6.0
    assert fm.grad(lambda x: 5.0)(fm.Var(1.0)) == 0.0  # a constant output: no graph


def test_vjp_and_linearize_take_has_aux_as_jax() -> None:
    out, back, aux = fm.vjp(lambda x, y: (x * y, {"x": x}), 2.0, 3.0, has_aux=True)
    assert (out, back(1.0), aux) == (6.0, (3.0, 2.0), {"x": 2.0})
    out, f_jvp, aux = fm.linearize(lambda x: (fm.sin(x), x * 2.0), 0.0, has_aux=True)
    assert (out, f_jvp(1.0), aux) == (0.0, 1.0, 0.0)
    inner = fm.grad(lambda w: fm.vjp(lambda x: (x * w, w), 3.0, has_aux=True)[1](1.0)[0])
    assert inner(5.0) == 1.0
    with pytest.raises(TypeError, match="must return a pair"):
        fm.vjp(lambda x: x, 1.0, has_aux=True)
