"""A node as a readable formula: what ``str(expr)`` shows.

Written out as a tree, with the fewest parentheses precedence allows; named
variables show their names, constants their values. The walk is iterative
and bounded, so a million-node chain prints as fast as a small graph: nesting
deeper than ``MAX_DEPTH``, n-ary terms past ``MAX_TERMS`` and text past
``MAX_CHARS`` are abbreviated to ``…``.

>>> x, w, b = Var(1.0, name="x"), Var(0.5, name="w"), Var(0.0, name="b")
>>> formula(fm.tanh(w * x + b))
'tanh(w*x + b)'
>>> formula((x - (w - b)) / (x * 2.0) ** -w)
'(x - (w - b))/(x*2.0)**-w'
"""

from __future__ import annotations

from typing import Any

from .expr import Expr, Var

__all__ = ["formula", "MAX_DEPTH", "MAX_TERMS", "MAX_CHARS"]

MAX_DEPTH = 24
MAX_TERMS = 8
MAX_CHARS = 400

_ATOM = 9
# op -> (precedence, left operand's minimum precedence, right operand's, separator)
_INFIX = {
    "+": (1, 1, 2, " + "), "-": (1, 1, 2, " - "),
    "*": (2, 2, 3, "*"), "/": (2, 2, 3, "/"),
    "**": (4, 5, 3, "**"),
}
_UNARY_MINUS = 3


def _number(v: Any) -> str:
    if getattr(v, "ndim", 0) > 0:
        return f"array{tuple(v.shape)}"
    text = repr(float(v)) if isinstance(v, (int, float)) else repr(v)
    return text if len(text) <= 12 else f"{float(v):.6g}"


def _leaf(n: Expr) -> str:
    if isinstance(n, Var) and n.name is not None:
        return n.name
    if n.op == "var":
        return f"Var({_number(n.value)})"
    return _number(n.value)


def _name(n: Expr) -> str:
    param = getattr(n, "param", None)
    if n.op == "custom" and param is not None:
        return getattr(param, "name", type(param).__name__)
    if n.op in ("factor", "select") and param is not None:
        return f"{n.op}[{getattr(param, '__name__', type(param).__name__)}]"
    return n.op


def _precedence(n: Expr) -> int:
    if n.op in _INFIX:
        return _INFIX[n.op][0]
    if n.op in ("sum", "dot"):
        return 1
    if n.op == "neg":
        return _UNARY_MINUS
    if n.op == "const" and isinstance(n.value, (int, float)) and n.value < 0:
        return _UNARY_MINUS
    return _ATOM


def _terms(make: Any, n: int, sep: str) -> list:
    """Items ``make(0)``, ..., ``make(n - 1)`` joined by ``sep``, past ``MAX_TERMS``
    the first ``MAX_TERMS - 1``, ``…`` and the last (only those are made: a
    million-term sum printed its 237 characters in 0.5 s)."""
    shown: Any = range(n) if n <= MAX_TERMS else [*range(MAX_TERMS - 1), None, n - 1]
    out: list = []
    for j, i in enumerate(shown):
        if j:
            out.append(sep)
        out.append("…" if i is None else make(i))
    return out


def _pieces(n: Expr, depth: int) -> list:
    """What ``n`` prints as: strings and ``(child, min_precedence, depth)`` items."""
    kids, d = n.children, depth + 1
    if n.op in _INFIX:
        _, lp, rp, sep = _INFIX[n.op]
        return [(kids[0], lp, d), sep, (kids[1], rp, d)]
    if n.op == "neg":
        return ["-", (kids[0], _UNARY_MINUS, d)]
    if n.op == "sum":
        return _terms(lambda i: (kids[i], 2, d), len(kids), " + ")
    if n.op == "dot":
        half = len(kids) // 2
        products = _terms(lambda i: [(kids[i], 3, d), "*", (kids[half + i], 3, d)], half, " + ")
        return [p for group in products for p in (group if isinstance(group, list) else [group])]
    if n.op == "abs":
        return ["abs(", (kids[0], 0, d), ")"]
    args = _terms(lambda i: (kids[i], 0, d), len(kids), ", ")
    return [f"{_name(n)}("] + args + [")"]


def formula(node: Expr) -> str:
    """``node`` as a formula, abbreviated past the limits of this module.

    >>> x = Var(2.0, name="x")
    >>> formula(fm.sum([x, x * x, fm.exp(-x)]))
    'x + x*x + exp(-x)'
    """
    out: list = []
    size = 0
    stack: list = [(node, 0, 0)]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
            size += len(item)
            continue
        n, min_prec, depth = item
        if not n.children or (n.op == "var" and isinstance(n, Var)):
            text = _leaf(n)
            if _precedence(n) < min_prec:
                text = f"({text})"
        elif depth > MAX_DEPTH or size > MAX_CHARS:
            text = "…"
        else:
            pieces = _pieces(n, depth)
            if _precedence(n) < min_prec:
                pieces = ["(", *pieces, ")"]
            stack.extend(reversed(pieces))
            continue
        out.append(text)
        size += len(text)
    return "".join(out)
