"""The state ``fit``'s fold carries between epochs, and resuming it.

``Fold`` is everything an epoch hands the next: written whole to a
checkpoint after an epoch (``save``), read back and checked by ``start_fold``
(the file's bookkeeping by ``checkpoint.check_fields``, the run's options
against the history's columns by ``same_options``). A run writes only into a
``checkpoint_dir`` that holds no other run's checkpoints, and resumes there
only from its latest (``check_run_dir``): one directory, one run, so that
resuming from it continues that run and no other.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap, pvector

from .. import random as fr
from ..optim import GradientTransformation
from . import checkpoint

__all__ = ["Fold", "STRUCTURED", "save", "start_fold", "starts_afresh", "same_options",
           "check_run_dir", "foreign_checkpoint"]


class Fold(NamedTuple):
    epoch: int            # epochs done
    params: Any
    opt_state: Any
    history: PMap
    best: float           # early stopping: the best watched value, its parameters,
    best_params: Any      # and the epochs since it improved
    wait: int
    stopped: bool
    good_params: Any      # recovery: the last state at which no instability was seen (the
                          # start of the last epoch whose statistics raised no alarm)
    good_opt_state: Any
    rollbacks: int
    active: tuple         # kinds detected at the last epoch (an event fires when one starts)
    since: int            # the detectors look at the history from here (the last rollback)


STRUCTURED = ("params", "opt_state", "best_params", "good_params", "good_opt_state")


def save(directory: str | Path, fold: Fold, key: fr.Key | None) -> None:
    state = fold._asdict()
    epoch = state.pop("epoch")
    checkpoint.save(directory, epoch, {**state, "key": key})


def start_fold(params: Any, opt: GradientTransformation, monitor: bool, key: fr.Key | None,
           checkpoint_dir: Any, resume: Any) -> Fold:
    """The fold's first state: a fresh one, or the latest checkpoint's."""
    opt_state = opt.init(params)
    history: Any = pmap({"loss": pvector(), "grad_norm": pvector(),
                    **({"events": pvector()} if monitor else {})})
    fresh = Fold(0, params, opt_state, history, math.inf, params, 0, False, params, opt_state,
                  0, (), 0)
    if starts_afresh(checkpoint_dir, resume):
        return fresh
    path = checkpoint.latest(resume)
    if path is None:
        raise ValueError(f"fit: resume={str(resume)!r} holds no checkpoint (epoch-*.json); "
                         "pass the checkpoint_dir of an earlier run, or resume=checkpoint_dir "
                         "to resume when possible and start afresh otherwise")
    like = {**fresh._asdict(), "key": key}
    del like["epoch"]
    state = checkpoint.load(path, like, free=tuple(k for k in like if k not in STRUCTURED))
    checkpoint.check_fields(path, state)
    if state["key"] != key:
        raise ValueError(f"fit: {path} was written by a run with key {state['key']!r}, not "
                         f"{key!r}; resume with the same key (it orders the data)")
    del state["key"]
    return Fold(**state)


def starts_afresh(checkpoint_dir: Any, resume: Any) -> bool:
    """Whether ``fit`` starts a new run rather than resume one: without
    ``resume``, or with ``resume=checkpoint_dir`` before anything was written
    there (``fit`` refuses a ``resume`` elsewhere that holds no checkpoint).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> starts_afresh(d, None), starts_afresh(d, d), starts_afresh(None, d)
    (True, True, False)
    """
    return resume is None or (checkpoint.latest(resume) is None and checkpoint_dir is not None
                              and _same_place(resume, checkpoint_dir))


def check_run_dir(checkpoint_dir: Any, resume: Any) -> None:
    """Refuse (``ValueError``) to write a run's checkpoints among another run's:
    a new run into a ``checkpoint_dir`` that holds checkpoints, or a run
    resumed from elsewhere into one (see ``foreign_checkpoint``); and a
    ``checkpoint_dir`` that is a file, not a directory."""
    if checkpoint_dir is not None:
        for place in (Path(checkpoint_dir), *Path(checkpoint_dir).parents):
            if place.exists() and not place.is_dir():  # (itself or a folder above it)
                raise ValueError(f"fit: checkpoint_dir={str(checkpoint_dir)!r}: {str(place)!r} "
                                 "is a file, not a directory: pass a directory for the run's "
                                 "checkpoints (it is made if missing); the file is left as it is")
            if place.exists():
                break
    found = foreign_checkpoint(checkpoint_dir, resume)
    if found is not None and resume is None:
        raise ValueError(f"fit: checkpoint_dir={str(checkpoint_dir)!r} already holds the "
                         f"checkpoints of an earlier run (the latest is {found.name}); a new run "
                         f"would overwrite and mix with them. Pass resume="
                         f"{str(checkpoint_dir)!r} to continue that run, or start afresh in a "
                         "new or empty checkpoint_dir (or delete the old checkpoints first)")
    if found is not None:
        raise ValueError(f"fit: checkpoint_dir={str(checkpoint_dir)!r} holds the checkpoints "
                         f"of another run (the latest is {found.name}) than "
                         f"resume={str(resume)!r}; the resumed run would overwrite and mix with "
                         "them. Continue it in a new or empty checkpoint_dir, or in its own: "
                         f"checkpoint_dir={str(_directory(resume))!r}")
    if checkpoint_dir is not None and resume is not None and Path(checkpoint_dir).is_dir() \
            and _same_place(_directory(resume), checkpoint_dir):
        _check_latest(Path(resume), checkpoint_dir)
        _remove_leftovers(Path(checkpoint_dir))


def _check_latest(resume: Path, checkpoint_dir: Any) -> None:
    """Refuse to resume from a checkpoint file of ``checkpoint_dir`` that is not
    its latest: the resumed run would overwrite some of the later checkpoints
    and leave the others, and a later resume would continue the old run."""
    if not resume.is_file():
        return
    epoch = checkpoint._NAME.fullmatch(resume.name)
    later = [p for n, p in checkpoint.listed(checkpoint_dir)
             if (n > int(epoch.group(1)) if epoch else not _same_place(p, resume))]
    if not later:
        return
    names = ", ".join(p.name for p in later[:3]) + (f" and {len(later) - 3} more"
                                                    if len(later) > 3 else "")
    raise ValueError(f"fit: resume={str(resume)!r} is not the latest checkpoint in "
                     f"checkpoint_dir={str(checkpoint_dir)!r}, which holds {names} after it; "
                     "the resumed run would overwrite some of them and leave the others, "
                     "mixing two runs. Continue from that file in another checkpoint_dir, or "
                     "remove the later checkpoints first (or resume from the latest)")


def _remove_leftovers(directory: Path) -> None:
    """Remove the temporary files that a write killed midway (``kill -9``)
    left in the run's own ``directory`` (``files.atomic_write`` names them
    ``.fmicrograd-<hex>.tmp``): the run resumed there is its only writer."""
    for path in directory.glob(".fmicrograd-*.tmp"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def foreign_checkpoint(checkpoint_dir: Any, resume: Any) -> Path | None:
    """The latest checkpoint in directory ``checkpoint_dir`` if a run that
    resumes from ``resume`` (None: a new run) would write among another run's
    checkpoints there: the directory holds some, and ``resume`` is neither it
    nor one of its files. None if writing there is safe.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> foreign_checkpoint(d, None) is None  # empty: a new run may start here
    True
    >>> _ = checkpoint.save(d, 0, {"params": (1.0,)})
    >>> foreign_checkpoint(d, None).name, foreign_checkpoint(d, d)
    ('epoch-000000.json', None)
    """
    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return None
    found = checkpoint.latest(checkpoint_dir)
    if found is None or (resume is not None and _same_place(_directory(resume),
                                                            checkpoint_dir)):
        return None
    return found


def _directory(resume: Any) -> Path:
    """The directory ``resume`` names: itself, or the one holding the file."""
    path = Path(resume)
    return path.parent if path.is_file() else path


def _same_place(a: Any, b: Any) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): compare the names
        return Path(a).absolute() == Path(b).absolute()


def same_options(history: PMap, epochs_done: int, monitor: bool, validating: bool,
                  metrics: Mapping, groups: tuple = ()) -> None:
    """A resumed history must have this run's columns (``monitor``'s events,
    ``val_data``'s, the metrics'): its options decide what the run records;
    and ``monitor``'s columns of every epoch (``groups``: the parameters'
    groups it names ``grad_norm.<group>``)."""
    columns = set(history)
    if monitor and epochs_done > 0 and "events" in columns:
        lost = sorted({f"grad_norm.{g}" for g in groups} - columns)
        if lost:  # (fit went on, and failed an epoch later with an IndexError)
            raise ValueError(f"fit: the checkpoint resumed from lacks the monitor's "
                             f"{', '.join(map(repr, lost))} column{'s' * (len(lost) > 1)}, "
                             "which a monitored run of these parameters writes every epoch; "
                             "resume with the parameters of the run that wrote it, or from "
                             "an earlier checkpoint")
    wanted = {"events": monitor, "val_loss": validating and epochs_done > 0,
              **{name: epochs_done > 0 for name in metrics}}
    for column, expected in wanted.items():
        if (column in columns) != expected and (expected or column in ("events", "val_loss")):
            raise ValueError(f"fit: the checkpoint resumed from was written by a run "
                             f"{'without' if expected else 'with'} its {column!r} column; "
                             "resume with the monitor, val_data and metrics options of the "
                             "run that wrote it")
    extra = sorted(c for c in columns - set(metrics) if c not in OWN_COLUMNS and not c.startswith(
        ("grad_norm", "val_")))
    if extra:
        raise ValueError(f"fit: the checkpoint resumed from was written by a run with metrics "
                         f"{extra}; resume with the monitor, val_data and metrics options of "
                         "the run that wrote it")


OWN_COLUMNS = frozenset(("loss", "events", "update_norm", "param_norm", "nonfinite_grads",
                  "nonfinite_params"))  # fit's columns besides grad_norm* and val_*
