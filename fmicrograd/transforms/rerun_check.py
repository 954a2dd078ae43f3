"""What ``fm.checkpoint``'s rerun must read again as at the call.

A checkpointed function runs again when a sweep reaches it, so it must read
the same values then: the variables it closes over, the module-level names
it (and the helpers of its module it calls) loads, the numbers of the numpy
arrays it reads, and no random generator it draws from. ``closure_of`` notes
them at the call; ``unchanged`` looks again before each rerun (and, for
names the function assigns and reads, after it), and raises a ``ValueError``
naming the fix where one changed: a loop variable read late
(``for w in ws: fm.checkpoint(lambda h: fm.tanh(w * h))(x)``), a buffer
refilled in place, a counter the function advances.

>>> w = 2.0
>>> unchanged(closure_of(lambda h: w * h))
"""

from __future__ import annotations

import functools
import math
import random
import sys
import threading
import types
import weakref
from collections.abc import Callable
from typing import Any

from ..core.expr import Expr

__all__ = ["closure_of", "unchanged", "assigned_again"]


def closure_of(f: Callable, args: tuple = (), before: tuple | None = None) -> tuple:
    """``(name, cell, value, assigned, contents)`` of every variable ``f``
    closes over and every module-level name its code loads or assigns
    (``assigned``: a counter, a key it advances), as at the call, with
    ``contents`` a numpy array's numbers then (``_contents``): ``checkpoint``'s
    rerun must find them again; and of the numpy arrays among ``args``, the
    call's arguments, which the rerun reads as they are.

    It looks through a ``functools.partial``, a bound method, fm's jitted
    function and a wrapper that names what it wraps (``functools.wraps``:
    ``fm.grad(g)``, ``fm.vmap(g)``), into the functions and comprehensions a
    function defines and its defaults, and into the functions of a
    function's own module that it reads (a helper ``layer(h)`` reading a
    loop variable), up to ``_FUNCTIONS`` functions. ``before``: the same,
    taken before ``f`` ran at the call; an array ``f`` itself wrote then (a
    log, a scratch buffer) is not checked (its numbers are ``f``'s own).

    >>> w = 2.0
    >>> [(name, v) for name, _, v, _, _ in closure_of(lambda h: w * h)]
    [('w', 2.0)]
    """
    found: list[tuple] = []
    todo: list = [(f, True)]  # (function, whether it is f itself or what f wraps)
    seen: set[tuple] = set()
    read: set = set()  # (a cell, read once)
    names_read: dict = {}  # (a module's names, read once: helpers share globals)
    while todo and len(seen) < _FUNCTIONS:
        g, top = todo.pop()
        if (id(g), top) in seen:  # (reached as f itself after as a helper: read again)
            continue
        seen.add((id(g), top))
        if isinstance(g, functools.partial):
            todo.append((g.func, top))
            for x in (*g.args, *g.keywords.values()):
                found.extend(_held_in(f"{_name(g.func)}'s bound argument", x))
            continue
        if isinstance(g, types.MethodType):
            todo.append((g.__func__, top))
            continue
        if type(g).__name__ == "Jitted" and type(g).__module__.startswith("fmicrograd."):
            # (fm's own jit only: a proxy makes a new ``.f`` at every read)
            todo.append((g.f, top))
            continue
        if not isinstance(g, types.FunctionType):
            call = next((k.__dict__["__call__"] for k in type(g).__mro__  # (an object
                         if "__call__" in k.__dict__), None)  # with a __call__ method)
            if isinstance(call, types.FunctionType) and not _ours(call.__code__):
                todo.append((call, top))
            continue
        inner = g.__dict__.get("__wrapped__")  # (fm.grad(g), a user's decorator)
        if inner is not None:
            todo.append((inner, top))
        code, cells = g.__code__, g.__closure__ or ()
        if _ours(code):
            # fm's own wrapper (grad, vmap, a rule): the user's functions it holds only
            todo.extend((c.cell_contents, top) for c in cells if _cell_function(c))
            continue
        loads, global_stores, cell_stores, cell_loads = _names(code)
        home = g.__globals__
        for name, cell in zip(code.co_freevars, cells):
            if (id(cell), top) in read:
                continue
            read.add((id(cell), top))
            try:
                value = cell.cell_contents
            except ValueError:  # (not bound yet)
                continue
            stored = _stored(name, cell_stores, cell_loads)
            if stored != 1 and (top or not stored):  # (a name only written, a helper's
                found.append((name, cell, value, stored, _contents(value)))  # counter:
                # not looked at, they cannot change what f computes)
            _follow(value, home, todo, found, name)
        for value in (*(g.__defaults__ or ()), *(g.__kwdefaults__ or {}).values()):
            found.extend(_held_in(f"{g.__name__}'s default", value))
        done = names_read.setdefault((id(home), top), set())
        for name in (loads | global_stores) - done:  # (a loop at a script's top level)
            done.add(name)
            stored = _stored(name, global_stores, loads)
            if name in home and stored != 1 and (top or not stored):
                value = home[name]
                found.append((name, _Global(home, name), value, stored, _contents(value)))
                _follow(value, home, todo, found, name)
    for i, arg in enumerate(args):
        found.extend(_held_in(f"argument {i}", arg))
    found = [e for e in found if e is not None]
    if before is not None:
        found = _settled(found, before)
    return tuple(found)


_FUNCTIONS = 64  # (the functions closure_of reads at most: a helper's helpers)
_PACKAGE = __file__.rsplit("transforms", 1)[0]  # fmicrograd/'s own files


def _settled(found: list, before: tuple) -> list:
    """``found`` after ``f`` ran at the call, against ``before``: an array
    ``f`` wrote itself (a log, a scratch buffer) is its own, not checked; a
    random generator it drew from is an error (the rerun would draw other
    numbers: another dropout mask); one it did not draw from needs no check."""
    then = {(e[0], id(e[2])): e[4] for e in before if e[4] is not None}
    out = []
    for e in found:
        contents = e[4]
        was = then.get((e[0], id(e[2])))
        if contents.__class__ is _State:
            if was is not None and was != contents:
                raise ValueError(
                    f"fm.checkpoint: the checkpointed function drew from `{e[0]}`, a "
                    f"{type(e[2]).__name__}; the sweep runs the function again, which would "
                    "draw other numbers (another dropout mask: another function's "
                    "derivatives). Draw outside the checkpointed function and pass the "
                    "numbers in as arguments (or use fm.random with a key argument)")
            e = (*e[:4], None)
        elif contents is not None and was is not None and not _same_contents(e[2], was):
            e = (*e[:4], None)  # (written by f itself)
        out.append(e)
    return out


def _ours(code: Any) -> bool:
    """Whether ``code`` is fm's own (a transform's wrapper), by its file."""
    return code.co_filename.startswith(_PACKAGE)


def _name(g: Any) -> str:
    return getattr(g, "__name__", type(g).__name__)


def _cell_function(cell: Any) -> bool:
    try:
        value = cell.cell_contents
    except ValueError:
        return False
    return callable(value) and not isinstance(value, type)


def _follow(value: Any, home: dict, todo: list, found: list, name: str) -> None:
    """Queue what a function reads that may run in the rerun: a function of
    its own module, fm's wrappers (``dg = fm.grad(g)``), partials and bound
    methods of them; note the arrays a tuple holds (``T = (buf,)``)."""
    kind = value.__class__
    if kind is types.FunctionType:
        if value.__globals__ is home or _ours(value.__code__):
            todo.append((value, False))
    elif kind is functools.partial or kind is types.MethodType or (
            kind.__name__ == "Jitted" and kind.__module__.startswith("fmicrograd.")):
        todo.append((value, False))
    elif isinstance(value, (tuple, list, dict)):
        found.extend(_held(name + where, x) for where, x in _arrays_in(value) if where)


def _arrays_in(value: Any) -> list:
    """``(where, x)`` of the numpy arrays and random generators ``value`` is
    or a small tuple, list or dict holds, three levels down, 16 at most (a
    tuple of thousands of rows would cost every call). Names are made only
    for what is found, and a dict is read as a dict (a subclass's own
    ``items`` is not called)."""
    np = sys.modules.get("numpy")
    array = np.ndarray if np is not None else ()
    out: list = []
    todo: list = [((), value, 0)]
    budget = 256  # (items looked at in all: a 16 x 16 x 16 list cost 2 ms a call)
    while todo and len(out) < 16 and budget > 0:
        path, v, depth = todo.pop()
        if isinstance(v, array) or _draws(v):
            out.append((path, v))
            continue
        if depth >= 3:
            continue
        if isinstance(v, dict):  # (the base class's own methods: a subclass's may raise,
            if dict.__len__(v) > 16:  # or never end)
                continue
            items: Any = dict.items(v)
        elif isinstance(v, (tuple, list)):
            kind: Any = tuple if isinstance(v, tuple) else list
            if kind.__len__(v) > 16:
                continue
            items = enumerate(kind.__iter__(v))
        else:
            continue
        for k, x in items:
            budget -= 1
            if isinstance(x, (tuple, list, dict)) or isinstance(x, array) or _draws(x):
                todo.append(((*path, k), x, depth + 1))
    return [("".join(f"[{_key(k)}]" for k in path), x) for path, x in out[:16]]


def _key(k: Any) -> str:
    """A key for a message: an int or a string as it is, another by type."""
    if k.__class__ in (int, str):
        return repr(k)
    return f"<{type(k).__name__}>"


def _held(name: str, value: Any) -> Any:
    """An entry for a value held as it is (a default, an argument, a
    partial's argument): checked for its numbers only, when an array (or
    for its state, a random generator)."""
    contents = _contents(value)
    return None if contents is None else (name, _Fixed(value), value, False, contents)


def _held_in(name: str, value: Any) -> list:
    """``_held`` of ``value`` and of the arrays and generators a small tuple,
    list or dict of it holds (``_arrays_in``)."""
    return [_held(name + where, x) for where, x in _arrays_in(value)]


class _Fixed:
    """A value held as it is, read as a cell is (``cell_contents``)."""

    __slots__ = ("cell_contents",)

    def __init__(self, value: Any) -> None:
        self.cell_contents = value


class _State(tuple):
    """A random generator's state, frozen (see ``_settled``)."""

    __slots__ = ()


def _contents(value: Any) -> Any:
    """A numpy array's numbers at the call, to see it changed in place before
    the rerun (a buffer refilled: the same object): a copy up to 8 KB, beyond
    that every k-th of its entries (1,024 of them, so that a large dataset
    closed over costs little per call); a random generator's state (see
    ``_settled``); None for anything else. The last snapshot of an array is
    reused while its numbers stay the same (a thousand checkpointed layers
    reading one array keep one copy)."""
    np = sys.modules.get("numpy")  # (not loaded: no value is an array)
    if np is None or not isinstance(value, np.ndarray):
        return _state(value) if _draws(value) else None
    if value.dtype.hasobject:
        return None
    key = id(value)
    last = _LAST.get(key)
    if last is not None and last[0]() is value and _same_contents(value, last[1]):
        return last[1]
    snapshot = value.copy() if value.nbytes <= _COPY_BYTES else _sample(value)
    try:
        ref = weakref.ref(value)
    except TypeError:  # (an array subclass without weak references)
        return snapshot
    with _LAST_LOCK:
        if len(_LAST) >= 256:
            _LAST.pop(next(iter(_LAST)), None)
        _LAST[key] = (ref, snapshot)
    return snapshot


_LAST: dict[int, tuple] = {}  # id -> (weak reference to the array, its last snapshot)
_LAST_LOCK = threading.Lock()
_COPY_BYTES = 1 << 13
_SAMPLE = 1 << 10


def _draws(value: Any) -> bool:
    """Whether ``value`` is a random generator with a state (numpy's
    ``Generator``, ``RandomState``, a bit generator, ``random.Random``; not
    ``random.SystemRandom``, which has none)."""
    kinds = _KINDS[0]
    if kinds is None or (len(kinds) == 1 and "numpy" in sys.modules):
        kinds = _KINDS[0] = _generator_kinds()
    return isinstance(value, kinds) and not isinstance(value, random.SystemRandom)


def _generator_kinds() -> tuple:
    np = sys.modules.get("numpy")
    if np is None:
        return (random.Random,)
    return (random.Random, np.random.Generator, np.random.RandomState,
            np.random.BitGenerator)


_KINDS: list = [None]


def _state(value: Any) -> _State:
    """A generator's state as a comparable tuple (its arrays as bytes)."""
    if isinstance(value, random.Random):
        return _State(("random", value.getstate()))
    get = getattr(value, "get_state", None)  # (a RandomState)
    state = get(legacy=False) if get is not None else getattr(
        value, "bit_generator", value).state
    return _State(("numpy", _frozen(state)))


def _frozen(x: Any) -> Any:
    if isinstance(x, dict):
        return tuple((k, _frozen(v)) for k, v in sorted(x.items()))
    if hasattr(x, "tobytes"):
        return (getattr(x, "shape", ()), x.tobytes())
    return x


def _sample(a: Any) -> tuple:
    return a.shape, a.dtype.str, a.flat[::max(1, a.size // _SAMPLE)].tobytes()


def _same_contents(now: Any, then: Any) -> bool:
    if then.__class__ is tuple:
        return _sample(now) == then
    return now.shape == then.shape and now.dtype == then.dtype and \
        now.tobytes() == then.tobytes()  # (bit for bit: NaN, -0.0)


@functools.lru_cache(maxsize=1024)
def _names(code: Any) -> tuple[frozenset, frozenset, frozenset, frozenset]:
    """The module-level names ``code`` and the functions and comprehensions it
    defines load, the ones they assign (``global``), the variables of
    enclosing functions they assign (``nonlocal``: a counter), and those they
    read, read once per code object. (Its own locals that an inner function
    reads are cells it stores to too: not these.)"""
    import dis

    loads, global_stores, cell_stores, cell_loads = set(), set(), set(), set()
    own = set(code.co_cellvars)
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            loads.add(ins.argval)
        elif ins.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
            global_stores.add(ins.argval)
        elif ins.opname in ("STORE_DEREF", "DELETE_DEREF") and ins.argval not in own:
            cell_stores.add(ins.argval)
        elif ins.opname in ("LOAD_DEREF", "LOAD_CLASSDEREF") and ins.argval not in own:
            cell_loads.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            inner = _names(const)
            loads |= inner[0]
            global_stores |= inner[1]
            cell_stores |= inner[2] - own
            cell_loads |= inner[3] - own
    return frozenset(loads), frozenset(global_stores), frozenset(cell_stores), \
        frozenset(cell_loads)


class _Global:
    """A module-level name read as a cell is (``cell_contents``)."""

    __slots__ = ("space", "name")

    def __init__(self, space: dict, name: str) -> None:
        self.space, self.name = space, name

    @property
    def cell_contents(self) -> Any:
        try:
            return self.space[self.name]
        except KeyError:
            raise ValueError(self.name) from None


def _stored(name: str, stores: frozenset, loads: frozenset) -> int:
    """0: a name the function does not assign; 1: one it assigns; 2: one it
    assigns and reads (state it may advance: ``W = W * 0.5``, ``n += 1``)."""
    return 0 if name not in stores else 2 if name in loads else 1


def assigned_again(cells: tuple) -> tuple:
    """The entries of names the checkpointed function assigns and reads:
    looked at again after the rerun, which a function that advances its
    state (``W = W * 0.5``, a call counter) changes again, where one that
    initialises lazily (``if W is None: W = 0.5``) does not; as ``_equal``
    has it (a new empty cache, an equal array, NaN), their numbers not
    compared (an array the function fills is its own)."""
    return tuple((*e[:4], None) for e in cells if e[3] == 2)


def _equal(now: Any, value: Any) -> bool:
    """``_same``, or an equal list, dict or numpy array, or NaN for NaN."""
    if _same(now, value):
        return True
    if now.__class__ is not value.__class__:
        return False
    if now.__class__ is float:
        return now != now and value != value
    try:
        if now.__class__ in (list, dict):
            return bool(now == value)
        np = sys.modules.get("numpy")
        return np is not None and isinstance(now, np.ndarray) and bool(
            np.array_equal(now, value, equal_nan=now.dtype.kind in "fc"))
    except Exception:  # noqa: BLE001 -- an element's own __eq__: not equal
        return False


def unchanged(cells: tuple) -> None:
    """A ``ValueError`` when a variable ``f`` closes over holds another
    value now than at the call (``closure_of``): the rerun would compute
    another function, and its derivatives would be that one's (a loop
    variable: ``for w in ws: fm.checkpoint(lambda h: fm.tanh(w * h))(x)``
    reran every block with the last ``w``). Equal numbers and strings count
    as the same.

    >>> w = 2.0
    >>> cells = closure_of(lambda h: w * h)
    >>> unchanged(cells)
    """
    for e in cells:
        name, cell, value, assigned, contents = e
        try:
            now = cell.cell_contents
        except ValueError:
            raise ValueError(
                f"fm.checkpoint: the checkpointed function reads `{name}`, which is no longer "
                "bound; the sweep runs the function again: pass such values as arguments, "
                "or bind them (`lambda h, w=w: ...`)") from None
        if _same(now, value) or (assigned == 2 and _equal(now, value)):
            if contents is None or contents.__class__ is _State or \
                    _same_contents(now, contents):  # (a generator: see ``_settled``)
                continue
            raise ValueError(
                f"fm.checkpoint: the checkpointed function reads the array `{name}`, whose "
                "numbers were changed in place since it was called; the sweep runs the "
                "function again, so its derivatives would be another function's (a buffer "
                "refilled in a loop). Hand the function a copy of the array (`f(h, "
                "buf.copy())`, `lambda h, d=d.copy(): ...`)")
        if assigned:
            raise ValueError(
                f"fm.checkpoint: the checkpointed function assigns `{name}` itself (a global "
                f"or nonlocal it keeps: {_short(value)} at the call, {_short(now)} now); the "
                "sweep runs the function again, so it must keep no state (a call counter, a "
                "random key it advances would make its derivatives another function's): keep "
                "such state outside it, and pass keys and values in as arguments")
        raise ValueError(
            f"fm.checkpoint: the checkpointed function reads `{name}`, which holds another "
            f"object now ({_short(now)}) than when it was called ({_short(value)}); the sweep "
            "runs the function again, so its derivatives would be another function's (in a "
            "loop, `lambda h: fm.tanh(w * h)` sees the last `w`). Pass such values as "
            "arguments (`fm.checkpoint(lambda h, w: fm.tanh(w * h))(x, w)`) or bind them "
            "(`lambda h, w=w: ...`)")


def _same(now: Any, value: Any) -> bool:
    """Whether ``now`` is ``value``, or an equal immutable value: a number, a
    string, a numpy number, or a tuple or frozenset of them (rebuilt equal in
    a loop).

    >>> _same((1.0, "a"), (1.0, "a")), _same(2.0, 2.5), _same([1.0], [1.0])
    (True, False, False)
    """
    if now is value:
        return True
    kind = value.__class__
    if now.__class__ is not kind:
        return False
    if kind is float:  # (-0.0 and 0.0 differ: h / w)
        return now == value and math.copysign(1.0, now) == math.copysign(1.0, value)
    if kind in _IMMUTABLE or (kind.__module__ == "numpy" and getattr(value, "ndim", 1) == 0):
        return bool(now == value)
    if isinstance(value, Expr):  # a node rebuilt alike (``t = temp * 2.0`` under jit, vmap)
        return _same_node(now, value, [_NODES, set()])
    if issubclass(kind, tuple):  # (a NamedTuple of numbers too)
        return len(now) == len(value) and all(map(_same, now, value))
    return kind is frozenset and now == value


_NODES = 4096  # (nodes compared at most: a value rebuilt alike by 40 steps was refused at 64)


def _same_node(a: Any, b: Any, budget: list) -> bool:
    """Whether nodes ``a`` and ``b`` are built alike: the same variables, and
    the same operations on equal constants (``_NODES`` at most)."""
    if a is b:
        return True
    pair = (id(a), id(b))
    if pair in budget[1]:  # (a node both graphs share below: compared once)
        return True
    budget[1].add(pair)
    budget[0] -= 1
    if budget[0] < 0 or a.__class__ is not b.__class__ or a.op != b.op:
        return False
    if not a.children or not b.children:  # (a Var is itself; a constant by its value)
        return not a.children and not b.children and a.op == "const" and \
            _same_value(a.value, b.value)
    if len(a.children) != len(b.children) or not _same_param(getattr(a, "param", None),
                                                               getattr(b, "param", None)):
        return False
    return all(_same_node(x, y, budget) for x, y in zip(a.children, b.children))


def _same_param(a: Any, b: Any) -> bool:
    """Whether two nodes' params are equal (an array's ``==``, or one that
    raises, is not)."""
    if a is b:
        return True
    try:
        same = a == b
        return same is True or (getattr(same, "shape", None) == () and bool(same))
    except Exception:  # noqa: BLE001 -- a param's own __eq__: not the same
        return False


def _same_value(a: Any, b: Any) -> bool:
    if a.__class__ is float and b.__class__ is float:
        return _same(a, b)
    import numpy as np  # (an array constant: under vmap)

    return a.__class__ is b.__class__ and np.shape(a) == np.shape(b) and \
        bool(np.array_equal(a, b, equal_nan=True))


_IMMUTABLE = frozenset((float, int, bool, str, bytes, complex, type(None)))


def _short(x: Any) -> str:
    """``x`` for a message: a number or string as it is, another object by
    its type (its text could read a traced value: jit's warning)."""
    if x.__class__ in _IMMUTABLE or isinstance(x, tuple) and all(
            v.__class__ in _IMMUTABLE for v in x):
        text = repr(x)
        return text if len(text) <= 60 else text[:57] + "..."
    name = type(x).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name} object"
