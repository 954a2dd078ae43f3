"""The forward sweep over a graph: tangents (forward mode).

It walks the nodes between a transform's inputs and its outputs in the order
``sweep.order`` gives (children first), on floats or, when the graph reaches
an enclosing transform's variable, on nodes (see ``sweep``'s docstring). A
node gets a tangent only if a child with one reaches it along an edge that
carries a derivative (structural zeros, see ``presence``). ``sweep`` re-exports
``forward``.

>>> from fmicrograd.core.expr import variable, next_level
>>> x = variable(2.0, next_level())
>>> forward([x * x, 7.0], [x], [1.0])
([4.0, 0.0], False)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import numeric as num
from .accumulate import add_product, total
from .batch_axes import linear_tangent, reduce_to
from .dot_cotangents import batch_dot_tangent
from .expr import PLAIN, Expr, Prim, Var, const, node
from .expr import stored_value as _value
from .numeric import quiet, quiet_arrays
from .presence import live_children
from .reach import FILL, GATED, Choice, Lanes, choice, empty
from .reach_graph import GraphLanes, where_graph
from .sweep import _selects, _vjp, order

# What a rule's ``own_tangent`` hook returns where it does not apply (the
# sweep reads the rule's partials; see ``transforms/pushed.py``).
UNSET_TANGENT = object()

__all__ = ["forward"]

_NO_SLOPE = frozenset(("sign", "greater", "greater_equal"))  # (reverse mode: rules of 0.0)


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
    with quiet_arrays():  # (under vmap the values are arrays: numpy's warnings off)
        return _forward(outputs, inputs, tangents, plan)


def _forward(outputs: Sequence[Any], inputs: Sequence[Var], tangents: Sequence[Any],
             plan: tuple | None) -> tuple[list, bool]:
    nodes, _, on_graph = plan or order(outputs, inputs)
    tans: dict[Any, Any] = dict(zip(inputs, tangents))
    has, get = tans.__contains__, tans.get
    consts: dict = {}  # one constant leaf per float factor (an input's tangent)
    pres: dict = {}  # the nodes whose tangent exists on some lanes only (see ``reach``)
    lanes: Any = None
    for n in nodes:
        kids = n.children
        if not any(map(has, kids)) or n.op in _NO_SLOPE:
            continue  # depends on an input, but not on one with a tangent here (or its
            #           slope is zero everywhere: no tangent, JAX's symbolic zero, so
            #           1 / sign(x) at 0 has tangent 0.0, not (-inf) * 0.0)
        partial = bool(pres) and any(c in pres for c in kids)
        if n.__class__ is Prim and n.op == "custom" and not partial and \
                hasattr(n.param, "push"):  # a rule that runs forward mode itself
            tans[n] = n.param.push([get(c) for c in kids], on_graph)
            continue
        if n.__class__ is Prim and _moves_batch(n):
            tans[n] = linear_tangent(n, [tans.get(c) for c in kids])
            if partial or n.op == "custom" and (_selects(n) or not all(map(has, kids))):
                # examples without a tangent (a Jacobian's column, a stacked input
                # without one) have none after the move either
                lanes = lanes or (GraphLanes() if on_graph else Lanes)
                m = lanes.moved(n, [_presence(c, tans, pres, lanes) for c in kids])
                if m is not None:
                    pres[n] = m
            continue
        if n.op == "batch_dot":  # (a sum over the batch: every lane of its result has one)
            tans[n] = batch_dot_tangent(n, tans.get(kids[0]), tans.get(kids[1]), on_graph)
            continue
        if partial or n.op in GATED:
            lanes = lanes or (GraphLanes() if on_graph else Lanes)
            _gated_forward(n, kids, tans, pres, lanes, on_graph)
            continue
        if n.op == "custom":  # a rule's node (custom_vjp, checkpoint, custom_jvp)
            own = getattr(getattr(n.param, "fn", None), "own_tangent", None)
            t = own(n.param, kids, [get(c) for c in kids], on_graph) if own else None
            if own is None or t is UNSET_TANGENT:  # (checkpoint, jit: the function's own
                t = _rule_tangent(n, kids, tans, on_graph, consts)  # forward mode)
            if t is not None:
                tans[n] = t
            continue
        if len(kids) == 1 and n.__class__ in PLAIN and (t := tans.get(kids[0])) is not None:
            # one input: the rule at the tangent itself (``t / x`` for log, as torch's forward
            # mode), not the partial times it (``t * (1 / x)``: 0 * inf = nan at a zero
            # tangent where the partial overflows, a subnormal x)
            tans[n] = _vjp(n, t, kids, on_graph)[0]
            continue
        if on_graph:  # the tangent as one sum (or dot) node, see ``accumulate``
            parts: list = []
            if n.op == "dot" and n.__class__ in PLAIN and _value(n).__class__ is float:
                half = len(kids) // 2  # partials: the partners themselves
                for t, y in zip(map(get, kids), kids[half:] + kids[:half]):
                    if t is not None:
                        add_product(parts, y, t)
            else:
                for c, p in zip(kids, _partials(n, kids, True)):
                    t = tans.get(c)
                    if t is not None:
                        add_product(parts, p, t)
            tans[n] = total(parts, consts)
            continue
        acc = None
        if n.op == "dot" and n.__class__ in PLAIN:  # partials: the partners' values
            half = len(kids) // 2
            for t, y in zip(map(get, kids), kids[half:] + kids[:half]):
                if t is not None:
                    acc = _value(y) * t if acc is None else acc + _value(y) * t
            tans[n] = acc
            continue
        for c, p in zip(kids, _partials(n, kids, False)):
            t = tans.get(c)
            if t is not None:
                acc = p * t if acc is None else acc + p * t
        if acc is not None:
            tans[n] = acc
    if pres:
        return [lanes.finish(tans[o], pres[o]) if isinstance(o, Expr) and o in pres
                else tans.get(o, 0.0) if isinstance(o, Expr) else 0.0 for o in outputs], on_graph
    return [tans.get(o, 0.0) if isinstance(o, Expr) else 0.0 for o in outputs], on_graph


def _rule_tangent(n: Expr, kids: tuple, tans: dict, on_graph: bool, consts: dict) -> Any:
    """The tangent of a rule's node from its partials. Of a vmap result its
    children may have an example axis it does not have: each child's term is
    summed over it, as the reverse sweep sums its cotangents (``_fit``); and
    where the output has examples of its own, see ``_spread_tangent``."""
    like = _value(n)
    if _spreads(n, like, kids, tans):
        return _spread_tangent(n, kids, tans, like, consts if on_graph else None)
    partials = _partials(n, kids, on_graph)
    live = live_children(n, kids, partials, tans)
    terms = [reduce_to(p * t, like) for i, (c, p) in enumerate(zip(kids, partials))
             if (t := tans.get(c)) is not None and (live is None or live[i])]
    if not terms:
        return None  # no input with a tangent reaches this output: no tangent (not a 0.0)
    if on_graph:
        return total(terms, consts)
    acc = None
    for term in terms:
        acc = term if acc is None else acc + term
    return acc


def _spreads(n: Any, like: Any, kids: tuple, tans: dict) -> bool:
    """Whether a rule's output has leading axes beyond the batch axes of the
    ``vmap``s around its call (a vmap result's examples) and a child has a
    tangent: its unit-cotangent partials would add those examples up."""
    ndim = getattr(like, "ndim", 0)
    return ndim > getattr(n.param, "depth", ndim) and any(
        tans.get(c) is not None for c in kids)


def _spread_tangent(n: Expr, kids: tuple, tans: dict, like: Any,
                    consts: dict | None = None) -> Any:
    """The tangent of a rule's node whose output holds examples (``_spreads``),
    one entry of them at a time: the rule's VJP at a cotangent of 1 there and 0
    elsewhere gives that entry's partial derivatives (on every lane of the
    enclosing vmaps, the last axes), summed down to the entry's shape. With
    ``consts`` (a sweep building the tangent as a graph) the entries are put
    in place by ``where`` nodes."""
    import numpy as np

    # every entry of the examples (not only those a child lacks: a rule may mix them,
    # and a unit cotangent over all of them gives column sums of its Jacobian)
    lanes = getattr(getattr(n, "param", None), "depth", 0)
    shape = np.shape(like)
    graph = consts is not None
    live: Any = None  # (the rule is asked after it has run: it reports errors first)
    rows = []
    for index in np.ndindex(*shape[:len(shape) - lanes]):
        ct = np.zeros(shape)
        ct[index] = 1.0
        partials = _vjp(n, const(ct) if graph else ct, kids, graph)
        if live is None:
            live = live_children(n, kids, partials, tans)
        rows.append((index, [reduce_to(p * t, like[index])
                             for i, (c, p) in enumerate(zip(kids, partials))
                             if (t := tans.get(c)) is not None and (live is None or live[i])]))
    if not any(parts for _, parts in rows):
        return None  # no input with a tangent reaches this output
    if not graph and not any(isinstance(x, Expr) for _, parts in rows for x in parts):
        out: Any = np.zeros(shape)
        for index, parts in rows:
            for x in parts:
                out[index] += x
        return out
    # on a graph, or tangents that are nodes (a transform differentiates them)
    consts = {} if consts is None else consts
    out = const(np.zeros(shape))
    for index, parts in rows:
        mask = np.zeros(shape)
        mask[index] = 1.0
        here = total(parts, consts)
        out = choice(const(mask), here if isinstance(here, Expr) else const(here), out)
    return out


def _partials(n: Expr, kids: tuple, on_graph: bool) -> Sequence[Any]:
    """``n``'s partial derivatives for forward mode: its VJP at a unit
    cotangent. A rule that asks (a user's ``custom_vjp``) checks that it is
    linear in the cotangent, which that reading needs."""
    partials = _vjp(n, 1.0, kids, on_graph)
    check = getattr(n.param, "check_linear", None) if n.__class__ is Prim else None
    if check is not None:
        check(partials, lambda scale: _vjp(n, scale, kids, on_graph))
    return partials


def _presence(c: Expr, tans: dict, pres: dict, lanes: Any) -> Any:
    """The lanes on which ``c`` has a tangent: None (all), ``lanes.none``, a mask."""
    if c not in tans:
        return lanes.none
    return pres.get(c)


def _gated_forward(n: Expr, kids: tuple, tans: dict, pres: dict, lanes: Any,
                   on_graph: bool) -> None:
    """``n``'s tangent when an edge is dead, ``n`` is a ``where`` (the tangent
    of the branch taken, lane by lane: a select) or a child has a tangent on
    some lanes only (a term is nothing, ``-0.0``, on the lanes its child's
    tangent does not exist, even where the partial is infinite)."""
    edges = lanes.edge(n, kids)
    if n.op == "where":
        c, a, b = kids
        pa = lanes.both(edges[1], _presence(a, tans, pres, lanes))
        pb = lanes.both(edges[2], _presence(b, tans, pres, lanes))
        m = lanes.either(pa, pb)
        if empty(m):
            return  # the branches taken have no tangent
        ta = None if empty(pa) else tans.get(a)
        tb = None if empty(pb) else tans.get(b)
        # a Choice's branch without a tangent has none on its lanes; a plain where's
        # has a zero one, as in torch (``where(c, ta, 0)``)
        choice = n.__class__ is Choice
        absent = FILL if choice else 0.0
        if not choice:  # (a branch's lanes without a tangent: that zero too, not -0.0)
            if ta is not None and pa is not None:
                ta = lanes.finish(ta, pa)
            if tb is not None and pb is not None:
                tb = lanes.finish(tb, pb)
        tans[n] = _pick(c, absent if ta is None else ta, absent if tb is None else tb, on_graph,
                        choice)
        if m is not None:
            pres[n] = m
        return
    if n.op == "custom" and _own_on_lanes(n, kids, edges, tans, pres, lanes, on_graph):
        return
    partials: Any = None
    live: Any = None  # (a rule's: the children its own graph reaches, see ``live_children``)
    terms: list = []
    m = lanes.none
    for i, c in enumerate(kids):
        e = edges[i]
        t = tans.get(c)
        if t is None or empty(e):
            continue
        pc = pres.get(c)
        if pc is not None and empty(pc):  # a tangent on no lane (a where no example takes)
            continue
        if partials is None:
            partials = _partials(n, kids, on_graph)
            if n.op == "custom":
                live = live_children(n, kids, partials, tans)
        if live is not None and not live[i]:
            continue  # a structural zero: no term at all
        if pc is None:
            term = partials[i] * t
        else:
            with quiet():  # an infinite partial times an absent (-0.0) tangent: dropped
                term = partials[i] * t
            term, pc = lanes.mask(term, pc)
            if empty(pc):
                continue
        if n.op == "custom":  # a rule's input with examples its output lacks (a vmap
            fitted = reduce_to(term, _value(n))  # result): summed, as ``_rule_tangent``
            if fitted is not term:
                pc = None if pc is None else lanes.fit(pc, term, fitted)
                term = fitted
        terms.append(term)
        m = lanes.either(m, pc)
    if not terms:
        return
    acc = terms[0]
    for term in terms[1:]:
        acc = acc + term
    tans[n] = acc
    if m is not None:
        pres[n] = m


def _own_on_lanes(n: Expr, kids: tuple, edges: list, tans: dict, pres: dict, lanes: Any,
                  on_graph: bool) -> bool:
    """A rule's node (``checkpoint``, a jitted call) whose children have a
    tangent on some lanes only: its function's own forward mode
    (``own_tangent``), run on every lane in the directions of the children
    that have a tangent there, kept on those lanes (the others get nothing,
    as in ``_gated_forward``: a 0.0 stand-in for a missing tangent may meet an
    infinite slope). Children with a tangent on different lanes: one run per
    set of children that lanes share (on values; on a graph, the rule's
    partials decide, as before). False where the rule has none, or it does
    not apply (``UNSET_TANGENT``): the caller reads partials."""
    rule: Any = getattr(n, "param", None)
    own = getattr(getattr(rule, "fn", None), "own_tangent", None)
    if own is None:
        return False
    given: list = []
    for c, e in zip(kids, edges):
        t, pc = tans.get(c), pres.get(c)
        given.append(None if t is None or empty(e) or pc is not None and empty(pc) else t)
    reach = rule.reaches(kids)
    live = [i for i, g in enumerate(given) if g is not None and (reach is None or reach[i])]
    masks = [pres.get(kids[i]) for i in live]
    if all(_same_lanes(m, masks[0]) for m in masks[1:]):
        with quiet():  # (the lanes without a tangent may compute NaN: dropped below)
            t = own(rule, kids, given, on_graph)
        if t is UNSET_TANGENT:
            return False
        return _keep(n, t, masks[0] if masks else lanes.none, tans, pres, lanes)
    known = masks if lanes is Lanes else [lanes.known(m) for m in masks]
    if any(m is NotImplemented for m in known):
        return False  # (lanes told by a condition a graph computes: partials decide)
    import numpy as np

    shape = np.broadcast_shapes(*(np.shape(m) for m in known if m is not None))
    rows = np.stack([np.ones(shape, bool) if m is None else np.broadcast_to(m, shape)
                     for m in known])
    out: Any = None
    for pattern in np.unique(rows.reshape(len(live), -1).T, axis=0):
        if not pattern.any():
            continue
        on = np.all(rows == pattern.reshape((-1,) + (1,) * len(shape)), axis=0)
        chosen = {i for i, k in zip(live, pattern) if k}
        with quiet():
            t = own(rule, kids, [g if i in chosen else None for i, g in enumerate(given)],
                    on_graph)
        if t is UNSET_TANGENT:
            return False
        if t is None:
            continue
        rest = FILL if out is None else out
        if isinstance(t, Expr) or isinstance(rest, Expr):
            out = choice(const(on.astype(float)), _as_node(t), _as_node(rest))
        else:
            out = np.where(on, t, rest)
    union = masks[0]
    for m in masks[1:]:
        union = lanes.either(union, m)
    return _keep(n, out, union, tans, pres, lanes)


def _same_lanes(a: Any, b: Any) -> bool:
    """Whether two presence masks are the same lanes (None: every lane)."""
    if a is None or b is None or a is False or b is False:
        return a is b
    import numpy as np

    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return bool(a == b)


def _keep(n: Expr, t: Any, m: Any, tans: dict, pres: dict, lanes: Any) -> bool:
    """``n``'s tangent ``t`` kept on the lanes ``m`` (None: every lane)."""
    if t is None or m is not None and empty(m):
        return True  # no child with a tangent reaches this output: no tangent
    if m is not None:
        t, m = lanes.mask(t, m, n)
        if empty(m):
            return True
        pres[n] = m
    tans[n] = t
    return True


def _pick(c: Expr, a: Any, b: Any, on_graph: bool, choice: bool) -> Any:
    """``a`` on the lanes where ``c`` holds, else ``b``: as a node on a graph
    (a ``Choice`` for a ``Choice``'s tangent, a plain ``where`` for a plain
    one's, so that higher orders keep each rule)."""
    if on_graph or isinstance(a, Expr) or isinstance(b, Expr):
        cond = c if on_graph else const(_value(c))
        if choice:
            return where_graph(cond, a, b)
        a, b = _as_node(a), _as_node(b)
        return node("where", num.where(_value(cond), _value(a), _value(b)), (cond, a, b))
    cv = _value(c)
    if cv.__class__ is float:
        return a if cv else b
    return num.where(cv, a, b)


def _as_node(x: Any) -> Expr:
    return x if isinstance(x, Expr) else const(float(x) if isinstance(x, (int, float)) else x)


def _moves_batch(n: Prim) -> bool:
    """Whether ``n`` moves values between examples (``vmap``'s stack, take,
    reshape, batch sum): its VJP at 1 is no partial derivative, so forward mode
    applies the (linear) op itself to the tangents instead."""
    return n.op == "batch_sum" or getattr(n.param, "linear", False)
