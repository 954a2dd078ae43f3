"""Static arguments told apart as Python would, and comparisons of a node
with a numpy array (an outside probe: both gave silently wrong numbers)."""

import math
from decimal import Decimal

import numpy as np
import pytest
from pyrsistent import pvector

import fmicrograd as fm


def test_a_pvector_static_is_keyed_by_its_items_types_and_bits():
    sign = fm.jit(lambda x, s: x * math.copysign(1.0, s[0]), static_argnums=1)
    assert [sign(1.0, pvector([0.0])), sign(1.0, pvector([-0.0]))] == [1.0, -1.0]
    kind = fm.jit(lambda x, s: x * (2.0 if type(s[0]) is int else 3.0), static_argnames="s")
    assert [kind(1.0, s=pvector([1])), kind(1.0, s=pvector([1.0]))] == [2.0, 3.0]
    assert kind(1.0, s=pvector([True])) == 3.0
    nested = fm.jit(lambda x, s: x * math.copysign(1.0, s[0][0]), static_argnums=1)
    assert [nested(1.0, (pvector([0.0]),)), nested(1.0, (pvector([-0.0]),))] == [1.0, -1.0]


def test_a_decimal_static_keeps_its_sign_of_zero():
    f = lambda x, s: x * math.copysign(1.0, s)
    jitted = fm.jit(f, static_argnums=1)
    got = [jitted(1.0, Decimal("0")), jitted(1.0, Decimal("-0"))]
    assert got == [f(1.0, Decimal("0")), f(1.0, Decimal("-0"))] == [1.0, -1.0]


A = np.array([1.0, 2.0])


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jit", "jit(grad)", "jvp"])
@pytest.mark.parametrize("point", [3.0, 1.5, 0.5])
def test_a_node_against_a_numpy_array_outside_vmap_is_an_error(transform, point):
    f = lambda x: x * np.sum(A < x)  # counted as one True where every entry agrees
    run = {"grad": fm.grad(f), "value_and_grad": fm.value_and_grad(f), "jit": fm.jit(f),
           "jit(grad)": fm.jit(fm.grad(f)), "jvp": lambda x: fm.jvp(f, (x,), (1.0,))}[transform]
    with pytest.raises(TypeError, match="compare entry by entry"):
        run(point)


def test_entry_by_entry_comparisons_count_as_python_does():
    f = lambda x: x * sum(1.0 for v in A.tolist() if v < x)
    assert fm.value_and_grad(f)(3.0) == (6.0, 2.0)
    assert fm.jit(fm.value_and_grad(f))(3.0) == (6.0, 2.0)
    assert fm.jit(fm.value_and_grad(f))(1.5) == (1.5, 1.0)


def test_an_array_under_vmap_is_still_one_value_per_example():
    f = lambda x, a: fm.where(x > a, x, 0.0)
    assert fm.vmap(f)((1.0, 3.0), A) == (0.0, 3.0)


@pytest.mark.parametrize("write", ["node first", "mask first"])
def test_a_node_times_a_comparison_under_vmap(write):
    f = (lambda x: x * (x > 0)) if write == "node first" else (lambda x: (x > 0) * x)
    xs = (-1.0, 2.0, 0.5)
    assert fm.vmap(f)(xs) == tuple(float(x * (x > 0)) for x in xs)
    assert fm.vmap(fm.grad(f))(xs) == (0.0, 1.0, 1.0)


def test_vmap_over_random_keys_says_to_map_the_numbers():
    keys = fm.random.split(fm.random.key(0), 3)
    with pytest.raises(ValueError, match="vmap cannot map"):
        fm.vmap(lambda k, x: x * fm.random.normal(k), in_axes=(0, None))(keys, 1.0)
    draws = tuple(fm.random.normal(k) for k in keys)  # the fix the message names
    got = fm.vmap(lambda z, x: x * z, in_axes=(0, None))(draws, 2.0)
    assert got == tuple(2.0 * z for z in draws)


def test_a_node_compared_with_a_complex_number_answers_as_its_float():
    # `x == 1 + 0j` fell back to identity (False) where the float is equal (an outside probe)
    f = lambda x: x * 2.0 if x == 1 + 0j else x * 3.0  # noqa: E731
    assert fm.jit(f)(1.0) == f(1.0) == 2.0 and fm.grad(f)(1.0) == 2.0
    assert fm.jit(f)(2.0) == f(2.0) == 6.0
    assert (fm.Var(1.0) != 1 + 1j) is True and (fm.Var(1.0) == np.complex128(1.0)) is np.True_
    # (numpy's number answers with numpy's bool, as against the float: round 45)
    assert type(1.0 == np.complex128(1.0)) is np.bool_
    with pytest.raises(TypeError, match="complex numbers are not ordered"):
        fm.Var(1.0) < 1j  # noqa: B015
