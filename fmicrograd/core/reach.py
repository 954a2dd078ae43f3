"""Which examples of a node a sweep reaches: ``where`` under ``vmap`` as the loop.

In a Python loop over a batch, ``fm.where(x > 0.0, fm.sqrt(x), 0.0)`` picks
its branch per example with a plain bool: the branch not taken is not part of
that example's graph, so no derivative ever flows through it, and its
infinite slope (``sqrt'(0)``) cannot turn into ``0 * inf = nan``. Under
``vmap`` a comparison whose examples disagree makes ``where`` one ``Choice``
node over the whole batch, whose cotangent is ``0`` on the lanes (examples)
of the branch not taken; multiplied by that branch's infinite slope, that
zero would be NaN. So the sweeps track, per node, the lanes that a
derivative actually reaches, and a lane that is not reached contributes
nothing at all (not a zero: nothing), exactly as in the loop:

- a ``Choice`` reaches its first branch on the lanes where its condition
  holds and its second branch on the others;
- a node's reach is the union of what its uses send it; what a node sends on
  is its own reach, and its contributions are replaced by nothing (``-0.0``,
  the exact zero of IEEE addition) outside that reach, after its rule ran
  (the rule's NaN on an unreached lane is dropped, never added);
- ``vmap``'s moves between lanes move the reach too (a Jacobian row of
  ``vmap(f)`` reaches its own example only: examples never mix);
- an input lane that nothing reaches gets ``0.0``, as an input the loop's
  graph never reaches.

Edges that carry no derivative by construction are dead on every lane, for
every node: ``where``'s condition, a comparison's inputs (``greater``: in the
loop, a comparison is a plain bool), and a rule's masks (``factor``,
``select``'s conditions). A node reached only through dead edges is never
swept. (``stop_gradient`` still hands its input a zero cotangent, so that
``0 * inf`` there is NaN, in a loop and under ``vmap`` alike.)

A ``where`` whose condition is a node the user built (``fm.greater(x, 0.0)``)
is a plain ``where`` node, with torch's and JAX's rule: the branch not taken
gets a zero cotangent, and ``0 * inf`` is NaN there, in a loop as under
``vmap`` (the "double where" guards the input: docs/sharp-bits.md). An
ordinary ``0.0 * fm.sqrt(x)`` at ``x = 0`` is NaN everywhere too.

The forward sweep does the same with tangents: ``where``'s tangent is the
selected branch's tangent (a select, as torch's and JAX's forward mode); a
``Choice``'s branch without a tangent has none on its lanes, and dead edges
carry none.

Two representations, one per sweep mode: on values (floats, numpy arrays) a
reach is ``None`` (every lane), ``False`` (none) or a boolean array; when the
sweep builds a graph (inside ``jit``, at higher order) the lanes are only
known when the graph runs, so a reach is a formula over the conditions'
nodes (``reach_graph.Formula``), and masking builds ``where`` nodes that the compiled
code evaluates at run time.

>>> import fmicrograd as fm, numpy as np
>>> f = lambda x: fm.where(x > 0.0, fm.sqrt(x), 0.0)
>>> fm.vmap(fm.grad(f))((0.0, 4.0)), [fm.grad(f)(x) for x in (0.0, 4.0)]
((0.0, 0.25), [0.0, 0.25])
>>> fm.grad(lambda x: 0.0 * fm.sqrt(x))(0.0)
nan
"""

from __future__ import annotations

from typing import Any

from . import numeric as num
from .expr import Expr, Prim, checked_value, const
from .expr import stored_value as _value


class _Numpy:
    """numpy, imported on first use: importing fmicrograd and plain ``grad``
    on floats need no numpy (only arrays, under ``vmap``, bring it in)."""

    def __getattr__(self, name: str) -> Any:
        import numpy

        globals()["np"] = numpy
        return getattr(numpy, name)


np: Any = _Numpy()


def _ndarray() -> Any:
    return np.ndarray


def _np_where(m: Any, a: Any, b: Any) -> Any:
    return np.where(m, a, b)

__all__ = ["Choice", "choice", "GATED", "FILL", "empty", "dead_edges", "where_masks", "Lanes"]


class Choice(Expr):
    """A ``where`` node that chooses per example as a Python loop would: built
    by ``fm.where`` from a comparison whose ``vmap`` examples disagree (or an
    array of per-example truth values). Its op is ``"where"``: it computes,
    prints and compiles as one; only the sweeps tell it apart, and give the
    branch not taken on an example no derivative at all there.

    >>> c = choice(fm.Const(np.array([1.0, 0.0])), fm.Var(2.0), fm.Const(3.0))
    >>> c.op, c.value.tolist(), isinstance(c, Expr)
    ('where', [2.0, 3.0], True)

    Its ``.value`` is checked as ``Prim``'s is (``vmap`` makes one under
    ``jit`` too).
    """

    __slots__ = ()

    value = checked_value


_set_value = Expr.__dict__["value"].__set__
_set_op = Expr.__dict__["op"].__set__
_set_children = Expr.__dict__["children"].__set__


def choice(cond: Expr, a: Expr, b: Expr) -> Choice:
    """The ``Choice`` of ``a`` where ``cond`` is nonzero, else ``b`` (nodes)."""
    n = object.__new__(Choice)
    _set_value(n, num.where(_value(cond), _value(a), _value(b)))
    _set_op(n, "where")
    _set_children(n, (cond, a, b))
    return n

# ops with an edge that carries no derivative (or, for ``where``, per lane)
GATED = frozenset({"where", "greater", "greater_equal", "factor", "select"})

FILL = -0.0  # what an unreached lane adds: x + -0.0 == x for every x, -0.0 included


def dead_edges(n: Expr) -> tuple:
    """For each child of ``n``, whether its edge carries no derivative at all.

    >>> from fmicrograd.core.expr import Var
    >>> x = Var(1.0)
    >>> dead_edges(fm.where(fm.greater(x, 0.0), x, 2.0)), dead_edges(x * 2.0)
    ((True, False, False), (False, False))
    """
    op, k = n.op, len(n.children)
    if op in ("greater", "greater_equal", "factor"):
        return (True,) * k
    if op == "where":
        return (True, False, False)
    if op == "select" and n.__class__ is Prim:
        return (True,) * (k - 2) + (False, False)
    return (False,) * k


def where_masks(cond: Any) -> tuple:
    """The lanes that take ``where``'s first and second branch, for a
    condition value (a float: one of them is ``None``, every lane, and the
    other ``False``, none).

    >>> where_masks(1.0), where_masks(0.0)
    ((None, False), (False, None))
    >>> [m.tolist() for m in where_masks(np.array([1.0, 0.0]))]
    [[True, False], [False, True]]
    """
    if cond.__class__ is float or getattr(cond, "ndim", 0) == 0:
        taken = bool(cond != 0) or cond != cond  # nan is true, as ``where``'s forward value
        return (None, False) if taken else (False, None)
    yes = np.not_equal(cond, 0)
    return _norm(yes), _norm(~yes)


def empty(m: Any) -> bool:
    """Whether reach ``m`` (either representation) holds no lane.

    >>> empty(None), empty(False), empty(frozenset()), empty(np.array([True]))
    (False, True, True, False)
    """
    return m is False or (m.__class__ is frozenset and not m)


def _norm(m: Any) -> Any:
    """A boolean array as ``None`` (all lanes), ``False`` (none) or itself."""
    if m is None or m is False:
        return m
    if m is True:
        return None
    if m.all():
        return None
    if not m.any():
        return False
    return m


def _reduce_mask(m: Any, shape: tuple) -> Any:
    """Boolean ``m`` reduced (any) to trailing ``shape``, the inverse of
    broadcasting ``shape`` up to ``m``'s shape; None when the shapes do not line
    up that way."""
    mshape = np.shape(m)
    extra = len(mshape) - len(shape)
    if extra < 0:
        return None
    axes = list(range(extra))
    for i, size in enumerate(shape):
        have = mshape[extra + i]
        if size == 1 and have != 1:
            axes.append(extra + i)
        elif size != have and have != 1:
            return None
    out = np.any(m, axis=tuple(axes), keepdims=True) if axes else m
    return out.reshape(out.shape[extra:])


class Lanes:
    """Reaches on values (the sweeps that run on floats and numpy arrays)."""

    full = None
    none = False

    @staticmethod
    def edge(n: Expr, kids: tuple) -> list:
        """Each child's edge mask (``None`` live on every lane, ``False`` dead)."""
        dead = dead_edges(n)
        edges = [False if d else None for d in dead]
        if n.__class__ is Choice:
            edges[1], edges[2] = where_masks(_value(kids[0]))
        return edges

    @staticmethod
    def both(r: Any, e: Any) -> Any:
        if r is None:
            return e
        if e is None:
            return r
        if r is False or e is False:
            return False
        return _norm(np.logical_and(r, e))

    @staticmethod
    def either(r: Any, e: Any) -> Any:
        if r is None or e is None:
            return None
        if r is False:
            return e
        if e is False:
            return r
        m = np.logical_or(r, e)
        return None if m.all() else m  # never empty: neither is

    @staticmethod
    def through(n: Expr, r: Any, kids: tuple, g: Any) -> list:
        """The reach ``n`` sends each child: its own, moved along the batch
        axes by ``vmap``'s data-movement ops (the op's rule applied to the
        mask, shaped as the cotangent ``g``): taking one example reaches that
        example only."""
        if r is False or not (n.__class__ is Prim and getattr(n.param, "linear", False)):
            return [r] * len(kids)
        shape = np.shape(_value(g) if isinstance(g, Expr) else g)
        ones = np.ones(shape) if r is None else np.broadcast_to(r, shape).astype(float)
        moved = n.param(ones, _value(n), *[_value(c) for c in kids])
        return [_norm(np.asarray(_value(m) if isinstance(m, Expr) else m) != 0)
                for m in moved]

    @staticmethod
    def moved(n: Expr, masks: list) -> Any:
        """Forward mode: the lanes of ``vmap``'s data-movement node ``n`` that
        have a tangent, from its children's (the op applied to the masks)."""
        from .batch_axes import linear_tangent

        floats = [None if m is False else 1.0 if m is None else m.astype(float) for m in masks]
        out = linear_tangent(n, floats)
        return _norm(np.asarray(_value(out) if isinstance(out, Expr) else out) != 0)

    @staticmethod
    def mask(cg: Any, m: Any, n: Expr | None = None) -> tuple:
        """``cg`` with its unreached lanes replaced by nothing (``-0.0``), and
        the mask lined up with it; ``(None, False)`` when no lane is left.
        ``n`` is the node whose rule gave ``cg``, for an error."""
        value = _value(cg) if isinstance(cg, Expr) else cg
        if value.__class__ is _ndarray() and value.shape == m.shape:  # the usual case
            if cg is value:
                return _np_where(m, value, FILL), m
            return choice(const(m.astype(float)), cg, const(FILL)), m
        shape = np.shape(value)
        # a plain 0.0 is a rule's zero for every lane (a rule is linear in its
        # array cotangent, so any other number did not come from one lane each)
        if not (value.__class__ is float and value == 0.0) and not _lines_up(shape, m.shape):
            # a rule that summed over the examples itself (fm.jit's compiled
            # derivative of a call under vmap, a custom rule): its unreached
            # examples gave -0.0 * (a finite partial), nothing, unless a partial
            # was not finite there, which a non-finite sum shows
            reduced = _reduce_mask(m, shape)
            if reduced is not None:
                reduced = _norm(reduced)
                if reduced is False:
                    return None, False
            if not np.all(np.isfinite(value)) and \
                    not getattr(getattr(n, "param", None), "kept_to_reach", False):
                raise ValueError(_summed_message(n))  # (unless the rule kept to the reach)
            if reduced is None:
                return cg, None
            m = reduced
        if isinstance(cg, Expr):
            return choice(const(m.astype(float)), cg, const(FILL)), m
        return np.where(m, cg, FILL), m

    @staticmethod
    def fit(m: Any, before: Any, after: Any) -> Any:
        """The mask of a contribution summed from shape ``before`` to ``after``
        over its leading (batch) axes."""
        a = np.shape(_value(after) if isinstance(after, Expr) else after)
        if not a:  # summed over every lane: one lane reached (m is not empty) is enough
            return None
        b = np.shape(_value(before) if isinstance(before, Expr) else before)
        if a == b:
            return m
        if m.shape != b:
            m = np.broadcast_to(m, b)
        return _norm(np.any(m, axis=tuple(range(len(b) - len(a)))) if len(b) > len(a) else m)

    @staticmethod
    def finish(ct: Any, m: Any) -> Any:
        """An input's cotangent with the lanes nothing reached set to ``0.0``."""
        if m is None:
            return ct
        if m is False:
            return 0.0
        value = _value(ct) if isinstance(ct, Expr) else ct
        if not _lines_up(np.shape(value), m.shape):
            return ct
        if isinstance(ct, Expr):
            return choice(const(m.astype(float)), ct, const(0.0))
        return np.where(m, ct, 0.0)


def _summed_message(n: Expr | None) -> str:
    # (a jitted call's own rule, ``compiler/through.py``, computes such a sum again
    # example by example instead: only a user's rule gets here)
    param = getattr(n, "param", None)
    fn = getattr(param, "fn", None)
    who = f"custom_vjp {getattr(param, 'name', '?')}" if fn is not None else "a custom rule"
    fix = "put the fm.where inside it, or give its bwd one cotangent per example"
    return (f"fm.vmap: {who} sums its derivative over the examples itself, and that sum is "
            "not finite: the nan or inf may come from examples this derivative does not "
            "reach (on which an fm.where took the other branch, or whose outputs it does not "
            "seed, as jacrev seeds one output at a time), which a Python loop over the "
            f"examples would not differentiate at all; {fix}")


def _lines_up(shape: tuple, mshape: tuple) -> bool:
    """Whether a mask shaped ``mshape`` applies lane by lane to a value shaped
    ``shape`` without broadcasting the value up."""
    try:
        return np.broadcast_shapes(shape, mshape) == shape
    except ValueError:
        return False
