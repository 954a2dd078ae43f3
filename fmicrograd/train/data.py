"""What ``fit`` trains on: a collection of batches, or a dataset it cuts.

``data`` comes in exactly one of two forms:

- ``batch_size=None`` (the default): a collection of batches (a list or
  tuple, iterated once per epoch), each handed to ``loss_fn`` as it is. For
  full-batch training pass ``[(xs, ys)]``.
- ``batch_size=n``: a dataset, a *tuple* of equal-length sequences such as
  ``(xs, ys)`` from ``fm.datasets``, or of numpy arrays (examples along the
  first axis; a batch's columns are then arrays); each epoch it is cut into
  batches of ``n`` examples (see ``batches``), shuffled first when a ``key``
  is given.

A bare ``(xs, ys)`` without ``batch_size``, or ``[(xs, ys)]`` with it, is the
other form by mistake: both are a ``TypeError`` that shows the two forms.

>>> xs, ys = (1.0, 2.0, 3.0), (-1.0, 1.0, 1.0)
>>> batcher([(xs, ys)], None, None)(0) == ((xs, ys),)
True
>>> batcher((xs, ys), None, None)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
TypeError: fit: data looks like a dataset (xs, ys) of 3 examples, ...
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import random as fr

__all__ = ["batches", "batcher", "FORMS"]

FORMS = ("fit(loss, params, opt, [(xs, ys)], epochs=...)  (a list of batches; here one, "
         "the whole dataset)\n  or fit(loss, params, opt, (xs, ys), epochs=..., batch_size=32)"
         "  (a dataset, cut into batches)")


def batches(dataset: Sequence[Sequence], batch_size: int, *, key: fr.Key | None = None,
            drop_last: bool = False) -> tuple:
    """Cut a dataset (a tuple of equal-length sequences) into batches of
    ``batch_size`` examples, each a tuple of the same columns; shuffled by
    ``key`` if given. The last batch may be smaller unless ``drop_last``.

    >>> fm.train.batches(((1.0, 2.0, 3.0), (-1.0, 1.0, 1.0)), 2)
    (((1.0, 2.0), (-1.0, 1.0)), ((3.0,), (1.0,)))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    columns = _columns(dataset)
    n = len(columns[0])
    order = fr.permutation(key, n) if key is not None else range(n)
    stop = n - n % batch_size if drop_last else n
    cuts = [order[i:i + batch_size] for i in range(0, stop, batch_size)]
    return tuple(tuple(_take(col, idx) for col in columns) for idx in cuts)


def _take(col: Any, idx: Sequence[int]) -> Any:
    """Examples ``idx`` of one column: a tuple, or an array for an array."""
    if isinstance(col, np.ndarray):
        return col[np.fromiter(idx, dtype=np.intp, count=len(idx))]
    return tuple(col[i] for i in idx)


def _is_column(c: Any) -> bool:
    return (isinstance(c, Sequence) and not isinstance(c, str)) or (
        isinstance(c, np.ndarray) and c.ndim >= 1)


def _columns(dataset: Any) -> tuple:
    if not isinstance(dataset, tuple) or not dataset or not all(map(_is_column, dataset)):
        got = type(dataset).__name__
        if isinstance(dataset, tuple) and dataset:
            got += " of " + ", ".join(type(c).__name__ for c in dataset)
        raise TypeError(f"fit: with batch_size, data must be a dataset: a tuple of "
                        f"equal-length sequences or arrays such as (xs, ys), got {got}. "
                        f"The two forms are\n  {FORMS}")
    lengths = {len(c) for c in dataset}
    if len(lengths) != 1:
        raise ValueError("fit: the dataset's columns differ in length: "
                         + ", ".join(f"column {i} has {len(c)}" for i, c in enumerate(dataset))
                         + " (each column holds one entry per example)")
    if not lengths.pop():
        raise ValueError("fit: the dataset holds no examples (its columns are empty)")
    return tuple(dataset)


def _looks_like_dataset(data: Any) -> bool:
    """A tuple of >= 2 equal-length sequences, one of them of plain numbers
    (labels): ``(xs, ys)``, not a collection of batches."""
    if not isinstance(data, tuple) or len(data) < 2 or not all(map(_is_column, data)):
        return False
    if len({len(c) for c in data}) != 1 or len(data[0]) < 2:
        return False
    return any((isinstance(c, np.ndarray) and c.ndim == 1 and c.dtype.kind in "fiub") or
               all(isinstance(v, numbers.Number) for v in c) for c in data)


def batcher(data: Any, batch_size: int | None, key: fr.Key | None) -> Callable[[int], tuple]:
    """``epoch -> tuple of batches`` for either form of ``data`` (see above)."""
    if key is not None and not isinstance(key, fr.Key):
        raise TypeError(f"fit: key must be an fm.random key (fm.random.key(seed)), got "
                        f"{type(key).__name__} {key!r}")
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
                        "list or tuple of batches (e.g. [(xs, ys)] for full-batch training), "
                        "or train one epoch (epochs=1)")
    if _looks_like_dataset(data):
        raise TypeError(f"fit: data looks like a dataset (xs, ys) of {len(data[0])} examples, "
                        f"but without batch_size data is a collection of batches, and each "
                        f"of its {len(data)} items would reach loss_fn as a batch. The two "
                        f"forms are\n  {FORMS}")
    fixed = tuple(data)
    if not fixed:
        raise ValueError("fit: data holds no batches")
    return lambda epoch: fixed
