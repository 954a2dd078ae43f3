"""``debug_nans``'s check: the first op (children first) that makes a NaN from
inputs without one, on the examples whose values reach the output, named with
its inputs and the formula that made it."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

from ..core import pytree as tr
from ..core.expr import Expr, Prim
from ..core.reach import Choice, Lanes, _norm, _reduce_mask, where_masks

_INFIX = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**"}


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


def _watched(n: Expr) -> bool:
    """Whether ``n`` is a node that a ``debug_nans`` wrapper put over an output
    (its value is that output's, checked by that wrapper: ``debug_backward``)."""
    return n.__class__ is Prim and getattr(n.param, "watches", False) is True
