"""grad and value_and_grad: micrograd's example, argnums, has_aux, structure, errors, purity."""

import copy
import dataclasses
import math
from typing import NamedTuple

import pytest
from pyrsistent import PMap, PVector, pmap, pvector

import fmicrograd as fm


def micrograd_readme(a, b):
    c = a + b
    d = a * b + b ** 3
    c = c + (c + 1)
    c = c + (1 + c + (-a))
    d = d + (d * 2 + (b + a).relu())
    d = d + (3 * d + (b - a).relu())
    e = c - d
    f = e ** 2
    g = f / 2.0
    return g + 10.0 / f


def test_micrograd_readme_example():
    value, (da, db) = fm.value_and_grad(micrograd_readme, argnums=(0, 1))(-4.0, 2.0)
    assert f"{value:.4f}" == "24.7041"
    assert f"{da:.4f}" == "138.8338"
    assert f"{db:.4f}" == "645.5773"


def test_micrograd_readme_matches_micrograd_package():
    from micrograd.engine import Value

    a, b = Value(-4.0), Value(2.0)
    g = micrograd_readme(a, b)
    g.backward()
    value, (da, db) = fm.value_and_grad(micrograd_readme, argnums=(0, 1))(-4.0, 2.0)
    assert (value, da, db) == pytest.approx((g.data, a.grad, b.grad), rel=1e-12)


def test_grad_of_polynomial_and_plain_float_result():
    g = fm.grad(lambda x: 3 * x ** 2 + 2 * x + 1)(2.0)
    assert g == 14.0 and type(g) is float


def test_value_and_grad_returns_float_value():
    v, g = fm.value_and_grad(lambda x: fm.exp(x))(0.0)
    assert (v, g) == (1.0, 1.0) and type(v) is float


def test_argnums_int_tuple_and_negative():
    f = lambda x, y, z: x * y * z
    assert fm.grad(f, argnums=1)(2.0, 3.0, 4.0) == 8.0
    assert fm.grad(f, argnums=(0, 2))(2.0, 3.0, 4.0) == (12.0, 6.0)
    assert fm.grad(f, argnums=-1)(2.0, 3.0, 4.0) == 6.0


@pytest.mark.parametrize("argnums", [3, -4, (0, 5), (), "0", 1.0, (0, 0), True])
def test_bad_argnums_is_value_error(argnums):
    with pytest.raises(ValueError, match="argnums"):
        fm.grad(lambda x, y, z: x, argnums=argnums)(1.0, 2.0, 3.0)


def test_has_aux():
    def f(x):
        y = x * x
        return y, {"y": y, "note": "kept"}

    (value, aux), g = fm.value_and_grad(f, has_aux=True)(3.0)
    assert (value, g) == (9.0, 6.0)
    assert aux == {"y": 9.0, "note": "kept"}
    g2, aux2 = fm.grad(f, has_aux=True)(3.0)
    assert g2 == 6.0 and aux2["y"] == 9.0


def test_has_aux_requires_pair():
    with pytest.raises(TypeError, match="pair"):
        fm.grad(lambda x: x, has_aux=True)(1.0)


class Point(NamedTuple):
    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Affine:
    w: tuple
    b: float


def test_gradient_mirrors_structure_and_is_persistent():
    params = {"p": Point(1.0, 2.0), "layer": Affine((3.0, 4.0), 5.0), "ws": [6.0, 7.0],
              "none": None}

    def loss(p):
        return (p["p"].x * p["p"].y + fm.dot(p["layer"].w, p["ws"]) + p["layer"].b)

    g = fm.grad(loss)(params)
    assert isinstance(g, PMap)
    assert g["p"] == Point(2.0, 1.0) and type(g["p"]) is Point
    assert type(g["layer"]) is Affine and g["layer"] == Affine((6.0, 7.0), 1.0)
    assert isinstance(g["ws"], PVector) and list(g["ws"]) == [3.0, 4.0]
    assert g["none"] is None


def test_persistent_inputs_come_back_persistent():
    g = fm.grad(lambda p: p["a"][0] * p["a"][1])(pmap({"a": pvector([2.0, 3.0])}))
    assert g == pmap({"a": pvector([3.0, 2.0])})


def test_unused_leaves_get_zero_gradient():
    g = fm.grad(lambda p: p[0] * 2.0)((1.0, 5.0))
    assert g == (2.0, 0.0)
    assert fm.grad(lambda x: 3.0)(1.0) == 0.0


def test_integer_leaves_are_numbers():
    assert fm.grad(lambda x: x * x)(3) == 6.0


def test_non_scalar_output_is_type_error():
    with pytest.raises(TypeError, match="scalar"):
        fm.grad(lambda x: (x, x))(1.0)
    with pytest.raises(TypeError, match="scalar"):
        fm.grad(lambda x: [x])(1.0)


@pytest.mark.parametrize("bad, path", [
    ({"w": (1.0, "oops")}, r"\['w'\]\[1\]"),
    ([1.0, None, [2.0, object()]], r"\[2\]\[1\]"),
    ((True,), r"\[0\]"),
])
def test_bad_leaf_names_its_path(bad, path):
    with pytest.raises(TypeError, match=path):
        fm.grad(lambda p: 0.0)(bad)


def test_nothing_handed_in_is_mutated():
    params = {"w": [1.0, 2.0, 3.0], "b": {"c": 0.5}, "t": (4.0, [5.0])}
    before = copy.deepcopy(params)
    ids = (id(params["w"]), id(params["b"]), id(params["t"][1]))
    g = fm.grad(lambda p: fm.sum(p["w"]) * p["b"]["c"] + p["t"][0] * p["t"][1][0])(params)
    assert params == before
    assert ids == (id(params["w"]), id(params["b"]), id(params["t"][1]))
    assert g["w"] == pvector([0.5, 0.5, 0.5])


def test_grad_result_is_immutable():
    g = fm.grad(lambda p: p["a"][0])({"a": [1.0]})
    with pytest.raises((TypeError, AttributeError)):
        g["a"] = 1.0
    with pytest.raises((TypeError, AttributeError)):
        g["a"][0] = 2.0


def test_second_order_leaves_are_exprs_inside_transforms():
    inner = []

    def outer(x):
        g = fm.grad(lambda y: y ** 3)(x)
        inner.append(g)
        return g

    assert fm.grad(outer)(2.0) == 12.0
    assert isinstance(inner[0], fm.Expr) and inner[0].value == 12.0


def test_trace_returns_graph_with_named_vars():
    out = fm.trace(lambda p, k: p["w"] * k)({"w": 2.0}, 3.0)
    assert isinstance(out, fm.Expr) and out.value == 6.0 and out.op == "*"
    names = sorted(c.name for c in out.children)
    assert names == ["args[0]['w']", "args[1]"]


def test_trace_pytree_output():
    outs = fm.trace(lambda x: {"a": x + 1, "b": (x * 2,)})(1.5)
    assert outs["a"].value == 2.5 and outs["b"][0].value == 3.0


def test_grad_through_ieee_infinities_is_not_an_exception():
    assert fm.grad(fm.log)(0.0) == math.inf
    assert math.isnan(fm.grad(lambda x: fm.sqrt(x) * 0.0)(0.0))


def test_an_array_valued_result_names_the_item_by_item_fix():
    import numpy as np

    with pytest.raises(TypeError, match=r"fm\.sum\(\[x \* a for a in arr\.tolist\(\)\]\)"):
        fm.grad(lambda x: x * np.array([2.0, 3.0]))(1.0)
    assert fm.grad(lambda x: fm.sum([x * a for a in np.array([2.0, 3.0]).tolist()]))(1.0) == 5.0
