"""Saving and loading parameter pytrees as versioned JSON, never with pickle.

A file is one JSON object ``{"format": "fmicrograd-tree", "version": 1,
"tree": ...}``. Floats are written with ``repr`` (so they read back bit for
bit) and ``inf``/``nan`` as tagged strings; containers are tagged, so a load
gives back the very types that were saved: tuple, list, dict, ``None``,
``PMap``, ``PVector``, NamedTuples and frozen dataclasses, such as an
``fm.nn.MLP`` with its static fields (``activation``). A file names classes,
but loading never imports what a file names: only fmicrograd's own classes,
and those the caller passes in ``classes``, can be built. Files are written
atomically: a save that fails leaves any old file as it was, a save never
replaces a FIFO or a device, and an existing file keeps its permission bits.
Any file, however crafted, loads or is a ``ValueError`` that names it; trees
nest at most ``MAX_DEPTH`` containers deep, on save as on load.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "params.json"
>>> _ = save(path, {"w": (0.1, float("inf")), "b": [None, 2]})
>>> load(path)
{'w': (0.1, inf), 'b': [None, 2]}
"""

from __future__ import annotations

import dataclasses
import errno
import importlib
import json
import math
import numbers
import os
import pkgutil
import reprlib
import secrets
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from pyrsistent import PMap, PVector, pmap, pvector

from .core.expr import Expr

__all__ = ["save", "load", "dumps", "loads", "atomic_write", "check_writable", "FORMAT",
           "VERSION", "MAX_DEPTH"]

FORMAT = "fmicrograd-tree"
VERSION = 1
MAX_DEPTH = 100  # containers inside containers: far beyond any model, far below the stack
# fmicrograd's modules whose classes a file may name (never what a file says)
_OWN_MODULES = ("nn", "random", "optim", "train")
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_Path = str | os.PathLike


def check_writable(path: _Path) -> Path:
    """Check, before any work is done, that ``atomic_write`` could write
    ``path``: its directory exists and takes new files, and ``path`` is a new
    name or a regular file (a symlink counts as its target). Raises
    ``ValueError`` for a FIFO, device or socket, ``OSError`` otherwise;
    returns the file that a write replaces.

    >>> import tempfile, pathlib
    >>> check_writable(pathlib.Path(tempfile.mkdtemp()) / "new.json").name
    'new.json'
    >>> check_writable("/dev/null")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: /dev/null is a character device, not a regular file; ...
    """
    target = _target(path)[0]
    fd, tmp = _new_temp(target.parent)
    os.close(fd)
    os.unlink(tmp)
    return target


def atomic_write(path: _Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a new temporary file next to ``path``, then move it
    onto ``path`` in one step (``os.replace``). If ``write`` raises, the
    temporary file is removed and an existing ``path`` is left untouched. An
    existing file keeps its permission bits (and, where allowed, its owner); a
    symlink is written through to its target; a FIFO, device or socket is
    never replaced (``ValueError``).

    >>> import tempfile, pathlib
    >>> p = atomic_write(pathlib.Path(tempfile.mkdtemp()) / "a.txt", lambda f: f.write(b"hi"))
    >>> p.read_bytes()
    b'hi'
    """
    target, old = _target(path)
    fd, tmp = _new_temp(target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if old is not None:
                _keep_owner_and_mode(f.fileno(), old)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        _target(path)  # once more: the name must not have become a device meanwhile
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(os.fsdecode(path))


def _target(path: _Path) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` replaces (through symlinks) and its status,
    ``None`` if it does not exist yet."""
    path = Path(os.fsdecode(path))
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        status = os.stat(target)
    except FileNotFoundError:
        return target, None
    if stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    if not stat.S_ISREG(status.st_mode):
        raise ValueError(f"{path} is {_kind(status.st_mode)}, not a regular file; fmicrograd "
                         f"writes only regular files: choose another path")
    return target, status


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISDIR, "a directory"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def _new_temp(directory: Path) -> tuple[int, Path]:
    # A short name of its own, so that any name the OS accepts for the file
    # itself (up to NAME_MAX) still works.
    while True:
        tmp = directory / f".fmicrograd-{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def _keep_owner_and_mode(fd: int, old: os.stat_result) -> None:
    try:
        os.fchown(fd, old.st_uid, old.st_gid)
    except OSError:
        pass  # only root may give a file away; the mode is kept regardless
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def _read_regular(path: _Path, who: str) -> bytes:
    """The bytes of the regular file ``path``; a FIFO or device is a
    ``ValueError`` (opened without blocking, so a FIFO never hangs)."""
    fd = os.open(os.fsdecode(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", os.fsdecode(path))
        if not stat.S_ISREG(mode):
            raise ValueError(f"{who}: {os.fsdecode(path)} is {_kind(mode)}, not a regular file; "
                             f"it is not an fmicrograd parameter file")
        return f.read()


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


def _class_name(cls: type, names: dict[type, str]) -> str:
    return names.get(cls) or f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------- encoding
def _encode(x: Any, where: str, names: dict[type, str], open_ids: frozenset = frozenset()) -> Any:
    """The JSON form of ``x``; ``open_ids`` are the containers ``x`` is inside."""
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, numbers.Integral):
        x = int(x)
        try:
            str(x)
        except ValueError:  # more digits than Python converts (sys.set_int_max_str_digits)
            raise ValueError(f"fm.io.save: the int at {where} has too many digits to write "
                             f"({x.bit_length()} bits); save it as a float or a string") from None
        return x
    if isinstance(x, numbers.Real):
        x = float(x)
        if math.isfinite(x):
            return x
        return {"type": "float", "value": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}
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
        return [_encode(v, where + key(i), names, inside) for i, v in enumerate(items)]

    t = type(x)
    if t is list:
        return each(x, lambda i: f"[{i}]")
    if t is tuple:
        return {"type": "tuple", "items": each(x, lambda i: f"[{i}]")}
    if isinstance(x, PVector):
        return {"type": "pvector", "items": each(x, lambda i: f"[{i}]")}
    if t is dict or isinstance(x, PMap):
        items = [[_encode(k, f"{where} (a key)", names, inside),
                  _encode(v, f"{where}[{k!r}]", names, inside)] for k, v in x.items()]
        return {"type": "dict" if t is dict else "pmap", "items": items}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        fields = {f: _encode(getattr(x, f), f"{where}.{f}", names, inside) for f in x._fields}
        return {"type": "namedtuple", "class": _class_name(t, names), "fields": fields}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        fields = {f.name: _encode(getattr(x, f.name), f"{where}.{f.name}", names, inside)
                  for f in dataclasses.fields(x)}
        return {"type": "dataclass", "class": _class_name(t, names), "fields": fields}
    raise TypeError(f"fm.io.save: cannot save {t.__name__} {reprlib.repr(x)} at {where}; a file "
                    f"holds numbers, strings, None, tuples, lists, dicts, PMaps, PVectors, "
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
        if not isinstance(value, str) or value not in _NON_FINITE:
            raise _Bad(f"{where}: a tagged float must be 'inf', '-inf' or 'nan', "
                       f"got {reprlib.repr(value)}")
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
    expected = list(cls._fields) if is_nt else [f.name for f in dataclasses.fields(cls)]
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
        raise _Bad(f"{where}: {name} rejects the file's fields: {type(e).__name__}: "
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

    >>> loads(dumps({"a": (1.0, -0.0)}))
    {'a': (1.0, -0.0)}
    """
    allowed = dict(_own_classes()[0])
    allowed.update({f"{c.__module__}.{c.__qualname__}": c for c in classes})
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
    >>> p = save(pathlib.Path(tempfile.mkdtemp()) / "t.json", [1.0, (2.0,)])
    >>> load(p)
    [1.0, (2.0,)]
    """
    data = _read_regular(path, "fm.io.load")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"fm.io.load: {os.fsdecode(path)} is not a text file (not UTF-8); it "
                         f"is not an fmicrograd parameter file") from None
    return loads(text, classes=classes, source=os.fsdecode(path))
