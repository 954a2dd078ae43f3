"""Expression nodes: frozen dataclasses, operators, IEEE semantics as torch, deep graphs."""

import dataclasses
import math

import pytest
import torch

import fmicrograd as fm


def test_nodes_are_frozen_dataclasses():
    x = fm.Var(2.0, name="x")
    y = x * 3 + 1
    for n in (x, y, fm.Const(1.0)):
        assert dataclasses.is_dataclass(n) and isinstance(n, fm.Expr)
        with pytest.raises(dataclasses.FrozenInstanceError):
            n.value = 5.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        y.children = ()


def test_fields_value_op_children():
    a, b = fm.Var(2.0), fm.Var(5.0)
    c = a * b
    assert (c.value, c.op, c.children) == (10.0, "*", (a, b))
    assert (a.op, a.children, a.name) == ("var", (), None)
    assert fm.Const(3).value == 3.0 and fm.Const(3).op == "const"


@pytest.mark.parametrize("expr, value", [
    (lambda x: x + 1, 3.0), (lambda x: 1 + x, 3.0), (lambda x: x - 1, 1.0),
    (lambda x: 1 - x, -1.0), (lambda x: x * 3, 6.0), (lambda x: 3 * x, 6.0),
    (lambda x: x / 4, 0.5), (lambda x: 4 / x, 2.0), (lambda x: x ** 3, 8.0),
    (lambda x: 3 ** x, 9.0), (lambda x: x ** x, 4.0), (lambda x: -x, -2.0),
    (lambda x: abs(-x), 2.0), (lambda x: x.relu(), 2.0), (lambda x: (-x).relu(), 0.0),
    (lambda x: x.exp(), math.exp(2.0)), (lambda x: x.log(), math.log(2.0)),
    (lambda x: x.tanh(), math.tanh(2.0)), (lambda x: x.sigmoid(), 1 / (1 + math.exp(-2.0))),
    (lambda x: fm.maximum(x, 3.0), 3.0), (lambda x: fm.minimum(1.0, x), 1.0),
    (lambda x: fm.sin(x), math.sin(2.0)), (lambda x: fm.cos(x), math.cos(2.0)),
    (lambda x: fm.sqrt(x), math.sqrt(2.0)),
])
def test_operators_on_either_side(expr, value):
    out = expr(fm.Var(2.0))
    assert isinstance(out, fm.Expr)
    assert out.value == pytest.approx(value, rel=1e-15)


def test_comparisons_compare_values_and_return_bool():
    x, y = fm.Var(1.0), fm.Var(2.0)
    assert (x < y, x <= 1.0, y > 1.5, y >= x, 0.5 < x) == (True, True, True, True, True)
    assert type(x < y) is bool


def test_equality_compares_values_and_hash_is_identity():
    x = fm.Var(1.0)
    y = fm.Var(1.0)
    assert x == y and x == 1.0 and x != fm.Var(2.0) and len({x, y, x}) == 2
    assert x != "one" and x is not None


def test_functions_return_plain_floats_for_numbers():
    for f in (fm.exp, fm.log, fm.sqrt, fm.tanh, fm.sigmoid, fm.relu, fm.sin, fm.cos):
        assert type(f(0.5)) is float
    assert type(fm.maximum(1.0, 2.0)) is float and type(fm.sum([1.0, 2.0])) is float
    assert fm.mean([1.0, 3.0]) == 2.0 and fm.dot([1.0, 2.0], [3.0, 4.0]) == 11.0


def test_reductions_are_single_nary_nodes():
    xs = [fm.Var(float(i)) for i in range(16)]
    ws = [fm.Var(0.5) for _ in range(16)]
    d = fm.dot(ws, xs)
    assert d.op == "dot" and len(d.children) == 32 and d.value == 60.0
    s = fm.sum(xs)
    assert s.op == "sum" and len(s.children) == 16 and s.value == 120.0
    m = fm.mean(xs)
    assert m.op == "mean" and m.value == 7.5


def test_dot_length_mismatch_and_bad_operands():
    with pytest.raises(ValueError, match="length"):
        fm.dot([1.0, 2.0], [fm.Var(1.0)])
    with pytest.raises(TypeError, match="str"):
        fm.Var(1.0) + "a"
    with pytest.raises(TypeError, match="number"):
        fm.Var("a")


# Every case must give torch's float64 value and never raise a Python exception.
IEEE_CASES = [
    ("log", (0.0,)), ("log", (-1.0,)), ("log", (math.inf,)), ("exp", (1000.0,)),
    ("exp", (-1000.0,)), ("sqrt", (-1.0,)), ("sqrt", (0.0,)), ("/", (1.0, 0.0)),
    ("/", (-1.0, 0.0)), ("/", (0.0, 0.0)), ("/", (1.0, -0.0)), ("**", (-8.0, 1 / 3)),
    ("**", (0.0, -1.0)), ("**", (-0.0, -1.0)), ("**", (0.0, -2.0)), ("**", (10.0, 400.0)),
    ("**", (-10.0, 401.0)), ("**", (0.0, 0.0)), ("**", (-2.0, 3.0)), ("sin", (math.inf,)),
    ("cos", (-math.inf,)), ("tanh", (1000.0,)), ("sigmoid", (-1000.0,)),
    ("sigmoid", (1000.0,)), ("relu", (math.nan,)), ("maximum", (math.nan, 1.0)),
    ("minimum", (1.0, math.nan)), ("*", (math.inf, 0.0)), ("+", (math.inf, -math.inf)),
    ("abs", (-math.inf,)), ("-", (1e308, -1e308)),
]


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("op, args", IEEE_CASES)
def test_ieee_semantics_match_torch(op, args):
    case = fm.testing.OPS[op]
    want = case.torch(torch, *[torch.tensor(a, dtype=torch.float64) for a in args]).item()
    plain = case.call(*args)
    node = case.call(*[fm.Var(a) for a in args])
    assert _same(plain, want), (plain, want)
    assert _same(node.value, want), (node.value, want)


def test_million_node_chain():
    """Build, differentiate, print, hash, compare and free a 1,000,000-node chain."""
    c = fm.Const(1.000001)

    def f(x):
        for _ in range(1_000_000):
            x = x * c
        return x

    value, g = fm.value_and_grad(f)(1.0)
    assert value == pytest.approx(math.exp(1.0), rel=1e-6) and g == pytest.approx(value)
    out = fm.trace(f)(1.0)
    assert repr(out).startswith("Expr(op='*'")
    assert hash(out) == hash(out) and out == out and out != out.children[0]
    assert fm.tree.leaves([out]) == [out]
    del out  # deallocation of a deep chain must not overflow the C stack


def test_a_node_as_an_index_and_modulo_are_clear():
    assert [0, 1, 2][fm.Var(1.0)] == 1 and list(range(fm.Var(2.0))) == [0, 1]
    with pytest.raises(TypeError, match="not a whole number"):
        [0, 1][fm.Var(0.5)]
    with pytest.raises(TypeError, match="fm.jit is tracing"):  # a schedule's traced step count
        fm.jit(lambda k: [0.1, 0.2][k] * k)(1.0)
    for op in (lambda k: k % 2, lambda k: 7 // k, lambda k: divmod(k, 2)):
        with pytest.raises(TypeError, match="no % or //"):
            op(fm.Var(3.0))
    loss = lambda p, b: (p["w"] - 1.0) ** 2
    with pytest.raises(TypeError, match="schedule"):
        fm.train.fit(loss, {"w": 0.0}, fm.optim.sgd(lambda k: 0.1 * 0.5 ** (k // 3)), [None],
                     epochs=2, jit=True)
