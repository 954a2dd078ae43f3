"""The two sweeps over a graph: reverse (cotangents) here, forward (tangents) in ``forward_sweep``.

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
import sys
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from .accumulate import float_valued, total
from .batch_axes import reduce_to
from .control import RUNNING
from .dot_cotangents import dot_cotangents
from .expr import PLAIN, Expr, Prim, Var
from .expr import stored_value as _value
from .numeric import quiet, quiet_arrays
from .presence import reached_cotangents
from .reach import FILL, GATED, Choice, Lanes, dead_edges
from .reach_graph import GraphLanes, where_graph
from .rules import PARAM_VJP, VJP

_FINISH = object()  # stack marker: the node below it has all children done

# While the rule of a node that a sweep reaches on some lanes only runs, and the
# rule asks (``reach_aware``: ``debug_nans``'s, which sweeps on through the
# graph it stands for), ``(reach, lanes)``: those lanes and the sweep's
# ``Lanes`` or ``GraphLanes``. Nothing is set for any other node.
REACHED: ContextVar = ContextVar("fmicrograd_reached", default=None)
# While a reverse sweep runs: its ``relevant`` (the nodes on a path from its inputs), for a
# rule that computes every child's cotangent and checks them (``debug_nans``'s watch: a child
# the sweep does not differentiate gets a cotangent the sweep drops, whose NaN reaches nothing).
SWEEPING: ContextVar = ContextVar("fmicrograd_sweeping", default=None)


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
    # (no inputs, as for an argument without leaves: every variable met is an enclosing one)
    level = min((x.level for x in inputs), default=sys.maxsize)
    on_graph = any(x.children and x.children[0].op != "const" for x in inputs)
    older = on_graph  # an enclosing transform's variable met (checked again at the end)
    relevant: dict = dict.fromkeys(inputs, True)
    nodes: list = []
    stack: list[Any] = [o for o in outputs if isinstance(o, Expr)]
    pop, push = stack.pop, stack.append
    while stack:
        n = pop()
        if n is _FINISH:
            n = pop()
            if n.op == "stop_gradient":  # no derivative reaches below it, not even a zero
                relevant[n] = False      # (0 * inf would be NaN; torch and JAX cut here)
                continue
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
        if not older and n.op == "var" and n.level < level:
            older = True  # an enclosing transform's variable (one holding a node too:
            #               a vmap batch, or a graph at higher order)
        if not kids:
            relevant[n] = False
            continue
        push(n)
        push(_FINISH)
        for c in kids:
            if c not in relevant:
                push(c)
    if older and not on_graph:
        on_graph = _differentiable_older(outputs, level)
    return nodes, relevant, on_graph


def _differentiable_older(outputs: Sequence[Any], level: int) -> bool:
    """Whether an enclosing transform's variable (older than ``level``) reaches
    the outputs through edges that carry a derivative, or is one that ``jit``
    traces (its value changes from run to run, even behind ``stop_gradient``):
    then the derivative must be built as a graph. A variable seen only behind
    ``stop_gradient``, a comparison or ``where``'s condition leaves the
    derivative a plain number."""
    traced = {lv for lv, _, traces in RUNNING.get() if traces}
    stack: list[tuple[Any, bool]] = [(o, False) for o in outputs if isinstance(o, Expr)]
    seen: set = set()
    while stack:
        n, behind = stack.pop()
        if n.op == "var" and n.level < level and (not behind or n.level in traced):
            return True
        kids = n.children
        dead = dead_edges(n) if n.op in GATED else (True,) if n.op == "stop_gradient" else None
        for i, c in enumerate(kids):
            state = behind or (dead is not None and dead[i])
            key = (id(c), state)
            if key not in seen:
                seen.add(key)
                stack.append((c, state))
    return False


def reverse(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
            plan: tuple | None = None, reached: dict | None = None) -> tuple[list, bool]:
    """Cotangents of ``inputs`` given cotangents ``seeds`` of ``outputs``.

    Returns ``(cotangents, on_graph)``; an input that no output depends on
    gets ``0.0``. ``plan`` is a result of ``order`` to reuse; ``reached``
    maps outputs reached on some lanes only to those lanes (a rule's sweep
    that continues an enclosing one's, see ``REACHED``).

    >>> from fmicrograd.core.expr import variable, next_level
    >>> lv = next_level()
    >>> x, y = variable(2.0, lv), variable(5.0, lv)
    >>> reverse([x * y], [1.0], [x, y])
    ([5.0, 2.0], False)
    """
    nodes, relevant, on_graph = plan or order(outputs, inputs)
    with quiet_arrays():  # (under vmap the values are arrays: numpy's warnings off)
        if on_graph:
            return _reverse_graph(outputs, seeds, inputs, nodes, relevant), True
        old = SWEEPING.get()  # (set again at the end, not reset: see ``control.running``)
        try:
            SWEEPING.set(relevant)
            return _reverse_values(outputs, seeds, inputs, plan, reached, nodes, relevant), False
        finally:
            SWEEPING.set(old)


def _reverse_values(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
                    plan: tuple | None, reached: dict | None, nodes: list,
                    relevant: dict) -> list:
    cts: dict = {}
    for o, s in zip(outputs, seeds):
        if isinstance(o, Expr) and relevant.get(o):
            cts[o] = cts[o] + s if o in cts else s
    # the nodes reached on some lanes only (see ``reach``), and those lanes
    reach: dict = dict(reached) if reached else {}
    start = len(nodes)
    if plan is not None and cts:  # one row of a Jacobian may touch few of the plan's nodes
        start = _sparse_head(cts, nodes, relevant, start // 8, reach)
    for n in reversed(nodes) if start == len(nodes) else reversed(nodes[:start]):
        g = cts.pop(n, None)
        if g is None:
            continue
        kids = n.children
        if n.op in GATED or (reach and n in reach) or n.op == "custom" and _selects(n):
            _gated(n, g, kids, relevant, cts, reach, None)
            continue
        for c, cg in zip(kids, _cotangents(n, g, kids, False)):
            if relevant[c]:
                if cg.__class__ is not float:  # a batched contribution to an unbatched
                    if cg is None:             # node is summed before it meets others
                        continue
                    cg = _fit(cg, c.value)
                if c in cts:
                    cts[c] = cts[c] + cg
                    if reach:  # reached on every lane now
                        reach.pop(c, None)
                else:
                    cts[c] = cg
    if reach:
        return [_fit(Lanes.finish(cts.get(x, 0.0), reach.get(x)), x.value) for x in inputs]
    return [_fit(cts.get(x, 0.0), x.value) for x in inputs]


class _Every(dict):
    """``relevant`` for ``every_cotangent``: each node counts but a
    ``stop_gradient`` (no derivative goes through it, so a per-example
    branch's checks skip it, as ``order`` marks it for ``reverse``)."""

    def __missing__(self, key: Any) -> bool:
        return key.op != "stop_gradient"


def every_cotangent(expr: Expr, nodes: list) -> dict:
    """``d expr / d n`` for every node of ``nodes`` (children before parents,
    ``expr`` last) in one sweep on values: what micrograd's ``backward()``
    leaves in each ``.grad`` (``fm.viz.node_grads``). As in ``reverse``, no
    derivative goes below ``stop_gradient``, a per-example branch sends each
    child the lanes it is taken on (``_gated``), and a batched contribution is
    summed to its node's shape; a node no derivative reaches gets ``0.0``.

    >>> from fmicrograd.core.expr import Var
    >>> from fmicrograd.core.functions import sqrt, stop_gradient
    >>> x = Var(0.0)
    >>> s = stop_gradient(sqrt(x))
    >>> out = x + s
    >>> g = every_cotangent(out, [x, s.children[0], s, out])
    >>> g[x], g[s.children[0]]
    (1.0, 0.0)
    """
    cts: dict = {expr: 1.0}
    reach: dict = {}
    relevant = _Every()
    for n in reversed(nodes):
        g = cts.get(n)
        kids = n.children
        if g is None or not kids or n.op == "stop_gradient":
            continue
        if n.op in GATED or (reach and n in reach) or n.op == "custom" and _selects(n):
            _gated(n, g, kids, relevant, cts, reach, None)
            continue
        for c, cg in zip(kids, _vjp(n, g, kids, False)):
            if cg.__class__ is not float:
                if cg is None:  # (a child the rule's output does not reach)
                    continue
                cg = _fit(cg, c.value)
            if c in cts:
                cts[c] = cts[c] + cg
                if reach:
                    reach.pop(c, None)
            else:
                cts[c] = cg
    for n, r in reach.items():
        cts[n] = Lanes.finish(cts[n], r)
    for n in nodes:
        cts.setdefault(n, 0.0)
    return cts


def _gated(n: Expr, g: Any, kids: tuple, relevant: dict, cts: dict, reach: dict,
           new: Any) -> None:
    """Send ``n``'s cotangent on to its children when an edge is dead (a
    comparison's inputs, ``where``'s condition), ``n`` is a per-example
    ``Choice``, ``n`` moves examples (taking one) or ``n`` is reached on some
    lanes only: each child gets the contribution on the lanes it is reached
    by, nothing (``-0.0``) elsewhere (see ``reach``). ``new`` is called with
    each child that had no cotangent yet."""
    r = reach.pop(n, None)
    edges = Lanes.edge(n, kids)
    sent = Lanes.through(n, r, kids, g)
    cgs: Any = None
    for i, c in enumerate(kids):
        e = edges[i]
        if e is False or not relevant[c]:
            continue
        m = Lanes.both(sent[i], e)
        if m is False:
            continue
        if cgs is None:
            if r is None:
                cgs = _vjp(n, g, kids, False)
            else:
                with quiet():  # the rule's nan on unreached lanes is dropped below
                    cgs = _vjp_reached(n, g, kids, False, r, Lanes)
            if n.op == "custom":
                cgs = reached_cotangents(n, kids, cgs)
        cg = cgs[i]
        if cg is None:  # (a child the rule's output does not reach)
            continue
        if m is not None:
            cg, m = Lanes.mask(cg, m, n)
            if m is False:
                continue
        if cg.__class__ is not float:
            fitted = _fit(cg, c.value)
            if m is not None and fitted is not cg:
                m = Lanes.fit(m, cg, fitted)
            cg = fitted
        if c in cts:
            cts[c] = cts[c] + cg
            _widen(reach, c, m, Lanes)
        else:
            cts[c] = cg
            if m is not None:
                reach[c] = m
            if new is not None:
                new(c)


def _sparse_head(cts: dict, nodes: list, relevant: dict, budget: int,
                 reach: dict | None = None) -> int:
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
    if reach is None:
        reach = {}
    heap = [-relevant[o] for o in cts if relevant[o] is not True]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop

    def new(c: Any) -> None:
        if relevant[c] is not True:
            push(heap, -relevant[c])

    while heap:
        p = -pop(heap)
        if budget == 0:
            return p  # the scan takes over from this node down
        budget -= 1
        n = nodes[p - 1]
        g = cts.pop(n)
        kids = n.children
        if n.op in GATED or (reach and n in reach) or n.op == "custom" and _selects(n):
            _gated(n, g, kids, relevant, cts, reach, new)
            continue
        for c, cg in zip(kids, _cotangents(n, g, kids, False)):
            r = relevant[c]
            if r:
                if cg.__class__ is not float:
                    if cg is None:  # (a child the rule's output does not reach)
                        continue
                    cg = _fit(cg, c.value)
                if c in cts:
                    cts[c] = cts[c] + cg
                    if reach:
                        reach.pop(c, None)
                else:
                    cts[c] = cg
                    if r is not True:  # an inner node: sweep it in its turn
                        push(heap, -r)
    return 0


def _reverse_graph(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
                   nodes: list, relevant: dict, reached: dict | None = None,
                   lanes: GraphLanes | None = None) -> list:
    """``reverse`` building the cotangents as a graph: each node's contributions
    are collected and built once (``accumulate``), and the products that ``*``
    and ``dot`` send down are kept as pairs until then, so a sum of products
    becomes one ``dot`` node. ``reached`` is ``reverse``'s, as formulas of
    ``lanes`` (the ``GraphLanes`` they were made by)."""
    old = SWEEPING.get()
    try:
        SWEEPING.set(relevant)
        return _graph_sweep(outputs, seeds, inputs, nodes, relevant, reached, lanes)
    finally:
        SWEEPING.set(old)


def _graph_sweep(outputs: Sequence[Any], seeds: Sequence[Any], inputs: Sequence[Var],
                 nodes: list, relevant: dict, reached: dict | None,
                 lanes: GraphLanes | None) -> list:
    parts: dict = {}
    last: list = []  # ``dot_cotangents``'s factors stacked last
    # the nodes reached on some lanes only, as formulas (see ``reach``)
    reach: dict = dict(reached) if reached else {}
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
        if op in GATED or (reach and n in reach) or op == "custom" and _selects(n):
            if lanes is None:
                lanes = GraphLanes()
            _gated_graph(n, g, kids, relevant, parts, reach, lanes)
            continue
        if reach:  # every contribution below reaches every lane of its child
            for c in kids:
                reach.pop(c, None)
        if op == "dot" and isinstance(g, Expr) and _value(g).__class__ is not float:
            dot_cotangents(n, g, relevant, parts, last)  # vmap: no batch-sized product per factor
            continue
        if (op == "*" or op == "dot") and n.__class__ in PLAIN and _value(n).__class__ is float \
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
        for c, cg in zip(kids, _cotangents(n, g, kids, True)):
            if relevant[c]:
                if cg.__class__ is not float and not (
                        cg.__class__ in PLAIN and _value(cg).__class__ is float):
                    if cg is None:
                        continue
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
        if ct.__class__ is not float and not (ct.__class__ in PLAIN and
                                              _value(ct).__class__ is float):
            ct = _fit(ct, _value(x))  # a scalar needs no fit (``_fit``'s first test)
        if lanes is not None and x in reach:
            ct = lanes.finish(ct, reach[x])
        out.append(ct)
    return out


def _gated_graph(n: Expr, g: Any, kids: tuple, relevant: dict, parts: dict, reach: dict,
                 lanes: GraphLanes) -> None:
    """``_gated`` for the sweep that builds a graph: the lanes are formulas
    over the conditions' nodes and the masks are ``where`` nodes."""
    r = reach.pop(n, None)
    edges = lanes.edge(n, kids)
    sent = lanes.through(n, r, kids, g)
    cgs: Any = None
    direct = n.__class__ is Choice and r is None and kids[0].op != "const"
    for i, c in enumerate(kids):
        e = edges[i]
        if (e is not None and not e) or not relevant[c]:
            continue
        m = lanes.both(sent[i], e)
        if m is not None and not m:
            continue
        if direct:  # the branch's cotangent on its own lanes, nothing elsewhere: one node
            cg = where_graph(kids[0], g, FILL) if i == 1 else where_graph(kids[0], FILL, g)
        else:
            if cgs is None:
                cgs = _vjp(n, g, kids, True) if r is None else \
                    _vjp_reached(n, g, kids, True, r, lanes)
                if n.op == "custom":
                    cgs = reached_cotangents(n, kids, cgs)
            cg = cgs[i]
            if cg is None:  # (a child the rule's output does not reach)
                continue
            if m is not None:
                cg, m = lanes.mask(cg, m, n)
                if m is not None and not m:
                    continue
        if cg.__class__ is not float and not (cg.__class__ in PLAIN and
                                              _value(cg).__class__ is float):
            fitted = _fit(cg, c.value)
            if m is not None and fitted is not cg:
                m = lanes.fit(m, cg, fitted)
            cg = fitted
        pending = parts.get(c)
        if pending is None:
            parts[c] = [cg]
            if m is not None:
                reach[c] = m
        else:
            pending.append(cg)
            _widen(reach, c, m, lanes)


def _widen(reach: dict, c: Expr, m: Any, lanes: Any) -> None:
    """``c``, reached on lanes ``reach[c]`` before, is now reached on ``m`` too
    (None: every lane, and ``c`` leaves ``reach``)."""
    if c in reach:
        both = lanes.either(reach[c], m)
        if both is None:
            del reach[c]
        else:
            reach[c] = both


def _cotangents(n: Expr, g: Any, kids: tuple, on_graph: bool) -> Sequence[Any]:
    """``_vjp`` for the reverse sweep: a rule's node gives None (no cotangent)
    to a child its seeded output does not reach (``reached_cotangents``)."""
    cgs = _vjp(n, g, kids, on_graph)
    return reached_cotangents(n, kids, cgs) if n.op == "custom" else cgs


def _vjp_reached(n: Expr, g: Any, kids: tuple, on_graph: bool, r: Any,
                 lanes: Any) -> Sequence[Any]:
    """``_vjp`` of a node the sweep reaches on lanes ``r`` only: a rule that
    asks is told them (``REACHED``)."""
    if n.__class__ is Prim and getattr(n.param, "reach_aware", False):
        old = REACHED.get()
        try:
            REACHED.set((r, lanes))
            return _vjp(n, g, kids, on_graph)
        finally:
            REACHED.set(old)
    return _vjp(n, g, kids, on_graph)


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


def _selects(n: Any) -> bool:
    """Whether ``n`` is ``vmap``'s data-movement op whose derivative reaches
    some examples of its input only (taking one example reaches that one):
    the sweeps then track the lanes reached, as for ``where``."""
    return getattr(n.param, "selects", False)


def _fit(ct: Any, like: Any) -> Any:
    """Sum a batched cotangent down to its input's shape (``vmap``)."""
    if ct.__class__ is float:
        return ct
    value = ct.value if isinstance(ct, Expr) else ct
    if getattr(value, "ndim", 0) <= getattr(like, "ndim", 0):
        return ct
    return reduce_to(ct, like)


from .forward_sweep import forward as forward  # noqa: E402 -- (it imports this module)
