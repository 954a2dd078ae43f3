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
import enum
import functools
import io
import itertools
import math  # noqa: F401 -- a doctest uses it
import numbers
import random
import threading
import types
from collections import OrderedDict
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np
from pyrsistent import PMap, PVector

from ..core import pytree as tr
from ..core.expr import Expr, traced_variables
from ..core.numeric import inexact_int, inexact_ints
from .codegen import Source

__all__ = ["classify", "kind_key", "matcher", "builder", "variables", "immutable", "Structures",
           "SCALAR", "EXPR", "static_key"]

SCALAR = "scalar"
EXPR = "expr"
_MAX_DEPTH = 60  # deeper trees use the generic (slower) functions


def classify(leaf: Any) -> Any:
    """How a jitted function treats an argument leaf: ``SCALAR`` (an input),
    ``("array", shape, dtype)`` (each element an input), ``EXPR`` (an
    enclosing transform's value: the call is not compiled) or ``("static",
    type, value)`` (part of the cache key; must be hashable).

    >>> classify(1.5), classify(np.zeros(2))[0], classify("relu")
    ('scalar', 'array', ('static', <class 'str'>, 'relu'))
    """
    if leaf.__class__ is float:  # the usual leaf, without the ABC checks below
        return SCALAR
    if isinstance(leaf, Expr):
        return EXPR
    if isinstance(leaf, enum.Enum):  # an IntEnum is an int, but code asks `m is Mode.A`
        return ("static", type(leaf), leaf)
    if isinstance(leaf, np.ndarray) and leaf.__class__ not in (np.ndarray, np.memmap):
        raise TypeError(f"fm.jit: an argument leaf is a {type(leaf).__name__}, a numpy array "
                        "subclass whose meaning (a mask, a unit) the compiled code would drop; "
                        "pass np.asarray(x) (or x.filled(...) for a masked array)")
    if isinstance(leaf, memoryview) and not leaf.readonly:  # (static, it was hashed: "cannot
        # hash writable memoryview"; a read-only one is a static value, as bytes are)
        raise TypeError("fm.jit: an argument leaf is a memoryview; pass np.asarray(x) (its "
                        "numbers are then traced, as an array's are) or bytes(x) for a static "
                        "value")
    if isinstance(leaf, (int, np.integer)) and not isinstance(leaf, bool) and inexact_int(leaf):
        return ("static", type(leaf), leaf)  # a float64 would round it: the exact value
    if isinstance(leaf, numbers.Real) and not isinstance(leaf, bool):
        return SCALAR
    if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "fiu":
        if inexact_ints(leaf):
            raise TypeError("fm.jit: an integer array argument has an entry beyond 2**53, "
                            "which the compiled float64 code would round; pass a tuple of "
                            "ints (exact, part of the compiled function's key) instead")
        # a 0-d array (``tensor.numpy()`` of one number) is one number
        return ("array", leaf.shape, leaf.dtype) if leaf.ndim else SCALAR
    if isinstance(leaf, np.ndarray) and leaf.dtype == object and \
            any(isinstance(x, Expr) for x in leaf.flat):  # nodes (debug_nans): not compiled
        return EXPR
    _refuse(leaf)
    try:
        hash(leaf)
    except TypeError:
        raise TypeError(f"fm.jit: an argument leaf of type {type(leaf).__name__} is neither "
                        "a number, a numeric array nor hashable; non-numeric leaves are part "
                        "of the compiled function's key and must be hashable") from None
    if type(leaf).__name__ == "Deferred" and type(leaf).__module__.startswith("fmicrograd."):
        raise TypeError("fm.jit: an argument leaf is a jitted function's .deferred output "
                        "inside a container: pass it as a whole argument, or its .get()")
    if _changes_as_used(leaf):
        raise TypeError(f"fm.jit: an argument leaf is a {type(leaf).__name__}, an object "
                        "whose state changes as it is used (a random generator, an iterator, "
                        "a view of a dict): the compiled code would replay what it gave at "
                        "the trace on every call. Draw the numbers outside the jitted "
                        "function and pass them in (a float, an array), or use fm.random "
                        "keys")
    if _by_identity(leaf):
        name = type(leaf).__name__
        raise TypeError(f"fm.jit: an argument leaf is a {name} object, which Python hashes by "
                        "identity: the compiled code would be keyed on the object and keep the "
                        "values it read from its attributes at the trace, even after they "
                        f"change. Make {name} a dataclass (fm.jit then reads its number fields "
                        "on every call) or register it with fm.tree.register; or, if it never "
                        "changes, give it __eq__ and __hash__ over its contents")
    _check_callable(leaf)
    return ("static", type(leaf), leaf)


def _check_callable(leaf: Any) -> None:
    """A TypeError naming the fix for a bound method or ``functools.partial``
    whose state could change between calls while its key stays the same: a
    method of an object hashed by identity (``obj.scale`` reads ``obj.k``),
    or a partial holding an array, a list, a dict or such an object. Their
    numbers would stay those of the trace.

    >>> _check_callable(functools.partial(max, 1.0))  # numbers: part of the key
    >>> _check_callable(functools.partial(max, np.zeros(2)))
    Traceback (most recent call last):
    ...
    TypeError: fm.jit: an argument leaf is a functools.partial holding a numpy array ...
    """
    if isinstance(leaf, (types.BuiltinMethodType, types.MethodWrapperType)):
        what = _mutable(getattr(leaf, "__self__", None))  # (d.get, arr.dot: their object's
        if what is not None:                               # numbers would stay the trace's)
            raise TypeError(f"fm.jit: an argument leaf is the method {leaf.__name__} of {what}, "
                            "which can change while the method stays equal: the compiled code "
                            "would keep the numbers of the trace. Pass the object itself as "
                            "an argument instead")
        return
    if isinstance(leaf, types.MethodType):
        owner = leaf.__self__
        if not isinstance(owner, type) and (_by_identity(owner) or type(owner).__hash__ is None):
            # (an unhashable owner, a plain dataclass: equal by contents that can change)
            name, method = type(owner).__name__, leaf.__func__.__name__
            raise TypeError(f"fm.jit: an argument leaf is the bound method {name}.{method}, "
                            "whose object can change while the method stays equal (Python "
                            "hashes it by identity, or not at all): the compiled "
                            "code would keep the values the method read from the object's "
                            "attributes at the trace, even after they change. Pass the numbers "
                            "it reads as arguments (the object as a dataclass, which fm.jit "
                            f"reads on every call), or make {name} hash by its contents")
        return
    if isinstance(leaf, functools.partial):
        for held in (leaf.func, *leaf.args, *leaf.keywords.values()):
            what = _mutable(held)
            if what is not None:
                raise TypeError(f"fm.jit: an argument leaf is a functools.partial holding {what}"
                                " ..., which can change while the partial stays the same "
                                "object: the compiled code would keep the numbers of the trace."
                                " Pass it as an argument of the jitted function instead")
            _check_callable(held)


def _mutable(x: Any) -> str | None:
    """What a partial holds that can change in place (None: nothing)."""
    if isinstance(x, np.ndarray):
        return "a numpy array"
    if isinstance(x, (list, dict, set, bytearray)):
        return f"a {type(x).__name__}"
    if _by_identity(x):
        return f"a {type(x).__name__} object (hashed by identity)"
    if type(x).__hash__ is None:
        return f"a {type(x).__name__} object (unhashable: its contents can change)"
    return None


def _by_identity(leaf: Any) -> bool:
    """Whether ``leaf`` is an instance of a Python class that is hashed by
    identity and holds attributes (that may change in place): a ``self``, a
    config or parameter object. Functions, classes, modules, enums and objects
    with value equality are keyed safely."""
    return _identity_type(type(leaf)) and not _stateless(leaf)


def _changes_as_used(leaf: Any) -> bool:
    """Whether ``leaf`` is an object of a built-in (C) type, hashed by
    identity, whose state changes as it is used or behind it: an iterator or
    generator, numpy's random generators, a dict's values view (round 35's
    probe: ``rng.standard_normal()`` gave the trace's number at every call).
    A Python class's instances are ``_by_identity``'s."""
    t = type(leaf)
    if isinstance(leaf, _RANDOM_STATES):
        return True
    if t.__hash__ is not object.__hash__ or t.__flags__ & tr._HEAPTYPE or \
            isinstance(leaf, io.IOBase):  # (a file to print to: static, as before)
        return False
    return hasattr(t, "__next__") or t is _VALUES_VIEW


_RANDOM_STATES = (np.random.Generator, np.random.RandomState, np.random.BitGenerator,
                  random.Random)
_VALUES_VIEW: type = type({}.values())


def _identity_type(t: type) -> bool:
    """Whether instances of ``t``, a Python class, are hashed by identity."""
    return t.__hash__ is object.__hash__ and bool(t.__flags__ & tr._HEAPTYPE)


def _stateless(leaf: Any) -> bool:
    """Whether ``leaf`` holds no attribute of its own now (an empty
    ``__dict__``, no slot set): a token, or a ``self`` whose class holds
    the defaults. It is static while it stays so (``static_key``)."""
    if getattr(leaf, "__dict__", None):
        return False
    return not any(hasattr(leaf, name) for name in _slot_names(type(leaf)))


def _slot_names(t: type) -> tuple[str, ...]:
    """The attribute names of ``t``'s slots (a str ``__slots__`` is one name;
    ``__x`` is stored mangled, ``_Class__x``)."""
    names = []
    for k in t.__mro__:
        slots = getattr(k, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):
                name = f"_{k.__name__.lstrip('_')}{name}"
            names.append(name)
    return tuple(names)


def _refuse(leaf: Any) -> None:
    """A TypeError naming the fix for a leaf that looks like numbers but that
    ``fm.jit`` cannot read as inputs: a bool, complex or other non-numeric
    numpy array, or another library's array (a torch tensor, whose hash is its
    identity, would become part of the key, its numbers frozen in). A complex
    number stays a static leaf, as other hashable values do."""
    if isinstance(leaf, np.ndarray) and leaf.dtype != object:
        what = f"a numpy array of dtype {leaf.dtype} (shape {leaf.shape})"
        if leaf.dtype.kind == "b":
            raise TypeError(f"fm.jit: an argument leaf is {what}; the compiled code computes "
                            "with float64 numbers: pass mask.astype(float) and select with "
                            "fm.where(m > 0.5, a, b), or, for a mask that seldom changes, a "
                            "tuple of bools (tuple(mask.tolist()), part of the key)")
        raise TypeError(f"fm.jit: an argument leaf is {what}; fm computes with real float64 "
                        "numbers: pass a float array (a.real, or a.astype(float))")
    if not isinstance(leaf, (np.ndarray, np.generic)) and (
            hasattr(leaf, "__array__") or hasattr(leaf, "__dlpack__")):
        kind = f"{type(leaf).__module__.split('.')[0]}.{type(leaf).__name__}"
        raise TypeError(f"fm.jit: an argument leaf is a {kind}; fm.jit reads Python numbers "
                        "and numpy arrays, and would freeze this array's numbers into the "
                        "compiled code: pass np.asarray(x) (x.numpy() for a torch tensor), or "
                        "float(x) for one number")


def static_key(value: Any) -> Any:
    """``value`` as a compiled function's key: equal keys for equal static
    arguments, except that floats are told apart by their bits (``0.0`` and
    ``-0.0`` may give different results; a NaN equals itself) and numbers by
    their types (``1``, ``1.0`` and ``True`` are equal in Python), inside
    tuples, frozensets, mappings and frozen dataclasses too.

    >>> static_key(-0.0) == static_key(0.0), static_key((float("nan"),)) == static_key((math.nan,))
    (False, True)
    """
    if value.__class__ is float:
        return ("f", value.hex())
    if exact(value):
        return value
    if isinstance(value, range):  # range(0) == range(5, 5): equal when empty, not alike
        return (range, value.start, value.stop, value.step)
    if isinstance(value, (float, np.floating)):
        return ("f", type(value), float(value).hex())
    if isinstance(value, complex):
        return ("c", value.real.hex(), value.imag.hex())
    if isinstance(value, tuple):  # items by type too: (0,) == (0.0,) == (False,) in Python
        return (type(value), tuple(map(_typed_key, value)))
    if isinstance(value, frozenset):
        return (type(value), frozenset(map(_typed_key, value)))
    if isinstance(value, PMap):
        return (type(value), frozenset((_typed_key(k), _typed_key(v)) for k, v in value.items()))
    if isinstance(value, PVector):
        return (type(value), tuple(map(_typed_key, value)))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value), tuple(_typed_key(getattr(value, f.name))
                                   for f in dataclasses.fields(value)))
    if isinstance(value, numbers.Number):  # another kind of number (Decimal: -0 == 0)
        return ("n", type(value), repr(value))
    if isinstance(value, types.MethodType) and not isinstance(value.__self__, type):
        return (types.MethodType, value.__func__, _held(value.__self__))
    if isinstance(value, functools.partial):  # (hashed by identity: its objects may change)
        return (functools.partial, _Same(value), tuple(map(_held, value.args)),
                tuple((k, _held(v)) for k, v in value.keywords.items()))
    if _empty_by_identity(value):
        # equal while it holds no attribute: one set later (self.k shadowing a class
        # default) makes the call a new one, which classify refuses, naming the fix
        return (_stateless, value)
    return value


class _Same:
    """An object in a key, equal to itself only (O(1), hashable whatever it
    holds: a bound method's model is not walked or hashed at every call)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


def _held(x: Any) -> tuple:
    """What a bound method's or partial's key holds of an object: the object
    by identity, and whether it is still an empty one (see ``static_key``)."""
    return (_Same(x), _empty_by_identity(x))


def _empty_by_identity(x: Any) -> bool:
    return _identity_type(type(x)) and _stateless(x)


def _typed_key(x: Any) -> Any:
    key = static_key(x)
    return key if isinstance(key, tuple) else (type(x), key)


def exact(value: Any) -> bool:
    """Whether ``==`` with a class check tells ``value`` from every other
    static value (a str, an int, a bool, None): otherwise ``static_key``."""
    return value is None or value.__class__ in (str, int, bool, bytes)


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
            body.emit(f"if args[{i}].__class__ is not {src.name(type(value))} or "
                      f"_key(args[{i}]) != {src.name(static_key(value))}: return None")
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


def registered_metas(td: tr.TreeDef) -> tuple:
    """The aux data of the registered pytree nodes in ``td``, by type and bits
    (``static_key``), for a cache key: ``TreeDef`` compares them with ``==``,
    so ``1`` and ``True``, ``0.0`` and ``-0.0`` would share a program.

    >>> registered_metas(fm.tree.structure((1.0, [2.0])))
    ()
    """
    out, stack = [], [td]
    while stack:
        n = stack.pop()
        if n.kind in tr._registry:
            key = _typed_key(n.meta)
            try:
                hash(key)
            except TypeError:
                raise TypeError(
                    f"fm.jit: {n.kind.__name__}'s flatten (fm.tree.register) returned aux "
                    f"data of type {type(n.meta).__name__}, which is not hashable, and jit "
                    "keys its compiled programs on it: return a tuple (or another hashable "
                    "value) as the aux data") from None
            out.append(key)
        stack.extend(c for c in n.children if c.children or c.kind in tr._registry)
    return tuple(out)


def kind_key(kind: Any) -> Any:
    """A leaf's kind as part of a cache key: a static value by ``static_key``
    (``0j`` and ``-0j``, ``frozenset({True})`` and ``frozenset({1})`` are ``==``
    but compute differently), an array by shape and dtype name; other kinds
    (``SCALAR``, ``EXPR``, ``batched_call``'s ``("in", shape)``) as they are.

    >>> kind_key(classify(-0.0j)) == kind_key(classify(0j)), kind_key(SCALAR)
    (False, 'scalar')
    """
    if kind == SCALAR or kind == EXPR or kind[0] not in ("array", "static"):
        return kind
    if kind[0] == "array":
        return ("array", kind[1], str(kind[2]))
    return ("static", kind[1], static_key(kind[2]))


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
