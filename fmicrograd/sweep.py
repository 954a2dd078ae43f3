"""The two sweeps over a graph: reverse (cotangents) and forward (tangents).

Both walk the nodes that lie between a transform's inputs and its outputs in
topological order, found iteratively (no recursion: a million-node chain is
fine). The working dictionaries are local to one call and never escape.

A sweep runs on floats unless the graph reaches a variable of an enclosing
transform (an older ``level``) or an input stands for an outer expression:
then it runs on nodes, building the derivative as a graph that the enclosing
transform can differentiate again. The inputs are the only leaves it
differentiates with respect to, which is what keeps nested transforms free of
perturbation confusion.

>>> from fmicrograd.expr import variable, next_level
>>> x = variable(3.0, next_level())
>>> y = x * x + x
>>> reverse([y], [1.0], [x])[0]
[7.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .expr import Expr, Prim, Var
from .rules import PARAM_VJP, VJP


def order(outputs: Sequence[Any], inputs: Sequence[Var]) -> tuple[list, set, bool]:
    """Nodes that depend on ``inputs`` and reach ``outputs``, children first.

    Returns ``(nodes, ids, on_graph)``: the nodes, the set of their ids, and
    whether derivatives must be built as graphs (see the module docstring).
    """
    level = min((x.level for x in inputs), default=0)
    leaf_ids = {id(x) for x in inputs}
    on_graph = any(x.children and x.children[0].op != "const" for x in inputs)
    relevant: set = set()
    done: set = set()
    open_: set = set()
    nodes: list = []
    stack = [o for o in outputs if isinstance(o, Expr)]
    while stack:
        n = stack.pop()
        nid = id(n)
        if nid in done:
            continue
        if nid in open_:  # every child is finished
            done.add(nid)
            for c in n.children:
                if id(c) in relevant:
                    relevant.add(nid)
                    nodes.append(n)
                    break
            continue
        if nid in leaf_ids:
            done.add(nid)
            relevant.add(nid)
            nodes.append(n)
            continue
        kids = n.children
        if not kids:
            done.add(nid)
            if not on_graph and n.op == "var" and n.level < level:
                on_graph = True  # an enclosing transform's variable
            continue
        open_.add(nid)
        stack.append(n)
        for c in kids:
            if id(c) not in done:
                stack.append(c)
    return nodes, relevant, on_graph


def reverse(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
            plan: tuple | None = None) -> tuple[list, bool]:
    """Cotangents of ``inputs`` given cotangents ``seeds`` of ``outputs``.

    Returns ``(cotangents, on_graph)``; an input that no output depends on
    gets ``0.0``.
    """
    nodes, relevant, on_graph = plan or order(outputs, inputs)
    cts: dict = {}
    for o, s in zip(outputs, seeds):
        if isinstance(o, Expr) and id(o) in relevant:
            _add(cts, id(o), s)
    leaf_ids = {id(x) for x in inputs}
    for n in reversed(nodes):
        nid = id(n)
        if nid in leaf_ids:
            continue
        g = cts.pop(nid, None)
        if g is None:
            continue
        kids = n.children
        res = _vjp(n, g, kids, on_graph)
        for c, cg in zip(kids, res):
            cid = id(c)
            if cid in relevant:
                prev = cts.get(cid)
                cts[cid] = cg if prev is None else prev + cg
    return [_fit(cts.get(id(x), 0.0), x.value) for x in inputs], on_graph


def _vjp(n: Expr, g: Any, kids: tuple, on_graph: bool) -> tuple:
    if n.__class__ is Prim:
        args = kids if on_graph else [c.value for c in kids]
        return PARAM_VJP[n.op](g, n if on_graph else n.value, n.param, *args)
    rule = VJP[n.op]
    if on_graph:
        return rule(g, n, *kids)
    if len(kids) == 1:
        return rule(g, n.value, kids[0].value)
    if len(kids) == 2:
        return rule(g, n.value, kids[0].value, kids[1].value)
    return rule(g, n.value, *[c.value for c in kids])


def forward(outputs: Sequence[Any], inputs: Sequence[Var], tangents: Sequence[Any],
            plan: tuple | None = None) -> tuple[list, bool]:
    """Tangents of ``outputs`` given tangents of ``inputs`` (forward mode).

    Returns ``(tangents, on_graph)``; an output independent of the inputs gets
    ``0.0``.
    """
    nodes, relevant, on_graph = plan or order(outputs, inputs)
    tans = {id(x): t for x, t in zip(inputs, tangents)}
    for n in nodes:
        nid = id(n)
        if nid in tans:
            continue
        kids = n.children
        ts = [tans.get(id(c)) for c in kids]
        total = None
        for p, t in zip(_vjp(n, 1.0, kids, on_graph), ts):
            if t is not None:
                total = p * t if total is None else total + p * t
        if total is not None:
            tans[nid] = total
    return [tans.get(id(o), 0.0) if isinstance(o, Expr) else 0.0 for o in outputs], on_graph


def _add(cts: dict, key: int, ct: Any) -> None:
    prev = cts.get(key)
    cts[key] = ct if prev is None else prev + ct


def _fit(ct: Any, like: Any) -> Any:
    """Sum a batched cotangent down to its input's shape (``vmap``)."""
    if ct.__class__ is float:
        return ct
    value = ct.value if isinstance(ct, Expr) else ct
    if getattr(value, "ndim", 0) <= getattr(like, "ndim", 0):
        return ct
    from .batching import reduce_to

    return reduce_to(ct, like)
