"""The two sweeps over a graph: reverse (cotangents) and forward (tangents).

Both walk the nodes that lie between a transform's inputs and its outputs in
topological order, found iteratively (no recursion: a million-node chain is
fine). The working dictionaries are local to one call and never escape.

A sweep runs on floats unless the graph reaches a variable of an enclosing
transform (an older ``level``) or an input stands for an outer expression:
then it runs on nodes, building the derivative as a graph that the enclosing
transform can differentiate again. The inputs are the only leaves it
differentiates with respect to, which is what keeps nested transforms free of
perturbation confusion. On nodes, each node's contributions are built once,
as one ``dot`` and one ``sum`` at most (``accumulate``): the enclosing
sweeps then walk about one node per node of the function's graph.

>>> from fmicrograd.core.expr import variable, next_level
>>> x = variable(3.0, next_level())
>>> y = x * x + x
>>> reverse([y], [1.0], [x])[0]
[7.0]
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from .accumulate import add_product, float_valued, total
from .batch_axes import linear_tangent, reduce_to
from .dot_cotangents import batch_dot_tangent, dot_cotangents
from .expr import Expr, Prim, Var
from .expr import stored_value as _value
from .rules import PARAM_VJP, VJP

_FINISH = object()  # stack marker: the node below it has all children done


def order(outputs: Sequence[Any], inputs: Sequence[Var]) -> tuple[list, dict, bool]:
    """Nodes that depend on ``inputs`` and reach ``outputs``, children first.

    Returns ``(nodes, relevant, on_graph)``: the inner nodes to sweep (the
    inputs themselves left out), a map from every visited node to whether it
    depends on an input (truthy: ``True`` for an input, an inner node's
    1-based position in ``nodes``; ``False`` otherwise), and whether
    derivatives must be built as graphs (see the module docstring). Nodes key
    the maps directly: their hash and equality are identity.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> x = variable(2.0, next_level())
    >>> nodes, relevant, on_graph = order([x * 3.0 + 1.0], [x])
    >>> [n.op for n in nodes], on_graph
    (['*', '+'], False)
    """
    level = min((x.level for x in inputs), default=0)
    on_graph = any(x.children and x.children[0].op != "const" for x in inputs)
    relevant: dict = dict.fromkeys(inputs, True)
    nodes: list = []
    stack: list[Any] = [o for o in outputs if isinstance(o, Expr)]
    pop, push = stack.pop, stack.append
    while stack:
        n = pop()
        if n is _FINISH:
            n = pop()
            for c in n.children:
                if relevant[c]:
                    nodes.append(n)
                    relevant[n] = len(nodes)
                    break
            else:
                relevant[n] = False
            continue
        if n in relevant:
            continue
        kids = n.children
        if not on_graph and n.op == "var" and n.level < level:
            on_graph = True  # an enclosing transform's variable (one holding a node too:
            #                  a vmap batch, or a graph at higher order)
        if not kids:
            relevant[n] = False
            continue
        push(n)
        push(_FINISH)
        for c in kids:
            if c not in relevant:
                push(c)
    return nodes, relevant, on_graph


def reverse(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
            plan: tuple | None = None) -> tuple[list, bool]:
    """Cotangents of ``inputs`` given cotangents ``seeds`` of ``outputs``.

    Returns ``(cotangents, on_graph)``; an input that no output depends on
    gets ``0.0``. ``plan`` is a result of ``order`` to reuse.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> lv = next_level()
    >>> x, y = variable(2.0, lv), variable(5.0, lv)
    >>> reverse([x * y], [1.0], [x, y])
    ([5.0, 2.0], False)
    """
    nodes, relevant, on_graph = plan or order(outputs, inputs)
    if on_graph:
        return _reverse_graph(outputs, seeds, inputs, nodes, relevant), True
    cts: dict = {}
    for o, s in zip(outputs, seeds):
        if isinstance(o, Expr) and relevant.get(o):
            cts[o] = cts[o] + s if o in cts else s
    start = len(nodes)
    if plan is not None and cts:  # one row of a Jacobian may touch few of the plan's nodes
        start = _sparse_head(cts, nodes, relevant, start // 8)
    for n in reversed(nodes) if start == len(nodes) else reversed(nodes[:start]):
        g = cts.pop(n, None)
        if g is None:
            continue
        kids = n.children
        for c, cg in zip(kids, _vjp(n, g, kids, False)):
            if relevant[c]:
                if cg.__class__ is not float:  # a batched contribution to an unbatched
                    cg = _fit(cg, c.value)     # node is summed before it meets others
                cts[c] = cts[c] + cg if c in cts else cg
    return [_fit(cts.get(x, 0.0), x.value) for x in inputs], False


def _sparse_head(cts: dict, nodes: list, relevant: dict, budget: int) -> int:
    """Sweep the nodes that have a cotangent in order of position (a heap), not
    by scanning the whole plan; after ``budget`` nodes, return the position
    the scan must go on from (0 when the sweep is done). Rows of a Jacobian
    swept over one shared plan each touch their own part of it.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> lv = next_level()
    >>> x, y = variable(2.0, lv), variable(5.0, lv)
    >>> a, b = x * 3.0, y * y
    >>> plan = order([a, b], [x, y])
    >>> cts = {a: 1.0}
    >>> _sparse_head(cts, plan[0], plan[1], 10), cts[x], y in cts
    (0, 3.0, False)
    """
    heap = [-relevant[o] for o in cts if relevant[o] is not True]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    while heap:
        p = -pop(heap)
        if budget == 0:
            return p  # the scan takes over from this node down
        budget -= 1
        n = nodes[p - 1]
        g = cts.pop(n)
        kids = n.children
        for c, cg in zip(kids, _vjp(n, g, kids, False)):
            r = relevant[c]
            if r:
                if cg.__class__ is not float:
                    cg = _fit(cg, c.value)
                if c in cts:
                    cts[c] = cts[c] + cg
                else:
                    cts[c] = cg
                    if r is not True:  # an inner node: sweep it in its turn
                        push(heap, -r)
    return 0


def _reverse_graph(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
                   nodes: list, relevant: dict) -> list:
    """``reverse`` building the cotangents as a graph: each node's contributions
    are collected and built once (``accumulate``), and the products that ``*``
    and ``dot`` send down are kept as pairs until then, so a sum of products
    becomes one ``dot`` node."""
    parts: dict = {}
    last: list = []  # ``dot_cotangents``'s factors stacked last
    for o, s in zip(outputs, seeds):
        if isinstance(o, Expr) and relevant.get(o):
            parts.setdefault(o, []).append(s)
    for n in reversed(nodes):
        got = parts.pop(n, None)
        if got is None:
            continue
        g = got[0] if len(got) == 1 and got[0].__class__ is not tuple else total(got)
        kids = n.children
        op = n.op
        if op == "dot" and isinstance(g, Expr) and _value(g).__class__ is not float:
            dot_cotangents(n, g, relevant, parts, last)  # vmap: no batch-sized product per factor
            continue
        if (op == "*" or op == "dot") and n.__class__ is Expr and _value(n).__class__ is float \
                and float_valued(g):
            one = g.__class__ is float and g == 1.0  # 1.0 * y is y itself
            half = len(kids) // 2  # a product's partner: y for x, x for y
            for c, partner in zip(kids, kids[half:] + kids[:half]):
                if relevant[c]:
                    item = partner if one else (g, partner)
                    pending = parts.get(c)
                    if pending is None:
                        parts[c] = [item]
                    else:
                        pending.append(item)
            continue
        for c, cg in zip(kids, _vjp(n, g, kids, True)):
            if relevant[c]:
                if cg.__class__ is not float and not (
                        cg.__class__ is Expr and _value(cg).__class__ is float):
                    cg = _fit(cg, c.value)  # a batched contribution: summed to c's shape
                pending = parts.get(c)
                if pending is None:
                    parts[c] = [cg]
                else:
                    pending.append(cg)
    out = []
    for x in inputs:
        got = parts.get(x)
        if got is None:
            out.append(0.0)
            continue
        ct = total(got)
        if ct.__class__ is not float and not (ct.__class__ is Expr and
                                              _value(ct).__class__ is float):
            ct = _fit(ct, _value(x))  # a scalar needs no fit (``_fit``'s first test)
        out.append(ct)
    return out


def _vjp(n: Expr, g: Any, kids: tuple, on_graph: bool) -> Sequence[Any]:
    if n.__class__ is Prim:
        args = kids if on_graph else [c.value for c in kids]
        return PARAM_VJP[n.op](g, n if on_graph else n.value, n.param, *args)
    if on_graph:
        return VJP[n.op](g, n, *kids)
    if n.op == "dot":  # the rule on floats, without unpacking: ct times each partner
        values = [c.value for c in kids]
        half = len(values) // 2
        return [g * v for v in values[half:] + values[:half]]
    rule = VJP[n.op]
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

    >>> from fmicrograd.core.expr import variable, next_level
    >>> x = variable(2.0, next_level())
    >>> forward([x * x, 7.0], [x], [1.0])
    ([4.0, 0.0], False)
    """
    nodes, _, on_graph = plan or order(outputs, inputs)
    tans: dict[Any, Any] = dict(zip(inputs, tangents))
    has, get = tans.__contains__, tans.get
    consts: dict = {}  # one constant leaf per float factor (an input's tangent)
    for n in nodes:
        kids = n.children
        if not any(map(has, kids)):
            continue  # depends on an input, but not on one with a tangent here
        if n.__class__ is Prim and _moves_batch(n):
            tans[n] = linear_tangent(n, [tans.get(c) for c in kids])
            continue
        if n.op == "batch_dot":
            tans[n] = batch_dot_tangent(n, tans.get(kids[0]), tans.get(kids[1]), on_graph)
            continue
        if on_graph:  # the tangent as one sum (or dot) node, see ``accumulate``
            parts: list = []
            if n.op == "dot" and n.__class__ is Expr and _value(n).__class__ is float:
                half = len(kids) // 2  # partials: the partners themselves
                for t, y in zip(map(get, kids), kids[half:] + kids[:half]):
                    if t is not None:
                        add_product(parts, y, t)
            else:
                for c, p in zip(kids, _vjp(n, 1.0, kids, True)):
                    t = tans.get(c)
                    if t is not None:
                        add_product(parts, p, t)
            tans[n] = total(parts, consts)
            continue
        acc = None
        if n.op == "dot" and n.__class__ is Expr:  # partials: the partners' values
            half = len(kids) // 2
            for t, y in zip(map(get, kids), kids[half:] + kids[:half]):
                if t is not None:
                    acc = _value(y) * t if acc is None else acc + _value(y) * t
            tans[n] = acc
            continue
        for c, p in zip(kids, _vjp(n, 1.0, kids, False)):
            t = tans.get(c)
            if t is not None:
                acc = p * t if acc is None else acc + p * t
        if acc is not None:
            tans[n] = acc
    return [tans.get(o, 0.0) if isinstance(o, Expr) else 0.0 for o in outputs], on_graph


def _moves_batch(n: Prim) -> bool:
    """Whether ``n`` moves values between examples (``vmap``'s stack, take,
    reshape, batch sum): its VJP at 1 is no partial derivative, so forward mode
    applies the (linear) op itself to the tangents instead."""
    return n.op == "batch_sum" or getattr(n.param, "linear", False)


def _fit(ct: Any, like: Any) -> Any:
    """Sum a batched cotangent down to its input's shape (``vmap``)."""
    if ct.__class__ is float:
        return ct
    value = ct.value if isinstance(ct, Expr) else ct
    if getattr(value, "ndim", 0) <= getattr(like, "ndim", 0):
        return ct
    return reduce_to(ct, like)
