"""What a rule's function holds: graph nodes of a running ``jit`` trace.

``jit`` compiles a call of a ``checkpoint``, ``custom_jvp`` or ``custom_vjp``
function as a replay of the function on the call's argument values
(``CustomRule.forward``). A function that closes over a value ``jit`` traces
would replay with the value the trace saw, not the call's. Where the traced
call's branch used that value, its output shows it and the call is not
replayed (``custom_vjp._closed_over``); where the branch did not, only the
function's own closure tells, and it is read here.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import gc
import numbers
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.control import FREE_OF_VARIABLES, RUNNING, traced
from ..core.expr import Const, Expr

__all__ = ["holds_traced", "holds"]

_LIMIT = 100_000  # objects walked at most; a closure larger than that counts as holding one
_PLAIN = frozenset((float, int, bool, complex, str, bytes, type(None)))
_HAS_GC = 1 << 14  # (``Py_TPFLAGS_HAVE_GC``)
_EMPTY = (object, type(Ellipsis), type(NotImplemented))  # (sentinels: hold nothing)
_RUNNING_CODE = (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType,
                 types.FrameType)
# objects without attributes that hold no object of the user's: numbers, ranges, dates,
# numpy's scalars and dtypes (``_opaque``)
_OPAQUE_OK = (numbers.Number, range, bytearray, datetime.date, datetime.time,
              datetime.timedelta, np.generic, np.dtype)


def holds_traced(fn: Callable) -> bool:
    """Whether ``fn`` holds a graph node that a running ``jit`` trace depends
    on: in its closure cells and defaults, through the functions, partials,
    bound methods, containers, object arrays and dataclass fields found there,
    and the function an fm wrapper (``checkpoint``, ``custom_jvp``,
    ``custom_vjp``, ``jit``) runs. False when no trace is running.

    >>> from fmicrograd.core.control import running
    >>> from fmicrograd.core.expr import Var
    >>> def rule(c):
    ...     return lambda a: a if a > 0.5 else c
    >>> x = Var(1.0)
    >>> with running(x.level, "fm.jit", traces=True):
    ...     holds_traced(rule(x)), holds_traced(rule(2.0))
    (True, False)
    """
    if not any(traces for _, _, traces in RUNNING.get()):
        return False
    return holds(fn, lambda n: n.__class__ is not Const and traced(n),
                 FREE_OF_VARIABLES.get())  # (the trace's: tuples of plain values seen before)


def holds(root: Any, hit: Callable[[Expr], bool], memo: dict | None = None,
          every_attribute: bool = False) -> bool:
    """Whether ``root`` holds a node for which ``hit`` is true: in closure
    cells, defaults and attributes of functions, through bound methods,
    partials, containers, mappings, object arrays, dataclass fields,
    exceptions (their cause and context) and slices; in other objects, the
    function an fm wrapper runs (``fwd``, ``fun``, ``f``, ``__wrapped__``),
    or with ``every_attribute`` every attribute and slot. Modules and classes
    are not entered; past ``_LIMIT`` objects, say yes. ``memo`` keeps the
    tuples of plain values seen (``id`` -> tuple), walked once.

    >>> import collections
    >>> from fmicrograd.core.expr import Var
    >>> holds(collections.OrderedDict(a=Var(1.0)), lambda n: True), holds("tag", bool)
    (True, False)
    """
    stack: list = [root]
    seen: set = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj.__class__ in _PLAIN:
            continue
        seen.add(id(obj))
        if len(seen) > _LIMIT:
            return True
        if isinstance(obj, Expr):
            if hit(obj):
                return True
        elif isinstance(obj, types.FunctionType):
            stack.extend(_cells(obj))
            stack.extend(obj.__defaults__ or ())
            stack.extend((obj.__kwdefaults__ or {}).values())
            stack.extend(obj.__dict__.values())  # (an attribute, ``functools.wraps``' __wrapped__)
        elif isinstance(obj, types.MethodType):
            stack += [obj.__func__, obj.__self__]
        elif isinstance(obj, types.BuiltinMethodType):  # ([y].copy; a module's function:
            stack.append(obj.__self__)                   # its module is not entered)
        elif isinstance(obj, (staticmethod, classmethod)):
            stack.append(obj.__func__)
        elif isinstance(obj, property):
            stack += [obj.fget, obj.fset, obj.fdel]
        elif isinstance(obj, functools.partial):
            stack += [obj.func, *obj.args, *obj.keywords.values()]
        elif isinstance(obj, (tuple, list, set, frozenset, collections.deque)):
            if memo is not None and ("held", id(obj)) in memo:
                continue
            if every_attribute:  # (a list or tuple subclass's attributes)
                stack.extend(getattr(obj, "__dict__", {}).values())
            if _PLAIN.issuperset(map(type, obj)):  # (data of many numbers: at C speed)
                if memo is not None and obj.__class__ is tuple:  # immutable: once a trace
                    memo["held", id(obj)] = obj  # (kept, so that its id stays its own)
                continue
            stack.extend(obj)
        elif isinstance(obj, Mapping):
            if not _PLAIN.issuperset(map(type, obj.values())):
                stack.extend(obj.values())
            if isinstance(obj, collections.defaultdict):
                stack.append(obj.default_factory)
            if every_attribute:  # (a dict subclass's attributes)
                stack.extend(getattr(obj, "__dict__", {}).values())
        elif isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.flat)
        elif isinstance(obj, (type, types.ModuleType)):
            continue
        elif isinstance(obj, BaseException):
            stack += [*obj.args, *obj.__dict__.values(), obj.__cause__, obj.__context__]
        elif isinstance(obj, slice):
            stack += [obj.start, obj.stop, obj.step]
        elif dataclasses.is_dataclass(obj) and not every_attribute:
            stack.extend(getattr(obj, f.name, None) for f in dataclasses.fields(obj))
        elif every_attribute:
            if _opaque(obj):  # (an iterator, a cell, an itemgetter, numpy's Generator: the
                if isinstance(obj, _RUNNING_CODE) or not (  # objects they hold, as the
                        obj.__class__.__flags__ & _HAS_GC or obj.__class__ in _EMPTY or
                        obj.__class__.__name__ == "PyCapsule"):  # (a C pointer)
                    return True  # collector sees them; a generator's are its frame's, module
                stack.extend(gc.get_referents(obj))  # globals and all; an object the
                continue  # collector does not track, ``arr.flat``, may hold any)
            stack.extend(getattr(obj, "__dict__", {}).values())
            for kind in type(obj).__mro__:
                slots = kind.__dict__.get("__slots__", ())
                try:
                    stack.extend(getattr(obj, name, None) for name in
                                 ((slots,) if isinstance(slots, str) else slots))
                except TypeError:  # a slot that does not apply to this object (jax's
                    return True    # arrays, a C class under a Python one): unread, may hold
        else:
            held = getattr(obj, "__dict__", None)  # fm's wrappers: the function they run
            if isinstance(held, dict):
                stack += [held.get(name) for name in ("fwd", "fun", "f", "__wrapped__")]
    return False


def _opaque(obj: Any) -> bool:
    """Whether ``obj`` may hold objects that no attribute shows: it has no
    ``__dict__`` and no class of it names ``__slots__`` (a C object such as a
    generator, an iterator, a cell, a ``property``, an ``operator.itemgetter``),
    and is not one known to hold none (a number, a range, a date, a numpy
    scalar).

    >>> _opaque(iter([1.0])), _opaque(range(3)), _opaque(types.SimpleNamespace(a=1.0))
    (True, False, False)
    """
    if isinstance(obj, _OPAQUE_OK) or hasattr(obj, "__dict__") or \
            obj.__class__.__name__ in ("device", "dtype") and \
            obj.__class__.__module__ == "torch":  # (torch's settings objects)
        return False
    return not any("__slots__" in kind.__dict__ for kind in type(obj).__mro__)


def _cells(fn: types.FunctionType) -> list:
    out = []
    for cell in fn.__closure__ or ():
        try:
            out.append(cell.cell_contents)
        except ValueError:  # a cell not yet filled (a name the function assigns later)
            pass
    return out
