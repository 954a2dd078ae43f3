"""Functions on graph nodes and plain numbers alike.

Each takes an ``Expr`` (and builds a node) or a number (and returns a plain
float), or a numpy array under ``vmap``. The derivative rules are written
with these, so one rule serves floats, graphs (higher order) and arrays.

>>> tanh(0.0), tanh(Var(0.0)).op
(0.0, 'tanh')
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import mul
from typing import Any

from . import numeric as num
from .expr import Expr, lift, node

__all__ = ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum",
           "minimum", "sum", "mean", "dot", "div", "power", "stop_gradient", "where_value"]

_builtin_sum = sum


def _unary(op: str, doc: str) -> Any:
    forward = getattr(num, op)

    def f(x: Any) -> Any:
        if isinstance(x, Expr):
            return node(op, forward(x.value), (x,))
        return forward(x)

    f.__name__ = op
    f.__doc__ = doc
    return f


exp = _unary("exp", "``e ** x``; ``exp(1000.0) == inf``.\n\n>>> exp(0.0)\n1.0")
log = _unary("log", "Natural log; ``log(0.0) == -inf``.\n\n>>> log(1.0)\n0.0")
sqrt = _unary("sqrt", "Square root; nan below 0.\n\n>>> sqrt(4.0)\n2.0")
tanh = _unary("tanh", "Hyperbolic tangent.\n\n>>> tanh(0.0)\n0.0")
sigmoid = _unary("sigmoid", "Logistic function.\n\n>>> sigmoid(0.0)\n0.5")
relu = _unary("relu", "``max(x, 0)``.\n\n>>> relu(-2.0), relu(Var(3.0)).value\n(0.0, 3.0)")
sin = _unary("sin", "Sine.\n\n>>> sin(0.0)\n0.0")
cos = _unary("cos", "Cosine.\n\n>>> cos(0.0)\n1.0")


def _binary(op: str, doc: str) -> Any:
    forward = getattr(num, op)

    def f(a: Any, b: Any) -> Any:
        if isinstance(a, Expr) or isinstance(b, Expr):
            a, b = lift(a), lift(b)
            return node(op, forward(a.value, b.value), (a, b))
        return forward(a, b)

    f.__name__ = op
    f.__doc__ = doc
    return f


maximum = _binary("maximum", "Larger of ``a`` and ``b``; a tie splits the derivative "
                  "0.5/0.5 as torch.\n\n>>> maximum(1.0, 2.0)\n2.0")
minimum = _binary("minimum", "Smaller of ``a`` and ``b``; a tie splits the derivative "
                  "0.5/0.5 as torch.\n\n>>> minimum(1.0, 2.0)\n1.0")


def div(a: Any, b: Any) -> Any:
    """``a / b`` with IEEE results at 0 for numbers; a node for ``Expr``.

    >>> div(1.0, 0.0)
    inf
    """
    if isinstance(a, Expr) or isinstance(b, Expr):
        return lift(a) / b
    return num.div(a, b)


def power(a: Any, b: Any) -> Any:
    """``a ** b`` as C's ``pow`` for numbers (nan, not complex, for a negative
    base and fractional exponent); a node for ``Expr``.

    >>> power(0.0, -1.0), power(2.0, 3.0)
    (inf, 8.0)
    """
    if isinstance(a, Expr) or isinstance(b, Expr):
        return lift(a) ** b
    return num.power(a, b)


def _items(xs: Iterable, who: str) -> tuple:
    if isinstance(xs, Expr):
        raise TypeError(f"fm.{who} expects a sequence of numbers or Exprs, got one Expr")
    return tuple(xs)


def sum(xs: Iterable) -> Any:
    """Sum of a sequence as one n-ary node (a plain float for numbers).

    >>> sum([1.0, 2.0, 3.0]), sum([Var(1.0), 2.0]).op
    (6.0, 'sum')
    """
    if hasattr(xs, "__fm_reduce__"):  # a vmap result reduces over its batch axis
        return xs.__fm_reduce__("sum")
    items = _items(xs, "sum")
    if any(isinstance(x, Expr) for x in items):
        kids = tuple(lift(x) for x in items)
        return node("sum", _builtin_sum(k.value for k in kids), kids)
    return _builtin_sum(items, 0.0)


def mean(xs: Iterable) -> Any:
    """Mean of a non-empty sequence as one n-ary node.

    >>> mean([1.0, 2.0, 3.0])
    2.0
    """
    if hasattr(xs, "__fm_reduce__"):
        return xs.__fm_reduce__("mean")
    items = _items(xs, "mean")
    if not items:
        raise ValueError("fm.mean of an empty sequence")
    if any(isinstance(x, Expr) for x in items):
        kids = tuple(lift(x) for x in items)
        return node("mean", _builtin_sum(k.value for k in kids) / len(kids), kids)
    return _builtin_sum(items, 0.0) / len(items)


def dot(xs: Iterable, ys: Iterable) -> Any:
    """``sum(x * y)`` over two equal-length sequences, as one node.

    >>> dot([1.0, 2.0], [3.0, 4.0])
    11.0
    """
    xs, ys = _items(xs, "dot"), _items(ys, "dot")
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"fm.dot: sequences differ in length ({n} vs {len(ys)})")
    kids = xs + ys
    try:
        values = [k.value for k in kids]
    except AttributeError:  # some plain numbers (or no nodes at all)
        if not any(isinstance(k, Expr) for k in kids):
            return _builtin_sum(map(mul, xs, ys), 0.0)
        kids = tuple(k if isinstance(k, Expr) else lift(k) for k in kids)
        values = [k.value for k in kids]
    return node("dot", _builtin_sum(map(mul, values[:n], values[n:]), 0.0), kids)


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` with derivative zero (numbers pass through).

    >>> stop_gradient(Var(2.0)).value
    2.0
    """
    if isinstance(x, Expr):
        return node("stop_gradient", x.value, (x,))
    if callable(x):
        raise TypeError(f"fm.stop_gradient takes a value, got the function {x!r}; to stop the "
                        "derivative of a function's result, write fm.stop_gradient(f(x))")
    from .. import tree

    return tree.map(lambda leaf: stop_gradient(leaf) if isinstance(leaf, Expr) else leaf, x)


def where_value(x: Any) -> Any:
    """The value of a node, or ``x`` itself: rules branch on values only.

    >>> where_value(Var(2.0)), where_value(3.0)
    (2.0, 3.0)
    """
    return x.value if isinstance(x, Expr) else x

