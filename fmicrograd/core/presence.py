"""Which inputs' tangents the forward sweep carries to each output: structural zeros.

The forward sweep (``sweep.forward``) gives a node a tangent only if one of
its children has one along an edge that carries a derivative: an output that
does not depend on an input gets no tangent in its direction at all (not a
``0.0``), so that a product further on never multiplies an infinite partial
by it (``0.0 * inf`` would be NaN). A rule's node (``checkpoint``,
``custom_jvp``, a jitted call seen through) reads its partials from a VJP,
which gives ``0.0`` for an input the output does not reach: its rule asks
``reached`` which inputs its own graph reaches from each output, and forward
mode drops the others' terms (see ``forward_sweep._rule_tangent``); the reverse
sweep hands them no cotangent (``reached_cotangents``).

>>> from fmicrograd.core.expr import variable, next_level
>>> lv = next_level()
>>> a, b = variable(2.0, lv), variable(3.0, lv)
>>> reached([a * a, a * b, fm.stop_gradient(b) * 2.0, 5.0], [a, b])
[1, 3, 0, 0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import pytree as tr
from .batch_axes import DEPTH
from .control import GUARDS, reaches_variable
from .expr import Expr, Prim
from .expr import stored_value as _value
from .reach import GATED, Choice, Lanes

# The guard-log entry (``control.UNCOMPILED``'s form) for a rule's reach that a
# branch decided: see ``reached``.
BRANCHED_REACH = ("uncompiled", "the derivative through a checkpoint, custom_jvp or jitted call "
                  "depends on which vmap examples take a where branch, which the compiled code "
                  "cannot re-check", None, None)

__all__ = ["reached", "traced_reach", "leaf_flags", "live_children", "reached_cotangents"]


def live_children(n: Expr, kids: tuple, partials: Sequence[Any], tans: dict) -> Any:
    """For each child of rule node ``n`` (a ``"custom"`` node), whether its
    tangent reaches ``n`` (None: every child's), for the forward sweep. A
    rule's partials come from its VJP, which gives 0.0 for an input the
    output does not depend on; the function's own forward sweep gives that
    output no tangent in that input's direction, so the term is dropped, not
    multiplied (``0.0 * t``, then ``0.0 * inf`` is NaN further on). The rule
    is asked (``reaches``) only where a child with a tangent has a zero
    partial, after it ran (so its own errors come first).

    >>> w = fm.checkpoint(lambda a, b: (a * a, b))
    >>> out = fm.trace(w)(3.0, 4.0)[0]
    >>> a, b = out.children
    >>> live_children(out, out.children, [6.0, 0.0], {a: 1.0, b: 1.0})
    (True, False)
    >>> live_children(out, out.children, [6.0, 0.0], {a: 1.0}) is None
    True
    """
    for c, p in zip(kids, partials):
        if tans.get(c) is not None and _is_zero(p):
            hook = getattr(n.param, "reaches", None) if n.__class__ is Prim else None
            return None if hook is None else hook(kids)
    return None


def reached_cotangents(n: Expr, kids: tuple, cgs: Sequence[Any]) -> Sequence[Any]:
    """A rule node's cotangents ``cgs`` for its children ``kids``, for the
    reverse sweep, with None for a child its output's own graph does not
    reach: the rule's VJP hands such a child an exact 0.0 (or a node of
    value 0.0 at higher order), where the function's own sweep hands it
    nothing. Adding that zero turns a ``-0.0`` into ``0.0``, and at higher
    order the zero node's partials (0.0 times an infinite slope further on)
    are NaN. The rule is asked (``reaches``) only where a cotangent is zero,
    after it ran; a cotangent that is not zero is kept whatever it says.

    >>> w = fm.checkpoint(lambda a, b: (a * a, b))
    >>> out = fm.trace(w)(3.0, 4.0)[0]
    >>> reached_cotangents(out, out.children, [6.0, 0.0])
    [6.0, None]
    >>> reached_cotangents(out, out.children, [6.0, 1.0])
    [6.0, 1.0]
    """
    hook = getattr(n.param, "reaches", None) if n.__class__ is Prim else None
    if hook is None or not any(map(_is_zero, cgs)):
        return cgs
    live = hook(kids)
    if live is None:
        return cgs
    return [cg if keep or not _is_zero(cg) else None for cg, keep in zip(cgs, live)]


def _decides(conds: list) -> bool:
    """Whether ``jit`` traces now and a condition in ``conds`` is a value it traces."""
    log = GUARDS.get()
    return log is not None and BRANCHED_REACH not in log and any(
        c.op != "const" and reaches_variable(c) for c in conds)


def _is_zero(p: Any) -> bool:
    """Whether a partial (a number, an array, a node) is zero everywhere.

    >>> _is_zero(0.0), _is_zero(-0.0), _is_zero(fm.Const(0.0)), _is_zero(2.0)
    (True, True, True, False)
    >>> import numpy as np
    >>> _is_zero(np.zeros(2)), _is_zero(np.array([fm.Var(0.0)], dtype=object))
    (True, False)
    """
    v = _value(p) if isinstance(p, Expr) else p
    if v.__class__ is float:
        return v == 0.0
    if getattr(v, "dtype", None) is not None:  # an array (or numpy scalar) of numbers;
        # one of nodes is not known zero, nor another library's number (a torch scalar)
        return getattr(v.dtype, "kind", "") in ("f", "i", "u") and not v.any()
    return False


def reached(outputs: Sequence[Any], inputs: Sequence[Any]) -> list[int]:
    """For each output, the inputs whose tangent the forward sweep carries to
    it, as a bit mask (bit ``i``: ``inputs[i]``). Edges that carry no
    derivative (a comparison's, ``where``'s condition, a ``Choice``'s branch
    not taken, everything behind ``stop_gradient``) carry no tangent; a rule's
    node inside (a nested ``checkpoint``) carries its inputs' tangents to
    those of its outputs its own graph reaches (``reaches``), every input's
    to every output where it does not say. A ``Choice`` that takes a branch
    on some lanes only carries that branch's tangent (on those lanes)."""
    from .sweep import order  # (the sweep imports this module)

    nodes, _, _ = order(outputs, inputs)
    out, branched = _bits(nodes, outputs, inputs, False)
    if branched and _decides(branched) and _bits(nodes, outputs, inputs, True)[0] != out:
        # a branch taken on no example decided the reach: it holds for the trace's values
        # only, and no guard re-checks per-example values, so jit runs f as Python
        GUARDS.get().append(BRANCHED_REACH)
    return out


def _bits(nodes: list, outputs: Sequence[Any], inputs: Sequence[Any],
          every_branch: bool) -> tuple[list[int], list]:
    """``reached``'s masks over ``nodes`` (``order``'s), and the conditions
    of the ``Choice`` nodes that took a branch on no lane; with
    ``every_branch``, a ``Choice`` carries both branches' tangents."""
    bits: dict = {}
    for i, x in enumerate(inputs):
        bits[x] = bits.get(x, 0) | 1 << i
    get = bits.get
    branched: list = []
    for n in nodes:
        kids = n.children
        live: Any = None
        if n.op in GATED:
            live = [e is not False for e in Lanes.edge(n, kids)]
            if n.__class__ is Choice and not all(live[1:]):
                branched.append(kids[0])
                if every_branch:
                    live[1] = live[2] = True
        elif n.op == "custom" and n.__class__ is Prim:
            hook = getattr(n.param, "reaches", None)
            live = hook(kids) if hook is not None else None
        m = 0
        for i, c in enumerate(kids):
            b = get(c)
            if b and (live is None or live[i]):
                m |= b
        if m:
            bits[n] = m
    return [get(o, 0) if isinstance(o, Expr) else 0 for o in outputs], branched


def traced_reach(fn: Callable, args: tuple, fills: Callable[[Any], Any],
                 start: Callable[[Any], Any]) -> list[int] | None:
    """``reached`` over ``fn``'s graph, traced on fresh variables for the
    leaves of ``args`` (each started from ``start(arg)``), with a bit per leaf
    of ``args`` in order. As in ``custom_jvp.vjp_over_values``, a numpy array
    outside ``vmap`` is data: ``fn`` gets ``fills(array)``, and it reaches no
    output. None when ``fn``'s output holds a ``vmap`` result (its leaves are
    not laid out as a rule's outputs are: the rule's partials stand)."""
    import numpy as np

    from ..transforms.autodiff import call_on_inputs, per_example

    data = [False] * len(args) if DEPTH.get() else [a.__class__ is np.ndarray for a in args]
    diff = [a for a, d in zip(args, data) if not d]

    def with_data(*xs: Any) -> Any:
        it = iter(xs)
        return fn(*[fills(a) if d else next(it) for a, d in zip(args, data)])

    out, _, _, groups = call_on_inputs(with_data, [start(a) for a in diff], {},
                                       tuple(range(len(diff))), False, "vjp")
    if _holds_batch(tr.structure(out)):
        return None
    outs = tr.leaves(per_example(out))
    inputs: list = []
    position: list[int] = []  # each input's bit among the leaves of ``args``
    k, it = 0, iter(groups)
    for d in data:
        if d:
            k += 1  # (an array is one leaf)
            continue
        for x in next(it):
            inputs.append(x)
            position.append(k)
            k += 1
    masks = reached(outs, inputs)
    out_masks = []
    for m in masks:
        spread = 0
        i = 0
        while m:
            if m & 1:
                spread |= 1 << position[i]
            m >>= 1
            i += 1
        out_masks.append(spread)
    return out_masks


def leaf_flags(mask: int, count: int) -> tuple[bool, ...]:
    """A bit mask as one flag per leaf.

    >>> leaf_flags(0b101, 3)
    (True, False, True)
    """
    return tuple(bool(mask >> i & 1) for i in range(count))


def _holds_batch(td: tr.TreeDef) -> bool:
    """Whether a structure holds a ``vmap`` result (its fields are leaves)."""
    return getattr(td.kind, "__fm_examples__", False) or any(
        _holds_batch(c) for c in td.children)
