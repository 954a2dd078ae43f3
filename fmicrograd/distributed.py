"""Data-parallel training on ``torch.distributed``: the pieces ``fit`` uses.

Under ``fit(..., data_parallel=True)`` every process (rank) runs the same
script on the same data: it cuts each batch into ``world`` contiguous shards
(sizes differ by at most one), computes fmicrograd's loss and gradient on
its own shard, and sums ONE flat float64 vector (loss and gradient, weighted
by ``shard size / batch size``) over the ranks with
``torch.distributed.all_reduce``. Every rank then applies the same update, so
all of them hold the same parameters and history, equal to a one-process run
on whole batches up to rounding (1e-12 and below). One exception, as between
``jit`` and eager: Adam and RMSprop divide by the gradient's own size, so a
gradient entry that is 0 up to rounding (terms that cancel, say a bias with
balanced labels) and comes out 0.0 in one order and 3e-17 in the other moves
that parameter by about 1e-11 at once; and a parameter moved off an exact 0.0
no longer has an exactly cancelling gradient, so the next steps can move it
further (round 44 measured 2.9e-8 after a few Adam steps at learning rate
0.02, 1.8e-6 relative). Where the whole gradient cancels to about 0 for
several steps (symmetric data, odd labels), Adam's and RMSprop's steps are
that rounding normalized, of the size of the learning rate, and the run
follows it: a round-46 probe measured 0.016-0.31 apart in the parameters
after 10 steps, as far as one process gets from itself with its examples
merely reordered. SGD, with momentum too, stays within 1e-15 there. A last
batch with fewer examples than ranks leaves the extra ranks out (they add
zeros).

The weighting is exact when the loss is a mean of per-example terms plus
terms that depend on the parameters only (such as an L2 penalty): the
weights sum to one, so a parameter-only term counts once, as in one process.
A loss that *sums* per-example terms, or couples examples (batch statistics),
does not decompose this way; write it as a mean. Metrics and ``val_data``
are evaluated on whole batches on every rank (same numbers everywhere);
``callback`` runs on every rank, the progress bar on rank 0 only.

Batches must be a tuple of equal-length columns such as ``(xs, ys)`` (the
form of ``fm.datasets`` and of ``fit(batch_size=...)``); columns may be
tuples, lists or arrays. ``fit`` checks this before it asks the process
group for anything (``check_data``): a list of examples ``[(x0, y0), (x1, y1),
...]``, as ``data`` or as a batch, is a ``TypeError`` that says how to make
columns. Every rank must start from the same parameters and see the same data
(same ``key`` for shuffling); the first step checks this.
Only rank 0 should write files (``is_writer``): checkpoints, models, plots.

A rank that fails stops the others at once: before training (rank 0's
checks of ``checkpoint_dir``), every rank hears of it in one exchange
(``together``); during training (a rank's loss raising, a callback, rank 0's
checkpoint write, after the last step too), each step's vector carries one
flag per rank, and the failed rank sets its flag in one last exchange, so
the others stop with a ``PeerFailed`` naming it (``AllRanksGradient``; a rank
that fails before the first exchange marks the first step's check). A
rank that dies outright (killed) cannot tell: the others stop at their next
exchange with a ``PeerFailed`` that says so, the process group's error
attached.

>>> (fm.distributed.shard_bounds(10, 0, 3), fm.distributed.shard_bounds(10, 1, 3),
...  fm.distributed.shard_bounds(10, 2, 3))
((0, 3), (3, 6), (6, 10))
"""

from __future__ import annotations

import functools
import hashlib
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

import numpy as np
from typing_extensions import ParamSpec

from .core import pytree as tree

__all__ = ["shard_bounds", "shard", "check_data", "group", "is_writer", "init_from_env",
           "all_reduce_sum", "together",
           "all_ranks_gradient", "AllRanksGradient", "PeerFailed", "optimizer_digest",
           "run_digest", "tells_peers", "HOW_TO_START"]

HOW_TO_START = (
    "start one process per rank with torchrun (e.g. `torchrun --nproc-per-node 2 "
    "train_script.py`, or `torchrun --nproc-per-node 2 -m fmicrograd train --data-parallel`) "
    "and call fm.distributed.init_from_env() (or "
    "torch.distributed.init_process_group('gloo')) in the script before fit")

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank``'s contiguous shard of ``n`` examples
    split over ``world`` ranks; shard sizes differ by at most one.

    >>> [fm.distributed.shard_bounds(5, r, 2) for r in range(2)]
    [(0, 2), (2, 5)]
    """
    if not 0 <= rank < world:
        raise ValueError(f"shard_bounds: rank {rank} is not in range(0, {world})")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:  # ((0, -1) for n = -1)
        raise ValueError(f"shard_bounds: n must be an int >= 0 (the examples), got {n!r}")
    return n * rank // world, n * (rank + 1) // world


def shard(batch: Any, rank: int, world: int) -> tuple:
    """Rank ``rank``'s part of ``batch``, a tuple of equal-length columns.

    >>> fm.distributed.shard(((1.0, 2.0, 3.0), (-1.0, 1.0, 1.0)), 1, 2)
    ((2.0, 3.0), (1.0, 1.0))
    """
    columns = _columns(batch)
    start, stop = shard_bounds(len(columns[0]), rank, world)
    return tuple(c[start:stop] for c in columns)


def _columns(batch: Any, name: str = "the batch", what: str = "each batch") -> tuple:
    """``batch`` as a tuple of equal-length columns; ``what`` must be such a
    tuple and ``name`` is this one, for the error that says how to make them."""
    if not isinstance(batch, (tuple, list)) or not batch or not all(
            hasattr(c, "__len__") and hasattr(c, "__getitem__") and not isinstance(c, str)
            for c in batch):
        why = (": one example's fields, not columns, so data looks like a list of examples. "
               "Make columns with xs, ys = zip(*data), then pass" if _record(batch)
               else ". Pass")
        raise TypeError(f"fit(data_parallel=True): {what} must be a tuple of equal-length "
                        f"columns such as (xs, ys), to be split between ranks; {name} is "
                        f"{_described(batch)}{why} {_FORMS}")
    row = next((i for i, c in enumerate(batch) if _record(c)), None)
    if row is not None:
        raise TypeError(f"fit(data_parallel=True): {what} must be a tuple of equal-length "
                        f"columns such as (xs, ys), to be split between ranks; {name} is a "
                        f"{type(batch).__name__} of {len(batch)} examples (rows): its item "
                        f"[{row}], {_described(batch[row])}, is one example's fields, not a "
                        f"column. Make columns with xs, ys = zip(*{name}), then pass {_FORMS}")
    lengths = [len(c) for c in batch]
    if len(set(lengths)) != 1:
        raise ValueError(f"fit(data_parallel=True): a batch's columns differ in length: "
                         f"{lengths}")
    return tuple(batch)


_FORMS = "data=[(xs, ys)], or data=(xs, ys) with batch_size=..."
_LOOK = 16  # the entries of a column looked at: one example's fields show in the first few


def _record(x: Any) -> bool:
    """Whether ``x`` holds one example's fields rather than one column: numbers
    beside sequences, strings or arrays, ``(x, y)`` of ``list(zip(xs, ys))`` (a
    column holds one kind of value for every example; other values, such as
    ``None``, count as neither).

    >>> _record(((0.5, -0.2), 1.0)), _record(((0.5, -0.2), (0.1, 0.3))), _record((1.0, -1.0))
    (True, False, False)
    """
    if not isinstance(x, (tuple, list)):
        return False
    kinds = {kind for kind in map(_field_kind, x[:_LOOK]) if kind is not None}
    return len(kinds) == 2


def _field_kind(v: Any) -> str | None:
    """``"number"`` (a number, a 0-d array or tensor), ``"sequence"`` (a
    tuple, list or array with an axis) or None (a string, anything else).

    >>> import numpy as np
    >>> _field_kind(1.0), _field_kind(np.asarray(2.0)), _field_kind((1.0,)), _field_kind("a")
    ('number', 'number', 'sequence', None)
    """
    if isinstance(v, numbers.Number) or getattr(v, "ndim", None) == 0:
        return "number"
    if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
        return None
    try:
        len(v)
    except TypeError:  # (an object whose __len__ refuses: neither)
        return None
    return "sequence"


def _described(x: Any) -> str:
    """``x``'s type, and its items' for a tuple or list.

    >>> _described(((0.5, -0.2), 1.0)), _described(3)
    ('a tuple of (tuple, float)', 'an int')
    """
    kind = type(x).__name__
    article = "an" if kind[:1] in "aeiou" else "a"
    if not isinstance(x, (tuple, list)):
        return f"{article} {kind}"
    items = ", ".join(type(c).__name__ for c in x[:4]) + (", ..." if len(x) > 4 else "")
    return f"{article} {kind} of ({items})"


def check_data(data: Any, batch_size: int | None) -> None:
    """Check what ``fit(data_parallel=True)`` trains on before any process
    group work: every batch (``batch_size=None``: each item of ``data``),
    or the dataset cut into them, must be a tuple of equal-length columns
    such as ``(xs, ys)``, which split between ranks. A list of examples
    ``[(x0, y0), (x1, y1), ...]``, as a batch or as ``data``, is a
    ``TypeError`` that says how to make columns: split by ranks, its rows
    would reach the loss cut into pieces of examples.

    >>> fm.distributed.check_data([[((0.5, -0.2), 1.0), ((0.1, 0.3), -1.0)]],
    ...                           None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: fit(data_parallel=True): each batch must be a tuple of equal-length columns \
such as (xs, ys), to be split between ranks; data[0] is a list of 2 examples (rows): its item \
[0], a tuple of (tuple, float), is one example's fields, not a column. Make columns with ...
    """
    if batch_size is not None:
        _columns(data, "data", "with batch_size, data")
        return
    for i, batch in enumerate(data):
        _columns(batch, f"data[{i}]")


def _dist(who: str) -> Any:
    try:
        import torch.distributed as dist
    except ImportError:
        raise ImportError(f"{who} runs on torch.distributed, which is not installed: "
                          "pip install torch") from None
    return dist


def group(who: str = "fit(data_parallel=True)") -> tuple[int, int]:
    """``(rank, world_size)`` of the initialized process group; a clear
    ``RuntimeError`` saying how to start one if there is none.

    >>> fm.distributed.group()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: fit(data_parallel=True) needs an initialized torch.distributed process group ...
    """
    dist = _dist(who)
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(f"{who} needs an initialized torch.distributed process group and "
                           f"this process has none: {HOW_TO_START}")
    return dist.get_rank(), dist.get_world_size()


def is_writer() -> bool:
    """True in the process that should write files: rank 0 of an initialized
    process group, or any process when there is no group.

    >>> fm.distributed.is_writer()
    True
    """
    try:
        import torch.distributed as dist
    except ImportError:
        return True
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def init_from_env(backend: str = "gloo") -> bool:
    """Initialize the default process group from the variables ``torchrun``
    sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); returns
    True if it did, False if a group was already initialized. Without those
    variables it is a ``RuntimeError`` saying how to launch with torchrun.

    >>> import os
    >>> "RANK" in os.environ or fm.distributed.init_from_env()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: init_from_env: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are not set, ...
    """
    dist = _dist("init_from_env")
    if dist.is_initialized():
        return False
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise RuntimeError(f"init_from_env: {', '.join(missing)} are not set, so this process "
                           f"was not started by torchrun: {HOW_TO_START}")
    dist.init_process_group(backend, init_method="env://")
    return True


def all_reduce_sum(vector: Sequence[float]) -> list[float]:
    """The elementwise sum of ``vector`` over all ranks, in float64, as one
    ``all_reduce`` (every rank gets the same bits).

    >>> fm.distributed.all_reduce_sum([1.0])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: all_reduce_sum needs an initialized torch.distributed process group ...
    """
    group("all_reduce_sum")
    import torch
    import torch.distributed as dist

    total = torch.tensor(vector, dtype=torch.float64)
    if dist.get_backend() == "nccl":  # nccl reduces tensors on the GPU only
        total = total.cuda()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total.cpu().tolist()


class PeerFailed(RuntimeError):
    """Another rank failed during ``fit(data_parallel=True)``; this one stops
    with it (the failed rank raises its own error)."""


class AllRanksGradient:
    """``value_and_grad_fn(params, batch) -> (loss, grads)`` made data
    parallel: each rank evaluates its shard of the batch, and the
    shard-size-weighted sum over the ranks of the loss and the gradient comes
    back, the same on every rank (one ``all_reduce`` of one float64 vector).
    The first call checks that all ranks hold the same parameters and batch,
    and the same ``run`` (``fit``'s fingerprint of the whole dataset and its
    batch_size, epochs and key, see ``run_digest``).

    The vector also holds one flag per rank. A rank whose training fails
    (its loss raises, a callback, its checkpoint write) calls ``abort``: one
    more ``all_reduce`` with its flag set, which meets the others' next step
    (or their ``finish``, after the last one), so that every rank stops with
    a ``PeerFailed`` naming it, at once, instead of waiting for the process
    group's timeout (30 minutes). This is the hook of
    ``fit(data_parallel=True)``.

    >>> fm.distributed.AllRanksGradient(fm.value_and_grad(lambda p, b: p))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: fit(data_parallel=True) needs an initialized torch.distributed process group ...
    """

    def __init__(self, value_and_grad_fn: Callable[[Any, Any], tuple], run: bytes = b"",
                 optimizer: bytes = b"") -> None:
        self.rank, self.world = group()
        self.value_and_grad_fn, self.run, self.optimizer = value_and_grad_fn, run, optimizer
        self.checked = False  # the consistency check runs once
        self.length: int | None = None  # loss and gradient entries, once known
        self.expected: int | None = None  # the same, from the parameters, before the first

    def __call__(self, params: Any, batch: Any) -> tuple[float, Any]:
        columns = _columns(batch)
        n = len(columns[0])
        if n == 0:
            raise ValueError("fit(data_parallel=True): a batch of 0 examples")
        if not self.checked:
            _check_same(params, columns, self.rank, self.world, self.run, self.optimizer)
            self.checked = True
        if self.length is None:  # (the exchange's length, should this rank fail before it)
            self.expected = 1 + len(tree.leaves(params))
        part = shard(columns, self.rank, self.world)
        if not len(part[0]):  # fewer examples than ranks (a last batch): this rank adds 0
            _, grads = self.value_and_grad_fn(params, tuple(c[:1] for c in columns))  # shape
            leaves, treedef = tree.flatten(grads)
            total = self._sum([0.0] * (1 + len(leaves)), params=params)
            return total[0], tree.unflatten(treedef, total[1:])
        loss, grads = self.value_and_grad_fn(params, part)
        leaves, treedef = tree.flatten(grads)
        weight = len(part[0]) / n
        total = self._sum([weight * float(x) for x in (loss, *leaves)], params=params)
        return total[0], tree.unflatten(treedef, total[1:])

    def _sum(self, values: list, failed: bool = False, params: Any = None) -> list:
        flags = [0.0] * self.world
        flags[self.rank] = 1.0 if failed else 0.0
        checks = [0.0] * self.world  # each rank's fingerprint of the parameters it steps from
        if params is not None:
            checks[self.rank] = _fingerprint(params)
        try:
            total = all_reduce_sum(values + flags + checks)
        except RuntimeError as e:  # torch's DistBackendError: a peer's connection is gone
            if failed:
                raise
            raise PeerFailed(f"fit(data_parallel=True): the exchange with the other ranks "
                             f"failed: a rank stopped without telling (it was killed, or its "
                             f"process died); this is rank {self.rank}, which stops too. The "
                             f"process group said: {str(e).splitlines()[0] if str(e) else e!r}"
                             ) from e
        self.length = len(values)
        others = [r for r in range(self.world) if total[len(values) + r] and r != self.rank]
        if others and not failed:
            raise PeerFailed(f"fit(data_parallel=True): rank {others[0]} failed during "
                             f"training (its error is in its own output); this is rank "
                             f"{self.rank}, which stops with it")
        seen = total[len(values) + self.world:]
        if params is not None and any(c != seen[0] for c in seen):
            differ = [r for r in range(self.world) if seen[r] != seen[0]]
            raise ValueError(f"fit(data_parallel=True): the parameters of rank(s) {differ} "
                             f"differ from rank 0's after the same steps (this is rank "
                             f"{self.rank}): the ranks' optimizers differ where the first "
                             "step's check cannot see it (a learning-rate schedule, a clipping "
                             "threshold, a setting of the model): pass the same optimizer and "
                             "model, with the same settings, on every rank")
        return total[:len(values)]

    def abort(self) -> None:
        """Tell the other ranks that this one failed (see the class), in the
        exchange they wait in: the first step's check (``_check_same``) if this
        rank has not been through it, else a step's ``all_reduce`` (its length
        from the parameters before the first); nothing when the group is
        broken."""
        try:
            if not self.checked:
                dist = _dist("fit(data_parallel=True)")
                dist.all_gather_object([None] * self.world, (_FAILED, self.rank))
            else:
                length = self.length if self.length is not None else self.expected
                if length is not None:
                    self._sum([0.0] * length, failed=True)
        except Exception:  # noqa: BLE001 -- the group is gone: this rank's error stands
            pass

    def finish(self, params: Any = None) -> None:
        """The exchange after the last step: a rank that failed after it
        (its last checkpoint write, a last callback) is heard of here, and
        ``params``, what each rank returns, are compared (a difference the
        last step made, which no later step's check sees)."""
        if self.length is not None:
            self._sum([0.0] * self.length, params=params)


def all_ranks_gradient(value_and_grad_fn: Callable[[Any, Any], tuple],
                       run: bytes = b"", optimizer: bytes = b"") -> AllRanksGradient:
    """``AllRanksGradient(value_and_grad_fn, run, optimizer)``: the
    data-parallel gradient that ``fit(data_parallel=True)`` steps with
    (``optimizer``: ``optimizer_digest``'s fingerprint, compared at the first
    step as ``run`` is).

    >>> fm.distributed.all_ranks_gradient(fm.value_and_grad(lambda p, b: p))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: fit(data_parallel=True) needs an initialized torch.distributed process group ...
    """
    return AllRanksGradient(value_and_grad_fn, run, optimizer)


_P = ParamSpec("_P")
_R = TypeVar("_R")
# while a function wrapped in ``tells_peers`` runs: [whether it has reached ``together``]
_BEFORE_EXCHANGE: ContextVar[list | None] = ContextVar("_BEFORE_EXCHANGE", default=None)


def tells_peers(f: Callable[_P, _R]) -> Callable[_P, _R]:
    """``f`` (``fit``) such that, called with ``data_parallel=True``, an error
    it raises before its first exchange with the other ranks (``together``:
    a check of its arguments or its data, which one rank can fail alone) is
    told to them in that exchange, where they wait: they stop at once with a
    ``RuntimeError`` naming this rank and its error, not when its process
    ends (or after the process group's 30-minute timeout) with gloo's own.

    >>> fm.distributed.tells_peers(lambda x, data_parallel=False: x + 1)(1)
    2
    """
    @functools.wraps(f)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:  # (data_parallel: keyword-only)
        reached = [False]
        token = _BEFORE_EXCHANGE.set(reached)
        try:
            return f(*args, **kwargs)
        except Exception as e:
            if _on(kwargs.get("data_parallel")) and not reached[0]:
                _tell(e)
            raise
        finally:
            _BEFORE_EXCHANGE.reset(token)

    return wrapped


def _on(flag: Any) -> bool:
    """Whether ``fit`` takes ``flag`` for True (1 and numpy's True too)."""
    try:
        return not isinstance(flag, str) and bool(flag == True)  # noqa: E712
    except Exception:  # noqa: BLE001 -- (an array: fit refuses it)
        return False


def _tell(error: BaseException) -> None:
    """This rank's error, in the exchange ``together`` waits in (nothing
    without a process group, or when the group is broken)."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.all_gather_object([None] * dist.get_world_size(),
                                   f"{type(error).__name__}: {error}")
    except Exception:  # noqa: BLE001 -- this rank's own error stands
        pass


def together(step: Callable[[], Any], who: str) -> Any:
    """``step()`` on every rank, then one exchange of how it went: if it
    raised on some rank, it raises on every rank (its own error where it
    failed, a ``RuntimeError`` naming the failed rank and its error on the
    others), instead of leaving them waiting in the next collective.

    >>> fm.distributed.together(lambda: 1, "fit")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    RuntimeError: fit needs an initialized torch.distributed process group ...
    """
    reached = _BEFORE_EXCHANGE.get()
    if reached is not None:  # (a failure from here on is told in this exchange itself)
        reached[0] = True
    rank, world = group(who)
    dist = _dist(who)
    try:
        result, failure, mine = step(), None, None
    except Exception as e:  # noqa: BLE001 -- told to every rank, then raised again here
        result, failure, mine = None, f"{type(e).__name__}: {e}", e
    everyone: list = [None] * world
    dist.all_gather_object(everyone, failure)
    if mine is not None:
        raise mine
    failed = [(r, said) for r, said in enumerate(everyone) if said is not None]
    if failed:
        r, said = failed[0]
        raise RuntimeError(f"{who}: rank {r} failed before training ({said}); this is rank "
                           f"{rank}, which stops with it")
    return result


def _fingerprint(params: Any) -> float:
    """The parameters' bits as one float in [1, 2**48], the same on every
    rank exactly when the parameters are (a sum with zeros keeps it exact).

    >>> _fingerprint((1.0, 2.0)) == _fingerprint((1.0, 2.0)) != _fingerprint((1.0, 2.5))
    True
    """
    digest = hashlib.sha256(np.asarray(tree.leaves(params), dtype=float).tobytes()).digest()
    return 1.0 + int.from_bytes(digest[:6], "big")


def _digest(x: Any) -> bytes:
    """A fingerprint of parameters or data (floats by ``repr``, arrays by bytes)."""
    h = hashlib.sha256()
    for leaf in _walk(x):
        h.update(leaf)
    return h.digest()


def _walk(x: Any) -> Any:
    if hasattr(x, "tobytes") or hasattr(x, "numpy"):  # numpy array, torch tensor
        array = x.detach().cpu().numpy() if hasattr(x, "detach") else x
        yield str((array.shape, array.dtype)).encode() + array.tobytes()
    elif isinstance(x, Sequence) and not isinstance(x, (str, bytes)):  # (a pvector too)
        yield b"(%d" % len(x)
        for item in x:
            yield from _walk(item)
        yield b")"
    else:
        yield repr(x).encode()


def run_digest(data: Any, batch_size: int | None, epochs: int, key: Any,
               val_data: Any = None, stopping: tuple = ()) -> bytes:
    """A fingerprint of what a data-parallel ``fit`` trains on: the whole
    dataset (a sequence or arrays, a ``pvector``, a collection such as
    ``dict.values()`` read once more; b"" for an iterator, which one reading
    would use up), the settings that cut it into steps,
    the validation data and the settings that stop or roll back a run
    (``stopping``). Ranks that differ in any of them would sum gradients of
    different batches or steps, or stop at different epochs (one rank then
    steps on with the others' gradients missing), without an error (only the
    first batch is compared otherwise).

    >>> data = ((1.0, 2.0), (3.0, 4.0))
    >>> fm.distributed.run_digest(data, 1, 2, None) == fm.distributed.run_digest(data, 2, 2, None)
    False
    >>> (fm.distributed.run_digest(data, 1, 2, None, (1.0,))
    ...  == fm.distributed.run_digest(data, 1, 2, None, (2.0,)))
    False
    """
    contents, val_contents = _contents(data), _contents(val_data)
    return _digest(((() if contents is None else contents),
                    (() if val_contents is None else val_contents),
                    repr((batch_size, epochs, key, contents is not None,
                          val_contents is not None, stopping))))


def _contents(data: Any) -> Any:
    """What of ``data`` can be fingerprinted without using it up, or None:
    a sequence (not text) or an array as it is, a collection that gives a
    new iterator each time (``dict.values()``: fit reads it every epoch) as
    a tuple; not an iterator."""
    if isinstance(data, (str, bytes)):
        return None
    if isinstance(data, Sequence) or hasattr(data, "tobytes"):
        return data
    try:
        return tuple(data) if isinstance(data, Iterable) and iter(data) is not data else None
    except Exception:  # noqa: BLE001 -- an odd object: not read (first batch compared)
        return None


def optimizer_digest(optimizer: Any, params: Any) -> bytes:
    """A fingerprint of an ``fm.optim`` optimizer: its first two updates of
    ``params`` for the probe gradients 0.5 and -0.25 everywhere, and the state
    after them.
    Ranks given different optimizers (another learning rate, another kind)
    apply different updates to the same summed gradient, and their parameters
    part silently after the first step; this tells them apart at the first.

    >>> import fmicrograd as fm
    >>> a, b = fm.optim.sgd(0.1), fm.optim.sgd(0.2)
    >>> fm.distributed.optimizer_digest(a, (1.0,)) == fm.distributed.optimizer_digest(b, (1.0,))
    False
    """
    try:
        state, seen = optimizer.init(params), []
        for g in (0.5, -0.25):  # two steps: a momentum shows in the second
            updates, state = optimizer.update(tree.map(lambda _, g=g: g, params), state, params)
            seen += tree.leaves(updates)
    except Exception:  # noqa: BLE001 -- a rule the probe does not suit: not compared
        return b""
    return _digest((seen, tree.leaves(state), repr(tree.structure(state))))


_FAILED = "fmicrograd: this rank failed"  # what a failed rank sends to the first step's check


def _shape_of(params: Any) -> Any:
    """The parameters' tree structure (which holds a model's settings, as an
    ``fm.nn`` MLP's activation) as plain values that compare equal across
    processes: each node's class name and its settings where they are
    numbers, text or tuples of them, else their class name (a
    ``functools.partial`` or a callable object compares by identity, and no
    two ranks share one).

    >>> _shape_of({"a": (1.0, 2.0)}) == _shape_of({"a": (3.0, 4.0)})
    True
    """
    try:
        return _structure_plain(tree.structure(params))
    except RecursionError:  # (a tree flatten takes, nested deeper than this walk)
        return "deep"


def _structure_plain(td: Any) -> Any:
    kind = td.kind
    name = None if kind is None else f"{kind.__module__}.{kind.__qualname__}"
    return (name, _plain(td.meta), tuple(_structure_plain(c) for c in td.children))


def _plain(meta: Any) -> Any:
    if meta is None or isinstance(meta, (str, int, bool)):
        return meta
    if isinstance(meta, float):
        return ("float", repr(meta))  # (NaN equal to NaN)
    if isinstance(meta, (tuple, list)):
        return tuple(_plain(m) for m in meta)
    return ("object", f"{type(meta).__module__}.{type(meta).__qualname__}")


def _check_same(params: Any, columns: tuple, rank: int, world: int, run: bytes = b"",
                optimizer: bytes = b"") -> None:
    dist = _dist("fit(data_parallel=True)")
    mine = (_digest(tree.leaves(params)), _digest(columns), run, optimizer,
            _shape_of(params))
    everyone: list = [None] * world
    dist.all_gather_object(everyone, mine)
    failed = [r for r in range(world) if everyone[r] == (_FAILED, r)]
    if failed:  # (a rank that failed before this check: see AllRanksGradient.abort)
        raise PeerFailed(f"fit(data_parallel=True): rank {failed[0]} failed before its first "
                         f"step (its error is in its own output); this is rank {rank}, which "
                         f"stops with it")
    for what, index, fix in (  # (the settings first: a rank that resumes while another
            # starts afresh has other parameters too, and the settings say why)
            ("data or settings (the whole dataset, batch_size, epochs, key, val_data, "
             "resume, and the settings that stop or roll back a run)", 2,
             "load the same data and validation data on every rank and pass the same "
             "batch_size, epochs, key, patience, restore_best, monitor and on_instability "
             "settings, and resume= on every rank or none (every rank resumes from rank 0's "
             "checkpoint_dir, the one rank 0 writes); each rank takes its own shard of every "
             "batch"),
            ("parameters", 0, "build the model from the same key on every rank"),
            ("first batch", 1, "load the same data on every rank and shuffle it with the same "
                               "key; each rank takes its own shard"),
            ("optimizer (its first updates of a probe gradient)", 3,
             "pass the same optimizer, with the same settings, on every rank"),
            ("model's structure or settings (an fm.nn activation, a field that is not a "
             "number)", 4, "build the same model, with the same settings, on every rank")):
        differ = [r for r in range(world) if everyone[r][index] != everyone[0][index]]
        if differ:
            raise ValueError(f"fit(data_parallel=True): the {what} of rank(s) {differ} differ "
                             f"from rank 0's (this is rank {rank}): {fix}")
