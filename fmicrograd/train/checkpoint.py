"""Checkpoints of a training fold: the whole state between two epochs.

A checkpoint is an ``fm.io`` file (JSON, written atomically: a run killed
while writing leaves the previous file whole) named ``epoch-000042.json``
after the number of epochs done. It holds everything the fold carries:
parameters, optimizer state, history, the early-stopping and recovery
bookkeeping, and the key that orders the data, so a run resumed from it
continues exactly as the uninterrupted run would have.

>>> import tempfile
>>> d = tempfile.mkdtemp()
>>> _ = save(d, 3, {"params": (1.0,), "key": None})
>>> path = latest(d)
>>> path.name, load(path, {"params": (0.0,), "key": None}, free=("key",))["params"]
('epoch-000003.json', (1.0,))
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import reprlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyrsistent import PMap, PVector, pmap

from .. import io, tree

__all__ = ["save", "latest", "listed", "prune", "load", "check_fields", "FORMAT", "VERSION"]

FORMAT = "fmicrograd-checkpoint"
VERSION = 1
_NAME = re.compile(r"epoch-(\d{6,})\.json")


def save(directory: str | os.PathLike, epoch: int, state: dict[str, Any]) -> Path:
    """Write ``state`` (a dict of pytrees) as the checkpoint after ``epoch``
    epochs in ``directory`` (created if needed); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    doc = pmap({"checkpoint": FORMAT, "version": VERSION, "epoch": epoch, **state})
    return io.save(directory / f"epoch-{epoch:06d}.json", doc)


def latest(path: str | os.PathLike) -> Path | None:
    """The checkpoint of the most epochs in directory ``path`` (or ``path``
    itself if it is a file); None if the directory holds none."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    found = listed(path)
    return found[-1][1] if found else None


def listed(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """The checkpoints in ``directory`` (the files named ``epoch-*.json``) as
    ``(epochs done, path)`` pairs, oldest first.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = save(d, 2, {}), save(d, 10, {})
    >>> [(epoch, path.name) for epoch, path in listed(d)]
    [(2, 'epoch-000002.json'), (10, 'epoch-000010.json')]
    """
    return sorted((int(m.group(1)), p) for p in Path(directory).iterdir()
                  if (m := _NAME.fullmatch(p.name)))


def prune(directory: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the ``keep`` latest checkpoints in ``directory`` (the
    files named ``epoch-*.json``; nothing else is touched); returns the
    deleted paths, oldest first.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> for epoch in range(4):
    ...     _ = save(d, epoch, {"params": (float(epoch),)})
    >>> [p.name for p in prune(d, 2)], latest(d).name
    (['epoch-000000.json', 'epoch-000001.json'], 'epoch-000003.json')
    """
    found = listed(directory)
    old = [p for _, p in found[:max(len(found) - keep, 0)]]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def _classes(t: Any) -> set[type]:
    """The dataclasses and NamedTuples in ``t``'s structure (so that a loaded
    checkpoint may rebuild the user's own classes, those it was given)."""
    out: set[type] = set()
    stack = [tree.structure(t)]
    while stack:
        td = stack.pop()
        kind = td.kind
        if isinstance(kind, type) and (dataclasses.is_dataclass(kind) or hasattr(kind, "_fields")):
            out.add(kind)
        stack.extend(td.children)
    return out


def load(path: str | os.PathLike, like: dict[str, Any],
         free: tuple[str, ...] = ()) -> dict[str, Any]:
    """The state saved in checkpoint ``path``, checked against ``like`` (the
    state a fresh run starts from): the same entries and, except for those
    named in ``free``, the same tree structures. A corrupt, foreign or
    mismatched file is a ``ValueError``."""
    try:
        doc = io.load(path, classes=_classes(like))
    except OSError as e:  # a directory, a dangling or looping link named like a checkpoint
        raise ValueError(f"fm.train.fit: the checkpoint {path} cannot be read "
                         f"({type(e).__name__}: {e.strerror or e}); remove it, or resume from "
                         "a directory that fit(checkpoint_dir=...) wrote") from None
    if not hasattr(doc, "get") or doc.get("checkpoint") != FORMAT:
        raise ValueError(f"fm.train.fit: {path} is not a training checkpoint (an fm.io file "
                         f"without \"checkpoint\": \"{FORMAT}\"); resume from the directory "
                         "fit(checkpoint_dir=...) wrote")
    if doc.get("version") != VERSION:
        raise ValueError(f"fm.train.fit: {path} is a checkpoint of version "
                         f"{doc.get('version')!r}; this fmicrograd reads version {VERSION}")
    missing = sorted({*like, "epoch"} - set(doc))
    if missing:
        raise ValueError(f"fm.train.fit: {path} lacks {missing}; the file is incomplete")
    state = {}
    for name, expected in like.items():
        got = doc[name]
        if name in free:
            state[name] = got
            continue
        try:
            tree.check_same(tree.persistent(tree.structure(expected)),
                            tree.persistent(tree.structure(got)), f"checkpoint {name}")
        except ValueError as e:
            raise ValueError(f"fm.train.fit: {path} does not belong to this run: its {name} "
                             f"differ from this run's ({e}); resume with the same model, "
                             f"optimizer and options, or start a new checkpoint_dir") from None
        _check_leaves(path, name, expected, got)
        state[name] = got
    state["epoch"] = doc["epoch"]
    return state


def _check_leaves(path: Any, name: str, expected: Any, got: Any) -> None:
    """A ``ValueError`` naming the entry and path of the first leaf of ``got``
    that cannot stand where ``expected`` (a fresh run's state) has its leaf:
    a number for a number (a parameter set to "abc" or true), and in an
    optimizer state an int >= 0 for an int (a step count of 2.5 or -3)."""
    want, _ = tree.flatten(expected)
    leaves, paths, _ = tree.flatten_with_paths(got)
    counters = name.endswith("opt_state")
    for e, g, where in zip(want, leaves, paths):
        if _number(e):
            need = "a whole number >= 0 (a step count)" if counters and isinstance(e, int) \
                else "a number"
            # (a compiled step keeps a count as a float64: 3.0 is a count too)
            ok = _number(g) and _fits(g) and (need == "a number" or
                                              g >= 0 and float(g).is_integer())
        else:
            need, ok = f"a {type(e).__name__}", type(g) is type(e)
        if ok and counters and tree.keystr(where).endswith(".lr_scale"):
            need = "a finite number > 0 (the learning-rate scale of rollbacks)"
            ok = math.isfinite(g) and g > 0  # (a scale of -1.0 climbed the loss)
        if not ok:
            raise ValueError(f"fm.train.fit: {path} holds {type(g).__name__} "
                             f"{reprlib.repr(g)} at {name}"
                             f"{tree.keystr(where)}, where this run has {need}; the file was "
                             "changed or is not this run's: resume from an unchanged checkpoint "
                             "or start a new checkpoint_dir")


def _fits(x: Any) -> bool:
    """Whether the number ``x`` converts to a float64 (an int of 400 digits
    does not)."""
    try:
        float(x)
    except OverflowError:
        return False
    return True


def _count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


_MONITORED = frozenset(("update_norm", "param_norm", "nonfinite_grads", "nonfinite_params"))


def check_fields(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Check the entries of a ``load``-ed training state that ``load`` takes
    as they are (the fold's counters, flags and history): a value of the wrong
    type or out of range is a ``ValueError`` naming the file and the entry.

    >>> from pyrsistent import pvector
    >>> history = pmap({"loss": pvector([0.5]), "grad_norm": pvector([1.0])})
    >>> state = {"epoch": 1, "history": history, "best": 0.5, "wait": 0, "stopped": False,
    ...          "rollbacks": 0, "active": (), "since": 0}
    >>> check_fields("epoch-000001.json", state)
    >>> check_fields("epoch-000001.json", {**state, "since": 2})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: fm.train.fit: epoch-000001.json is corrupt: its since is 2, expected an int ...
    """
    def bad(name: str, got: str, expected: str) -> ValueError:
        return ValueError(f"fm.train.fit: {path} is corrupt: its {name} {got}, expected "
                          f"{expected}; resume from an earlier checkpoint, or start a new "
                          "checkpoint_dir")

    epoch = state["epoch"]
    checks = {"epoch": (_count, "an int >= 0"),
              "best": (lambda x: _number(x) and _fits(x), "a number a float64 holds"),
              "wait": (_count, "an int >= 0"), "rollbacks": (_count, "an int >= 0"),
              "stopped": (lambda x: isinstance(x, bool), "true or false"),
              "active": (lambda x: isinstance(x, (tuple, list))
                         and all(isinstance(k, str) for k in x), "a tuple of strings"),
              "since": (lambda x: _count(x) and x <= epoch, f"an int from 0 to its epoch, {epoch}")}
    for name, (ok, expected) in checks.items():
        if not ok(state[name]):
            raise bad(name, f"is {reprlib.repr(state[name])}", expected)
    history = state["history"]  # fit extends it: a PMap of PVectors, as fit writes it
    if not isinstance(history, PMap) or not {"loss", "grad_norm"} <= history.keys():
        raise bad("history", f"is {reprlib.repr(history)}",
                  'a pmap with at least "loss" and "grad_norm"')
    lost = sorted(_MONITORED.difference(history)) if "events" in history and epoch else []
    if lost:  # (a monitored run's: fit went on, and failed an epoch later with an IndexError)
        raise bad("history", f"lacks {', '.join(map(repr, lost))}",
                  "the columns a monitored run (its \"events\") writes every epoch")
    odd = next((k for k in history if not isinstance(k, str)), None)
    if odd is not None:
        raise bad("history", f"has the key {reprlib.repr(odd)}", "column names that are strings")
    for name in ("loss", "grad_norm", *(k for k in history if k not in ("loss", "grad_norm"))):
        column = history[name]
        if not isinstance(column, PVector):
            raise bad(f"history[{name!r}]", f"is {reprlib.repr(column)}", "a pvector")
        if name != "events" and len(column) != epoch:
            raise bad(f"history[{name!r}]", f"holds {len(column)} values",
                      f"one per epoch done (its epoch is {epoch})")
        if name != "events" and not all(_number(x) and _fits(x) for x in column):
            raise bad(f"history[{name!r}]", f"is {reprlib.repr(column)}",
                      "numbers a float64 holds")
        if name == "events":
            for event in column:
                if not (isinstance(event, Mapping) and isinstance(event.get("kind"), str)
                        and _count(event.get("epoch"))):
                    raise bad("history['events']", f"holds {reprlib.repr(event)}",
                              'events that are maps with a "kind" string and an "epoch" int')
