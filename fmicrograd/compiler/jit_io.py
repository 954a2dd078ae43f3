"""Fast entry and exit for compiled functions: generated code per structure.

Flattening a pytree generically costs about a microsecond per leaf, more
than a compiled step itself. For each argument structure it has seen,
``fm.jit`` generates a *matcher*: straight-line code that checks a call has
exactly that structure (container types, lengths, keys, static values) and
collects its leaves, returning None on any difference. Outputs are rebuilt
by one generated expression per output structure (a *builder*).

>>> import numpy as np
>>> args = ((1.0, (2.0, 3.0)), np.zeros(2))
>>> leaves, treedef = fm.tree.flatten((args, {}))
>>> match = matcher(treedef, [classify(x) for x in leaves], {}, 2)
>>> match(args, {})
([array([1., 2., 3.])], [array([0., 0.])])
>>> match(((1.0, [2.0, 3.0]), np.zeros(2)), {}) is None  # a list, not a tuple
True
>>> builder(fm.tree.structure((1.0, [2.0], {"a": None})))([5.0, 6.0])
(5.0, [6.0], {'a': None})
"""

from __future__ import annotations

import dataclasses
import itertools
import math  # noqa: F401 -- a doctest uses it
import threading
from collections import OrderedDict
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np
from pyrsistent import PMap, PVector

from ..core import pytree as tr
from ..core.expr import Expr, traced_variables
from ..core.numeric import inexact_ints
from .codegen import Source
from .leaves import (  # noqa: F401 -- (imported from here too)
    EXPR,
    SCALAR,
    _typed_key,
    classify,
    exact,
    kind_key,
    registered_metas,
    static_key,
)

__all__ = ["classify", "kind_key", "matcher", "builder", "variables", "immutable", "Structures",
           "SCALAR", "EXPR", "static_key"]

_MAX_DEPTH = 60  # deeper trees use the generic (slower) functions



def _odd(leaves: list) -> bool:
    """Whether a leaf among these numbers is one the generated match leaves to
    a fresh call: a bool, a numpy bool, an array (a 0-d one is a number, but
    mutable: a match may skip an argument it has seen, see ``matcher``),
    another library's array, an integer a float64 would round. (Raises
    ``classify``'s TypeError, which a matcher takes as no match, for a leaf
    ``fm.jit`` refuses.)

    >>> _odd([1.0, 2, np.float32(3.0)]), _odd([1.0, np.array(2.0)]), _odd([2 ** 60])
    (False, True, True)
    """
    return any(x.__class__ is not float and (isinstance(x, np.ndarray) or
                                             classify(x) != SCALAR) for x in leaves)


def variables(value: Any, level: int, inputs: list) -> np.ndarray:
    """An object array shaped like ``value`` of fresh variables at ``level``
    holding its entries (appended to ``inputs`` in row-major order): how a
    traced function sees a numeric array argument.

    >>> inputs = []
    >>> a = variables(np.array([[1.0, 2.0]]), 0, inputs)
    >>> a.shape, a[0, 1].value, len(inputs)
    ((1, 2), 2.0, 2)
    """
    flat = np.asarray(value).reshape(-1)
    made = traced_variables(flat.tolist() if flat.dtype == np.float64 else  # (floats already)
                            [float(x) for x in flat.tolist()], level)
    inputs += made
    obj = np.empty(len(made), dtype=object)
    obj[:] = made
    return obj.reshape(np.shape(value))


def _depth(td: tr.TreeDef) -> int:
    """How deeply ``td`` nests (iteratively: a tree deeper than the recursion
    limit is one the generated matcher leaves to the general path)."""
    # a child without children (a leaf) is 1 deep: not visited (20k leaves in a large MLP)
    deepest, stack = 0, [(td, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth + (1 if node.children else 0))
        stack.extend((c, depth + 1) for c in node.children if c.children)
    return deepest


def immutable(td: tr.TreeDef) -> bool:
    """Whether every container of structure ``td`` is immutable (tuples,
    NamedTuples, frozen dataclasses, ``PMap``, ``PVector``, pytree nodes
    registered with ``immutable=True`` such as ``fm.nn``'s): then an object of
    that structure that ``fm.jit`` built itself still holds the leaves it was
    built with, whenever it comes back.

    >>> immutable(fm.tree.structure((1.0, (2.0,)))), immutable(fm.tree.structure([1.0]))
    (True, False)
    """
    stack = [td]  # (without recursion: a tree nested 500 deep is a RecursionError there)
    while stack:
        td = stack.pop()
        kind = td.kind
        if kind is None or kind is type(None):
            continue
        if kind in tr._registry:
            ok = kind in tr._immutable
        else:
            params = getattr(kind, "__dataclass_params__", None)
            # (a tuple subclass with a __dict__, a NamedTuple's subclass, takes attributes)
            ok = kind in (tuple, PMap, PVector) or (
                issubclass(kind, tuple) and not kind.__dictoffset__) or (
                params is not None and params.frozen)
        if not ok:
            return False
        stack.extend(td.children)
    return True


def _plain_items(value: Any) -> bool:
    """Whether static ``value`` is a tuple or frozenset of plain numbers and
    strings, which the same object always keys alike (the matcher then skips
    building its key for it: 9 ms a call for a tuple of 10,000 indices)."""
    return value.__class__ in (tuple, frozenset) and \
        all(v.__class__ in (int, float, str, bool) for v in value)


def matcher(treedef: tr.TreeDef, kinds: list, static: dict, nargs: int,
            known: dict | None = None, order: tuple | None = None) -> Callable:
    """``match(args, kwargs) -> (scalar segments, array leaves)`` or None, for
    calls whose dynamic part ``(positional args without the static ones,
    kwargs)`` has ``treedef`` with leaves of ``kinds``, ``nargs`` positional
    arguments and static arguments ``static`` (position -> value). The scalar
    leaves come as float64 vectors, one per argument that has any.

    ``known`` maps an argument position to ``(obj, vector)``: an immutable
    pytree of numbers (tuples, NamedTuples, frozen dataclasses, ``fm.nn``
    models) that ``fm.jit`` returned earlier or that was last passed at that
    position, and its leaves. An argument that *is* that object is not walked
    again: a training loop's parameters, and a dataset of tuples passed on
    every step. (The last such argument at each position stays referenced.)
    ``order`` is the keyword arguments' names in the order of the call (None:
    any order).

    >>> leaves, td = fm.tree.flatten(((1.0,), {}))
    >>> match = matcher(td, ["scalar"], {1: "x"}, 2)
    >>> match((2.0, "x"), {}), match((2.0, "y"), {})
    (([array([2.])], []), None)
    """
    if _depth(treedef) > _MAX_DEPTH:
        return _generic_matcher(treedef, kinds, static, nargs, order)
    src = Source()
    segments: list[str] = []
    arrays: list[str] = []
    counter = iter(range(10 ** 9))
    it = iter(kinds)
    body = Source()
    body.names = src.names
    body._ids = src._ids
    body.emit(f"if len(args) != {nargs}: return None")
    for i, value in static.items():
        if not exact(value):  # by bits and item types (static_key)
            same = f"args[{i}] is not {src.name(value)} and (" if _plain_items(value) else "("
            body.emit(f"if {same}args[{i}].__class__ is not {src.name(type(value))} or "
                      f"_key(args[{i}]) != {src.name(static_key(value))}): return None")
            continue
        body.emit(f"if args[{i}].__class__ is not {src.name(type(value))} or "
                  f"args[{i}] != {src.name(value)}: return None")
    dyn, kw = treedef.children
    positions = [i for i in range(nargs) if i not in static]
    for i, td in zip(positions, dyn.children):
        _argument(body, td, f"args[{i}]", i, it, segments, arrays, counter, known)
    if kw.children:
        if order is not None:  # the names in the call's order (f(**kw) may read it)
            body.emit(f"if tuple(kwargs) != {src.name(order)}: return None")
        else:
            body.emit(f"if kwargs.keys() != {src.name(frozenset(kw.meta))}: return None")
        for key, td in zip(kw.meta, kw.children):
            _argument(body, td, f"kwargs[{src.name(key)}]", None, it, segments, arrays,
                      counter, None)
    else:
        body.emit("if kwargs: return None")
    src.emit("try:")
    src.lines += ["    " + line for line in body.lines]
    src.emit("except (TypeError, ValueError, AttributeError, KeyError, IndexError):")
    src.emit("    return None")
    src.emit(f"return [{', '.join(segments)}], [{', '.join(arrays)}]")
    return src.build("args, kwargs", {"_K": known if known is not None else {},
                                      "_array": np.array, "_fromiter": np.fromiter,
                                      "_f64": np.dtype(float), "_key": static_key,
                                      "_type": type, "_float": float, "_odd": _odd})


def _argument(src: Source, td: tr.TreeDef, var: str, pos: int | None, kinds: Any,
              segments: list, arrays: list, counter: Any, known: dict | None) -> None:
    """Code matching one argument: its scalar leaves become one float64 vector
    ``s<n>``; a known object (see ``matcher``) skips the walk."""
    count = td.num_leaves
    mine = [next(kinds) for _ in range(count)]
    scalars: list[str] = []
    inner = Source()
    inner.names, inner._ids = src.names, src._ids
    name = f"a{next(counter)}"
    inner.emit(f"{name} = {var}")
    _gen(inner, td, name, iter(mine), scalars, arrays, counter)
    if not scalars:
        src.lines += inner.lines
        return
    seg = f"s{next(counter)}"
    segments.append(seg)
    inner.emit(f"{seg} = [{', '.join(scalars)}]")
    # numpy reads a bool or a 0-d array among floats as a float; a fresh call would not
    inner.emit(f"if [*map(_type, {seg})].count(_float) == len({seg}):")  # all floats
    inner.emit(f"    {seg} = _fromiter({seg}, _f64, len({seg}))")  # 1.5x np.array's speed
    inner.emit("else:")
    inner.emit(f"    if _odd({seg}): return None")
    inner.emit(f"    {seg} = _array({seg})")
    inner.emit(f"    if {seg}.dtype != _f64 or {seg}.ndim != 1:")
    inner.emit(f"        if {seg}.dtype.kind not in 'iu' or {seg}.ndim != 1: return None")
    inner.emit(f"        {seg} = {seg}.astype(_f64)")
    if known is None or pos is None or any(k != SCALAR for k in mine) or not immutable(td):
        src.lines += inner.lines
        return
    src.emit(f"k = _K.get({pos})")
    src.emit(f"if k is not None and k[0] is {var}:")
    src.emit(f"    {seg} = k[1]")
    src.emit("else:")
    src.lines += ["    " + line for line in inner.lines]
    # walked once: the same object, passed again, is not (its leaves cannot change)
    src.emit(f"    _K[{pos}] = ({var}, {seg})")


def _gen(src: Source, td: tr.TreeDef, var: str, kinds: Any, scalars: list, arrays: list,
         counter: Any) -> None:
    kind = td.kind
    if kind is None:
        leaf = next(kinds)
        if leaf == SCALAR:
            scalars.append(var)
        elif leaf[0] == "array":
            src.emit(f"if {var}.__class__ is not _ndarray or {var}.shape != {leaf[1]!r} or "
                     f"{var}.dtype != {src.name(leaf[2])}: return None")
            if leaf[2].kind in "iu":  # entries a float64 would round: classify says why
                src.emit(f"if _big({var}): return None")
                src.names["_big"] = inexact_ints
            src.names["_ndarray"] = np.ndarray
            arrays.append(var)
        elif exact(leaf[2]):
            src.emit(f"if {var}.__class__ is not {src.name(leaf[1])} or "
                     f"{var} != {src.name(leaf[2])}: return None")
        else:  # told apart by static_key (a -0.0 inside, 1 against True)
            src.emit(f"if {var}.__class__ is not {src.name(leaf[1])} or "
                     f"_key({var}) != {src.name(static_key(leaf[2]))}: return None")
        return
    if kind is type(None):
        src.emit(f"if {var} is not None: return None")
        return
    cls = src.name(kind)
    if kind in (PMap, PVector):
        src.emit(f"if not isinstance({var}, {cls}): return None")
    else:
        src.emit(f"if {var}.__class__ is not {cls}: return None")
    kinds = _rows(src, td, var, kinds, scalars, counter)
    if kinds is None:  # (matched by a loop over its rows)
        return
    if (kind is tuple or kind is list or kind is PVector) and td.children and all(
            c.kind is None for c in td.children):
        run = [next(kinds) for _ in td.children]
        if all(k == SCALAR for k in run):  # a run of numbers: one star-unpacking
            src.emit(f"if len({var}) != {len(run)}: return None")
            scalars.append(f"*{var}")
            return
        kinds = iter(run)
    names = [f"n{next(counter)}" for _ in td.children]
    if kind in (dict, PMap):
        src.emit(f"if len({var}) != {len(names)}: return None")
        for n, key in zip(names, td.meta):
            src.emit(f"{n} = {var}[{src.name(key)}]")
    elif kind in tr._registry:
        src.emit(f"_ch, _m = {src.name(tr._registry[kind][0])}({var})")
        # (by type and bits, as static values: 1 == True and 0.0 == -0.0 in Python; a str
        # or None, fm.nn's, by its class: a check per neuron on every call)
        if exact(td.meta):
            src.emit(f"if _m.__class__ is not {src.name(td.meta.__class__)} or "
                     f"_m != {src.name(td.meta)}: return None")
        else:
            src.emit(f"if _m != {src.name(td.meta)} or _typed_key(_m) != "
                     f"{src.name(_typed_key(td.meta))}: return None")
            src.names["_typed_key"] = _typed_key
        src.emit(f"{''.join(n + ', ' for n in names)}= _ch" if names else
                 "if len(tuple(_ch)): return None")
    elif dataclasses.is_dataclass(kind):
        if getattr(kind, "__dictoffset__", 0):  # an attribute besides the fields: no match
            # (flattening it again raises the TypeError ``fm.tree`` gives for it; a
            # cached_property's value is one fm.tree takes, and so is the match)
            src.emit(f"if len({var}.__dict__) != {len(td.meta)} and _extra({var}): "
                     "return None")
            src.names["_extra"] = tr.extra_attributes
        for n, field in zip(names, td.meta):
            src.emit(f"{n} = {var}.{field}")
    elif names:
        if getattr(kind, "__dictoffset__", 0) and hasattr(kind, "_fields"):  # a NamedTuple
            src.emit(f"if {var}.__dict__: return None")  # subclass's attribute: as above
        src.emit(f"{''.join(n + ', ' for n in names)}= {var}")
    else:
        src.emit(f"if len({var}): return None")
    for n, child in zip(names, td.children):
        _gen(src, child, n, kinds, scalars, arrays, counter)


_LOOP = 64  # rows of numbers (a dataset's points) from which the matcher loops over them


def _rows(src: Source, td: tr.TreeDef, var: str, kinds: Any, scalars: list,
          counter: Any) -> Any:
    """Code matching a tuple or list of ``_LOOP`` or more rows of numbers of one
    length and container type (a dataset as ``(x1, x2)`` points) as a loop over
    them, returning None; else nothing is emitted, and the kinds to go on with
    are returned. Unrolled, each row was a line of generated code: 12 KB and
    50 us of ``compile`` a point, and a ``MemoryError`` at 250,000 points (a
    helper's probe, round 47)."""
    kind, rows = td.kind, td.children
    if (kind is not tuple and kind is not list) or len(rows) < _LOOP:
        return kinds
    first = rows[0]
    if first.kind not in (tuple, list) or not first.children or any(
            c.kind is not None for c in first.children) or any(r != first for r in rows):
        return kinds
    width = len(first.children)
    run = [next(kinds) for _ in range(len(rows) * width)]
    if any(k != SCALAR for k in run):  # (an array or a static leaf among them: unrolled)
        return itertools.chain(run, kinds)
    row, flat = f"n{next(counter)}", f"n{next(counter)}"
    src.emit(f"if len({var}) != {len(rows)}: return None")
    src.emit(f"for {row} in {var}:")
    src.emit(f"    if {row}.__class__ is not {src.name(first.kind)} or len({row}) != {width}: "
             "return None")
    src.emit(f"{flat} = [_v for {row} in {var} for _v in {row}]")
    scalars.append(f"*{flat}")
    return None


NUMPY_TYPES = (np.ndarray, np.generic)  # (what ``own_numbers`` copies)


def has_numpy(args: tuple, kwargs: dict) -> bool:
    """Whether ``args`` or ``kwargs`` hold a numpy array or number (numbers
    and nodes at the top are passed over without a walk).

    >>> has_numpy((1.0, (2.0, np.float64(3.0))), {}), has_numpy((1.0, 2), {})
    (True, False)
    """
    for x in chain(args, kwargs.values()):
        if x.__class__ is float or x.__class__ is int or isinstance(x, Expr):
            continue
        if isinstance(x, NUMPY_TYPES) or any(isinstance(v, NUMPY_TYPES) for v in tr.leaves(x)):
            return True
    return False


def own_numbers(args: tuple, kwargs: dict, static: Any) -> tuple:
    """``args`` and ``kwargs`` with their numpy arrays (a memmap too) as
    copies and numpy numbers as Python's, outside the ``static`` positions:
    floats as float64, ints as int64 (``uint64`` as it is) and numpy ints
    as Python ints, so that nothing wraps around (``uint8``) and a count or
    an index still is one, where ``jit`` runs the function as Python.

    >>> a = np.array([254, 4], dtype=np.uint8)
    >>> own_numbers((a, np.int8(127), np.float32(0.5)), {}, ())
    ((array([254,   4]), 127, 0.5), {})
    """
    def own(leaf: Any) -> Any:
        if not isinstance(leaf, NUMPY_TYPES):
            return leaf
        kind = leaf.dtype.kind
        if isinstance(leaf, np.ndarray):
            if kind == "f":
                return np.array(leaf, dtype=float)
            if kind == "i" or (kind == "u" and leaf.dtype.itemsize < 8):
                return np.array(leaf, dtype=np.int64)
            return np.array(leaf) if kind in "ub" else leaf  # (others: refused before)
        if kind == "f":
            return float(leaf)
        return int(leaf) if kind in "iu" else leaf

    if all(isinstance(x, NUMPY_TYPES) or x.__class__ in (float, int) or isinstance(x, Expr)
           for x in chain(args, kwargs.values())):  # (leaves only: no walk)
        return (tuple(a if i in static else own(a) for i, a in enumerate(args)),
                {k: own(v) for k, v in kwargs.items()})
    def owned(x: Any) -> Any:  # (an argument without numpy numbers as it is: not rebuilt)
        if x.__class__ is float or x.__class__ is int or isinstance(x, Expr):
            return x
        if isinstance(x, NUMPY_TYPES):
            return own(x)
        return tr.map(own, x) if any(isinstance(v, NUMPY_TYPES) for v in tr.leaves(x)) else x

    return (tuple(a if i in static else owned(a) for i, a in enumerate(args)),
            {k: owned(v) for k, v in kwargs.items()})


def _generic_matcher(treedef: tr.TreeDef, kinds: list, static: dict, nargs: int,
                     order: tuple | None = None) -> Callable:
    keyed = [kind_key(k) for k in kinds]

    def match(args: tuple, kwargs: dict) -> Any:
        if order is not None and len(order) > 1 and tuple(kwargs) != order:
            return None
        if len(args) != nargs or any(
                type(args[i]) is not type(v) or static_key(args[i]) != static_key(v)
                for i, v in static.items()):
            return None
        dyn = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, td = tr.flatten((dyn, kwargs))
        if not tr.equal(td, treedef) or [kind_key(classify(x)) for x in leaves] != keyed:
            return None
        return ([np.array([float(x) for x, k in zip(leaves, kinds) if k == SCALAR])],
                [x for x, k in zip(leaves, kinds) if k not in (SCALAR, EXPR) and
                 k[0] == "array"])

    return match


def builder(treedef: tr.TreeDef) -> Callable:
    """``build(leaves) -> tree`` of structure ``treedef``.

    >>> builder(fm.tree.structure({"a": (1.0, 2.0)}))([3.0, 4.0])
    {'a': (3.0, 4.0)}
    """
    if _depth(treedef) > _MAX_DEPTH:
        return lambda leaves: tr.unflatten(treedef, leaves)
    src = Source()
    counter = iter(range(10 ** 9))
    src.emit(f"return {_expr(src, treedef, counter)}")
    return src.build("L", {"_rebuild": tr._rebuild, "_tuple": tuple})


def _expr(src: Source, td: tr.TreeDef, counter: Any) -> str:
    kind = td.kind
    if kind is None:
        return f"L[{next(counter)}]"
    if kind is type(None):
        return "None"
    if (kind is tuple or kind is list) and len(td.children) > 2 and all(
            c.kind is None for c in td.children):  # a run of leaves: one slice (``tuple()``
        # of it is one copy fewer than ``(*L[a:b],)``, 16 -> 13 us for an MLP's 4,418 floats)
        a = next(counter)
        for _ in td.children[1:]:
            b = next(counter)
        return f"_tuple(L[{a}:{b + 1}])" if kind is tuple else f"L[{a}:{b + 1}]"
    parts = [_expr(src, c, counter) for c in td.children]
    if kind is tuple:
        return "(" + "".join(p + ", " for p in parts) + ")"
    if kind is list:
        return "[" + ", ".join(parts) + "]"
    if kind is dict:
        return "{" + ", ".join(f"{src.name(k)}: {p}" for k, p in zip(td.meta, parts)) + "}"
    if kind in tr._registry:  # the node's own unflatten, called directly
        args = "".join(p + ", " for p in parts)
        return f"{src.name(tr._registry[kind][1])}({src.name(td.meta)}, ({args}))"
    return f"_rebuild({src.name(kind)}, {src.name(td.meta)}, [{', '.join(parts)}])"


class Structures:
    """A compiled function's entries, one per input structure, at most
    ``limit`` (the least recently used goes). ``order`` is a snapshot of them,
    most recent first, for the hot path: iterating the dict would hash each
    key again, and a key holds the whole argument TreeDef.

    >>> cache = Structures(2)
    >>> [cache.entry(k, lambda k=k: k.upper()) for k in "aba"] + [cache.entry("c", str)]
    ['A', 'B', 'A', '']
    >>> cache.order, len(cache)
    (('', 'A'), 2)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.order: tuple = ()
        self._entries: OrderedDict = OrderedDict()  # key -> entry, most recent last
        self._lock = threading.Lock()

    def entry(self, key: Any, make: Callable[[], Any]) -> Any:
        """The entry for ``key``, made by ``make()`` the first time."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = make()
                if len(self._entries) > self.limit:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
            self.order = tuple(reversed(self._entries.values()))
        return entry

    def get(self, key: Any) -> Any:
        """The entry for ``key``, or None (nothing is made or reordered)."""
        return self._entries.get(key)

    def values(self) -> Any:
        return self._entries.values()

    def __len__(self) -> int:
        return len(self._entries)
