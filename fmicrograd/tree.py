"""Pytrees: nested containers whose leaves the transforms act on (``fm.tree``).

Built-in nodes are tuple, list, dict, NamedTuple, ``PMap``, ``PVector``,
dataclasses (fields are children) and ``None`` (a node with no leaves);
graph nodes (``Expr``) and everything else are leaves. Dict keys are visited
in sorted order, as in JAX.

These are the functions users call. A ``vmap`` result inside another
transform (a lazy batch of examples) is taken here as the tuple of its
examples, the tree the Python loop gives, so code that walks it sees the
same leaves under ``jit`` or ``grad`` as without. The machinery, and the
transforms' own view of such a batch (one array node per field), is in
``core.pytree``.

>>> leaves, treedef = fm.tree.flatten({"b": (1.0, 2.0), "a": [3.0]})
>>> leaves
[3.0, 1.0, 2.0]
>>> fm.tree.unflatten(treedef, [x * 10 for x in leaves])
{'a': [30.0], 'b': (10.0, 20.0)}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core import pytree as _core
from .core.pytree import (  # noqa: F401 -- re-exported
    TreeDef,
    check_same,
    example_leaves,
    keystr,
    per_example,
    persistent,
    register,
    unflatten,
)
from .core.pytree_map import map_trees as _map

__all__ = ["map", "leaves", "flatten", "unflatten", "structure", "register",
           "flatten_with_paths", "keystr", "map_with_path", "at", "stack", "TreeDef"]


def flatten(tree: Any) -> tuple[list, TreeDef]:
    """Leaves in a fixed order, and the structure to rebuild the tree.

    >>> fm.tree.flatten((1.0, [2.0, None]))[0]
    [1.0, 2.0]
    """
    return _core.flatten(tree, True)


def flatten_with_paths(tree: Any) -> tuple[list, list, TreeDef]:
    """Like ``flatten`` but also returns each leaf's key path (see ``keystr``).

    >>> _, paths, _ = fm.tree.flatten_with_paths({"w": (1.0, 2.0)})
    >>> [fm.tree.keystr(p) for p in paths]
    ["['w'][0]", "['w'][1]"]
    """
    return _core.flatten_with_paths(tree, True)


def leaves(tree: Any) -> list:
    """The leaves of ``tree``, in flatten order.

    >>> fm.tree.leaves({"a": 1.0, "b": (2.0, 3.0)})
    [1.0, 2.0, 3.0]
    """
    return _core.flatten(tree, True)[0]


def structure(tree: Any) -> TreeDef:
    """The ``TreeDef`` of ``tree``.

    >>> fm.tree.structure((1.0, {"a": 2.0}))
    tuple(*, dict{'a': *})
    """
    return _core.flatten(tree, True)[1]


def map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf-wise; ``rest`` must have the same structure as ``tree``
    (a dict matches a ``PMap`` and a list a ``PVector``, so parameters combine
    with their persistent gradients). The result has ``tree``'s types.

    >>> fm.tree.map(lambda a, b: a + b, (1.0, [2.0]), (10.0, [20.0]))
    (11.0, [22.0])
    """
    return _map(f, tree, rest, True)


# Building new trees from old (map_with_path, at, stack) lives in its own file,
# loaded on first use so that `import fmicrograd` stays light.
if TYPE_CHECKING:
    from .tree_ops import at, map_with_path, stack
else:
    def __getattr__(name: str) -> Any:
        if name in ("at", "map_with_path", "stack"):
            from . import tree_ops

            return getattr(tree_ops, name)
        raise AttributeError(f"module 'fmicrograd.tree' has no attribute {name!r}")
