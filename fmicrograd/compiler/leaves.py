"""How ``fm.jit`` sees each leaf of a call: a number (``SCALAR``, one entry of
the input vector), a numeric array, a node of an enclosing transform
(``EXPR``), or a static value, part of the cache key by ``static_key`` (by
value where it cannot change unseen, by identity where it is a stateless
object, refused where a compiled call could not see it change).

>>> import numpy as np
>>> classify(2.0) is SCALAR, classify(np.zeros(3))[0], classify("relu")[0]
(True, 'array', 'static')
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import io
import math  # noqa: F401 -- a doctest uses it
import numbers
import random
import types
from typing import Any

import numpy as np
from pyrsistent import PMap, PVector

from ..core import pytree as tr
from ..core.expr import Expr
from ..core.numeric import inexact_int, inexact_ints

__all__ = ["SCALAR", "EXPR", "classify", "static_key", "exact", "kind_key", "registered_metas"]

SCALAR = "scalar"


EXPR = "expr"


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


_VALUES_VIEW: type = type({}.values())


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
