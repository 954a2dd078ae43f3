"""Reaches as formulas over condition nodes, for the sweeps that build a graph
(inside ``jit``, at higher order): which lanes (examples) a derivative reaches
is only known when the graph runs, so a reach is a ``Formula`` over the
conditions' nodes, and masking builds ``where`` nodes that the compiled code
evaluates. ``reach`` has the idea and the representation on values (``Lanes``).
"""

from __future__ import annotations

from typing import Any

from . import reach  # its numpy, imported on first use (``reach.np``)
from .batch_axes import reduce_to
from .expr import Expr, Prim, const, node, prim
from .expr import stored_value as _value
from .reach import (
    FILL,
    Choice,
    Lanes,
    _lines_up,
    _norm,
    choice,
    dead_edges,
    empty,
    where_masks,
)

__all__ = ["GraphLanes", "Formula", "where_graph"]

# --- reaches as formulas over condition nodes (sweeps that build graphs) -------------------

Formula = Any  # None: every lane; frozenset(): none; else a frozenset of terms (OR), each a
#                frozenset of literals (AND), a literal ``(cond_node, polarity)``

_MAX_TERMS = 8


def _simplify(terms: set) -> Formula:
    """Absorption (``t`` or ``t and u`` is ``t``) and resolution (``t and c`` or
    ``t and not c`` is ``t``), so a node reached through both branches of a
    ``where`` is reached on every lane."""
    changed = True
    while changed:
        changed = False
        for t in list(terms):
            if any(u < t for u in terms):
                terms.discard(t)
        for t in list(terms):
            if t not in terms:
                continue
            for lit in t:
                other = (t - {lit}) | {(lit[0], not lit[1])}
                if other in terms:
                    terms.discard(t)
                    terms.discard(other)
                    terms.add(t - {lit})
                    changed = True
                    break
            if changed:
                break
    if frozenset() in terms:
        return None
    return frozenset(terms)


class GraphLanes:
    """Reaches as formulas, masks as nodes (one instance per sweep: it keeps
    the mask nodes it built, so each is built once)."""

    full = None
    none: Formula = frozenset()

    def __init__(self) -> None:
        self._masks: dict = {}
        self._rank: dict = {}

    def edge(self, n: Expr, kids: tuple) -> list:
        dead = dead_edges(n)
        edges: list = [self.none if d else None for d in dead]
        if n.__class__ is Choice:
            c = kids[0]
            if c.op == "const":  # a fixed choice: its lanes are known now
                a, b = where_masks(_value(c))
                edges[1], edges[2] = self._fixed(c, a), self._fixed(c, b)
            else:
                self._rank.setdefault(c, len(self._rank))
                edges[1] = frozenset({frozenset({(c, True)})})
                edges[2] = frozenset({frozenset({(c, False)})})
        return edges

    def _fixed(self, c: Any, m: Any) -> Formula:
        """Lanes known now (a mask of values) as a formula: one constant literal."""
        if m is None:
            return None
        if m is False:
            return self.none
        lit = const(m.astype(float))
        self._rank.setdefault(lit, len(self._rank))
        return frozenset({frozenset({(lit, True)})})

    def known(self, f: Formula) -> Any:
        """The lanes of ``f`` as a value mask (``Lanes``'s form) when every
        condition in it is a constant (a choice fixed now, or ``vmap``'s take
        of one example), else ``NotImplemented``."""
        if f is None:
            return None
        if not f:
            return False
        acc: Any = None
        for term in f:
            t: Any = None
            for c, pol in term:
                if c.op != "const":
                    return NotImplemented
                v = reach.np.not_equal(_value(c), 0)
                v = v if pol else reach.np.logical_not(v)
                t = v if t is None else reach.np.logical_and(t, v)
            acc = t if acc is None else reach.np.logical_or(acc, t)
        return _norm(reach.np.asarray(acc))

    def both(self, r: Formula, e: Formula) -> Formula:
        if r is None:
            return e
        if e is None:
            return r
        kr, ke = self.known(r), self.known(e)
        if kr is not NotImplemented and ke is not NotImplemented:
            return self._fixed(None, Lanes.both(kr, ke))
        terms = set()
        for t in r:
            for u in e:
                v = t | u
                if not any((c, not p) in v for c, p in v):
                    terms.add(v)
        return self._bounded(_simplify(terms))

    def either(self, r: Formula, e: Formula) -> Formula:
        if r is None or e is None:
            return None
        kr, ke = self.known(r), self.known(e)
        if kr is not NotImplemented and ke is not NotImplemented:
            return self._fixed(None, Lanes.either(kr, ke))
        return self._bounded(_simplify(set(r) | set(e)))

    def _bounded(self, f: Formula) -> Formula:
        """A formula too large to combine cheaply, as one literal: its mask node."""
        if f is None or len(f) <= _MAX_TERMS:
            return f
        return self._literal(self._mask01(f))

    def _literal(self, m: Expr) -> Formula:
        self._rank.setdefault(m, len(self._rank))
        return frozenset({frozenset({(m, True)})})

    def _mask01(self, f: Formula) -> Expr:
        """A node that is 1.0 on the lanes of ``f`` and 0.0 elsewhere."""
        hit = self._masks.get(f)
        if hit is not None:
            return hit
        key = self._rank.__getitem__
        acc: Any = None
        for term in sorted(f, key=lambda t: sorted(key(c) for c, _ in t)):
            t: Any = 1.0
            for c, pol in sorted(term, key=lambda lit: key(lit[0]), reverse=True):
                t = _where(c, t, 0.0) if pol else _where(c, 0.0, t)
            acc = t if acc is None else _where(acc, 1.0, t)
        out = _node(acc)
        self._masks[f] = out
        return out

    def through(self, n: Expr, r: Formula, kids: tuple, g: Any) -> list:
        if (r is not None and not r) or not (n.__class__ is Prim and
                                             getattr(n.param, "linear", False)):
            return [r] * len(kids)
        k = self.known(r)
        if k is not NotImplemented:  # moved now, on values
            return [self._fixed(None, m) for m in Lanes.through(n, k, kids, g)]
        shape = reach.np.shape(_value(g) if isinstance(g, Expr) else g)
        mask = self._mask01(r)
        if reach.np.shape(_value(mask)) != shape:
            zeros = reach.np.zeros(shape)
            mask = node("+", _value(mask) + zeros, (mask, const(zeros)))
        out = []
        for m in n.param(mask, n, *kids):
            m = _node(m)
            out.append(self._literal(m) if m.op != "const" else
                       self._fixed(m, _norm(reach.np.asarray(_value(m)) != 0)))
        return out

    def moved(self, n: Expr, masks: list) -> Formula:
        known = [self.known(m) for m in masks]
        if not any(k is NotImplemented for k in known):  # (``in`` would compare arrays)
            return self._fixed(None, Lanes.moved(n, known))
        from .batch_axes import linear_tangent

        floats = [None if empty(m) else 1.0 if m is None else self._mask01(m) for m in masks]
        out = _node(linear_tangent(n, floats))
        if out.op == "const":
            return self._fixed(out, _norm(reach.np.asarray(_value(out)) != 0))
        return self._literal(out)

    def mask(self, cg: Any, f: Formula, n: Expr | None = None) -> tuple:
        """``cg`` as nothing (``-0.0``) outside the lanes of ``f``, as a node
        (as a value, for a value and lanes known now)."""
        k = self.known(f)
        if k is not NotImplemented:
            if k is None:
                return cg, None
            if k is False:
                return None, self.none
            cg, m = Lanes.mask(cg, k, n)
            return cg, self._fixed(None, m)
        one = _on_one_condition(f, cg, FILL)
        if one is not None:
            return one, f
        shape = reach.np.shape(_value(cg) if isinstance(cg, Expr) else cg)
        m = self._mask01(f)
        mshape = reach.np.shape(_value(m))
        if not _lines_up(shape, mshape):
            reduced = self._reduced(m, shape)
            if reduced is None:
                return cg, None  # cannot line the lanes up: every lane (as before)
            m, f = reduced
        return _where(m, cg, FILL), f

    def _reduced(self, m: Expr, shape: tuple) -> tuple | None:
        """Mask node ``m`` reduced (any) over its leading axes to ``shape``."""
        mshape = reach.np.shape(_value(m))
        extra = len(mshape) - len(shape)
        if extra <= 0 or not _lines_up(shape, mshape[extra:]):
            return None
        axes = tuple(range(extra))
        total = prim("batch_sum", _value(m).sum(axis=axes), (m,), axes)
        hit = _greater(total, 0.0)
        return hit, self._literal(hit)

    def fit(self, f: Formula, before: Any, after: Any) -> Formula:
        b = reach.np.shape(_value(before) if isinstance(before, Expr) else before)
        a = reach.np.shape(_value(after) if isinstance(after, Expr) else after)
        if a == b or f is None or not f:
            return f
        k = self.known(f)
        if k is not NotImplemented:
            return self._fixed(None, Lanes.fit(k, before, after))
        # summed over lanes (over every lane when ``after`` is a number): reached where
        # one lane of f is, which only the compiled values tell (a call whose examples
        # all take the other branch reaches none: its -0.0 must not meet an infinite
        # partial, as it does not in the loop)
        m = self._mask01(f)
        if reach.np.shape(_value(m)) != b:
            zeros = reach.np.zeros(b)
            m = node("+", _value(m) + zeros, (m, const(zeros)))
        total = reduce_to(m, _value(after) if isinstance(after, Expr) else after)
        if not isinstance(total, Expr):
            return f
        return self._literal(_greater(total, 0.0))

    def finish(self, ct: Any, f: Formula) -> Any:
        """An input's cotangent with the lanes nothing reached set to ``0.0``."""
        if f is None:
            return ct
        if not f:
            return 0.0
        k = self.known(f)
        if k is not NotImplemented:
            return Lanes.finish(ct, k)
        one = _on_one_condition(f, ct, 0.0)
        if one is not None:
            return one
        shape = reach.np.shape(_value(ct) if isinstance(ct, Expr) else ct)
        m = self._mask01(f)
        if _lines_up(shape, reach.np.shape(_value(m))):
            return _where(m, ct, 0.0)
        return ct


def _node(x: Any) -> Expr:
    """``x`` as a node: a constant for a number or an array (never read as
    the user's array inside ``vmap``: these are the sweep's own values)."""
    if isinstance(x, Expr):
        return x
    return const(float(x) if isinstance(x, (int, float)) else x)


def _on_one_condition(f: Formula, x: Any, fill: float) -> Expr | None:
    """``x`` on the lanes of ``f`` and ``fill`` elsewhere, as a ``where`` on
    the condition itself when ``f`` is one condition lined up with ``x`` (no
    0/1 mask built); None otherwise."""
    if len(f) != 1:
        return None
    (term,) = f
    if len(term) != 1:
        return None
    ((c, pol),) = term
    if not _lines_up(reach.np.shape(_value(x) if isinstance(x, Expr) else x),
                     reach.np.shape(_value(c))):
        return None
    return _where(c, x, fill) if pol else _where(c, fill, x)


def _where(c: Any, a: Any, b: Any) -> Expr:
    """A mask applied: a ``Choice`` node, so that the sweeps of higher orders
    keep the lanes apart too."""
    return choice(_node(c), _node(a), _node(b))


def _greater(a: Expr, b: float) -> Expr:
    v = _value(a)
    out = float(v > b) if v.__class__ is float or reach.np.ndim(v) == 0 else (v > b).astype(float)
    return node("greater", out, (a, const(b)))


where_graph = _where
