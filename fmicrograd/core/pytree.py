"""Pytrees: nested containers whose leaves the transforms act on.

Built-in nodes are tuple, list, dict, NamedTuple, ``PMap``, ``PVector``,
dataclasses (fields are children) and ``None`` (a node with no leaves);
graph nodes (``Expr``) and everything else are leaves. Dict keys are visited
in sorted order, as in JAX.

>>> leaves, treedef = flatten({"b": (1.0, 2.0), "a": [3.0]})
>>> leaves
[3.0, 1.0, 2.0]
>>> unflatten(treedef, [x * 10 for x in leaves])
{'a': [30.0], 'b': (10.0, 20.0)}
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from pyrsistent import PMap, PVector, pmap, pvector

from .expr import Expr

__all__ = ["map", "leaves", "flatten", "unflatten", "structure", "register",
           "flatten_with_paths", "keystr", "TreeDef", "example_leaves", "per_example"]

_builtin_map = map


class TreeDef(NamedTuple):
    """The shape of a pytree with the leaves left out; ``None`` kind is a leaf."""

    kind: Any          # the node's type, or None for a leaf
    meta: Any          # what unflatten needs besides the children (keys, names)
    children: tuple    # TreeDefs of the children

    def __repr__(self) -> str:
        out: list[str] = []  # (iteratively: a recursive repr failed at about 250 levels)
        stack: list = [self]
        while stack:
            td = stack.pop()
            if td.__class__ is str:
                out.append(td)
            elif td.kind is None:
                out.append("*")
            else:
                keyed = td.kind in (dict, PMap)
                if not keyed and td.children.count(LEAF) == len(td.children):  # a run of
                    out.append(f"{td.kind.__name__}({', '.join('*' * len(td.children))})")
                    continue                                                     # leaves
                out.append(f"{td.kind.__name__}{'{' if keyed else '('}")
                items: list = ["}" if keyed else ")"]
                for i in range(len(td.children) - 1, -1, -1):
                    items.append(td.children[i])
                    if keyed:
                        items.append(f"{td.meta[i]!r}: ")
                    if i:
                        items.append(", ")
                stack.extend(items)
        return "".join(out)

    @property
    def num_leaves(self) -> int:
        """How many leaves a tree of this structure holds."""
        if self.kind is None:
            return 1
        count, stack = 0, list(self.children)  # (iteratively: any depth flatten takes)
        while stack:
            c = stack.pop()
            if c.kind is None:
                count += 1
            else:
                stack.extend(c.children)
        return count


LEAF = TreeDef(None, None, ())

# cls -> (flatten(x) -> (children, meta), unflatten(meta, children) -> x,
#         names(meta, n) -> an accessor per child, or None for "[i]")
_registry: dict[type, tuple[Callable, Callable, Callable | None]] = {}
_immutable: set[type] = set()  # registered with immutable=True
# what fm.tree reads by itself, which a registration would replace for the whole process
_BUILTIN = frozenset((tuple, list, dict, type(None), PMap, PVector, float, int, bool, complex,
                      str, bytes, object, type))
# registered kinds that hold a batch of examples (``__fm_examples__``: the lazy result
# of ``fm.vmap`` inside a transform), which ``examples=True`` takes example by example
_EXAMPLES: set[type] = set()


def register(cls: type, flatten: Callable[[Any], tuple[Iterable, Any]],
             unflatten: Callable[[Any, tuple], Any],
             names: Callable[[Any, int], Iterable[str]] | None = None, *,
             immutable: bool = False) -> type:
    """Make ``cls`` a pytree node: ``flatten(x) -> (children, meta)`` and
    ``unflatten(meta, children) -> x``. ``names(meta, n)``, if given, returns
    each child's accessor (``".a"``, ``".items[0]"``) for paths in messages;
    otherwise children show as ``[0]``, ``[1]``, ... Returns ``cls``.

    ``immutable=True`` promises that an instance never changes once built
    and that ``flatten`` reads nothing else (a frozen dataclass whose
    children are its fields): ``fm.jit`` may then recognise one it returned
    by identity, without walking it again, when it comes back as an argument.

    >>> class Pair:
    ...     def __init__(self, a, b): self.a, self.b = a, b
    >>> _ = fm.tree.register(Pair, lambda p: ((p.a, p.b), None), lambda m, c: Pair(*c),
    ...              names=lambda meta, n: (".a", ".b"))
    >>> fm.tree.leaves(Pair(1.0, (2.0,)))
    [1.0, 2.0]
    >>> [fm.tree.keystr(p) for p in fm.tree.flatten_with_paths(Pair(1.0, (2.0,)))[1]]
    ['.a', '.b[0]']
    """
    if not isinstance(cls, type):
        raise TypeError(f"fm.tree.register: cls must be a class, got {type(cls).__name__} "
                        f"{cls!r:.60}")
    if cls in _BUILTIN or issubclass(cls, Expr):
        # (registering tuple gave every tuple in the process no leaves: grad then failed)
        raise TypeError(f"fm.tree.register: {cls.__name__} is one fm.tree handles itself "
                        "(a built-in container, a number, a node); register a class of your "
                        "own, e.g. a subclass")
    if not (callable(flatten) and callable(unflatten)) or (names is not None
                                                           and not callable(names)):
        raise TypeError("fm.tree.register: flatten, unflatten (and names, if given) must be "
                        "functions")
    _registry[cls] = (flatten, unflatten, names)
    if getattr(cls, "__fm_examples__", False):
        _EXAMPLES.add(cls)
    _LEAF_TYPES.discard(cls)
    if immutable:
        _immutable.add(cls)
    else:
        _immutable.discard(cls)
    return cls


def _sorted_keys(d: Any) -> list:
    try:
        return sorted(d)
    except TypeError:  # keys of mixed types: by type, then text, whatever the insertion
        # order (a dict and the PMap a gradient returns for it then have one structure)
        return sorted(d, key=_key_order)


def _key_order(k: Any) -> tuple:
    t = type(k)
    return (t.__module__, t.__qualname__, repr(k))


def _dataclass_flatten(x: Any) -> tuple[list, tuple]:
    fields = dataclasses.fields(x)
    for f in fields:
        if not f.init:
            raise TypeError(_derived_field(type(x), f.name))
    names = tuple(f.name for f in fields)
    held = getattr(x, "__dict__", None)
    if held is not None and len(held) != len(names):
        _check_attributes(x, held, names)
    return [getattr(x, n) for n in names], names


def extra_attributes(x: Any) -> bool:
    """Whether dataclass instance ``x`` holds an attribute ``fm.tree`` refuses
    (``_check_attributes``), for ``fm.jit``'s matcher.

    >>> import dataclasses
    >>> P = dataclasses.make_dataclass("P", ["w"])
    >>> p = P(1.0); extra_attributes(p), setattr(p, "s", 2.0), extra_attributes(p)
    (False, None, True)
    """
    try:
        _check_attributes(x, x.__dict__, tuple(f.name for f in dataclasses.fields(x)))
    except TypeError:
        return True
    return False


def _check_attributes(x: Any, held: dict, names: tuple) -> None:
    """A TypeError for a dataclass instance holding attributes besides its
    fields (set in ``__post_init__`` or later): a pytree is rebuilt from its
    fields (under ``jit``, ``grad``, ``vmap``, ``fm.tree.map``), without them,
    so the rebuilt object would read the class's default or fail. A
    ``functools.cached_property`` value is left out: the rebuilt object
    computes it again from its own fields."""
    cls = type(x)
    extra = [k for k in held if k not in names and not isinstance(
        getattr(cls, k, None), functools.cached_property)]
    if extra:
        what = "NamedTuple" if isinstance(x, tuple) else "dataclass"
        raise TypeError(f"fm.tree: a {cls.__name__} holds the attribute {extra[0]!r}, which is "
                        f"not one of its {what} fields {names}: fm rebuilds a {what} from "
                        "its fields (under jit, grad, vmap and fm.tree.map), so the rebuilt "
                        f"{cls.__name__} would not have it (or would read a class default). "
                        "Declare it as a field, or compute it in a @property")


def _derived_field(cls: type, name: str) -> str:
    """Why a field declared ``field(init=False)`` is refused: it is computed
    from the others (in ``__post_init__``), so as a leaf of its own its
    gradient would be independent of theirs, and theirs would miss its part
    (JAX's ``register_dataclass`` refuses it too)."""
    return (f"fm.tree: {cls.__name__}.{name} is declared field(init=False), a value computed "
            "from the other fields; as a pytree leaf it would get a gradient of its own and "
            "theirs would miss its part. Make it a @property computed from them (or register "
            "the class with fm.tree.register, naming its children)")


def _dataclass_unflatten(cls: type, names: tuple, children: Iterable) -> Any:
    # Bypass __init__ (and frozen __setattr__): leaves may be graph nodes that
    # a user's __post_init__ validation does not expect.
    obj: Any = object.__new__(cls)
    for n, c in zip(names, children):
        object.__setattr__(obj, n, c)
    return obj


# Types whose every instance is a leaf, learnt by _node_of (a leaf then costs one lookup): Exprs
# and C types (numbers, numpy scalars), which cannot become dataclasses later; register() forgets.
_LEAF_TYPES: set[type] = {float, int, bool, str}
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python
_treedef = tuple.__new__  # TreeDef(kind, meta, children) without NamedTuple's Python-level __new__


def _node_of(x: Any) -> tuple[type, list, Any] | None:
    """(kind, children, meta) for a container, or None for a leaf."""
    t = type(x)
    if t in _LEAF_TYPES:
        return None
    if isinstance(x, Expr):
        _learn_leaf(t, True)
        return None
    if t in _registry:
        result = _registry[t][0](x)  # (its own errors as they are)
        try:
            children, meta = result
            return t, list(children), meta
        except (TypeError, ValueError) as e:  # (a bare "cannot unpack non-iterable float")
            raise TypeError(f"fm.tree: the flatten function registered for {t.__name__} must "
                            f"return (children, meta), a sequence and anything; it returned "
                            f"{type(result).__name__} {result!r:.60}") from e
    if t is tuple or t is list:
        return t, list(x), None
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        if t.__dictoffset__ and x.__dict__:  # a NamedTuple subclass's instance attribute
            _check_attributes(x, x.__dict__, x._fields)
        return t, list(x), None
    if isinstance(x, PVector):
        return PVector, list(x), None
    if t is dict or t is PMap or isinstance(x, PMap):
        keys = _sorted_keys(x)
        return (PMap if isinstance(x, PMap) else dict), [x[k] for k in keys], tuple(keys)
    if x is None:
        return type(None), [], None
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        children, names = _dataclass_flatten(x)
        return t, children, names
    _learn_leaf(t, not t.__flags__ & _HEAPTYPE)
    return None


def _learn_leaf(t: type, always: bool) -> None:
    if always and len(_LEAF_TYPES) < 1024:
        _LEAF_TYPES.add(t)


def _rebuild(kind: type, meta: Any, children: list) -> Any:
    if kind in _registry:
        return _registry[kind][1](meta, tuple(children))
    if kind is tuple or kind is list:
        return kind(children)
    if kind is PVector:
        return pvector(children)
    if kind is dict:
        return dict(zip(meta, children))
    if kind is PMap:
        return pmap(dict(zip(meta, children)))
    if kind is type(None):
        return None
    if issubclass(kind, tuple):  # NamedTuple: its fields as they were (a __new__ of the
        return tuple.__new__(kind, children)  # class's own would run again on them)
    return _dataclass_unflatten(kind, meta, children)


def _flatten_into(x: Any, out: list, paths: list | None, path: tuple,
                  examples: bool = False) -> TreeDef:
    if paths is None:
        return _flat(x, out, examples)
    node = _node_of(x)
    if node is None:
        out.append(x)
        paths.append(path)
        return LEAF
    kind, children, meta = node
    if examples and kind in _EXAMPLES:
        kind, children, meta = tuple, list(x), None
    keys = _child_keys(kind, meta, len(children))
    subs = []  # (a loop, not a generator: one frame per level, as _flat's)
    for c, k in zip(children, keys):
        subs.append(_flatten_into(c, out, paths, path + (k,), examples))
    return TreeDef(kind, meta, tuple(subs))


def _flat(x: Any, out: list, examples: bool = False) -> TreeDef:
    """``_flatten_into`` without key paths, the hot case: a tuple or list of
    leaves of known types (floats, ints, Exprs, ...) is one C-level type check
    and ``extend`` (its TreeDef shared, see ``_run``), float children are
    appended inline. ``examples``: a batch of examples is the tuple of them."""
    t: type = x.__class__
    kind: type
    if (t is tuple or t is list) and t not in _registry:
        if x and _LEAF_TYPES.issuperset(_builtin_map(type, x)):
            out.extend(x)
            return _run(t, len(x))
        children = x
        kind, meta = t, None
    else:
        node = _node_of(x)
        if node is None:
            out.append(x)
            return LEAF
        kind, children, meta = node
        if examples and kind in _EXAMPLES:
            kind, children, meta = tuple, list(x), None
    subs: list[TreeDef] = []
    for c in children:
        if c.__class__ is float:
            out.append(c)
            subs.append(LEAF)
        else:
            subs.append(_flat(c, out, examples))
    return _treedef(TreeDef, (kind, meta, tuple(subs)))


_RUNS: dict[tuple[type, int], TreeDef] = {}  # see _run
_RUN_LEAVES = [0]  # the leaves the kept runs hold (each kept TreeDef holds n of them)
_MOST_RUN_LEAVES = 1 << 20  # 8 MB of references: lengths beyond are made each time


def _run(kind: type, n: int) -> TreeDef:
    """The TreeDef of a ``kind`` (tuple or list) of ``n`` leaves, one object per
    length: equal structures share it, so comparing them stops there. The
    kept ones hold at most ``_MOST_RUN_LEAVES`` leaves in all (a program
    that sees many long lengths once kept 0.8 MB for each)."""
    td = _RUNS.get((kind, n))
    if td is None:
        td = TreeDef(kind, None, (LEAF,) * n)
        if len(_RUNS) < 4096 and _RUN_LEAVES[0] + n <= _MOST_RUN_LEAVES:
            _RUNS[kind, n] = td
            _RUN_LEAVES[0] += n
    return td


def _child_keys(kind: type, meta: Any, n: int) -> list:
    names = _registry[kind][2] if kind in _registry else None
    if names is not None:
        keys = [("name", name) for name in names(meta, n)]
        if len(keys) != n:
            raise ValueError(f"fm.tree.register: the names function of {kind.__name__} gave "
                             f"{len(keys)} names for its {n} children; give one per child")
        return keys
    if kind in (dict, PMap):
        return [("key", k) for k in meta]
    if kind not in _registry and dataclasses.is_dataclass(kind):
        return [("attr", name) for name in meta]
    if kind not in _registry and issubclass(kind, tuple) and hasattr(kind, "_fields"):
        return [("attr", name) for name in kind._fields]
    return [("index", i) for i in range(n)]


def keystr(path: tuple) -> str:
    """Render a key path as Python-like accessors.

    >>> fm.tree.keystr((("key", "layers"), ("index", 0), ("attr", "w")))
    "['layers'][0].w"
    """
    parts = []
    for how, k in path:
        parts.append(f".{k}" if how == "attr" else k if how == "name" else f"[{k!r}]")
    return "".join(parts) or "<root>"


def flatten(tree: Any, examples: bool = False) -> tuple[list, TreeDef]:
    """Leaves in a fixed order, and the structure to rebuild the tree. A
    batch of examples (a ``vmap`` result inside a transform) is one node
    whose leaves hold every example, or with ``examples`` the tuple of its
    examples, as the Python loop's (what ``fm.tree.flatten`` gives users).

    >>> flatten((1.0, [2.0, None]))[0]
    [1.0, 2.0]
    """
    out: list = []
    try:
        return out, _flatten_into(tree, out, None, (), examples)
    except RecursionError:
        raise _too_deep(tree) from None


def flatten_with_paths(tree: Any, examples: bool = False) -> tuple[list, list, TreeDef]:
    """Like ``flatten`` but also returns each leaf's key path (see ``keystr``).

    >>> _, paths, _ = flatten_with_paths({"w": (1.0, 2.0)})
    >>> [keystr(p) for p in paths]
    ["['w'][0]", "['w'][1]"]
    """
    out: list = []
    paths: list = []
    try:
        return out, paths, _flatten_into(tree, out, paths, (), examples)
    except RecursionError:
        raise _too_deep(tree) from None


def _too_deep(tree: Any) -> ValueError:
    """The error for a tree flatten could not walk: a container holding
    itself (its path named), or nesting deeper than the walks go. Linear in
    the tree: each container keeps a link to the one above it, and a path is
    built once, for the message (a path per container made a 20,000-deep cons
    list take 5 s, and 40,000 deep a MemoryError)."""
    links: list = []  # per container walked: (the index of the one above it or -1, its key)
    stack: list = [(tree, -1, None)]
    on_path: dict = {}  # id -> index in links of the containers above the one being walked
    seen: set = set()
    deepest = 0
    levels: list = []  # per container walked: its depth (the root's 0)
    while stack:
        x, above, key = stack.pop()
        if x is _EXIT:
            on_path.pop(above, None)
            continue
        node = _node_of(x)
        if node is None:
            continue
        if id(x) in on_path:
            return ValueError(f"fm.tree: the tree contains itself: "
                              f"{keystr(_path_of(links, above) + (key,))} is the container at "
                              f"{keystr(_path_of(links, on_path[id(x)]))}")
        if id(x) in seen:
            continue
        seen.add(id(x))
        here = len(links)
        links.append((above, key))
        levels.append(levels[above] + 1 if above >= 0 else 0)
        deepest = max(deepest, levels[here])
        on_path[id(x)] = here
        stack.append((_EXIT, id(x), None))
        kind, children, meta = node
        keys = _child_keys(kind, meta, len(children))
        stack.extend((c, here, k) for c, k in zip(children, keys))
    return too_deep("fm.tree: the tree is", deepest + 1)


def _path_of(links: list, i: int) -> tuple:
    """The key path of container ``i`` of ``_too_deep``'s ``links``."""
    keys = []
    while i >= 0:
        i, key = links[i]
        if i >= 0:
            keys.append(key)
    return tuple(reversed(keys))


def equal(a: TreeDef, b: TreeDef) -> bool:
    """``a == b``, in C where it can, else by ``same_structure``: the
    comparison recurses, two levels of Python's recursion a tree level (a
    ``RecursionError`` at about 500 levels, fewer inside a transform).

    >>> equal(structure((1.0, [2.0])), structure((3.0, [4.0])))
    True
    """
    if a is b:
        return True
    try:
        return a == b
    except RecursionError:
        return same_structure(a, b)


def same_structure(a: TreeDef, b: TreeDef) -> bool:
    """``a == b`` for structures of any depth (``==`` recurses in C, one
    level of Python's recursion a level: a ``RecursionError`` at about 500).

    >>> same_structure(structure((1.0, [2.0])), structure((3.0, [4.0])))
    True
    """
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        if x.kind != y.kind or x.meta != y.meta or len(x.children) != len(y.children):
            return False
        stack.extend(zip(x.children, y.children))
    return True


def too_deep(what: str, depth: int | None = None) -> ValueError:
    """The error for a tree nested deeper than a walk can go (``what``: who
    and what, as ``"fm.tree: the tree is"``; ``depth``: its containers'
    nesting, where known). The walks recurse, a Python stack frame or more a
    level, so how deep they go depends on the walk: about 1,000 levels for
    flatten, fewer inside a transform.

    >>> str(too_deep("fm.tree: the tree is", 600))[:59]
    'fm.tree: the tree is nested deeper than fm can walk (at lea'
    """
    levels = f"at least {depth} levels; " if depth is not None else ""
    return ValueError(f"{what} nested deeper than fm can walk ({levels}its walks recurse, a "
                      "Python stack frame or more a level, within the recursion limit of "
                      f"{sys.getrecursionlimit()} frames); keep long sequences flat (a tuple of "
                      "items, not a chain of one-item containers)")


_EXIT = object()  # _too_deep's stack marker: the container below it is done


def unflatten(treedef: TreeDef, leaves: Iterable) -> Any:
    """Rebuild a tree of ``treedef``'s structure from ``leaves`` in order.

    >>> fm.tree.unflatten(fm.tree.structure((1.0, 2.0)), [3.0, 4.0])
    (3.0, 4.0)
    """
    if not isinstance(treedef, TreeDef):
        raise TypeError(f"unflatten(treedef, leaves): the first argument must be a TreeDef "
                        f"(from fm.tree.structure or fm.tree.flatten), got "
                        f"{type(treedef).__name__}; the leaves come second")
    items = leaves if leaves.__class__ is list else list(leaves)
    try:
        tree, used = _build(treedef, items, 0)
    except Exception:  # too few leaves: an IndexError, or a constructor given too few
        if len(items) == treedef.num_leaves:
            raise
        used = -1
    if used != len(items):
        raise ValueError(f"unflatten: structure {treedef!r} needs {treedef.num_leaves} "
                         f"leaves, got {len(items)}")
    return tree


def _build(td: TreeDef, items: list, i: int) -> tuple[Any, int]:
    """The tree of structure ``td`` from ``items[i:]`` and the index after it;
    a run of leaves is one slice (and may end past ``items``: the caller
    checks the final index)."""
    kind, children = td.kind, td.children
    if kind is None:
        return items[i], i + 1
    n = len(children)
    if n and children.count(LEAF) == n:  # only leaves: one slice
        part = items[i:i + n]
        if kind is list and kind not in _registry:
            return part, i + n
        if kind is tuple and kind not in _registry:
            return tuple(part), i + n
        return _rebuild(kind, td.meta, part), i + n
    built = []
    for c in children:
        if c.kind is None:
            built.append(items[i])
            i += 1
        else:
            sub, i = _build(c, items, i)
            built.append(sub)
    return _rebuild(kind, td.meta, built), i


def leaves(tree: Any, examples: bool = False) -> list:
    """The leaves of ``tree``, in flatten order (``examples``: see ``flatten``).

    >>> leaves({"a": 1.0, "b": (2.0, 3.0)})
    [1.0, 2.0, 3.0]
    """
    return flatten(tree, examples)[0]


_FLOATS = frozenset((float,))


def example_leaves(tree: Any) -> list:
    """The leaves of ``tree`` with every batch of examples in it (the lazy
    result of ``fm.vmap`` inside a transform, a ``Batched``) taken as the tuple
    of its examples: the leaves the Python loop's tuple would have. What the
    pytree reducers (``fm.losses.l2``, ``fm.optim.global_norm``,
    ``fm.nn.count_params``) count and sum; ``leaves`` gives a ``Batched``'s own
    leaves, one array node per output leaf holding every example. A numpy
    array leaf (``fm.jit`` traces an array argument as one of nodes) gives its
    entries: summed as one array, its entries were taken for a ``vmap``
    batch, and ``l2({"w": np.array([1.0, 2.0]), "b": 1.0})`` was
    ``array([2., 5.])`` for 6.0.

    >>> import numpy as np
    >>> example_leaves({"a": (1.0, 2.0), "b": np.array([[3.0], [4.0]])})
    [1.0, 2.0, 3.0, 4.0]
    """
    out = flatten(tree, True)[0]
    kinds = set(map(type, out))  # (one pass in C: a model's leaves are all floats)
    if kinds != _FLOATS and any(c.__module__ == "numpy" for c in kinds):
        import numpy

        out = [y for x in out for y in (
            numpy.asarray(x).reshape(-1).tolist()  # (an np.matrix's tolist() nests)
            if x.__class__.__module__ == "numpy" and getattr(x, "ndim", 0) else (x,))]
    return out


def per_example(tree: Any) -> Any:
    """``tree`` with every ``vmap`` result in it (a ``Batched``) replaced by the
    tuple of its examples, so each example is its own leaf, as the Python loop
    would have it.

    >>> per_example({"a": (1.0, 2.0)})
    {'a': (1.0, 2.0)}
    """
    try:
        return _per_example(tree)
    except RecursionError:
        raise _too_deep(tree) from None


def _per_example(tree: Any) -> Any:
    if getattr(tree, "__fm_examples__", False):
        return tuple(_per_example(e) for e in tree)
    node = _node_of(tree)
    if node is None:
        return tree
    kind, children, meta = node
    return _rebuild(kind, meta, [_per_example(c) for c in children])


def structure(tree: Any, examples: bool = False) -> TreeDef:
    """The ``TreeDef`` of ``tree`` (``examples``: see ``flatten``).

    >>> structure((1.0, {"a": 2.0}))
    tuple(*, dict{'a': *})
    """
    return flatten(tree, examples)[1]


def _first_difference(a: TreeDef, b: TreeDef, path: tuple) -> tuple[tuple, str, str] | None:
    def describe(t: TreeDef) -> str:
        if t.kind is None:
            return "a leaf"
        if t.kind in (dict, PMap):
            return f"{t.kind.__name__} with keys {list(t.meta)}"
        return f"{t.kind.__name__} of {len(t.children)} children"

    stack = [(a, b, path)]  # (iteratively: any depth flatten takes)
    while stack:
        a, b, path = stack.pop()
        if (_PERSISTENT.get(a.kind, a.kind) != _PERSISTENT.get(b.kind, b.kind)
                or a.meta != b.meta or len(a.children) != len(b.children)):
            da, db = describe(a), describe(b)
            if da == db:  # alike but for their metadata (a registered node's aux data)
                da, db = f"{da} and metadata {a.meta!r}", f"{db} and metadata {b.meta!r}"
            return path, da, db
        if a.kind is not None:
            keys = _child_keys(a.kind, a.meta, len(a.children))
            stack.extend((ca, cb, path + (k,)) for ca, cb, k in
                         reversed(list(zip(a.children, b.children, keys))))
    return None


def check_same(first: TreeDef, other: TreeDef, what: str = "tree.map",
               names: tuple[str, str] = ("the first tree", "the other")) -> None:
    """Raise ``ValueError`` naming the first path where two structures differ
    (a dict matches a ``PMap`` and a list a ``PVector``); ``names`` say what
    the two trees are.

    >>> check_same(structure((1.0, 2.0)), structure((3.0,)))
    Traceback (most recent call last):
    ValueError: tree.map: tree structures differ at <root>: ...
    """
    found = _first_difference(first, other, ())
    if found is not None:
        path, da, db = found
        raise ValueError(f"{what}: tree structures differ at {keystr(path)}: {names[0]} "
                         f"has {da}, {names[1]} has {db}.\n  first:  {first!r}\n  other:  "
                         f"{other!r}")


def map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply ``f`` leaf-wise; ``rest`` must have the same structure as ``tree``
    (a dict matches a ``PMap`` and a list a ``PVector``, so parameters combine
    with their persistent gradients). The result has ``tree``'s types.

    >>> map(lambda a, b: a + b, (1.0, [2.0]), (10.0, [20.0]))
    (11.0, [22.0])
    """
    return _map(f, tree, rest)


def persistent(td: TreeDef) -> TreeDef:
    """The same structure with dicts as ``PMap`` and lists as ``PVector``.

    >>> persistent(structure({"a": [1.0]}))
    PMap{'a': PVector(*)}
    """
    try:
        return _persistent(td)
    except RecursionError:  # (a bare RecursionError named no fix)
        raise too_deep("fm.tree: the tree is") from None


def _persistent(td: TreeDef) -> TreeDef:
    if td.kind is None:
        return td
    children = []  # (a loop, not a generator: one frame per level)
    for c in td.children:
        children.append(_persistent(c))
    return TreeDef(_PERSISTENT.get(td.kind, td.kind), td.meta, tuple(children))


_PERSISTENT: dict = {dict: PMap, list: PVector}


from .pytree_map import map_trees as _map  # noqa: E402 -- it builds on the functions above
