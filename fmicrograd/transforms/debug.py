"""``debug_nans``: find the first operation that produced a NaN.

No hook sits in the hot path, so there is no cost unless the wrapper is used.
The wrapper runs ``f`` with every float of its arguments replaced by a fresh
variable. Every transform inside ``f`` then meets a variable of an enclosing
transform and runs in graph mode: its derivative computation becomes graph
nodes too, next to the forward ones. The wrapper walks the output graph,
children before parents, and raises on the first node whose value is NaN while
none of its inputs is.

>>> debug_nans(lambda x: fm.log(x) * 2)(1.0)
0.0
>>> debug_nans(lambda x: fm.log(x) * 2)(-1.0)
Traceback (most recent call last):
    ...
FloatingPointError: debug_nans: 'log' produced nan from inputs (-1.0,): log(args[0]) = nan; \
it reaches the output at <root>

Limits, from walking the output graph: only computations that depend on
``f``'s arguments are seen (a transform applied to constants alone runs on
floats), and only nodes that reach an output or the function value of a transform
inside ``f`` (so a forward NaN that ``grad`` drops is still reported: under
``grad(log)`` at -1 the derivative ``1/x`` is a clean -1.0, but ``log(-1)``
is not). A NaN argument is not an operation and is
not reported. Under ``vmap`` a node counts when it has a NaN and none of its
inputs has one anywhere in the batch.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

from .. import tree as tr
from ..core.control import GUARDS, UNCOMPILED
from ..core.expr import Expr, Prim, const, next_level, variable
from ..core.reach import Choice, Lanes, _norm, _reduce_mask, where_masks
from .autodiff import CHECK_VALUES, lower

__all__ = ["debug_nans"]

_INFIX = {"+": "+", "-": "-", "*": "*", "/": "/", "**": "**"}


def debug_nans(f: Callable) -> Callable:
    """Wrap ``f`` (transformed or not) so that the first operation producing a
    NaN, forward or in a derivative, raises ``FloatingPointError`` naming the
    op and its inputs. Otherwise returns what ``f`` returns.

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
        inputs: set = set()
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
                    inputs.add(leaf)
                elif isinstance(leaf, float) or (isinstance(leaf, numbers.Real) and not
                                                 isinstance(leaf, (bool, numbers.Integral))):
                    # (ints stay ints: code may count, index or format with them)
                    leaf = _variable(float(leaf), level, name, outer)
                    inputs.add(leaf)
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
        return lower(out, outer)

    return wrapped


def _numeric_array(x: Any) -> bool:  # (float arrays: ints stay as they are, as int leaves)
    return type(x).__name__ == "ndarray" and getattr(x, "dtype", None) is not None \
        and x.dtype.kind == "f"


def _variable(value: float, level: int, name: str, outer: bool) -> Any:
    """The wrapper's variable for an argument's float; standing for a constant
    when the output is handed to an enclosing transform (``outer``)."""
    return variable(value, level, source=const(value) if outer else None, name=name)


def _array_of_variables(a: Any, level: int, name: str, inputs: set, outer: bool) -> Any:
    """An object array shaped like ``a`` holding one named variable per entry
    (``vmap`` and ``jit`` take it as they take nested tuples)."""
    import numpy as np

    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        v = _variable(float(a[index]), level, name + "".join(f"[{i}]" for i in index), outer)
        inputs.add(v)
        out[index] = v
    return out


def _check(out: Any, inputs: set, where: str = "the output") -> None:
    """Raise on the first node (children first) that makes a NaN from non-NaN
    inputs, on an example (lane) whose value reaches the output: under
    ``vmap`` the branch a ``where`` does not take on a lane is not part of
    that example's computation, as in a Python loop."""
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
                        not any(_has_nan(c.value) for c in n.children):
                    _raise(n, path, where)
                continue
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(n.children) if c not in done)


def _reached_lanes(roots: list, inputs: set) -> dict:
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


def _raise(n: Expr, path: tuple, where: str) -> None:
    inputs = tuple(_short(c.value) for c in n.children)
    raise FloatingPointError(
        f"debug_nans: {_op_name(n)!r} produced nan from inputs "
        f"({', '.join(inputs)}{',' if len(inputs) == 1 else ''}): {_render(n, 3)} = nan; "
        f"it reaches {where} at {tr.keystr(path)}")


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
    if not n.children or depth == 0:
        return _short(n.value)
    kids = [_render(c, depth - 1) for c in n.children]
    if n.op in _INFIX and len(kids) == 2:
        a, b = (k if " " not in k and not k.startswith("-") else f"({k})" for k in kids)
        return f"{a} {_INFIX[n.op]} {b}"
    if n.op == "neg":
        return f"-({kids[0]})"
    return f"{_op_name(n)}({', '.join(kids)})"

