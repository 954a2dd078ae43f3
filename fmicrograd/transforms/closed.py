"""A returned ``vjp_fn``'s partials as numbers: ``vjp``'s own variables are closed.

``fm.vjp(f, 2.0)`` at top level makes variables of its own for the numbers it
is given; when the transform returns, nothing can differentiate with respect
to them any more (JAX's ``vjp_fn`` closes over residuals the same way). A
``vjp_fn`` called later inside a running transform (``fm.grad(lambda c:
vjp_fn(c)[0])``) sweeps on nodes, so that the running transform follows the
cotangent, and the partials it builds come out as nodes of those closed
variables: the result was a graph (``Expr(op='sum', value=12.0)``) where the
number belongs. ``closed`` replaces each part of the cotangents' graph that
reaches no variable but the closed ones with a constant of its value, and
rebuilds the nodes above it: the same values and the same derivatives with
respect to every variable still open.
"""

from __future__ import annotations

from typing import Any

from ..core.expr import PLAIN, Expr, Var, const, node
from ..core.expr import stored_value as _value

__all__ = ["closed"]

_DONE = object()  # stack marker: the node below it has all its children done


def closed(roots: list, own: set) -> list:
    """``roots`` with every subgraph that reaches no variable but those in
    ``own`` (ids of closed variables) a constant. Nodes other than plain ones
    (variables, and ``Prim`` nodes, whose rules may read what their function
    closes over) are kept as they are: their graph then keeps its closed
    variables (a node where a number belongs, never a dropped derivative).

    >>> from fmicrograd.core.expr import next_level, variable
    >>> a, c = variable(2.0, next_level()), variable(1.0, next_level())
    >>> y = c * (a * a)
    >>> out = closed([y, 3.0], {id(a)})
    >>> out[0].children[0] is c, out[0].children[1], out[1]
    (True, Const(4.0), 3.0)
    """
    done: dict = {}  # id(node) -> (node, its replacement, whether it is a constant now)
    stack: list[Any] = [r for r in roots if isinstance(r, Expr)]
    while stack:
        n = stack.pop()
        if n is _DONE:
            n = stack.pop()
            done[id(n)] = (n, *_rebuilt(n, [done[id(c)] for c in n.children]))
            continue
        if id(n) in done:
            continue
        if not n.children:
            folded = id(n) in own if isinstance(n, Var) else n.op == "const"
            done[id(n)] = (n, const(_value(n)) if folded and n.op == "var" else n, folded)
            continue
        stack += [n, _DONE]
        stack += [c for c in n.children if id(c) not in done]
    return [done[id(r)][1] if isinstance(r, Expr) else r for r in roots]


def _rebuilt(n: Expr, kids: list) -> tuple:
    """``(replacement, folded)`` of ``n`` from its children's entries."""
    if n.__class__ not in PLAIN:  # kept whole: a variable standing for its child, and
        return n, False  # a rule's node (a checkpoint's rerun reads what its function holds)
    if all(k[2] for k in kids):
        return const(_value(n)), True
    if all(k[1] is k[0] for k in kids):
        return n, False
    return node(n.op, _value(n), tuple(k[1] for k in kids)), False
