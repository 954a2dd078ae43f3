"""Training as a fold: ``fit`` reduces over epochs, each epoch over batches.

``loss_fn(params, batch)`` returns a scalar; the optimizer is any
``fm.optim`` ``GradientTransformation``. The fold's state (parameters,
optimizer state, history, early-stopping bookkeeping) lives in a NamedTuple
that never escapes; the caller gets ``(final_params, history)`` with
``history`` a ``PMap`` from metric name to a ``PVector`` of one value per
epoch. Nothing passed in is modified.

``data`` comes in one of two forms:

- ``batch_size=None`` (the default): a collection of batches (a list or
  tuple, iterated once per epoch), each handed to ``loss_fn`` as it is. For
  full-batch training pass ``[dataset]``.
- ``batch_size=n``: a dataset, a tuple of equal-length sequences such as
  ``(xs, ys)`` from ``fm.datasets``; each epoch it is cut into batches of
  ``n`` examples (see ``batches``), shuffled first when a ``key`` is given.

>>> xs, ys = fm.datasets.xor()
>>> model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0))
>>> def loss(m, batch):
...     return fm.losses.hinge([m(x) for x in batch[0]], batch[1])
>>> model, history = fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], epochs=200)
>>> len(history["loss"]), history["loss"][-1] < 0.05
(200, True)
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap, pvector

from . import random as fr
from .optim import GradientTransformation, apply_updates
from .transforms.autodiff import value_and_grad

__all__ = ["fit", "batches", "progress_bar"]


def batches(dataset: Sequence[Sequence], batch_size: int, *, key: fr.Key | None = None,
            drop_last: bool = False) -> tuple:
    """Cut a dataset (a tuple of equal-length sequences) into batches of
    ``batch_size`` examples, each a tuple of the same columns; shuffled by
    ``key`` if given. The last batch may be smaller unless ``drop_last``.

    >>> batches(((1.0, 2.0, 3.0), (-1.0, 1.0, 1.0)), 2)
    (((1.0, 2.0), (-1.0, 1.0)), ((3.0,), (1.0,)))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    columns = _columns(dataset)
    n = len(columns[0])
    order = fr.permutation(key, n) if key is not None else range(n)
    stop = n - n % batch_size if drop_last else n
    cuts = [order[i:i + batch_size] for i in range(0, stop, batch_size)]
    return tuple(tuple(tuple(col[i] for i in idx) for col in columns) for idx in cuts)


def _columns(dataset: Any) -> tuple:
    if not isinstance(dataset, (tuple, list)) or not dataset or not all(
            isinstance(c, Sequence) and not isinstance(c, str) for c in dataset):
        raise TypeError("a dataset must be a tuple of equal-length sequences such as (xs, ys), "
                        f"got {type(dataset).__name__}")
    lengths = {len(c) for c in dataset}
    if len(lengths) != 1:
        raise ValueError(f"the dataset's sequences differ in length: {[len(c) for c in dataset]}")
    return tuple(dataset)


def progress_bar(epoch: int, epochs: int, metrics: Mapping[str, float], width: int = 24) -> str:
    """One line of the text progress bar ``fit`` draws with ``progress=True``.

    >>> progress_bar(3, 4, {"loss": 0.25})
    'epoch 3/4 [##################------] loss 0.2500'
    """
    filled = width * epoch // max(epochs, 1)
    values = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    return f"epoch {epoch}/{epochs} [{'#' * filled}{'-' * (width - filled)}] {values}"


class _Fold(NamedTuple):
    params: Any
    opt_state: Any
    history: PMap
    best: float
    best_params: Any
    wait: int
    stopped: bool


def fit(loss_fn: Callable[[Any, Any], Any], params: Any, optimizer: GradientTransformation,
        data: Iterable, *, epochs: int, batch_size: int | None = None,
        key: fr.Key | None = None, val_data: Any = None,
        metrics: Mapping[str, Callable[[Any, Any], float]] | None = None,
        patience: int | None = None, min_delta: float = 0.0, restore_best: bool = False,
        callback: Callable[[int, Any, PMap], Any] | None = None,
        progress: bool = False, jit: bool = False,
        data_parallel: bool = False) -> tuple[Any, PMap]:
    """Train ``params`` for ``epochs`` epochs; returns ``(final_params, history)``.

    Each epoch records the mean over its batches of ``loss`` and of each of
    ``metrics`` (``name -> fn(params, batch)``), both taken at the
    parameters the batch's gradient is taken at, then, with ``val_data`` (one
    batch), ``val_loss`` and ``val_<name>`` at the epoch's final parameters.
    ``patience`` stops after that many epochs without the monitored value
    (``val_loss`` if there is validation data, else ``loss``) improving by
    more than ``min_delta``; ``restore_best`` returns the best parameters
    seen rather than the last. ``callback(epoch, params, metrics)`` runs after
    each epoch (its result is ignored); ``progress=True`` draws a bar on stderr.
    ``jit=True`` compiles the loss and its gradient with ``fm.jit`` (traced
    once per batch structure; same numbers, many times faster per step).
    ``data_parallel=True`` splits every batch over the ranks of an initialized
    ``torch.distributed`` process group (see ``fm.distributed``: batches are
    ``(xs, ys)`` columns, the loss a mean over examples plus parameter-only
    terms); every rank returns the same result, that of one process.

    >>> loss = lambda p, batch: sum((p["w"] * x - y) ** 2 for x, y in batch)
    >>> p, h = fit(loss, {"w": 0.0}, fm.optim.sgd(0.05), [[(1.0, 2.0), (2.0, 4.0)]], epochs=50)
    >>> round(p["w"], 6), h["loss"][0]
    (2.0, 20.0)
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    metrics = dict(metrics or {})
    clash = {"loss"} & set(metrics)
    if clash or any(k.startswith("val_") for k in metrics):
        raise ValueError("fit: metric names must not be 'loss' or start with 'val_' "
                         f"(got {sorted(metrics)})")
    epoch_batches = _batcher(data, batch_size, key)
    vg = value_and_grad(loss_fn)
    if jit:
        from .compiler.compile import jit as compile_fn

        vg = compile_fn(vg)

    if data_parallel:  # shard, gradient, all-reduce: fmicrograd/distributed.py; rank 0 writes
        from .distributed import all_ranks_gradient, is_writer

        vg = all_ranks_gradient(vg)
        progress = progress and is_writer()

    def train_step(acc: tuple, batch: Any) -> tuple:
        p, opt_state, sums = acc
        value, grads = vg(p, batch)
        values = (value, *(fn(p, batch) for fn in metrics.values()))
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return apply_updates(p, updates), opt_state, tuple(map(_add, sums, values))

    def epoch_step(fold: _Fold, epoch: int) -> _Fold:
        if fold.stopped:
            return fold
        todo = epoch_batches(epoch)
        start = (fold.params, fold.opt_state, (0.0,) * (1 + len(metrics)))
        p, opt_state, sums = functools.reduce(train_step, todo, start)
        row = dict(zip(("loss", *metrics), (s / len(todo) for s in sums)))
        if val_data is not None:
            row["val_loss"] = float(loss_fn(p, val_data))
            row.update((f"val_{k}", float(fn(p, val_data))) for k, fn in metrics.items())
        watched = row["val_loss" if val_data is not None else "loss"]
        improved = watched < fold.best - min_delta
        wait = 0 if improved else fold.wait + 1
        history = pmap({k: fold.history.get(k, pvector()).append(v) for k, v in row.items()})
        if callback is not None:
            callback(epoch, p, pmap(row))
        if progress:
            print("\r" + progress_bar(epoch + 1, epochs, row), end="", file=sys.stderr)
        return _Fold(p, opt_state, history, watched if improved else fold.best,
                     p if improved else fold.best_params, wait,
                     patience is not None and wait >= patience)

    start = _Fold(params, optimizer.init(params), pmap({"loss": pvector()}), math.inf,
                  params, 0, False)
    end = functools.reduce(epoch_step, range(epochs), start)
    if progress:
        print(file=sys.stderr)
    return (end.best_params if restore_best else end.params), end.history


def _add(total: float, value: Any) -> float:
    return total + float(value)


def _batcher(data: Any, batch_size: int | None, key: fr.Key | None) -> Callable[[int], tuple]:
    """``epoch -> tuple of batches`` for either form of ``data``."""
    if batch_size is not None:
        _columns(data)
        if key is None:
            fixed = batches(data, batch_size)
            return lambda epoch: fixed
        return lambda epoch: batches(data, batch_size, key=fr.fold_in(key, epoch))
    if key is not None:
        raise ValueError("fit: key shuffles a dataset cut by batch_size; with batch_size=None "
                         "data is already a collection of batches")
    if iter(data) is data:
        raise TypeError("fit: data is a one-shot iterator but is read once per epoch; pass a "
                        "list or tuple of batches (e.g. [(xs, ys)] for full-batch training)")
    fixed = tuple(data)
    if not fixed:
        raise ValueError("fit: data holds no batches")
    return lambda epoch: fixed

