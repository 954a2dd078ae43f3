"""``debug_nans`` under a transform that differentiates it from outside
(``grad(debug_nans(f))``, ``jvp(debug_nans(f), ...)``): the output goes back
behind a node whose rules run the reverse sweep, or the forward (tangent)
sweep, through ``f``'s part of the graph themselves, checked as
``debug_nans`` checks the forward pass (see ``_Watch``)."""

from __future__ import annotations

from typing import Any

from ..core import pytree as tr
from ..core import sweep
from ..core.batch_axes import DEPTH
from ..core.control import RUNNING
from ..core.expr import Expr, const, prim
from ..core.numeric import quiet
from ..core.reach import GATED, dead_edges
from ..core.reach_graph import GraphLanes
from .debug_check import _check, _has_nan


class _Region:
    """A part of a graph whose reverse sweep ``debug_nans`` runs itself: the
    nodes of ``f``'s computation (those that depend on the wrapper's
    variables), or, at ``order`` 2 and up, those and the nodes of a
    derivative of them that a rule built. ``outs`` are its watched outputs,
    ``fringe`` the nodes outside it that its nodes use, ``boundary`` those of
    them a derivative flows into (the watched nodes' children)."""

    __slots__ = ("outs", "nodes", "fringe", "boundary", "order", "_plan")

    def __init__(self, nodes: set, fringe: dict, boundary: dict, order: int) -> None:
        self.nodes, self.fringe, self.order = nodes, fringe, order
        self.boundary = tuple(boundary)
        self.outs: list = []
        self._plan: tuple | None = None

    def plan(self) -> tuple:
        """The nodes between the outputs and the boundary, children first, and
        the sweep's ``relevant`` map: as ``sweep.order`` orders them from the
        outputs (the last first), so that a sweep of the region adds each
        node's terms in the order the enclosing sweep would."""
        if self._plan is None:
            relevant: dict = dict.fromkeys(self.boundary, True)
            nodes: list = []
            stack: list = [(o, False) for o in self.outs]
            while stack:
                n, expanded = stack.pop()
                if expanded:
                    if n.op != "stop_gradient" and any(relevant[c] for c in n.children):
                        nodes.append(n)
                        relevant[n] = len(nodes)
                    else:
                        relevant[n] = False
                    continue
                if n in relevant:
                    continue
                if not n.children:
                    relevant[n] = False
                    continue
                stack.append((n, True))
                stack.extend((c, False) for c in n.children if c not in relevant)
            self._plan = (nodes, relevant)
        return self._plan


def _region(roots: list, inputs: dict) -> tuple[set, list]:
    """The nodes under ``roots`` that depend on the wrapper's variables
    (``inputs``, included): ``f``'s own computation, whose reverse sweep an
    enclosing transform runs after the wrapper returned; and the same nodes
    as a list, children first."""
    region: set = set()
    post: list = []
    seen: set = set()
    stack: list = [(r, False) for r in reversed(roots)]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            if any(c in region for c in n.children):
                region.add(n)
                post.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        if n in inputs:
            region.add(n)
            post.append(n)
            continue
        if n.children:
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(n.children) if c not in seen)
    return region, post


def _fringe(nodes: Any, region: set, fringe: dict, boundary: dict) -> None:
    """Add the children of ``nodes`` (of ``region``) that lie outside it to
    ``fringe``, and those of them that a derivative flows into (a live edge,
    not a constant) to ``boundary`` (dicts as ordered sets)."""
    for n in nodes:
        kids = n.children
        if not kids:
            continue
        dead = dead_edges(n) if n.op in GATED else None
        stopped = n.op == "stop_gradient"
        for i, c in enumerate(kids):
            if c in region:
                continue
            fringe[c] = None
            if not stopped and not (dead is not None and dead[i]) and c.op != "const":
                boundary[c] = None


def _derivative_levels() -> set:
    """The levels of the running transforms that differentiate, in reverse mode
    (``grad``, ``vjp``, ``jacrev``, ``hessian``...) or forward mode (``jvp``,
    ``jacfwd``, ``linearize``)."""
    return {lv for lv, who, traces in RUNNING.get() if not traces}


def _differentiated_by_running(nodes: Any) -> bool:
    """Whether a running transform that differentiates depends on one of
    ``nodes``: its sweep will pass through the nodes that stand on them."""
    levels = _derivative_levels()
    if not levels:
        return False
    stack = [n for n in nodes if isinstance(n, Expr)]
    seen = {id(n) for n in stack}
    while stack:
        n = stack.pop()
        if n.op == "var" and getattr(n, "level", None) in levels:
            return True
        if n.op == "stop_gradient":
            continue
        for c in n.children:
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return False


def _watch(leaves: list, paths: list[str], region: _Region) -> list | None:
    """``leaves`` with each node of ``region`` replaced by a node of the same
    value whose children are the region's boundary and whose rule runs the
    reverse sweep through the region itself, checking it (``_Watch``); None
    when no reverse-mode transform runs that would sweep it."""
    kids = region.boundary
    if not kids or not any(isinstance(x, Expr) and x in region.nodes for x in leaves) or \
            not _differentiated_by_running(kids):
        return None
    out = []
    for leaf, path in zip(leaves, paths):
        if isinstance(leaf, Expr) and leaf in region.nodes:
            if not any(o is leaf for o in region.outs):  # (``in`` would compare values)
                region.outs.append(leaf)
            leaf = prim("custom", leaf.value, kids, _Watch(region, leaf, path))
        out.append(leaf)
    return out


def _watch_output(leaves: list, paths: list, inputs: dict) -> list | None:
    """``_watch`` for the output leaves of ``f``: its region, and a boundary
    that starts with what the wrapper's variables stand for, in order."""
    region, post = _region([x for x in leaves if isinstance(x, Expr)], inputs)
    fringe: dict = {}
    boundary: dict = {}
    _fringe([x for x in inputs if x in region], region, fringe, boundary)
    _fringe(post, region, fringe, boundary)
    return _watch(leaves, [tr.keystr(p) for p in paths], _Region(region, fringe, boundary, 1))


class _Watch:
    """The ``param`` of a ``"custom"`` node standing for ``out``, an output of
    ``f`` (or a derivative of one) under ``debug_nans`` while an enclosing
    transform differentiates it (in forward mode, see ``push``). The node's children are the
    region's boundary; its rule (``rule(ct, out, *children)``, see
    ``rules.PARAM_VJP``) runs the reverse sweep from ``out`` down to them,
    the very sweep the enclosing transform would have run through the
    region, and raises on the first op of it that makes a NaN. The numbers
    are that sweep's: on values the rule runs it on values (and rebuilds it
    as a graph, to name the op, only when a NaN came out); on a graph (inside
    ``jit``, at higher order) the derivative it returns is watched in turn,
    for the next order. Under ``vmap`` the sweep tells it the lanes (examples)
    it reaches the node on (``sweep.REACHED``), and it goes on with them."""

    __slots__ = ("region", "out", "path")
    name = "debug_nans"  # (how ``fm``'s formulas print the node)
    reach_aware = True
    watches = True  # (see ``debug_check._watched``)

    def __init__(self, region: _Region, out: Expr, path: str) -> None:
        self.region, self.out, self.path = region, out, path

    def __call__(self, ct: Any, out: Any, *leaves: Any) -> list:
        told = sweep.REACHED.get()
        if told is None:
            return self._pull(ct, out, None, None)
        try:
            sweep.REACHED.set(None)  # (not for the rules this rule's sweep calls)
            return self._pull(ct, out, {self.out: told[0]}, told[1])
        finally:
            sweep.REACHED.set(told)

    def _pull(self, ct: Any, out: Any, reached: dict | None, lanes: Any) -> list:
        region = self.region
        # the boundary nodes the enclosing sweep differentiates: only their cotangents
        # reach a derivative (``jit``'s traced ``x`` in ``sqrt(w * x)`` under ``grad`` in
        # ``w`` gets 0 * inf = nan, which the sweep drops)
        sweeping = sweep.SWEEPING.get()
        needed = [sweeping is None or bool(sweeping.get(b)) for b in region.boundary]
        nodes, relevant = region.plan()
        if not isinstance(out, Expr):  # a sweep on values: the same numbers as without
            cts, _ = sweep.reverse([self.out], [ct], region.boundary, (nodes, relevant, False),
                                   reached)
            if any(_has_nan(c.value if isinstance(c, Expr) else c)
                   for c, k in zip(cts, needed) if k):
                # rebuilt as a graph, to find the op that made it (or none: a NaN input)
                seed = const(ct) if hasattr(ct, "__array__") else ct
                graph_lanes = GraphLanes()
                if reached is not None:
                    reached = {self.out: graph_lanes._fixed(None, reached[self.out])}
                with quiet():  # (the sweep on values has warned of it)
                    rebuilt = sweep._reverse_graph([self.out], [seed], region.boundary, nodes,
                                                   relevant, reached, graph_lanes)
                self._check([r for r, k in zip(rebuilt, needed) if k], seed)
            return cts
        cts = sweep._reverse_graph([self.out], [ct], region.boundary, nodes, relevant, reached,
                                   lanes)
        stop = self._check([c for c, k in zip(cts, needed) if k], ct)
        return self._next_order(cts, stop)

    def _next_order(self, cts: list, stop: set) -> list:
        """``cts``, a derivative just built as a graph (``stop``: the nodes
        its check stopped at), each behind a watching node: the enclosing
        transform differentiates it in turn, and its sweep through the nodes
        just built and the region is checked too."""
        region = self.region
        new = _new_nodes(cts, stop)
        if not new or _holds_examples(region.nodes | new):
            return cts
        nodes2 = region.nodes | new
        fringe, boundary = dict(region.fringe), dict.fromkeys(region.boundary)
        _fringe(new, nodes2, fringe, boundary)
        watched = _watch(cts, [self.path] * len(cts),
                         _Region(nodes2, fringe, boundary, region.order + 1))
        return cts if watched is None else watched

    def push(self, tangents: list, on_graph: bool) -> Any:
        """The tangent of ``out`` from those of the node's children (the
        region's boundary; None where there is none), for an enclosing
        transform that differentiates in forward mode: the forward sweep it
        would have run through the region (the same numbers), checked. On
        values a NaN is traced to its op by the same sweep built as a graph."""
        region = self.region
        nodes, _ = region.plan()
        given = [(b, t) for b, t in zip(region.boundary, tangents) if t is not None]
        inputs, tans = [b for b, _ in given], [t for _, t in given]
        (tangent,), _ = sweep.forward([self.out], inputs, tans, (nodes, None, on_graph))
        if isinstance(tangent, Expr):  # built as a graph: checked, not watched in turn
            # (an enclosing reverse sweep orders a watched region's terms by its own
            # outputs: one region per tangent would add them in another order)
            self._check([tangent], None, "the tangent")
        elif _has_nan(tangent) and not any(_has_nan(t) for t in tans):
            seeds = [const(t) for t in tans]
            with quiet():  # (the sweep on values has warned of it)
                (rebuilt,), _ = sweep.forward([self.out], inputs, seeds, (nodes, None, True))
            self._check([rebuilt], None, "the tangent", tuple(seeds))
        return tangent

    def _check(self, cts: list, ct: Any, what: str = "the derivative",
               seeds: tuple = ()) -> set:
        """Raise on the first node of the derivative ``cts`` that makes a NaN
        from non-NaN inputs (on lanes that reach ``cts``); returns the nodes
        the walk stops at (the region, what it stands on, and ``ct``)."""
        stop = set(self.region.nodes)
        stop.update(self.region.fringe)
        stop.update(seeds)
        if isinstance(ct, Expr):
            stop.add(ct)
        k = self.region.order
        which = {1: what, 2: f"the second {what[4:]}"}.get(k, f"{what[4:]} {k}")
        _check(cts, stop, f"{which} of the output", at=self.path)
        return stop


def _holds_examples(nodes: set) -> bool:
    """Whether a region holds a ``vmap`` result made inside the transforms
    (values with example axes beyond the lanes of the ``vmap``s around them).
    Its next-order derivative is not watched: the watching node's sweeps mixed
    the result's examples (a Hessian through ``debug_nans(lambda r: r[0] *
    r[1])`` of one had an extra ``outer(grad r0, grad r0)``), so that order
    goes unchecked there, and keeps the numbers of the function without the
    wrapper (documented in sharp-bits)."""
    depth = DEPTH.get()
    return any(getattr(n.value, "ndim", 0) > depth for n in nodes)


def _new_nodes(roots: list, stop: set) -> set:
    """The nodes under ``roots`` that a rule's sweep built (those above ``stop``;
    not the conditions of its masks, behind edges no derivative crosses)."""
    new: set = set()
    stack = [r for r in roots if isinstance(r, Expr) and r not in stop]
    while stack:
        n = stack.pop()
        if n in new:
            continue
        new.add(n)
        dead = dead_edges(n) if n.op in GATED else None
        stack.extend(c for i, c in enumerate(n.children)
                     if c not in stop and c not in new and not (dead is not None and dead[i]))
    return new


