"""Training as a fold: ``fit`` reduces over epochs, each epoch over batches.

``loss_fn(params, batch)`` returns a scalar; the optimizer is any
``fm.optim`` ``GradientTransformation``; ``data`` is a collection of batches,
or a dataset with ``batch_size`` (see ``fm.train.data``). The fold's state
(parameters, optimizer state, history, early-stopping and recovery
bookkeeping) is a NamedTuple that never escapes; the caller gets
``(final_params, history)`` with ``history`` a ``PMap`` from metric name to a
``PVector`` of one value per epoch, and ``history["events"]`` the detected
instabilities. Nothing passed in is modified, and the same call gives the
same result every time.

>>> xs, ys = fm.datasets.xor()
>>> model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0))
>>> def loss(m, batch):
...     return fm.losses.hinge([m(x) for x in batch[0]], batch[1])
>>> model, history = fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], epochs=200,
...                      on_instability="stop")
>>> len(history["loss"]), history["loss"][-1] < 0.05
(200, True)
"""

from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from pyrsistent import PMap, pmap, pvector

from .. import random as fr
from ..core import pytree
from ..core.control import TRACE_ADVICE
from ..distributed import tells_peers
from ..optim import GradientTransformation, inject_lr_scale, scale_lr
from ..transforms.autodiff import value_and_grad
from .checkpoint import prune
from .data import batcher
from .detectors import INSTABILITIES, Thresholds, detect, running_min
from .monitor import Epoch, count_nonfinite, groups_of, make_step
from .progress import Progress
from .recovery import InstabilityError, InstabilityWarning, check_policy, decide
from .resume import (
    OWN_COLUMNS,
    STRUCTURED,
    Fold,
    check_run_dir,
    same_options,
    save,
    start_fold,
)

__all__ = ["fit"]


def _metrics_dict(metrics: Any) -> dict:
    """``metrics`` (None, a dict, or its ``(name, fn)`` pairs) as a dict; a
    ``TypeError`` for anything else (a 0, False or "" was taken as none)."""
    if metrics is None:
        return {}
    try:
        if isinstance(metrics, (str, bytes)):
            raise TypeError
        return dict(metrics)
    except (TypeError, ValueError):
        raise TypeError(f"fit: metrics must be a dict of name -> fn(params, batch), got "
                        f"{type(metrics).__name__}; e.g. metrics={{'accuracy': accuracy}}"
                        ) from None


def _metric(name: str, fn: Callable, params: Any, batch: Any) -> float:
    """Metric ``name``'s number on ``batch``; a TypeError naming it where it
    gives no number (a bare "could not convert string to float")."""
    value = fn(params, batch)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"fit: metric {name!r} returned {type(value).__name__} {value!r:.60}; "
                        "a metric returns one number for the batch") from None


def _not_an_optimizer(optimizer: Any) -> str:
    """fit's error for an ``optimizer`` that is not one (a learning rate, a
    torch optimizer), naming the ``fm.optim`` call that makes one.

    >>> _not_an_optimizer(0.1)
    'fit: optimizer must be an fm.optim optimizer, got float 0.1; pass fm.optim.sgd(0.1) (or \
fm.optim.adam(0.1), ...)'
    """
    number = isinstance(optimizer, int | float) and not isinstance(optimizer, bool)
    lr = repr(optimizer) if number else "0.1"
    return (f"fit: optimizer must be an fm.optim optimizer, got {type(optimizer).__name__} "
            f"{optimizer!r:.60}; pass fm.optim.sgd({lr}) (or fm.optim.adam({lr}), ...)")


def _plain(x: Any) -> Any:
    """A numpy number as Python's (``epochs=np.int64(5)``, a count read from an
    array); anything else as it is, for the checks below to judge."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(x, np.generic):
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.floating):
            return float(x)
    return x


def _widened(params: Any) -> Any:
    """``params`` with numpy float leaves (``np.float32`` too) as Python floats:
    the step then computes in float64 eager as compiled (``jit=True``), and a
    checkpoint (JSON floats) resumes the very same run. Others stay as given."""
    np = sys.modules.get("numpy")  # (no numpy scalar exists before numpy is imported)
    if np is None:
        return params
    leaves, treedef = pytree.flatten(params)
    if not any(isinstance(x, np.floating) for x in leaves):
        return params
    return pytree.unflatten(treedef, [float(x) if isinstance(x, np.floating) else x
                                      for x in leaves])


@tells_peers  # (data_parallel=True: a rank whose arguments fail a check tells the others)
def fit(loss_fn: Callable[[Any, Any], Any], params: Any, optimizer: GradientTransformation,
        data: Iterable, *, epochs: int, batch_size: int | None = None,
        key: fr.Key | None = None, val_data: Any = None,
        metrics: Mapping[str, Callable[[Any, Any], float]] | None = None,
        patience: int | None = None, min_delta: float = 0.0, restore_best: bool = False,
        callback: Callable[[int, Any, PMap], Any] | None = None,
        progress: bool = False, jit: bool = False, monitor: bool = True,
        on_instability: str = "warn", rollback_lr_factor: float = 0.1, max_rollbacks: int = 3,
        thresholds: Thresholds | None = None, on_event: Callable[[PMap], Any] | None = None,
        checkpoint_dir: str | Path | None = None, checkpoint_every: int = 1,
        resume: str | Path | None = None, data_parallel: bool = False,
        checkpoint_keep: int | None = None) -> tuple[Any, PMap]:
    """Train ``params`` for ``epochs`` epochs; returns ``(final_params, history)``.

    Each epoch records the mean over its batches of ``loss`` and of each of
    ``metrics`` (``name -> fn(params, batch)``), taken at the parameters the
    batch's gradient is taken at, ``grad_norm`` (the gradient's global norm,
    mean over the steps) and, with ``monitor=True`` (the default),
    ``update_norm``, ``param_norm``, per-layer ``grad_norm.layers[i]`` for an
    ``fm.nn.MLP`` and the counts ``nonfinite_grads`` and ``nonfinite_params``
    (see ``fm.train.monitor``); then, with ``val_data`` (one batch),
    ``val_loss`` and ``val_<name>`` at the epoch's final parameters.

    Monitoring runs the detectors of ``fm.train.detectors`` (thresholds
    overridable with ``thresholds=``) after each epoch; events go to
    ``history["events"]`` (an event's ``"epoch"`` is its history index, 0 for
    the first epoch; warnings and errors say "epoch 2 ... (history index 1)")
    and to ``on_event(event)``, and ``on_instability``
    (``"warn"``, ``"raise"``, ``"stop"`` or ``"rollback"`` with
    ``rollback_lr_factor`` and ``max_rollbacks``, see
    ``fm.train.recovery``) says what happens next.

    ``patience`` stops after that many epochs without the monitored value
    (``val_loss`` if there is validation data, else ``loss``) improving by
    more than ``min_delta``; ``restore_best`` returns the parameters the best
    value was taken at rather than the last: with ``val_data`` those at the
    end of the best epoch, else those it started from (its training loss is
    taken before each step; exactly theirs with one batch per epoch).
    ``callback(epoch, params, metrics)`` runs after each epoch with the
    parameters training goes on from (after a rollback or a stop, the ones it
    went back to; its result is ignored); ``progress=True`` reports on stderr.
    ``jit=True`` compiles the whole step (gradient, optimizer update and
    statistics) with ``fm.jit``: same numbers, many times faster per step;
    parameters and optimizer state stay in the compiled layout from one step
    to the next (``jitted.deferred``) and are built where something reads
    them: the callback, ``val_data``, a checkpoint, a rollback, the result.
    As under ``fm.jit``, values the loss, the optimizer's schedules and any
    function the step calls read from their closures are frozen at the
    first step (a schedule ``lambda k: box["lr"]`` that a callback changes
    keeps the first rate): pass what changes (an annealed coefficient) in
    the batch, write the schedule as a function of the step count, or train
    with ``jit=False``.

    ``checkpoint_dir`` receives a checkpoint before the first epoch, then
    every ``checkpoint_every`` epochs and after the last, keeping the
    ``checkpoint_keep`` latest (all with ``None``; each holds the history so
    far, so a long run with every checkpoint kept grows as the square of its
    epochs); ``resume`` (that
    directory, or one checkpoint file) continues from the latest one, and
    the result is bit for bit the uninterrupted run's (``epochs`` counts the
    whole run). Resuming from ``checkpoint_dir`` itself before anything was
    written starts from the beginning. One directory holds one run: a new
    run into a ``checkpoint_dir`` that holds checkpoints already, a run
    resumed from elsewhere into it, or from one of its files that is not its
    latest, is a ``ValueError`` (resume from it, or write to a new directory).
    A resumed run continues from the
    checkpoint's parameters (``params`` then only gives their structure) and
    takes the optimizer, ``loss_fn`` and data as passed: give it the ones the
    run used (a checkpoint stores no hyperparameters; other options of the
    history's columns are an error).

    ``data_parallel=True`` splits every batch over the ranks of an initialized
    ``torch.distributed`` process group (see ``fm.distributed``: batches are
    ``(xs, ys)`` columns, the loss a mean over examples plus parameter-only
    terms); every rank returns the same result, that of one process, and
    only rank 0 writes checkpoints and draws progress.

    >>> loss = lambda p, batch: sum((p["w"] * x - y) ** 2 for x, y in batch)
    >>> p, h = fm.train.fit(loss, {"w": 0.0}, fm.optim.sgd(0.05), [[(1.0, 2.0), (2.0, 4.0)]],
    ...                     epochs=50)
    >>> round(p["w"], 6), h["loss"][0], h["grad_norm"][0]
    (2.0, 20.0, 20.0)
    """
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(_not_an_optimizer(optimizer))
    epochs, batch_size, patience, checkpoint_every, checkpoint_keep, max_rollbacks = map(
        _plain, (epochs, batch_size, patience, checkpoint_every, checkpoint_keep, max_rollbacks))
    min_delta, rollback_lr_factor = _plain(min_delta), _plain(rollback_lr_factor)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    metrics = _metrics_dict(metrics)
    odd = next((k for k, fn in metrics.items() if not isinstance(k, str) or not callable(fn)),
               None)
    if odd is not None:
        raise TypeError(f"fit: metrics[{odd!r}] must be a function fn(params, batch) under a "
                        f"str name, got {type(metrics[odd]).__name__}")
    for name, flag in (("monitor", monitor), ("restore_best", restore_best), ("jit", jit),
                       ("progress", progress), ("data_parallel", data_parallel)):
        if isinstance(flag, str) or flag not in (True, False) and not (  # ("no" is true:
                flag is None and name != "monitor"):  # it turned it on; None is off, as
            raise TypeError(f"fit: {name} must be True or False, got {flag!r}")  # before)
    for name, path in (("checkpoint_dir", checkpoint_dir), ("resume", resume)):
        if path is None:
            continue
        if not isinstance(path, (str, os.PathLike)):  # (os's bare "expected str, bytes ...")
            raise TypeError(f"fit: {name} must be a path (a str or pathlib.Path) or None, got "
                            f"{type(path).__name__} {path!r:.40}")
        if "\0" in os.fspath(path) or os.fspath(path) == "":  # (an empty one wrote into the
            raise ValueError(f"fit: {name} is {os.fspath(path)!r}, not a usable path; name a "
                             "directory, e.g. 'checkpoints', or leave it None")  # cwd)
    if data is None or isinstance(data, (str, bytes)):  # ('NoneType' is not iterable)
        raise TypeError(f"fit: data must be a list of batches or an (inputs, labels) pair of "
                        f"sequences (with batch_size), got {type(data).__name__}")
    if on_event is not None and not callable(on_event):  # (found at the first event)
        raise TypeError(f"fit: on_event must be a function fn(event) or None, got "
                        f"{type(on_event).__name__}")
    # (monitoring's own columns too: a metric named update_norm replaced it silently)
    own = OWN_COLUMNS if monitor else {"loss", "events"}
    if own & set(metrics) or any(k.startswith(("val_", "grad_norm")) for k in metrics):
        raise ValueError(f"fit: metric names must not be {', '.join(map(repr, sorted(own)))}, "
                         "nor start with 'val_' or 'grad_norm' (fit's own columns; got "
                         f"{sorted(metrics)})")
    if callback is not None and not callable(callback):  # (found after the first epoch)
        raise TypeError(f"fit: callback must be a function fn(epoch, params, metrics) or "
                        f"None, got {type(callback).__name__}")
    check_policy(on_instability, rollback_lr_factor, max_rollbacks)
    if not monitor:  # they act on monitoring's events, which monitor=False turns off
        asked = [f"{name}={value!r}" for name, value, default in (
            ("on_instability", on_instability, "warn"), ("thresholds", thresholds, None),
            ("on_event", on_event, None)) if value != default]
        if asked:
            one = len(asked) == 1
            raise ValueError(f"fit: {', '.join(asked)} {'needs' if one else 'need'} monitoring, "
                             "which monitor=False turns off: pass monitor=True (the default) "
                             f"or leave {'it' if one else 'them'} out")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int)
                                 or patience < 1):
        raise ValueError(f"fit: patience must be None or a positive int (the epochs to wait "
                         f"for an improvement), got {patience!r}")
    if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) \
            or not 0.0 <= min_delta < math.inf:
        raise ValueError(f"fit: min_delta must be a finite number >= 0, got {min_delta!r}")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
            or checkpoint_every < 1:
        raise ValueError(f"fit: checkpoint_every must be a positive int, got "
                         f"{checkpoint_every!r}")
    if checkpoint_keep is not None and (isinstance(checkpoint_keep, bool) or not isinstance(
            checkpoint_keep, int) or checkpoint_keep < 1):
        raise ValueError(f"fit: checkpoint_keep must be None (keep all) or a positive int, got "
                         f"{checkpoint_keep!r}")
    if thresholds is not None and not isinstance(thresholds, Thresholds):
        raise TypeError(f"fit: thresholds must be an fm.train.Thresholds (e.g. Thresholds("
                        f"explosion_factor=10.0)) or None, got {type(thresholds).__name__}")
    thresholds = Thresholds() if thresholds is None else thresholds
    if epochs == 1 and batch_size is None and iter(data) is data:  # (not consumed by iter)
        data = tuple(data)  # a one-shot iterator of batches is read once: for one epoch, fine
    if data_parallel and batch_size is None and not isinstance(data, Sequence) and \
            iter(data) is not data:  # a collection such as dict.values(): read once, here,
        data = tuple(data)  # for the batches and the ranks' fingerprint of them alike
    epoch_batches = batcher(data, batch_size, key)
    opt = inject_lr_scale(optimizer) if on_instability == "rollback" else optimizer
    names = groups_of(params) if monitor else ()
    call, built = make_step(loss_fn, opt, len(names)), _same
    if jit:
        from ..compiler.compile import built
        from ..compiler.compile import jit as compile_fn

        # parameters and optimizer state stay in the program's flat layout from one
        # step to the next; the pytrees are built only where read (``built``)
        call = cast(Any, compile_fn(call)).deferred
    vg = value_and_grad(loss_fn)
    writer = True
    if data_parallel:  # shard, gradient, all-reduce: fmicrograd/distributed.py; rank 0 writes
        from ..distributed import (
            all_ranks_gradient,
            check_data,
            is_writer,
            optimizer_digest,
            run_digest,
        )

        # batches of columns, checked before the process group is asked for anything
        check_data(epoch_batches(0) if batch_size is None else data, batch_size)
        ranks = all_ranks_gradient(compile_fn(vg) if jit else vg,
                                   run_digest(data, batch_size, epochs, key, val_data,
                                              (patience, min_delta, restore_best, monitor,
                                               on_instability, rollback_lr_factor,
                                               max_rollbacks, thresholds,
                                               ("resume", resume is not None))),
                                   optimizer_digest(opt, _widened(params)))
        call = make_step(loss_fn, opt, len(names), ranks)
        writer = is_writer()
    bar = Progress(epochs, sys.stderr) if progress and writer else None

    def train_step(acc: tuple, batch: Any) -> tuple:
        p, opt_state, sums, extra = acc
        if jit:  # jit's errors while the step is traced name fit's own fixes
            old = TRACE_ADVICE.get()  # (set again at the end, not reset: a Ctrl-C
            try:                      # between a set and its token's store left it set)
                TRACE_ADVICE.set(_JIT_ADVICE)
                new, opt_state, stats = call(p, opt_state, batch)
            finally:
                TRACE_ADVICE.set(old)
        else:
            new, opt_state, stats = call(p, opt_state, batch)
        sums = sums.add(stats, lambda: count_nonfinite(vg(built(p), batch)[1]))
        extra = tuple(t + _metric(name, fn, built(p), batch)
                      for t, (name, fn) in zip(extra, metrics.items()))
        return new, opt_state, sums, extra

    # the running minima of the loss since the last rollback, extended epoch by epoch
    # (derived from the history: found again from it after a resume)
    best: dict = {"since": None, "mins": None}

    def watch(fold: Fold, p: Any, opt_state: Any, history: PMap) -> Fold:
        e = len(history["loss"]) - 1
        if best["since"] != fold.since:  # the first epoch, or a rollback moved the start
            best.update(since=fold.since, mins=_EMPTY)
        best["mins"] = running_min(history["loss"], best["mins"], fold.since)
        found = detect(history, e, thresholds, fold.since, best["mins"])
        kinds = tuple(ev["kind"] for ev in found)
        new = [ev for ev in found if ev["kind"] not in fold.active]
        action = decide(on_instability, [ev["kind"] for ev in new], rollbacks=fold.rollbacks,
                        max_rollbacks=max_rollbacks)
        new = [ev.set("action", action if on_instability == "warn"
                      or ev["kind"] in INSTABILITIES else "none") for ev in new]
        if action == "rollback":  # the learning rate, as a fraction of the first, from now on
            scale = built(opt_state).lr_scale * rollback_lr_factor
            new = [ev.set("lr_scale", scale) if ev["action"] == "rollback" else ev for ev in new]
        if new:
            history = history.set("events", history["events"].extend(new))
        for ev in new:
            if on_event is not None:
                on_event(ev)
            if action == "warn":
                warnings.warn(_said(e, ev), InstabilityWarning, stacklevel=5)  # (the caller of fit)
        healthy = not any(k in INSTABILITIES for k in kinds)
        fold = fold._replace(history=history, active=kinds)
        if healthy:  # the epoch's statistics vouch for the state it started from
            return fold._replace(params=p, opt_state=opt_state, good_params=fold.params,
                                 good_opt_state=fold.opt_state)
        if action == "raise":
            first = next(ev for ev in new if ev["kind"] in INSTABILITIES)
            raise InstabilityError(_said(e, first, "fm.train.diagnose(err.history) says what "
                                         "to change"), new, history)
        if action == "stop":
            return fold._replace(params=fold.good_params, opt_state=fold.good_opt_state,
                                 stopped=True)
        if action == "rollback":
            back = built(fold.good_opt_state)._replace(lr_scale=built(opt_state).lr_scale)
            return fold._replace(params=fold.good_params,
                                 opt_state=scale_lr(back, rollback_lr_factor),
                                 rollbacks=fold.rollbacks + 1, active=(), since=e + 1)
        return fold._replace(params=p, opt_state=opt_state)

    def epoch_step(fold: Fold, epoch: int) -> Fold:
        if fold.stopped:
            return fold
        todo = epoch_batches(epoch)
        start = (fold.params, fold.opt_state, Epoch(), (0.0,) * len(metrics))
        p, opt_state, sums, extra = functools.reduce(train_step, todo, start)
        # under jit, p and opt_state may still be the program's flat vectors: a
        # pytree is built only where it is read (and building it makes the next
        # step recognise the pytree instead)
        if callback is not None or val_data is not None:
            p = built(p)
        row = sums.row(p, names, monitor, built)
        row.update((k, t / len(todo)) for k, t in zip(metrics, extra))
        if val_data is not None:
            row["val_loss"] = float(loss_fn(p, val_data))
            row.update((f"val_{k}", _metric(k, fn, p, val_data)) for k, fn in metrics.items())
        watched = row["val_loss" if val_data is not None else "loss"]
        improved = watched < fold.best - min_delta
        wait = 0 if improved else fold.wait + 1
        history = _append(fold.history, row)
        # the parameters the watched value was taken at: the epoch's end for val_data,
        # else its start (the training loss is taken before each step)
        at = p if val_data is not None else fold.params
        fold = fold._replace(epoch=fold.epoch + 1, best=watched if improved else fold.best,
                             best_params=at if improved else fold.best_params, wait=wait,
                             stopped=patience is not None and wait >= patience)
        if monitor:
            fold = watch(fold, p, opt_state, history)
        else:
            fold = fold._replace(params=p, opt_state=opt_state, history=history)
        if callback is not None:  # (the parameters training goes on from: after a rollback
            # or a stop, the good ones; a copy of their containers, which a callback may
            # change in place without changing the run or the caller's pytree: a compiled
            # step's are its own, or the caller's after a stop, or a ``Deferred``'s, which a
            # checkpoint then writes)
            callback(epoch, pytree.map(_same, built(fold.params)), pmap(row))
        if bar is not None:
            bar.update(epoch + 1, row)
        if checkpoint_dir is not None and writer and (fold.epoch % checkpoint_every == 0
                                           or fold.epoch == epochs or fold.stopped):
            fold = fold._replace(**{k: built(getattr(fold, k)) for k in STRUCTURED})
            save(checkpoint_dir, fold, key)
            if checkpoint_keep is not None:
                prune(checkpoint_dir, checkpoint_keep)
        return fold

    def begin() -> Fold:
        if writer:  # the others write nothing (and would race with its first checkpoint)
            check_run_dir(checkpoint_dir, resume)
        start = start_fold(_widened(params), opt, monitor, key, checkpoint_dir, resume)
        if start.epoch > epochs:
            raise ValueError(f"fit: the checkpoint resumed from has {start.epoch} epochs done, "
                             f"more than epochs={epochs} (epochs counts the whole run); pass "
                             f"epochs >= {start.epoch}, or a new checkpoint_dir to start afresh")
        same_options(start.history, start.epoch, monitor, val_data is not None, metrics, names)
        if checkpoint_dir is not None and writer and start.epoch == 0:
            save(checkpoint_dir, start, key)
        return start

    if data_parallel:  # a rank that fails here (rank 0's checks of the checkpoint_dir) must
        from ..distributed import together  # not leave the others waiting in a collective

        start = together(begin, "fit(data_parallel=True)")
    else:
        start = begin()
    if data_parallel:  # a rank that fails stops the others at their next exchange
        from ..distributed import PeerFailed

        try:
            end = functools.reduce(epoch_step, range(start.epoch, epochs), start)
            ranks.finish(built(end.best_params if restore_best else end.params))
        except PeerFailed:
            raise
        except BaseException:
            ranks.abort()
            raise
    else:
        end = functools.reduce(epoch_step, range(start.epoch, epochs), start)
    if bar is not None:
        bar.close()
    return built(end.best_params if restore_best else end.params), end.history


_JIT_ADVICE = (". Under fit(jit=True) the whole step is compiled (there is no static_argnums"
               " to pass): a schedule's step count and the loss's values are traced. Branch"
               " with comparisons (0.1 if k < 100 else 0.01, guarded), use fm.optim's"
               " schedules, or train with jit=False")


def _said(index: int, event: Mapping[str, Any], note: str = "") -> str:
    """An event for people: the epoch counted from 1, as the progress lines
    and ``diagnose`` count, and the history index that its ``"epoch"`` holds,
    so that neither is taken for the other.

    >>> _said(1, {"kind": "nan", "message": "not finite: loss"})
    'fit: epoch 2: nan: not finite: loss (history index 1, its "epoch")'
    """
    return (f"fit: epoch {index + 1}: {event['kind']}: {event['message']} (history index "
            f"{index}, its \"epoch\"{'; ' + note if note else ''})")


def _append(history: PMap, row: Mapping[str, Any]) -> PMap:
    grown = history.evolver()
    for k, v in row.items():
        grown[k] = history.get(k, _EMPTY).append(v)
    return grown.persistent()


_EMPTY: Any = pvector()


def _same(x: Any) -> Any:
    return x
