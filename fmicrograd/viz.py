"""Pictures of expression graphs: Graphviz DOT with values and gradients.

``to_dot`` draws what micrograd's ``draw_dot`` shows after ``backward()``:
one box per node with its value and its gradient ``d expr / d node``, and one
oval per operation. It needs nothing but the standard library; ``draw_dot``
wraps the same text in a ``graphviz.Digraph`` (``pip install
'fmicrograd[viz]'``) to render it. All gradients come from ONE reverse sweep
that keeps every node's cotangent, and nothing here recurses, so a graph of a
million nodes is drawn like a small one.

>>> x = fm.Var(3.0, name="x")
>>> for line in fm.viz.to_dot(x * x + 1.0).splitlines()[2:6]:
...     print(line.strip())
n0 [label="{ x | data 3.0000 | grad 6.0000 }" shape=record]
n1 [label="{ * | data 9.0000 | grad 1.0000 }" shape=record]
n1op [label="*"]
n1op -> n1
"""

from __future__ import annotations

import functools
from typing import Any

from .core.control import refuse_watched
from .core.expr import Expr
from .core.sweep import every_cotangent

__all__ = ["to_dot", "draw_dot", "node_grads", "topological"]

_OUTSIDE = ("draw or read the graph outside the transform, on fm.trace(f)(*args) or on "
            "Var inputs; inside it, compute with the graph's nodes themselves")
_VIZ_HINT = "fm.viz.draw_dot needs the graphviz package: pip install 'fmicrograd[viz]'"
DOT_HINT = ("the Graphviz program `dot` is not installed (the graphviz Python package only "
            "calls it): apt install graphviz, brew install graphviz, or conda install -c "
            "conda-forge graphviz; without it, fm.viz.to_dot(expr) gives the DOT text")
# characters with a meaning inside a Graphviz record label
_RECORD_ESCAPES = str.maketrans({c: "\\" + c for c in '{}|<>"\\'} | {"\n": "\\n"})
_QUOTE_ESCAPES = str.maketrans({'"': '\\"', "\\": "\\\\", "\n": "\\n"})


def topological(expr: Expr) -> list[Expr]:
    """Every node ``expr`` depends on, children before parents, ``expr`` last.

    Iterative (no recursion), and the order is fixed by the graph alone
    (children in their given order), never by object ids.

    >>> a = fm.Var(1.0, name="a")
    >>> [n.op for n in fm.viz.topological((a + 2.0).exp())]
    ['var', 'const', '+', 'exp']
    """
    done: dict = {}
    out: list = []
    stack: list = [(expr, False)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            out.append(n)
            continue
        if n in done:
            continue
        done[n] = True
        stack.append((n, True))
        stack.extend((c, False) for c in reversed(n.children) if c not in done)
    return out


def node_grads(expr: Expr, nodes: list[Expr] | None = None) -> dict:
    """``d expr / d node`` for every node of the graph, in one reverse sweep.

    Unlike a transform's sweep, which keeps only its inputs' cotangents, this
    one keeps every node's: what micrograd's ``backward()`` leaves in each
    ``.grad``. Returns a fresh dict keyed by node (identity).

    >>> x = fm.Var(2.0)
    >>> y = x * x
    >>> g = fm.viz.node_grads(y.tanh())
    >>> round(g[y], 6), round(g[x], 6)
    (0.001341, 0.005364)
    """
    if not isinstance(expr, Expr):
        hint = (" (a model called on plain numbers computes floats: call it on fm.Var inputs, "
                "or take derivatives with fm.grad)" if isinstance(expr, (int, float)) else
                " (one output at a time: node_grads(outs[0]))" if isinstance(expr, (list, tuple))
                else "")
        raise TypeError(f"node_grads: expected an fm.Expr, got {type(expr).__name__} "
                        f"{expr!r:.60}{hint}")
    refuse_watched(expr, "fm.viz.node_grads", _OUTSIDE)
    # (the transforms' sweep, keeping every node's cotangent: stop_gradient, the lanes of
    # a per-example where and a vmap's closed-over values as fm.grad has them)
    return every_cotangent(expr, topological(expr) if nodes is None else nodes)


def _number(x: Any, precision: int | None) -> str:
    if precision is None:
        return repr(float(x)) if isinstance(x, float | int) else str(x)
    try:
        return format(float(x), f".{precision}f")
    except (TypeError, ValueError):  # an array (a graph traced under vmap)
        return str(x)


def _label(n: Expr) -> str:
    if n.op == "var":
        name = getattr(n, "name", None)
        return "var" if name is None else str(name)
    return n.op


def _statements(expr: Expr, precision: int | None) -> list[str]:
    if not isinstance(expr, Expr):
        raise TypeError(f"fm.viz: expected an fm.Expr to draw, got {type(expr).__name__} "
                        f"{expr!r}; build one with Var(...) or fm.trace(f)(*args)")
    refuse_watched(expr, "fm.viz.to_dot", _OUTSIDE)
    nodes = topological(expr)
    grads = every_cotangent(expr, nodes)  # (node_grads' sweep, its checks made above)
    ids = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["rankdir=LR"]
    for n in nodes:
        uid = ids[n]
        name, value, grad = (t.translate(_RECORD_ESCAPES) for t in (
            _label(n), _number(n.value, precision), _number(grads.get(n, 0.0), precision)))
        lines.append(f'{uid} [label="{{ {name} | data {value} | grad {grad} }}" shape=record]')
        if n.children:
            lines.append(f'{uid}op [label="{n.op.translate(_QUOTE_ESCAPES)}"]')
            lines.append(f"{uid}op -> {uid}")
            lines.extend(f"{ids[c]} -> {uid}op" for c in n.children)
    return lines


def to_dot(expr: Expr, *, precision: int | None = 4) -> str:
    """Graphviz DOT text of ``expr``'s graph: each node's name or op, its value
    and its gradient ``d expr / d node``. ``precision`` is the number of
    decimals shown (micrograd's ``%.4f``); ``None`` shows exact ``repr``s.

    >>> w = fm.Var(-3.0, name="w")
    >>> dot = fm.viz.to_dot((w * 2.0).tanh(), precision=None)
    >>> '{ w | data -3.0 | grad ' in dot and 'label="tanh"' in dot
    True
    """
    if precision is not None and (isinstance(precision, bool) or not isinstance(
            precision, int) or precision < 0):  # (-1 and "x" were taken, shown as repr)
        raise ValueError(f"fm.viz.to_dot: precision must be None or an int >= 0 (decimals "
                         f"shown), got {precision!r}")
    body = "".join(f"\t{s}\n" for s in _statements(expr, precision))
    return f"digraph fm {{\n{body}}}\n"


def draw_dot(expr: Expr, *, precision: int | None = 4) -> Any:
    """``to_dot``'s graph as a ``graphviz.Digraph`` (same source text), ready
    for ``.render()`` or display in a notebook.

    >>> g = fm.viz.draw_dot(fm.Var(1.0, name="x").exp())
    >>> g.source == fm.viz.to_dot(fm.Var(1.0, name="x").exp())
    True
    """
    try:
        import graphviz
    except ImportError as e:
        raise ImportError(_VIZ_HINT) from e
    body = [f"\t{s}\n" for s in _statements(expr, precision)]
    return _digraph_class(graphviz)(name="fm", body=body)


@functools.cache
def _digraph_class(graphviz: Any) -> type:
    """``graphviz.Digraph`` whose errors say how to install the Graphviz
    program, and which a notebook shows as DOT text when it is missing."""

    class DotMissing(graphviz.ExecutableNotFound):
        def __init__(self) -> None:
            RuntimeError.__init__(self, f"fm.viz.draw_dot: {DOT_HINT}")

    class Digraph(graphviz.Digraph):
        __doc__ = graphviz.Digraph.__doc__

        def pipe(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().pipe(*args, **kwargs)
            except graphviz.ExecutableNotFound as e:
                raise DotMissing() from e

        def render(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().render(*args, **kwargs)
            except graphviz.ExecutableNotFound as e:
                raise DotMissing() from e

        def _repr_mimebundle_(self, include: Any = None, exclude: Any = None,
                              **kwargs: Any) -> dict:
            try:
                return super()._repr_mimebundle_(include, exclude, **kwargs)
            except graphviz.ExecutableNotFound:
                return {"text/plain": f"({DOT_HINT})\n{self.source}"}

    return Digraph
