"""``debug_nans``: find the first operation that produced a NaN.

No hook sits in the hot path, so there is no cost unless the wrapper is used.
The wrapper runs ``f`` with every float of its arguments replaced by a fresh
variable. Every transform inside ``f`` then meets a variable of an enclosing
transform and runs in graph mode: its derivative computation becomes graph
nodes too, next to the forward ones. The wrapper walks the output graph,
children before parents, and raises on the first node whose value is NaN while
none of its inputs is.

A transform applied outside the wrapper (``fm.grad(debug_nans(f))``) sweeps
``f``'s graph after the wrapper has returned. So while a transform that
differentiates in reverse mode (``grad``, ``value_and_grad``, ``vjp``,
``jacrev``, ``hessian``) runs around the call, every output node that depends
on the wrapper's variables is handed back behind a ``"custom"`` node of the
same value (``_Watch``, a rule as ``custom_vjp``'s). Its children are the
boundary of ``f``'s part of the graph: the enclosing nodes the wrapper's
variables stand for, and the nodes ``f`` closed over. Its rule runs the
reverse sweep through that part itself, the sweep the enclosing transform
would have run there, on the same nodes in the same order (the same numbers),
and when a NaN comes out it rebuilds that sweep as a graph and walks it as
above: the error names the op and says the NaN reached the derivative. Where
the enclosing sweep builds a graph (at higher order, inside ``jit``) the rule
checks the derivative it builds and hands it back behind such nodes in turn,
for the next order. Under ``vmap`` the sweep tells the rule the examples it
reaches the node on (``sweep.REACHED``), and the rule's sweep goes on with
them, so an example whose ``where`` does not take ``f`` is not blamed, as in
a loop. Outside ``debug_nans`` nothing of this runs.

>>> debug_nans(lambda x: fm.log(x) * 2)(1.0)
0.0
>>> debug_nans(lambda x: fm.log(x) * 2)(-1.0)
Traceback (most recent call last):
    ...
FloatingPointError: debug_nans: 'log' produced nan from inputs (-1.0,): log(args[0]) = nan; \
it reaches the output at <root>
>>> fm.grad(debug_nans(lambda x: fm.sqrt(x) * 0.0))(0.0)
Traceback (most recent call last):
    ...
FloatingPointError: debug_nans: '/' produced nan from inputs (0.0, 0.0): \
0.0 / (2.0 * sqrt(args[0])) = nan; it reaches the derivative of the output at <root>

Limits, from walking the output graph: only computations that depend on
``f``'s arguments are seen (a transform applied to constants alone runs on
floats), and only nodes that reach an output or the function value of a transform
inside ``f`` (so a forward NaN that ``grad`` drops is still reported: under
``grad(log)`` at -1 the derivative ``1/x`` is a clean -1.0, but ``log(-1)``
is not). A NaN argument is not an operation and is
not reported. Under ``vmap`` a node counts when it has a NaN and none of its
inputs has one anywhere in the batch. Transforms outside the wrapper that
differentiate in forward mode (``jvp``, ``jacfwd``, ``linearize``) push their
tangents through ``f``'s graph unchecked. A value ``f`` computes from
closed-over values alone lies outside its part of the graph, so its
derivative is not checked; and when ``f`` closes over a differentiated value
that is also used outside it, the terms of that value's derivative can be
added in another order than without the wrapper (the last bit can differ).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Collection
from typing import Any

from .. import tree as tr
from ..core import sweep
from ..core.control import GUARDS, RUNNING, UNCOMPILED, dependent
from ..core.expr import Expr, Prim, const, next_level, prim, variable
from ..core.numeric import quiet
from ..core.reach import GATED, Choice, Lanes, _norm, _reduce_mask, dead_edges, where_masks
from ..core.reach_graph import GraphLanes
from .autodiff import CHECK_VALUES, lower

__all__ = ["debug_nans"]

_INFIX = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**"}


def debug_nans(f: Callable) -> Callable:
    """Wrap ``f`` (transformed or not) so that the first operation producing a
    NaN, forward or in a derivative (one taken inside ``f``, or by a
    reverse-mode transform applied to the wrapper), raises
    ``FloatingPointError`` naming the op and its inputs. Otherwise returns
    what ``f`` returns.

    >>> g = debug_nans(fm.grad(lambda x: fm.sqrt(x) * 0.0))
    >>> g(4.0)
    0.0
    >>> g(0.0)
    Traceback (most recent call last):
        ...
    FloatingPointError: debug_nans: '/' produced nan from inputs (0.0, 0.0): \
0.0 / (2.0 * sqrt(args[0])) = nan; it reaches the output at <root>
    """

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        log = GUARDS.get()
        if log is not None:  # inside jit's trace: the check runs at every call, so the
            log.append(UNCOMPILED)  # jitted function runs uncompiled, not once at its trace
        level = next_level()
        inputs: dict = {}  # (an ordered set)
        # with an enclosing transform's node among the arguments the output stays a
        # graph; the other arguments' variables then stand for their values as
        # constants, so the enclosing transform does not take them for a
        # transform's inputs (``vmap`` with ``in_axes=None``, a closed-over float)
        outer = any(isinstance(x, Expr) for x in tr.leaves((args, kwargs)))

        def watched(arg: Any, where: str) -> Any:
            leaves, paths, treedef = tr.flatten_with_paths(arg)
            new = []
            for leaf, path in zip(leaves, paths):
                name = where + tr.keystr(path).replace("<root>", "")
                if isinstance(leaf, Expr):
                    leaf = variable(leaf.value, level, source=leaf, name=name)
                    inputs[leaf] = None
                elif isinstance(leaf, float) or (isinstance(leaf, numbers.Real) and not
                                                 isinstance(leaf, (bool, numbers.Integral))):
                    # (ints stay ints: code may count, index or format with them)
                    leaf = _variable(float(leaf), level, name, outer)
                    inputs[leaf] = None
                elif _numeric_array(leaf):  # an array of examples (vmap) or inputs (jit)
                    leaf = _array_of_variables(leaf, level, name, inputs, outer)
                new.append(leaf)
            return tr.unflatten(treedef, new)

        new_args = [watched(arg, f"args[{i}]") for i, arg in enumerate(args)]
        new_kwargs = {k: watched(v, f"kwargs[{k!r}]") for k, v in kwargs.items()}
        inner = "the function value of an inner transform"
        token = CHECK_VALUES.set(functools.partial(_check, inputs=inputs, where=inner))
        try:
            out = f(*new_args, **new_kwargs)
        finally:
            CHECK_VALUES.reset(token)
        _check(out, inputs)
        leaves, paths, treedef = tr.flatten_with_paths(out)
        if not outer and not any(dependent(x, differentiating=True) for x in leaves
                                 if isinstance(x, Expr)):
            return lower(out, False)  # (closing over a differentiated value keeps the graph)
        if not _reverse_levels():
            return out
        # an enclosing transform differentiates the output in reverse mode, after this
        # call: its sweep through f's graph goes through nodes that check it
        watched_out = _watch_output(leaves, paths, inputs)
        return out if watched_out is None else tr.unflatten(treedef, watched_out)

    return wrapped


# transforms whose derivative is a forward sweep: the tangents they push through
# ``f``'s graph are theirs to compute, so the output is not watched for them
_FORWARD = frozenset({"fm.jvp", "fm.jacfwd", "fm.linearize"})


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


def _reverse_levels() -> set:
    """The levels of the running transforms that differentiate in reverse mode
    (``grad``, ``vjp``, ``jacrev``, ``hessian``...)."""
    return {lv for lv, who, traces in RUNNING.get() if not traces and who not in _FORWARD}


def _reversed_by_running(nodes: Any) -> bool:
    """Whether a running transform that differentiates in reverse mode depends
    on one of ``nodes``: its sweep will pass through the nodes that stand on
    them."""
    levels = _reverse_levels()
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
            not _reversed_by_running(kids):
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
    transform differentiates it in reverse mode. The node's children are the
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

    def __init__(self, region: _Region, out: Expr, path: str) -> None:
        self.region, self.out, self.path = region, out, path

    def __call__(self, ct: Any, out: Any, *leaves: Any) -> list:
        told = sweep.REACHED.get()
        if told is None:
            return self._pull(ct, out, None, None)
        token = sweep.REACHED.set(None)  # (not for the rules this rule's sweep calls)
        try:
            return self._pull(ct, out, {self.out: told[0]}, told[1])
        finally:
            sweep.REACHED.reset(token)

    def _pull(self, ct: Any, out: Any, reached: dict | None, lanes: Any) -> list:
        region = self.region
        nodes, relevant = region.plan()
        if not isinstance(out, Expr):  # a sweep on values: the same numbers as without
            cts, _ = sweep.reverse([self.out], [ct], region.boundary, (nodes, relevant, False),
                                   reached)
            if any(_has_nan(c.value if isinstance(c, Expr) else c) for c in cts):
                # rebuilt as a graph, to find the op that made it (or none: a NaN input)
                seed = const(ct) if hasattr(ct, "__array__") else ct
                graph_lanes = GraphLanes()
                if reached is not None:
                    reached = {self.out: graph_lanes._fixed(None, reached[self.out])}
                with quiet():  # (the sweep on values has warned of it)
                    rebuilt = sweep._reverse_graph([self.out], [seed], region.boundary, nodes,
                                                   relevant, reached, graph_lanes)
                self._check(rebuilt, seed)
            return cts
        cts = sweep._reverse_graph([self.out], [ct], region.boundary, nodes, relevant, reached,
                                   lanes)
        stop = self._check(cts, ct)
        # the enclosing transform differentiates this derivative in turn: its
        # reverse sweep (through the nodes just built and the region) is watched too
        new = _new_nodes(cts, stop)
        if not new:
            return cts
        nodes2 = region.nodes | new
        fringe, boundary = dict(region.fringe), dict.fromkeys(region.boundary)
        _fringe(new, nodes2, fringe, boundary)
        watched = _watch(cts, [self.path] * len(cts),
                         _Region(nodes2, fringe, boundary, region.order + 1))
        return cts if watched is None else watched

    def _check(self, cts: list, ct: Any) -> set:
        """Raise on the first node of the derivative ``cts`` that makes a NaN
        from non-NaN inputs (on lanes that reach ``cts``); returns the nodes
        the walk stops at (the region, what it stands on, and ``ct``)."""
        stop = set(self.region.nodes)
        stop.update(self.region.fringe)
        if isinstance(ct, Expr):
            stop.add(ct)
        k = self.region.order
        which = {1: "the derivative", 2: "the second derivative"}.get(k, f"derivative {k}")
        _check(cts, stop, f"{which} of the output", at=self.path)
        return stop


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


def _watched(n: Expr) -> bool:
    """Whether ``n`` is a node that a ``debug_nans`` wrapper put over an output
    (its value is that output's, checked by that wrapper)."""
    return n.__class__ is Prim and n.param.__class__ is _Watch


def _numeric_array(x: Any) -> bool:  # (float arrays: ints stay as they are, as int leaves)
    return type(x).__name__ == "ndarray" and getattr(x, "dtype", None) is not None \
        and x.dtype.kind == "f"


def _variable(value: float, level: int, name: str, outer: bool) -> Any:
    """The wrapper's variable for an argument's float; standing for a constant
    when the output is handed to an enclosing transform (``outer``)."""
    return variable(value, level, source=const(value) if outer else None, name=name)


def _array_of_variables(a: Any, level: int, name: str, inputs: dict, outer: bool) -> Any:
    """An object array shaped like ``a`` holding one named variable per entry
    (``vmap`` and ``jit`` take it as they take nested tuples)."""
    import numpy as np

    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        v = _variable(float(a[index]), level, name + "".join(f"[{i}]" for i in index), outer)
        inputs[v] = None
        out[index] = v
    return out


def _check(out: Any, inputs: Collection, where: str = "the output",
           at: str | None = None) -> None:
    """Raise on the first node (children first) that makes a NaN from non-NaN
    inputs, on an example (lane) whose value reaches the output: under
    ``vmap`` the branch a ``where`` does not take on a lane is not part of
    that example's computation, as in a Python loop. The walk stops at
    ``inputs``; ``at`` names the output in the error in place of the path in
    ``out``. A node a wrapper put over an output (``_watched``) was checked
    by that wrapper."""
    leaves, paths, _ = tr.flatten_with_paths(out)
    roots = [x for x in leaves if isinstance(x, Expr) and x not in inputs]
    lanes = _reached_lanes(roots, inputs)
    done: set = set(inputs)  # the wrapper's variables stand for the caller's values
    for root, path in zip(leaves, paths):
        if not isinstance(root, Expr) or root in done:
            continue
        stack = [(root, False)]
        while stack:
            n, expanded = stack.pop()
            if n in done:
                continue
            if expanded or not n.children:
                done.add(n)
                if n.children and _has_nan_on(n.value, lanes.get(n)) and \
                        not any(_has_nan(c.value) for c in n.children) and not _watched(n):
                    _raise(n, tr.keystr(path) if at is None else at, where)
                continue
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(n.children) if c not in done)


def _reached_lanes(roots: list, inputs: Collection) -> dict:
    """For each node under ``roots`` that only some lanes (examples, under
    ``vmap``) reach the roots from, those lanes (``False`` for none); a node
    absent from the result is reached on every lane. A ``where`` passes on
    the lanes of the branch taken only; ``vmap``'s moves of values between
    lanes move the lanes too."""
    post: list = []  # children first
    seen: set = set(inputs)
    stack = [(r, False) for r in roots]
    while stack:
        n, expanded = stack.pop()
        if expanded:
            post.append(n)
            continue
        if n in seen:
            continue
        seen.add(n)
        stack.append((n, True))
        stack.extend((c, False) for c in n.children if c not in seen)
    reach: dict = {}
    got: set = set(roots)
    for n in reversed(post):  # parents first
        if n not in got:
            continue
        r = reach.get(n)
        if r is False:
            continue
        kids = n.children
        sent = Lanes.through(n, r, kids, n.value)
        edges = [None] * len(kids)
        if n.__class__ is Choice:
            edges[1], edges[2] = where_masks(n.children[0].value)
        shape = getattr(n.value, "shape", ())
        for i, c in enumerate(kids):
            m = Lanes.both(sent[i], edges[i])
            if m is not None and m is not False:
                m = _to_shape(m, shape, getattr(c.value, "shape", ()))
            if c in got:
                old = reach.get(c)
                m = Lanes.either(old, m) if c in reach else None
            got.add(c)
            if m is None:
                reach.pop(c, None)
            else:
                reach[c] = m
    for n in post:
        if n not in got:  # below branches that no lane takes
            reach[n] = False
    return reach


def _to_shape(m: Any, shape: tuple, want: tuple) -> Any:
    """Lane mask ``m`` of a value shaped ``shape``, for an input shaped ``want``
    (broadcast into it: a lane of the input counts when any lane it fed does);
    None (every lane) when the shapes do not line up."""
    import numpy as np

    try:
        if np.broadcast_shapes(want, m.shape) == want:
            return m
        full = np.broadcast_to(m, np.broadcast_shapes(shape, m.shape))
    except ValueError:
        return None
    out = _reduce_mask(full, want)
    return None if out is None else _norm(out)


def _has_nan_on(value: Any, lanes: Any) -> bool:
    """Whether ``value`` has a NaN on ``lanes`` (None: anywhere)."""
    if lanes is None:
        return _has_nan(value)
    if lanes is False:
        return False
    import numpy as np

    v = np.asarray(value)
    try:
        if np.broadcast_shapes(v.shape, lanes.shape) != v.shape:
            return _has_nan(value)
    except ValueError:
        return _has_nan(value)
    return bool(np.any(np.isnan(v) & lanes))


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if hasattr(value, "__array__"):
        import numpy as np

        return bool(np.isnan(value).any())
    return False


def _raise(n: Expr, path: str, where: str) -> None:
    inputs = tuple(_short(c.value) for c in n.children)
    raise FloatingPointError(
        f"debug_nans: {_op_name(n)!r} produced nan from inputs "
        f"({', '.join(inputs)}{',' if len(inputs) == 1 else ''}): {_render(n, 3)} = nan; "
        f"it reaches {where} at {path}")


def _op_name(n: Expr) -> str:
    if n.__class__ is Prim and n.op == "custom":
        name = getattr(n.param, "name", None)  # a user's custom_vjp has one
        return f"custom_vjp {name}" if name else type(n.param).__name__.lower()
    return n.op


def _short(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if getattr(value, "size", 9) <= 8:  # a small batch (vmap): show every example
        return repr(value.tolist())
    return f"{type(value).__name__}"


def _render(n: Expr, depth: int) -> str:
    """A short formula for ``n``: named variables, values below ``depth``."""
    name = getattr(n, "name", None)
    if n.op == "var" and name:
        return str(name)
    if n.op == "var" and n.children:  # a transform's variable standing for an outer value
        return _render(n.children[0], depth)
    if _watched(n):
        return _render(n.param.out, depth)  # type: ignore[attr-defined]
    if not n.children or depth == 0:
        return _short(n.value)
    kids = [_render(c, depth - 1) for c in n.children]
    if n.op in _INFIX and len(kids) == 2:
        a, b = (k if " " not in k and not k.startswith("-") else f"({k})" for k in kids)
        return f"{a} {_INFIX[n.op]} {b}"
    if n.op == "neg":
        return f"-({kids[0]})"
    return f"{_op_name(n)}({', '.join(kids)})"

