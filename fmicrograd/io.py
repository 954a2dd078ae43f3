"""Saving and loading parameter pytrees as versioned JSON, never with pickle.

A file is one JSON object ``{"format": "fmicrograd-tree", "version": 1,
"tree": ...}``. Floats are written with ``repr`` (so they read back bit for
bit) and ``inf``/``nan`` as tagged strings; containers are tagged, so a load
gives back the very types that were saved: tuple, list, dict, ``None``,
``PMap``, ``PVector``, NamedTuples and frozen dataclasses, such as an
``fm.nn.MLP`` with its static fields (``activation``). A file names classes,
but loading never imports what a file names: only fmicrograd's own classes,
and those the caller passes in ``classes``, can be built. Files are written
atomically: a save that fails leaves any old file as it was.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "params.json"
>>> _ = save(path, {"w": (0.1, float("inf")), "b": [None, 2]})
>>> load(path)
{'w': (0.1, inf), 'b': [None, 2]}
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import numbers
import os
import pkgutil
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from pyrsistent import PMap, PVector, pmap, pvector

from .core.expr import Expr

__all__ = ["save", "load", "dumps", "loads", "atomic_write", "FORMAT", "VERSION"]

FORMAT = "fmicrograd-tree"
VERSION = 1
# fmicrograd's modules whose classes a file may name (never what a file says)
_OWN_MODULES = ("nn", "random", "optim", "train")
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_Path = str | os.PathLike


def atomic_write(path: _Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a new temporary file next to ``path``, then move it
    onto ``path`` in one step (``os.replace``). If ``write`` raises, the
    temporary file is removed and an existing ``path`` is left untouched.

    >>> import tempfile, pathlib
    >>> p = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", lambda f: f.write(b"hi"))
    >>> p.read_bytes()
    b'hi'
    """
    path = Path(path)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


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


def _is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


def _class_name(cls: type, names: dict[type, str]) -> str:
    return names.get(cls) or f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------- encoding
def _encode(x: Any, where: str, names: dict[type, str]) -> Any:
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        if math.isfinite(x):
            return x
        return {"type": "float", "value": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
    if isinstance(x, Expr):
        raise TypeError(f"fm.io.save: the leaf at {where} is a graph node ({x!r}); save "
                        f"values, e.g. fm.tree.map(float, tree)")

    def each(items: Iterable, key: Callable[[int], str]) -> list:
        return [_encode(v, where + key(i), names) for i, v in enumerate(items)]

    t = type(x)
    if t is list:
        return each(x, lambda i: f"[{i}]")
    if t is tuple:
        return {"type": "tuple", "items": each(x, lambda i: f"[{i}]")}
    if isinstance(x, PVector):
        return {"type": "pvector", "items": each(x, lambda i: f"[{i}]")}
    if t is dict or isinstance(x, PMap):
        items = [[_encode(k, f"{where} (a key)", names), _encode(v, f"{where}[{k!r}]", names)]
                 for k, v in x.items()]
        return {"type": "dict" if t is dict else "pmap", "items": items}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        fields = {f: _encode(getattr(x, f), f"{where}.{f}", names) for f in x._fields}
        return {"type": "namedtuple", "class": _class_name(t, names), "fields": fields}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = {f.name: _encode(getattr(x, f.name), f"{where}.{f.name}", names)
                  for f in dataclasses.fields(x)}
        return {"type": "dataclass", "class": _class_name(t, names), "fields": fields}
    raise TypeError(f"fm.io.save: cannot save {t.__name__} {x!r} at {where}; a file holds "
                    f"numbers, strings, None, tuples, lists, dicts, PMaps, PVectors, "
                    f"NamedTuples and dataclasses")


def dumps(tree: Any) -> str:
    """``tree`` as the JSON text ``save`` writes.

    >>> import json
    >>> json.loads(dumps((1.5, None)))
    {'format': 'fmicrograd-tree', 'version': 1, 'tree': {'type': 'tuple', 'items': [1.5, None]}}
    """
    body = _encode(tree, "<root>", _own_classes()[1])
    return json.dumps({"format": FORMAT, "version": VERSION, "tree": body}, allow_nan=False,
                      indent=1)


def save(path: _Path, tree: Any) -> Path:
    """Write the pytree ``tree`` to ``path`` as JSON, atomically. Returns the path.

    >>> import tempfile, pathlib
    >>> p = save(pathlib.Path(tempfile.mkdtemp()) / "k.json", {"key": fm.random.key(7)})
    >>> load(p)["key"] == fm.random.key(7)
    True
    """
    text = dumps(tree)  # before touching the disk: a failure here writes nothing
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


# ---------------------------------------------------------------- decoding
class _Bad(Exception):
    """A problem inside the tree, raised with where it was found."""


def _decode(x: Any, where: str, classes: dict[str, type]) -> Any:
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if isinstance(x, list):
        return [_decode(v, f"{where}[{i}]", classes) for i, v in enumerate(x)]
    if not isinstance(x, dict) or not isinstance(x.get("type"), str):
        raise _Bad(f"{where}: expected a value or a tagged object, got {str(x)[:80]}")
    kind = x["type"]
    if kind == "float":
        if x.get("value") not in _NON_FINITE:
            raise _Bad(f"{where}: a tagged float must be 'inf', '-inf' or 'nan', "
                       f"got {x.get('value')!r}")
        return _NON_FINITE[x["value"]]
    if kind in ("tuple", "pvector"):
        items = [_decode(v, f"{where}[{i}]", classes) for i, v in enumerate(_list(x, where))]
        return tuple(items) if kind == "tuple" else pvector(items)
    if kind in ("dict", "pmap"):
        pairs = _list(x, where)
        if not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise _Bad(f"{where}: a {kind}'s items must be [key, value] pairs")
        keys = [_decode(k, f"{where} (a key)", classes) for k, _ in pairs]
        if not all(isinstance(k, str | int | float | tuple | type(None)) for k in keys):
            raise _Bad(f"{where}: a {kind} key must be a number, string or tuple")
        d = {k: _decode(v, f"{where}[{k!r}]", classes) for k, (_, v) in zip(keys, pairs)}
        return d if kind == "dict" else pmap(d)
    if kind in ("namedtuple", "dataclass"):
        return _decode_class(x, kind, where, classes)
    raise _Bad(f"{where}: unknown type tag {kind!r}")


def _list(x: dict, where: str) -> list:
    items = x.get("items")
    if not isinstance(items, list):
        raise _Bad(f"{where}: a {x['type']} needs an 'items' list")
    return items


def _decode_class(x: dict, kind: str, where: str, classes: dict[str, type]) -> Any:
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
    values = {f: _decode(fields[f], f"{where}.{f}", classes) for f in expected}
    if is_nt:
        return cls(**values)
    obj: Any = object.__new__(cls)  # as fm.tree rebuilds dataclasses: frozen, no __init__
    for f, v in values.items():
        object.__setattr__(obj, f, v)
    return obj


def _reject_constant(name: str) -> None:
    raise _Bad(f"bare {name} is not allowed (non-finite floats are tagged)")


def loads(text: str, *, classes: Iterable[type] = (), source: str = "<string>") -> Any:
    """The pytree in the JSON ``text`` (see ``load``); ``source`` names the
    text in error messages.

    >>> loads(dumps({"a": (1.0, -0.0)}))
    {'a': (1.0, -0.0)}
    """
    allowed = dict(_own_classes()[0])
    allowed.update({f"{c.__module__}.{c.__qualname__}": c for c in classes})
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"fm.io.load: {source} is not valid JSON ({e.msg} at line {e.lineno} "
                         f"column {e.colno}); the file is truncated or corrupt") from None
    except _Bad as e:
        raise ValueError(f"fm.io.load: {source}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"fm.io.load: {source} is not an fmicrograd parameter file (expected "
                         f"a JSON object with \"format\": \"{FORMAT}\"); write one with "
                         f"fm.io.save")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"fm.io.load: {source} has a bad format version {version!r}")
    if version > VERSION:
        raise ValueError(f"fm.io.load: {source} was written in format version {version}, this "
                         f"fmicrograd reads up to version {VERSION}: upgrade fmicrograd")
    if "tree" not in doc:
        raise ValueError(f"fm.io.load: {source} has no 'tree' field; the file is incomplete")
    try:
        return _decode(doc["tree"], "<root>", allowed)
    except _Bad as e:
        raise ValueError(f"fm.io.load: {source}: at {e}") from None


def load(path: _Path, *, classes: Iterable[type] = ()) -> Any:
    """The pytree saved in ``path`` by ``save``, with the same types. A
    corrupt, truncated or foreign file is a ``ValueError`` that names it.
    ``classes`` are extra dataclasses or NamedTuples the file may name (your
    own); fmicrograd's are always allowed.

    >>> import tempfile, pathlib
    >>> p = save(pathlib.Path(tempfile.mkdtemp()) / "t.json", [1.0, (2.0,)])
    >>> load(p)
    [1.0, (2.0,)]
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"fm.io.load: {path} is not a text file (not UTF-8); it is not "
                         f"an fmicrograd parameter file") from None
    return loads(text, classes=classes, source=str(path))
