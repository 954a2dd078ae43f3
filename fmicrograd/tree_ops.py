"""Building new pytrees from old: ``map_with_path`` (the leaf's path too),
``at`` (replace chosen parts, as equinox's ``tree_at``) and ``stack``
(per-example trees -> one tree of arrays). Offered as ``fm.tree.*``.

>>> from fmicrograd import tree
>>> tree.at(lambda t: t[1], (1.0, 2.0), 0.0)
(1.0, 0.0)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

from .core.expr import Expr
from .core.pytree import (
    _EXAMPLES,
    _child_keys,
    _node_of,
    _rebuild,
    check_same,
    equal,
    flatten,
    flatten_with_paths,
    keystr,
    unflatten,
)

__all__ = ["map_with_path", "at", "stack"]


def map_with_path(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Like ``map`` but ``f(path, leaf, *others)`` also gets each leaf's path
    as a string (``".layers[0].neurons[1].b"``, ``"['w'][0]"``).

    >>> model = fm.nn.MLP.init(2, [1], key=fm.random.key(0))
    >>> fm.tree.map_with_path(lambda p, x: p, model).layers[0].neurons[0].b
    '.layers[0].neurons[0].b'
    """
    xs, paths, td = flatten_with_paths(tree, examples=True)
    others = []
    for r in rest:
        ys, rd = flatten(r, examples=True)
        if not equal(rd, td):  # (not rd != td: that recurses, at about 500 levels)
            check_same(td, rd, "tree.map_with_path")
        others.append(ys)
    return unflatten(td, [f(keystr(p), *args) for p, *args in zip(paths, xs, *others)])


class _Mark:
    """Stands in for leaf ``i`` while ``at``'s ``where`` picks nodes."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


_NOTHING = object()


def at(where: Callable[[Any], Any], tree: Any, replace: Any = _NOTHING, *,
       replace_fn: Callable[[Any], Any] | None = None) -> Any:
    """A copy of ``tree`` with the parts ``where(tree)`` picks replaced (as
    equinox's ``tree_at``): by ``replace`` (one value, or a sequence with one
    value per part when ``where`` returns a tuple of parts), or by
    ``replace_fn(old)``. Parts are leaves or whole subtrees; ``tree`` itself
    is never changed.

    >>> model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
    >>> zeroed = fm.tree.at(lambda m: m.layers[1].neurons[0].b, model, 5.0)
    >>> zeroed.layers[1].neurons[0].b, model.layers[1].neurons[0].b
    (5.0, 0.0)
    >>> fm.tree.at(lambda t: (t["a"], t["b"][1]), {"a": 1.0, "b": [2.0, 3.0]},
    ...            replace_fn=lambda x: -x)
    {'a': -1.0, 'b': [2.0, -3.0]}
    """
    if (replace is _NOTHING) == (replace_fn is None):
        raise TypeError("tree.at: pass exactly one of replace=... and replace_fn=...")
    xs, td = flatten(tree, examples=True)
    marked = unflatten(td, [_Mark(i) for i in range(len(xs))])
    where_is = _node_paths(marked)
    chosen = where(marked)
    parts = (chosen,) if id(chosen) in where_is or not isinstance(chosen, tuple | list) \
        else tuple(chosen)
    paths = []
    for k, part in enumerate(parts):
        if id(part) not in where_is:
            raise ValueError(f"tree.at: where(tree) returned {type(part).__name__} (part {k}), "
                             "which is not a node of the tree; return leaves or subtrees "
                             "reached by attribute and index access, e.g. lambda m: m.layers[0]")
        if where_is[id(part)] is None:
            raise ValueError(f"tree.at: where(tree) returned {part!r} (part {k}), an object that "
                             "stands at several places in the tree (as None and () do), so "
                             "which one was meant cannot be told; pick its parent and replace "
                             "that, e.g. lambda s: s (with replace_fn=lambda s: "
                             "s._replace(count=3)) for a NamedTuple")
        paths.append(where_is[id(part)])
    if not parts:
        raise ValueError("tree.at: where(tree) picked no part (it returned an empty sequence); "
                         "return the leaves or subtrees to replace")
    seen: dict = {}
    for k, (pos, keys) in enumerate(paths):
        if seen.setdefault(pos, k) != k:
            raise ValueError(f"tree.at: where(tree) picked the same part twice ({keystr(keys)},"
                             f" parts {seen[pos]} and {k}); pick each part once")
    if replace is not _NOTHING:
        news = [replace] if len(parts) == 1 and parts[0] is chosen else list(replace)
        if len(news) != len(parts):
            raise ValueError(f"tree.at: where picked {len(parts)} parts but replace has "
                             f"{len(news)} values")
    for pos, keys in paths:
        if any(pos != other and pos[:len(other)] == other for other, _ in paths):
            raise ValueError(f"tree.at: a picked part lies inside another ({keystr(keys)})")
    out = tree
    for k, path in enumerate(paths):
        value = replace_fn if replace_fn is not None else _Constant(news[k])
        out = _replaced(out, path, value)
    return out


class _Constant:
    """``lambda old: value``, typed."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, old: Any) -> Any:
        return self.value


def _node_paths(marked: Any) -> dict:
    """id(node) -> (path of child positions, key path) for every node of a tree
    (None for an object found at several places)."""
    found: dict = {}
    stack: list = [(marked, (), ())]
    while stack:
        x, pos, keys = stack.pop()
        # the same object at two places (None, (): one object each): which one was picked
        # cannot be told, so it maps to None (``at`` refuses it)
        found[id(x)] = None if id(x) in found else (pos, keys)
        node = None if isinstance(x, _Mark) else _node_of(x)
        if node is not None:
            kind, children, meta = node
            for i, (c, k) in enumerate(zip(children, _child_keys(kind, meta, len(children)))):
                stack.append((c, pos + (i,), keys + (k,)))
    return found


def _replaced(x: Any, path: tuple, new: Callable[[Any], Any]) -> Any:
    pos, keys = path
    if not pos:
        return new(x)
    kind, children, meta = _node_of(x)  # type: ignore[misc]  # path leads through nodes
    if kind in _EXAMPLES:  # a vmap result: its examples (as ``flatten(examples=True)``)
        kind, children, meta = tuple, list(x), None
    children[pos[0]] = _replaced(children[pos[0]], (pos[1:], keys[1:]), new)
    return _rebuild(kind, meta, children)


def stack(trees: Iterable) -> Any:
    """One pytree of numpy arrays from a sequence of pytrees of one structure,
    leaf ``i`` of the result holding leaf ``i`` of every tree (as JAX's ``vmap``
    returns per-example results, such as ``fm.vmap(fm.grad(f))``'s). Map over
    the trees themselves, not this: ``fm.vmap`` reads a mapped argument's
    items as its examples, so a stacked ``(dw, db)`` would be two examples.

    >>> per_example = fm.vmap(fm.grad(lambda p: p[0] * p[1]))(((1.0, 2.0), (3.0, 4.0)))
    >>> fm.tree.stack(per_example)
    (array([2., 4.]), array([1., 3.]))
    """
    items = list(trees)
    if not items:
        raise ValueError("tree.stack: needs at least one tree")
    first, td = flatten(items[0], examples=True)
    columns = [[x] for x in first]
    for k, t in enumerate(items[1:], 1):
        xs, other = flatten(t, examples=True)
        if not equal(other, td):
            check_same(td, other, f"tree.stack: tree {k} against tree 0")
        for col, x in zip(columns, xs):
            col.append(x)
    for (path, col) in zip(flatten_with_paths(items[0], examples=True)[1], columns):
        bad = next((x for x in col if isinstance(x, Expr) or not _is_number(x)), None)
        if isinstance(bad, Expr):  # (its .value would be frozen into a jitted program)
            raise TypeError(f"tree.stack: the leaf at {keystr(path)} is a graph node ({bad!r}); "
                            "stack works on numbers: inside fm.jit / fm.grad / fm.vmap call it "
                            "on the transform's result instead (fm.tree.stack(jitted(...))): "
                            "there a node's .value is frozen at the trace or drops its "
                            "derivative")
        if bad is not None:
            raise TypeError(f"tree.stack: the leaf at {keystr(path)} is {type(bad).__name__} "
                            f"{bad!r}; stack works on numbers")
    return unflatten(td, [_stacked(col, path) for col, path in zip(
        columns, flatten_with_paths(items[0], examples=True)[1])])


def _stacked(col: list, path: Any) -> Any:
    """One leaf's values across the trees as a float array, or an error naming it."""
    import numpy as np  # (numpy only where stack is used: the package imports without it)

    shapes = {np.shape(x) for x in col}
    if len(shapes) > 1:
        raise ValueError(f"tree.stack: the leaf at {keystr(path)} has different shapes in the "
                         f"trees ({', '.join(map(str, sorted(shapes)))}); stack needs one shape "
                         f"per leaf")
    try:
        stacked = np.asarray(col, dtype=float)
    except (TypeError, ValueError, OverflowError) as e:
        raise TypeError(f"tree.stack: the leaf at {keystr(path)} does not convert to float64 "
                        f"({type(e).__name__}: {e}); stack works on numbers") from None
    inexact = next((b for x in col if x.__class__ is not float
                    and (b := _inexact(x, np)) is not None), None)
    if inexact is not None:
        raise ValueError(f"tree.stack: the leaf at {keystr(path)} holds the integer "
                         f"{inexact}, which float64 cannot hold exactly (above "
                         f"2**53); stack makes float64 arrays: stack such leaves yourself "
                         f"(np.array(values, dtype=np.int64))")
    return stacked


def _inexact(x: Any, np: Any) -> int | None:
    """The first integer of a leaf (an int, an integer array or tensor, an
    object array of ints) that float64 does not hold exactly, or None."""
    if isinstance(x, numbers.Integral):
        n = int(x)
        return None if isinstance(x, bool) or -(2 ** 53) <= n <= 2 ** 53 or float(n) == n else n
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind is None and getattr(x, "dtype", None) is not None:  # (a torch tensor: no kind)
        if getattr(x, "is_floating_point", lambda: True)() or getattr(x, "is_complex",
                                                                     lambda: False)():
            return None
        x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        kind = x.dtype.kind
    if kind == "O":  # (Python ints in an object array)
        return next((b for v in np.ravel(x).tolist() if isinstance(v, numbers.Integral)
                     and (b := _inexact(v, np)) is not None), None)
    if kind not in ("i", "u"):
        return None  # (floats and float arrays: nothing to lose)
    a = np.ravel(x)
    big = a[(a > 2 ** 53) | (a < -(2 ** 53))]  # (only these can be inexact)
    return next((int(v) for v in big.tolist() if float(v) != int(v)), None)


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) or hasattr(x, "__array__")
