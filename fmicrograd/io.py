"""Saving and loading parameter pytrees as versioned JSON, never with pickle.

A file is one JSON object ``{"format": "fmicrograd-tree", "version": 1,
"tree": ...}``. Floats are written with ``repr`` (so they read back bit for
bit) and ``inf``/``nan`` as tagged strings (a NaN other than ``math.nan``
with its bits, so its sign and payload read back too); containers are tagged, so a load
gives back the very types that were saved: tuple, list, dict, ``None``,
``PMap``, ``PVector``, NamedTuples and frozen dataclasses, such as an
``fm.nn.MLP`` with its static fields (``activation``). A file names classes,
but loading never imports what a file names: only fmicrograd's own classes,
and those the caller passes in ``classes``, can be built. Files are written
atomically: a save that fails leaves any old file as it was, a save never
replaces a FIFO or a device, and an existing file keeps its permission bits.
Any file, however crafted, loads or is a ``ValueError`` that names it; trees
nest at most ``MAX_DEPTH`` containers deep, on save as on load. ``save``
writes only what ``load`` reads back: it checks the tree as ``load`` does
(an ``fm.nn`` model changed by ``fm.tree.map`` into one its constructor
refuses, say) before it touches the disk. Numbers are never rounded: ints
are written as ints, floats bit for bit, and any other real number as the
float64 equal to it, or refused (see ``save``).

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "params.json"
>>> _ = fm.io.save(path, {"w": (0.1, float("inf")), "b": [None, 2]})
>>> fm.io.load(path)
{'w': (0.1, inf), 'b': [None, 2]}
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import math
import numbers
import os
import pkgutil
import reprlib
import struct
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyrsistent import PMap, PVector, pmap, pvector

from .core.expr import Expr
from .files import atomic_write, check_writable, read_regular

__all__ = ["save", "load", "dumps", "loads", "atomic_write", "check_writable", "FORMAT",
           "VERSION", "MAX_DEPTH"]

FORMAT = "fmicrograd-tree"
VERSION = 1
MAX_DEPTH = 100  # containers inside containers: far beyond any model, far below the stack
# fmicrograd's modules whose classes a file may name (never what a file says)
_OWN_MODULES = ("nn", "random", "optim", "train")
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_QUIET_NAN = 0x7FF8000000000000  # the bits of ``math.nan``, written as plain "nan"


def _nan_text(x: float) -> str:
    """A NaN as its tagged text: ``"nan"`` for ``math.nan``'s bits, else
    ``"nan:"`` and its 16 hex digits, so the sign and payload read back
    (``-math.nan``, a NaN that ``inf - inf`` made on x86).

    >>> _nan_text(math.nan), _nan_text(-math.nan)
    ('nan', 'nan:fff8000000000000')
    """
    bits = struct.unpack("<Q", struct.pack("<d", x))[0]
    return "nan" if bits == _QUIET_NAN else f"nan:{bits:016x}"


def _nan_of(text: str) -> float | None:
    """The NaN ``_nan_text`` wrote as ``"nan:"`` and 16 hex digits, or None
    when the text is not one (it is then refused as a tagged float).

    >>> math.copysign(1.0, _nan_of("nan:fff8000000000000")), _nan_of("nan:0000000000000000")
    (-1.0, None)
    """
    digits = text[4:]
    if len(digits) != 16 or any(c not in "0123456789abcdef" for c in digits):
        return None
    x = struct.unpack("<d", struct.pack("<Q", int(digits, 16)))[0]
    return x if math.isnan(x) else None
_Path = str | os.PathLike


def _own_classes() -> tuple[dict[str, type], dict[type, str]]:
    """fmicrograd's own dataclasses and NamedTuples by name, and each class's
    name in files: public (``fmicrograd.nn.MLP``) where a module exports it,
    else where it is defined (``fmicrograd.optim.schedules.MicrogradSchedule``).
    Only fmicrograd's modules (``_OWN_MODULES`` and their submodules) are read."""
    modules = []
    for mod_name in _OWN_MODULES:
        full = f"fmicrograd.{mod_name}"
        try:
            module = importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name != full:
                raise
            continue
        modules.append(module)
        for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
            modules.append(importlib.import_module(f"{full}.{sub.name}"))
    by_name: dict[str, type] = {}
    names: dict[type, str] = {}
    for module in modules:
        for attr, obj in sorted(vars(module).items()):
            if (isinstance(obj, type) and obj.__module__.startswith("fmicrograd.")
                    and not obj.__name__.startswith("_") and not issubclass(obj, Expr)
                    and (dataclasses.is_dataclass(obj) or _is_namedtuple_class(obj))):
                by_name[f"{module.__name__}.{attr}"] = obj
                by_name[f"{obj.__module__}.{obj.__qualname__}"] = obj
                if obj not in names or names[obj].count(".") > module.__name__.count(".") + 1:
                    names[obj] = f"{module.__name__}.{attr}"  # the shortest public path
    return by_name, names


def _short(where: str) -> str:
    return where if len(where) <= 80 else f"{where[:40]}...{where[-36:]}"


def _is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _class_name(cls: type, names: dict[type, str], written: dict[str, type]) -> str:
    """The name a file gives ``cls``; ``written`` (the encoding's own) learns
    which class each name stands for, so the tree can be read back to check it."""
    name = names.get(cls) or f"{cls.__module__}.{cls.__qualname__}"
    if written.setdefault(name, cls) is not cls:
        raise ValueError(f"fm.io.save: the tree holds two different classes named {name} "
                         f"(made by one function, say); a file names a class, so load could "
                         f"not tell them apart: give them different names")
    return name


# ---------------------------------------------------------------- encoding
def _encode(x: Any, where: str, names: dict[type, str], written: dict[str, type],
            open_ids: frozenset = frozenset()) -> Any:
    """The JSON form of ``x``; ``open_ids`` are the containers ``x`` is inside,
    ``written`` the classes named so far (see ``_class_name``)."""
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, enum.Enum):
        raise TypeError(f"fm.io.save: the leaf at {where} is the enum member {x!r}, which a "
                        f"file would hold as its bare value (load gives it back without its "
                        f"class); save x.value or x.name, and rebuild the member after load")
    if type(x).__module__ == "numpy" and getattr(getattr(x, "dtype", None), "kind", "") == "b" \
            and getattr(x, "ndim", None) == 0:
        return bool(x)  # (a numpy bool, as numpy numbers: as the Python one)
    if isinstance(x, numbers.Integral):
        x = int(x)
        try:
            str(x)
        except ValueError:  # more digits than Python converts (sys.set_int_max_str_digits)
            raise ValueError(f"fm.io.save: the int at {where} has too many digits to write "
                             f"({x.bit_length()} bits); save it as a float or a string") from None
        return x
    if isinstance(x, numbers.Real | Decimal):
        x = float(x) if isinstance(x, float) else _exact_float(x, where)
        if math.isfinite(x):
            return x
        return {"type": "float", "value": _nan_text(x) if math.isnan(x) else
                ("inf" if x > 0 else "-inf")}
    if isinstance(x, Expr):
        raise TypeError(f"fm.io.save: the leaf at {where} is a graph node ({x!r}); save "
                        f"values, e.g. fm.tree.map(float, tree)")
    if id(x) in open_ids:
        raise ValueError(f"fm.io.save: the tree contains itself: {where} is the same object as "
                         f"one of its ancestors; a saved tree must not be cyclic")
    if len(open_ids) >= MAX_DEPTH:
        raise ValueError(f"fm.io.save: the tree nests deeper than {MAX_DEPTH} containers at "
                         f"{_short(where)}; fm.io files hold at most fm.io.MAX_DEPTH levels")
    inside = open_ids | {id(x)}

    def each(items: Iterable, key: Callable[[int], str]) -> list:
        return [_encode(v, where + key(i), names, written, inside) for i, v in enumerate(items)]

    t = type(x)
    if t is list:
        return each(x, lambda i: f"[{i}]")
    if t is tuple:
        return {"type": "tuple", "items": each(x, lambda i: f"[{i}]")}
    if isinstance(x, PVector):
        return {"type": "pvector", "items": each(x, lambda i: f"[{i}]")}
    if t is dict or isinstance(x, PMap):
        if sum(isinstance(k, float) and k != k for k in x) > 1:
            raise ValueError(f"fm.io.save: the {'dict' if t is dict else 'PMap'} at {where} has "
                             f"more than one NaN key; a file holds a NaN as a number, so load "
                             f"could not tell those keys apart: use other keys")
        items = [[_encode(k, f"{where} (a key)", names, written, inside),
                  _encode(v, f"{where}[{k!r}]", names, written, inside)] for k, v in x.items()]
        return {"type": "dict" if t is dict else "pmap", "items": items}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        fields = {f: _encode(getattr(x, f), f"{where}.{f}", names, written, inside)
                  for f in x._fields}
        return {"type": "namedtuple", "class": _class_name(t, names, written), "fields": fields}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = {f.name: _encode(getattr(x, f.name), f"{where}.{f.name}", names, written,
                                  inside) for f in dataclasses.fields(x)}
        return {"type": "dataclass", "class": _class_name(t, names, written), "fields": fields}
    raise TypeError(f"fm.io.save: cannot save {t.__name__} {reprlib.repr(x)} at {where}; a file "
                    f"holds numbers, strings, None, tuples, lists, dicts, PMaps, PVectors, "
                    f"NamedTuples and dataclasses")


def _exact_float(x: Any, where: str) -> float:
    """The float64 that a file holds for the number ``x`` (not a float): a
    ``TypeError`` naming ``where`` unless it is ``x`` exactly (a NaN as NaN),
    as it always is for an ``np.float32`` and is for ``Fraction(1, 2)``, but
    not for ``Fraction(1, 3)``, ``Decimal("0.1")`` or most ``np.longdouble``s.

    >>> _exact_float(Decimal("0.5"), "<root>")
    0.5
    >>> _exact_float(Decimal("0.1"), "<root>['lr']")
    Traceback (most recent call last):
    ...
    TypeError: fm.io.save: the leaf at <root>['lr'] is Decimal('0.1'), which float64 cannot hold exactly (it would be written as 0.1, off by -5.55e-18); fm.io files hold float64 numbers, and save never rounds one silently: if that rounding is meant, convert the leaf first, e.g. float(x), or fm.tree.map(float, tree) for a tree of numbers
    """  # noqa: E501
    try:
        f = float(x)
        if f != f or type(x)(f) == x:  # (a constructor that takes a float converts exactly)
            return f
        off = float(x - type(x)(f))
        why = ("it is beyond float64's range" if math.isinf(f) else
               f"it would be written as {f!r}, off by " + (f"{off:.3g}" if off else "a little"))
    except (ArithmeticError, ValueError, TypeError) as e:  # beyond float64; a signaling NaN
        why = f"float() refuses it: {e}"
    raise TypeError(f"fm.io.save: the leaf at {where} is {reprlib.repr(x)}, which float64 "
                    f"cannot hold exactly ({why}); fm.io files hold float64 numbers, and save "
                    "never rounds one silently: if that rounding is meant, convert the leaf "
                    "first, e.g. float(x), or fm.tree.map(float, tree) for a tree of numbers")


def dumps(tree: Any) -> str:
    """``tree`` as the JSON text ``save`` writes, checked as ``save`` checks it.

    >>> import json
    >>> json.loads(fm.io.dumps((1.5, None)))
    {'format': 'fmicrograd-tree', 'version': 1, 'tree': {'type': 'tuple', 'items': [1.5, None]}}
    """
    return _dumps(tree, "fm.io.dumps: the tree was not written")


def _dumps(tree: Any, refused: str) -> str:
    """The JSON text of ``tree``, once it is known to load back: it is decoded
    in memory with ``load``'s own checks (every dataclass and NamedTuple
    through its constructor), and a tree ``load`` would refuse is a
    ``ValueError`` that starts with ``refused`` and names where it is wrong."""
    by_name, names = _own_classes()
    written: dict[str, type] = {}
    body = _encode(tree, "<root>", names, written)
    try:
        back = _decode(body, "<root>", {**by_name, **written})
    except _Bad as e:
        hint = (" (a model made by fm.tree.map, fm.tree.at or fm.tree.unflatten skips its "
                "constructor's checks; fm.nn.MLP(layers), fm.nn.Layer(neurons) and "
                "fm.nn.Neuron(w, b, activation) make them)" if "rejects its fields" in str(e)
                else "")
        raise ValueError(f"{refused}: fm.io.load would refuse it, at {e}. Fix the tree at "
                         f"that place{hint}") from None
    # a user's constructor may change the fields it is given (a __post_init__ that computes
    # them); fmicrograd's own classes only check theirs
    own = set(by_name.values())
    users = any(cls not in own for cls in written.values())
    where = _first_difference(body, _encode(back, "<root>", names, {}), "<root>") \
        if users else None
    if where is not None:
        raise ValueError(f"{refused}: it would load back as a different value, at {where}: "
                         "load builds each dataclass and NamedTuple through its constructor, "
                         "and this one changes the fields it is given (a __post_init__ that "
                         "computes them); save the constructor's arguments instead")
    return json.dumps({"format": FORMAT, "version": VERSION, "tree": body}, allow_nan=False,
                      indent=1)


def _first_difference(a: Any, b: Any, where: str) -> str | None:
    """Where two encoded trees differ (floats by their bits: JSON text), or None.

    >>> _first_difference({"type": "tuple", "items": [1.0, -0.0]},
    ...                   {"type": "tuple", "items": [1.0, 0.0]}, "<root>")
    '<root>[1]'
    """
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for k in a:
            x, y = a[k], b[k]
            if a.get("type") == "pmap" and k == "items":  # (a PMap's order is its hashes')
                x, y = (sorted(v, key=lambda kv: json.dumps(kv[0])) for v in (x, y))
            if k == "fields" and isinstance(x, dict) and isinstance(y, dict) and \
                    x.keys() == y.keys():
                found = next((w for f in x if (w := _first_difference(
                    x[f], y[f], f"{where}.{f}")) is not None), None)
            else:
                found = _first_difference(x, y, where)
            if found is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((w for i, (x, y) in enumerate(zip(a, b))
                     if (w := _first_difference(x, y, f"{where}[{i}]")) is not None), None)
    return None if type(a) is type(b) and json.dumps(a) == json.dumps(b) else where


def save(path: _Path, tree: Any) -> Path:
    """Write the pytree ``tree`` to ``path`` as JSON, atomically. Returns the path.

    The tree is checked first as ``load`` will check it (every dataclass and
    NamedTuple, such as an ``fm.nn`` model, rebuilt in memory through its
    constructor): what ``load`` would refuse is a ``ValueError`` naming the
    path in the tree, and nothing is written.

    A file holds float64 numbers, and ``save`` never rounds one silently. A
    leaf that is another kind of real number (``np.float32``,
    ``fractions.Fraction``, ``decimal.Decimal``, ``np.longdouble``) is written
    when a float64 equals it exactly (any ``np.float32``, ``Fraction(1, 2)``,
    ``Decimal("0.5")``; a NaN as NaN) and loads back as that float, as an
    ``np.float32`` does; one that it would round (``Fraction(1, 3)``,
    ``Decimal("0.1")``, an ``np.longdouble`` with bits beyond float64, one
    beyond float64's range) is a ``TypeError`` naming its path in the tree,
    and nothing is written. The check is on the value, not the type, so that
    a tree of exact numbers saves whatever their type; convert with
    ``float(x)`` first where the rounding is meant.

    >>> import tempfile, pathlib
    >>> p = fm.io.save(pathlib.Path(tempfile.mkdtemp()) / "k.json", {"key": fm.random.key(7)})
    >>> fm.io.load(p)["key"] == fm.random.key(7)
    True
    """
    # before touching the disk: a failure here writes nothing
    if not isinstance(path, (str, bytes, os.PathLike)):  # (os's bare "expected str, bytes
        raise TypeError(f"fm.io.save(path, tree): path must be a str or a path, got "  # or
                        f"{type(path).__name__}" + (" (the path comes first: are the "
                                                    "arguments swapped?)" if isinstance(
                                                        tree, (str, os.PathLike)) else ""))
    text = _dumps(tree, f"fm.io.save: {os.fsdecode(path)} was not written")
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------- decoding
class _Bad(Exception):
    """A problem inside the tree, raised with where it was found."""


# the keys each tagged object has, no more and no fewer
_TAG_KEYS = {"float": {"type", "value"}, "tuple": {"type", "items"},
             "pvector": {"type", "items"}, "dict": {"type", "items"}, "pmap": {"type", "items"},
             "namedtuple": {"type", "class", "fields"}, "dataclass": {"type", "class", "fields"}}


def _decode(x: Any, where: str, classes: dict[str, type], depth: int = 0) -> Any:
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if depth >= MAX_DEPTH:
        raise _Bad(f"{_short(where)}: nested deeper than {MAX_DEPTH} containers (fm.io.MAX_DEPTH); "
                   f"fm.io.save never writes such a file")
    if isinstance(x, list):
        return [_decode(v, f"{where}[{i}]", classes, depth + 1) for i, v in enumerate(x)]
    kind = x.get("type") if isinstance(x, dict) else None
    if not isinstance(kind, str):
        raise _Bad(f"{where}: expected a value or a tagged object, got {reprlib.repr(x)}")
    if kind not in _TAG_KEYS:
        raise _Bad(f"{where}: unknown type tag {reprlib.repr(kind)}")
    if set(x) - _TAG_KEYS[kind]:
        raise _Bad(f"{where}: a {kind} has only the keys {sorted(_TAG_KEYS[kind])}, the file "
                   f"adds {sorted(set(x) - _TAG_KEYS[kind])}")
    if kind == "float":
        value = x.get("value")
        nan = _nan_of(value) if isinstance(value, str) and value.startswith("nan:") else None
        if nan is not None:
            return nan
        if not isinstance(value, str) or value not in _NON_FINITE:
            raise _Bad(f"{where}: a tagged float must be 'inf', '-inf', 'nan' or 'nan:' and "
                       f"the 16 hex digits of a NaN's bits, got {reprlib.repr(value)}")
        return _NON_FINITE[value]
    if kind in ("namedtuple", "dataclass"):
        return _decode_class(x, kind, where, classes, depth)
    items = x.get("items")
    if not isinstance(items, list):
        raise _Bad(f"{where}: a {kind} needs an 'items' list")
    if kind in ("tuple", "pvector"):
        values = [_decode(v, f"{where}[{i}]", classes, depth + 1) for i, v in enumerate(items)]
        return tuple(values) if kind == "tuple" else pvector(values)
    return _decode_mapping(items, kind, where, classes, depth)


def _decode_mapping(pairs: list, kind: str, where: str, classes: dict[str, type],
                    depth: int) -> Any:
    if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise _Bad(f"{where}: a {kind}'s items must be [key, value] pairs")
    keys = [_decode(k, f"{where} (a key)", classes, depth + 1) for k, _ in pairs]
    for k in keys:
        if not isinstance(k, str | int | float | tuple | None) or not _hashable(k):
            raise _Bad(f"{where}: a {kind} key must be a number, string, None or a tuple of "
                       f"them, got {reprlib.repr(k)}")
    d = {k: _decode(v, f"{where}[{reprlib.repr(k)}]", classes, depth + 1)
         for k, (_, v) in zip(keys, pairs)}
    if len(d) != len(pairs):
        raise _Bad(f"{where}: a {kind} has the same key twice")
    return d if kind == "dict" else pmap(d)


def _decode_class(x: dict, kind: str, where: str, classes: dict[str, type], depth: int) -> Any:
    name, fields = x.get("class"), x.get("fields")
    if not isinstance(name, str) or not isinstance(fields, dict):
        raise _Bad(f"{where}: a {kind} needs a 'class' name and a 'fields' object")
    cls = classes.get(name)
    if cls is None:
        raise _Bad(f"{where}: class {name!r} is not one of fmicrograd's own classes, and "
                   f"loading never imports a class a file names; if you trust this file, "
                   f"pass the class: fm.io.load(path, classes=[{name.rsplit('.', 1)[-1]}])")
    is_nt = _is_namedtuple_class(cls)
    if kind != ("namedtuple" if is_nt else "dataclass"):
        raise _Bad(f"{where}: the file has {name} as a {kind}, but it is not one")
    fields_of: Any = cls  # a NamedTuple class or a dataclass
    expected = list(fields_of._fields) if is_nt else [f.name for f in dataclasses.fields(cls)]
    if sorted(fields) != sorted(expected):
        raise _Bad(f"{where}: {name} has fields {expected}, the file gives {list(fields)}")
    values = {f: _decode(fields[f], f"{where}.{f}", classes, depth + 1) for f in expected}
    try:  # through the constructor: a loaded object passes the checks a new one does
        if is_nt:
            return cls(**values)
        later = {f.name for f in dataclasses.fields(cls) if not f.init}
        obj = cls(**{f: v for f, v in values.items() if f not in later})
        for f in later:
            object.__setattr__(obj, f, values[f])
        return obj
    except Exception as e:  # noqa: BLE001 - whatever the class says, the file is bad
        raise _Bad(f"{where}: {name} rejects its fields: {type(e).__name__}: "
                   f"{str(e)[:300]}") from e


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        keys = [k for k, _ in pairs]
        twice = next(k for k in keys if keys.count(k) > 1)
        raise _Bad(f"a JSON object has the key {twice!r} twice")
    return obj


def _finite_float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise _Bad(f"the number {text[:40]} is beyond the float range (non-finite floats are "
                   f"tagged)")
    return x


def _reject_constant(name: str) -> None:
    raise _Bad(f"bare {name} is not allowed (non-finite floats are tagged)")


def loads(text: str, *, classes: Iterable[type] = (), source: str = "<string>") -> Any:
    """The pytree in the JSON ``text`` (see ``load``); ``source`` names the
    text in error messages.

    >>> fm.io.loads(fm.io.dumps({"a": (1.0, -0.0)}))
    {'a': (1.0, -0.0)}
    """
    allowed = dict(_own_classes()[0])
    for c in classes:
        if not isinstance(c, type) or not (dataclasses.is_dataclass(c) or _is_namedtuple_class(c)):
            raise TypeError(f"fm.io.load: classes must be dataclasses or NamedTuples, got "
                            f"{c!r:.80}")
        name = f"{c.__module__}.{c.__qualname__}"
        if allowed.get(name, c) is not c:
            raise TypeError(f"fm.io.load: classes has two different classes named {name}; a "
                            f"file names a class, so load cannot tell them apart: give them "
                            f"different names")
        allowed[name] = c
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                         object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as e:
        raise ValueError(f"fm.io.load: {source} is not valid JSON ({e.msg} at line {e.lineno} "
                         f"column {e.colno}); the file is truncated or corrupt") from None
    except _Bad as e:
        raise ValueError(f"fm.io.load: {source}: {e}") from None
    except RecursionError:
        raise ValueError(f"fm.io.load: {source} nests too deeply to read; fm.io.save never "
                         f"nests beyond fm.io.MAX_DEPTH ({MAX_DEPTH}) levels") from None
    except ValueError as e:  # e.g. an int with more digits than Python converts
        raise ValueError(f"fm.io.load: {source}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"fm.io.load: {source} is not an fmicrograd parameter file (expected "
                         f"a JSON object with \"format\": \"{FORMAT}\"); write one with "
                         f"fm.io.save")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"fm.io.load: {source} has a bad format version "
                         f"{reprlib.repr(version)}")
    if version > VERSION:
        raise ValueError(f"fm.io.load: {source} was written in format version {version}, this "
                         f"fmicrograd reads up to version {VERSION}: upgrade fmicrograd")
    if "tree" not in doc:
        raise ValueError(f"fm.io.load: {source} has no 'tree' field; the file is incomplete")
    try:
        return _decode(doc["tree"], "<root>", allowed)
    except _Bad as e:
        raise ValueError(f"fm.io.load: {source}: at {e}") from None
    except RecursionError:  # only when called from deep inside a recursion already
        raise ValueError(f"fm.io.load: {source} nests too deeply to decode here (the stack "
                         f"is nearly full)") from None


def load(path: _Path, *, classes: Iterable[type] = ()) -> Any:
    """The pytree saved in ``path`` by ``save``, with the same types. A
    corrupt, truncated, crafted or foreign file, or a FIFO or device, is a
    ``ValueError`` that names it; every class in the file is built through its
    constructor, so it passes the same checks as a new one. ``classes`` are
    extra dataclasses or NamedTuples the file may name (your own);
    fmicrograd's are always allowed.

    >>> import tempfile, pathlib
    >>> p = fm.io.save(pathlib.Path(tempfile.mkdtemp()) / "t.json", [1.0, (2.0,)])
    >>> fm.io.load(p)
    [1.0, (2.0,)]
    """
    data = read_regular(path, "fm.io.load")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"fm.io.load: {os.fsdecode(path)} is not a text file (not UTF-8); it "
                         f"is not an fmicrograd parameter file") from None
    return loads(text, classes=classes, source=os.fsdecode(path))
