"""``fm.tree.map`` over one or several pytrees in one walk.

Each node of the first tree is checked against the same node of the others
and rebuilt at once, and a run of leaves (a tuple or list of floats, ints,
Exprs, ..., such as a row of weights) is one C-level ``map``: the row is
still in cache when ``f`` reads it, which it is not after separate flatten,
flatten and unflatten passes over 20k leaves. Whatever the walk finds odd (a structure mismatch,
a tree nested too deep) is handed to the flattening map, whose structure
error names the first differing path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyrsistent import PVector

from .pytree import (
    _EXAMPLES,
    _LEAF_TYPES,
    _PERSISTENT,
    _build,
    _builtin_map,
    _node_of,
    _rebuild,
    _registry,
    check_same,
    equal,
    flatten,
)

__all__ = ["map_trees"]


def map_trees(f: Callable[..., Any], tree: Any, rest: tuple, examples: bool = False) -> Any:
    """``fm.tree.map(f, tree, *rest)`` (``examples``: a batch of examples is
    the tuple of them, see ``flatten``).

    >>> map_trees(lambda a, b: a * b, {"w": [1.0, 2.0]}, ({"w": [3.0, 4.0]},))
    {'w': [3.0, 8.0]}
    """
    try:  # one walk over all the trees, f applied as it goes (see _zip_map)
        return _zip_map(f, tree, rest)
    except (_Mismatch, RecursionError):  # RecursionError: a tree nested ~1000 deep
        pass
    except Exception:
        if rest:  # a structure error is what the flattening map would have raised
            _flat_map(f, tree, rest, check_only=True, examples=examples)
        raise
    return _flat_map(f, tree, rest, examples=examples)


def _flat_map(f: Callable[..., Any], tree: Any, rest: tuple, check_only: bool = False,
              examples: bool = False) -> Any:
    """``map`` by flattening every tree first: raises the structure error that
    names the first differing path."""
    xs, td = flatten(tree, examples)
    others = []
    for r in rest:
        ys, rd = flatten(r, examples)
        if not equal(rd, td):  # (not rd != td: that recurses, at about 500 levels)
            check_same(td, rd)
        others.append(ys)
    if check_only:
        return None
    return _build(td, list(_builtin_map(f, xs, *others)), 0)[0]


class _Mismatch(Exception):
    """The trees ``_zip_map`` walks differ (``_flat_map`` says where)."""


def _zip_map(f: Callable[..., Any], x: Any, ys: tuple) -> Any:
    """``map(f, x, *ys)`` in one walk (see the module docstring); raises
    ``_Mismatch`` where the trees differ."""
    t: type = x.__class__
    if t is float:
        for y in ys:
            if y.__class__ is not float and _node_of(y) is not None:
                raise _Mismatch
        return f(x, *ys)
    if (t is tuple or t is list) and t not in _registry:  # the common nodes, inline
        n = len(x)
        for y in ys:
            if not (y.__class__ is t or (t is list and isinstance(y, PVector))) or len(y) != n:
                raise _Mismatch
        if n and _LEAF_TYPES.issuperset(_builtin_map(type, x)):  # a run of leaves
            for y in ys:
                if not (_LEAF_TYPES.issuperset(_builtin_map(type, y))
                        or all(_node_of(c) is None for c in y)):
                    raise _Mismatch
            return t(_builtin_map(f, x, *ys))
        return t(_children(f, x, ys))
    node = _node_of(x)
    if node is None:
        for y in ys:
            if y.__class__ is not float and _node_of(y) is not None:
                raise _Mismatch
        return f(x, *ys)
    kind, children, meta = node
    if kind in _EXAMPLES:  # a batch of examples: its leaves or its examples (_flat_map)
        raise _Mismatch
    same = _PERSISTENT.get(kind, kind)
    columns = []
    for y in ys:
        other = _node_of(y)
        if other is None or _PERSISTENT.get(other[0], other[0]) is not same \
                or other[2] != meta or len(other[1]) != len(children):
            raise _Mismatch
        columns.append(other[1])
    return _rebuild(kind, meta, _children(f, children, columns))


def _children(f: Callable[..., Any], children: Any, columns: Any) -> list:
    """``_zip_map`` of each child with the same child of every other tree."""
    built = []  # a loop, not a comprehension: one frame per level, as flatten's
    if len(columns) == 1:
        for c, other in zip(children, columns[0]):
            built.append(_zip_map(f, c, (other,)))
        return built
    for i, c in enumerate(children):
        built.append(_zip_map(f, c, tuple([col[i] for col in columns])))
    return built
