"""``vmap``: run a per-example function once over a whole batch.

Each mapped argument becomes a pytree of batched leaves: nodes whose value
is a numpy array with one entry per example on axis 0, so every graph node
is one array operation instead of one Python operation per example. The
derivative rules are generic, so ``grad`` of a ``vmap`` and ``vmap`` of a
``grad`` need nothing more (a cotangent that reaches an unbatched input is
summed over the batch by ``batching.reduce_to``).

Nested ``vmap``: the innermost batch axis comes first and the batch axes of
enclosing ``vmap`` calls follow, so numpy's broadcasting lines them up; the
depth is held in ``batching.DEPTH`` for the duration of the call.

>>> import numpy as np
>>> vmap(lambda x, y: x * y + 1.0)(np.array([1.0, 2.0, 3.0]), (2.0, 2.0, 2.0))
(3.0, 5.0, 7.0)
>>> fm.grad(lambda w: fm.mean(vmap(lambda x: w * x, in_axes=0)((1.0, 2.0, 3.0))))(5.0)
2.0
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, Set
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from pyrsistent import PVector

from ..core import pytree as tr
from ..core.batch_axes import BATCHES, DEPTH
from ..core.comparisons import Mask
from ..core.control import (
    _RAISED_LOCK,
    FREE_OF_VARIABLES,
    RAISED,
    RAISED_ANYWHERE,
    TRACE_MAPS,
    VMAP_NOW,
    VMAPS,
    check_callable,
    out_of_ended_vmap,
    reaches_variable,
    settle,
)
from ..core.expr import Expr, const, prim, stored_value
from ..core.numeric import foreign_array, inexact_int, inexact_ints
from ..core.placeholder import NoNumbers, scalar
from .traced_arrays import TRACED
from .vmap_ops import MoveAxis, Reshape, Stack, Take, apply

__all__ = ["vmap", "Batched"]

def vmap(f: Callable, in_axes: Any = 0, out_axes: int = 0) -> Callable:
    """Map ``f`` over the leading axis of its mapped arguments.

    ``in_axes`` is 0 (map every positional argument), None, or a tuple with
    one 0 or None per positional argument (None: passed unchanged to every
    example; keyword arguments are never mapped, and one that ``jax.vmap``
    would map, a sequence or arrays, is a TypeError). A mapped argument is a
    sequence (or numpy array) whose item ``i`` is example ``i``'s input, any
    pytree. The result holds one output per example: a tuple of them when
    nothing is traced, else a ``Batched`` (``len``, indexing, iteration,
    ``fm.sum``, ``fm.mean``, and another ``vmap``).

    >>> fm.vmap(lambda p, x: fm.dot(p, x), in_axes=(None, 0))((1.0, 2.0), [(3.0, 4.0), (5.0, 6.0)])
    (11.0, 17.0)
    """
    check_callable(f, "vmap")
    if isinstance(out_axes, bool) or not isinstance(out_axes, (int, np.integer)) or \
            out_axes != 0:  # (0.0 and False are not axes)
        raise ValueError(f"fm.vmap: out_axes must be 0 (outputs are batched on their leading "
                         f"axis), got {out_axes!r}")

    @functools.wraps(f)
    def mapped(*args: Any, **kwargs: Any) -> Any:
        for name, value in kwargs.items():
            _unmapped_keyword(name, value)
        axes = _axes(in_axes, len(args))
        out_of_ended_vmap()  # (a context copied inside a vmap that has returned)
        depth = DEPTH.get()
        size, where, new_args = None, None, list(args)
        for i, (arg, ax) in enumerate(zip(args, axes)):
            if ax is None:
                continue
            n, new_args[i] = _split(arg, depth, f"argument {i}")
            if size is not None and n != size:
                raise ValueError(f"fm.vmap: mapped arguments disagree on the batch size: "
                                 f"{where} has {size} examples but argument {i} has {n} "
                                 f"(in_axes={in_axes!r})")
            size, where = n, f"argument {i}"
        mapped_leaves = tuple(
            x for i, ax in enumerate(axes) if ax is not None for x in tr.leaves(new_args[i]))
        key = object()
        elsewhere = bool(VMAPS) and not depth  # another thread's vmap may hand us its batch
        traced = TRACE_MAPS.get()
        if traced is not None:  # (a trace with array code: see ``control.TRACE_MAPS``)
            traced[0] = True
        # the leaves this call made (a Batched argument's own leaves, shared by every vmap
        # that maps it, are not per-example values of this call only)
        passed = {id(x) for a in args if isinstance(a, Batched) for x in a.leaves}
        made = frozenset(id(x) for x in mapped_leaves if id(x) not in passed)
        memo, batches, now = FREE_OF_VARIABLES.get(), BATCHES.get(), VMAP_NOW.get()
        failed = True
        # the state is set inside the try and put back from the values read before it, not
        # from tokens: a Ctrl-C between a set and the store of its token left it set (vmap
        # broken in that thread for good)
        try:
            DEPTH.set(depth + 1)
            if memo is None:
                FREE_OF_VARIABLES.set({})
            BATCHES.set(batches + (mapped_leaves,))
            VMAPS[key] = made  # (for a thread's errors: ``control.thread_hint``)
            VMAP_NOW.set((depth + 1, key, now))  # (now: the enclosing vmap's, or ())
            try:
                with np.errstate(all="ignore"):  # (silent as eager and compiled code are)
                    out = f(*new_args, **kwargs)
            except ValueError as e:  # numpy's own (a subclass is the function's)
                if elsewhere and type(e) is ValueError and str(e).startswith(
                        "operands could not be broadcast"):  # (a batch from a thread?)
                    raise ValueError(f"{e}{_FOREIGN}") from e
                raise
            except TypeError as e:  # Python's, where f took an example's row for a number
                if type(e) is TypeError and ("sequence" in str(e) or "tuple" in str(e)) and any(
                        ax is not None and getattr(a, "ndim", 0) > 1
                        for a, ax in zip(args, axes)):
                    raise TypeError(f"{e} (fm.vmap hands f each row of a 2-d array as a tuple "
                                    "of numbers: fm computes with scalars; index it (x[0]) or "
                                    "reduce it with fm functions (fm.dot, fm.sum))") from e
                raise
            if elsewhere:
                _check_not_foreign(out, key, passed)
            failed = False
        finally:
            # one step per level: an interrupt that lands between two of them still runs
            # the rest (``ended`` inlined: a call's first bytecode can take one too)
            try:
                DEPTH.set(depth)
            finally:
                try:
                    with _RAISED_LOCK:
                        VMAPS.pop(key, None)
                finally:
                    try:
                        BATCHES.set(batches)
                    finally:
                        try:
                            VMAP_NOW.set(now)
                        finally:
                            FREE_OF_VARIABLES.set(memo)
            # a branch on disagreeing examples that f caught, here or in a thread (settle)
            if RAISED.get() or RAISED_ANYWHERE:
                settle(("vmap", depth + 1), failed, key)
        unmapped = tuple(args[i] for i, ax in enumerate(axes) if ax is None)
        return _collect(out, size, depth, unmapped)  # type: ignore[arg-type]  # one axis

    return mapped


_FOREIGN = (" (this fm.vmap runs in a thread that does not share the context of another "
            "fm.vmap running now, and its function uses that vmap's batch, which looks like "
            "an array here; run the thread's work in the caller's context: "
            "pool.submit(contextvars.copy_context().run, fn, *args))")


def _check_not_foreign(out: Any, key: object, passed: set) -> None:
    """A ``ValueError`` when ``out`` (a mapped function's output, computed
    outside every other ``vmap`` of this context while another runs in some
    thread) uses a per-example value of that other ``vmap``: handed to a
    worker thread with a fresh context, its batch axis was taken for this
    one's, and examples of both were paired entry by entry (a wrong number
    at equal sizes). The walk follows array values only (a batch is one) and
    stops at the leaves of a ``Batched`` this call maps (``passed``, ids: what
    lies below them is how it was made, before); a leaf this call made, such
    as the stack of a tuple's items, is walked through to the items."""
    others = [ids for k, ids in list(VMAPS.items()) if k is not key and ids]
    if not others:
        return
    stack = [x for x in tr.leaves(out) if isinstance(x, Expr)]
    seen: set = set()
    while stack:
        n = stack.pop()
        i = id(n)
        if any(i in ids for ids in others):
            raise ValueError("fm.vmap: the mapped function uses a value of another fm.vmap's "
                             f"batch{_FOREIGN}")
        if i in passed:
            continue
        for c in n.children:
            if id(c) not in seen and getattr(stored_value(c), "ndim", None):
                seen.add(id(c))
                stack.append(c)


def _unmapped_keyword(name: str, value: Any) -> None:
    """A TypeError for a keyword argument that ``jax.vmap`` would map (a
    sequence, or an array or a ``vmap`` result in it): ``fm.vmap`` gives every
    example all of a keyword argument, so a JAX user's ``f(xs, y=ys)`` would
    pair each ``x`` with every ``y`` silently. Other values (numbers,
    strings, a model) are passed whole, as before.

    >>> vmap(lambda x, y: x * y)((1.0, 2.0), y=(3.0, 4.0))
    Traceback (most recent call last):
    ...
    TypeError: fm.vmap: keyword argument 'y' is a tuple ...
    """
    if isinstance(value, (list, tuple, PVector)):
        what = f"a {type(value).__name__}"
    elif any(isinstance(x, Batched) or (isinstance(x, np.ndarray) and x.ndim)
             for x in tr.leaves(value)):
        what = "an array" if isinstance(value, np.ndarray) else "a pytree holding arrays"
    else:
        return
    raise TypeError(f"fm.vmap: keyword argument {name!r} is {what} ..., and fm.vmap never maps "
                    "keyword arguments (jax.vmap maps them along axis 0): every example would "
                    "get all of it. Pass it positionally, with in_axes 0 to map it or None to "
                    "give every example all of it (or close over it)")


def _axes(in_axes: Any, nargs: int) -> tuple:
    def check(ax: Any, where: str) -> Any:
        if ax is None or (ax == 0 and isinstance(ax, int) and not isinstance(ax, bool)):
            return ax
        raise ValueError(f"fm.vmap: {where} must be 0 or None (only the leading axis can be "
                         f"mapped), got {ax!r}")

    if isinstance(in_axes, (tuple, list)):
        if len(in_axes) != nargs:
            raise ValueError(f"fm.vmap: in_axes={in_axes!r} has {len(in_axes)} entries but the "
                             f"function got {nargs} positional arguments; give one 0 or None "
                             f"per argument")
        axes = tuple(check(ax, f"in_axes[{i}]") for i, ax in enumerate(in_axes))
    else:
        axes = (check(in_axes, "in_axes"),) * nargs
    if all(ax is None for ax in axes):
        raise ValueError(f"fm.vmap: in_axes={in_axes!r} maps no argument, so there is no batch "
                         f"to map over; mark at least one argument with 0")
    return axes


def _split(arg: Any, depth: int, where: str) -> tuple[int, Any]:
    """The batch size and the per-example pytree of batched leaves of ``arg``."""
    if isinstance(arg, Batched):
        leaves = [_pad(_move(leaf, 0, r), r, depth) if r else _pad(leaf, 0, depth)
                  for leaf, r in zip(arg.leaves, _ranks(arg.treedef))]
        return arg.size, tr.unflatten(arg.treedef, leaves)
    if isinstance(arg, np.ndarray) and arg.__class__ not in (np.ndarray, np.memmap):
        raise TypeError(f"fm.vmap: {where} is a {type(arg).__name__}, a numpy array subclass "
                        "whose meaning (a mask, a unit) mapping its numbers would drop (a "
                        "masked array's hidden entries were mapped); pass np.asarray(x), or "
                        "x.filled(...) or x.compressed() for a masked array")
    if isinstance(arg, np.ndarray) and arg.dtype != object:
        if arg.dtype.kind == "b":  # (read as 0.0 and 1.0, True + True was 2.0 where the
            # loop's numpy bools give True, and -True -1.0 where the loop raises)
            raise TypeError(f"fm.vmap: {where} is a numpy array of dtype bool; fm computes "
                            "with float64 numbers: pass mask.astype(float) and select with "
                            "fm.where(m > 0.5, a, b), as fm.jit asks")
        if arg.dtype.kind not in "fiu":
            raise TypeError(f"fm.vmap: {where} is a numpy array of dtype {arg.dtype}; only real "
                            "numbers are supported (complex and text are not): pass "
                            "floats, e.g. the real and imaginary parts as separate arguments")
        if arg.ndim == 0:
            raise ValueError(f"fm.vmap: {where} is mapped but is a 0-d array; map a sequence "
                             f"or use in_axes=None for it")
        if not len(arg):  # as an empty tuple (it gave () here, and an error under jit)
            raise ValueError(f"fm.vmap: {where} is an empty array: no examples to map over")
        if inexact_ints(arg):
            _inexact_error(where)
        return len(arg), _columns(np.array(arg, dtype=float), depth)  # (a copy: the
        # sweep reads the columns later, and the user may refill the array before it)
    foreign = foreign_array(arg) if hasattr(arg, "__dlpack__") else ""  # (a pandas Series is
    if foreign:  # a sequence; a tensor's items were 0-d tensors: "a leaf that is Tensor ...")
        raise TypeError(f"fm.vmap: {where} is a {foreign}; fm.vmap maps numbers, sequences "
                        "of examples and numpy arrays: pass np.asarray(x) (x.numpy() for a "
                        "torch tensor), or run f on torch tensors with fm.to_torch(f)")
    if isinstance(arg, (Expr, numbers.Number, str, bytes, Mapping)) or not hasattr(
            arg, "__len__") or isinstance(arg, Set) and not isinstance(
            arg, (KeysView, ItemsView)):  # (a mapping's items are its keys; a set has no order)
        what = "a single number (a node)" if isinstance(arg, Expr) else type(arg).__name__
        raise ValueError(f"fm.vmap: {where} is mapped (in_axes 0) but is "
                         f"{what}, not a sequence of examples; pass a sequence "
                         f"or array, or give it in_axes None")
    traced = TRACED.get()
    if traced is not None and arg.__class__ is np.ndarray and arg.dtype == object:
        columns = traced.columns(arg, depth)  # an array argument of jit's trace
        if columns is not None:
            return len(arg), columns
    if isinstance(arg, np.ndarray) and arg.size and all(isinstance(x, Expr) for x in arg.flat):
        # jit's traced array: its columns directly (what the general path below
        # gives for it, without splitting it into one tuple per example first)
        return len(arg), _expr_columns(arg, depth, where)
    items = [_tuples(x) for x in arg]
    if not items:
        raise ValueError(f"fm.vmap: {where} is an empty sequence: no examples to map over")
    dense = _dense(items)
    if dense is not None:
        return len(items), _columns(dense, depth)
    first, treedef = tr.flatten(items[0])
    columns = [[leaf] for leaf in first]
    for i, item in enumerate(items[1:], 1):
        leaves, other = tr.flatten(item)
        if not tr.equal(other, treedef):  # (in C, else iteratively: any depth flatten takes)
            _keys_refused(items, where)
            tr.check_same(treedef, other, f"fm.vmap: {where}: example {i} differs from "
                                          f"example 0 in structure")
        for col, leaf in zip(columns, leaves):
            col.append(leaf)
    ranks = _ranks(treedef)

    leaves = [_stack(col, r, depth, where, items[0], k)
              for k, (col, r) in enumerate(zip(columns, ranks))]
    return len(items), tr.unflatten(treedef, leaves)


def _path_of(example: Any, k: int) -> str:
    """Where leaf ``k`` sits in ``example`` (for an error)."""
    return tr.keystr(tr.flatten_with_paths(example)[1][k])


def _keys_refused(items: list, where: str) -> None:
    """Examples that are ``fm.random`` keys: each a pytree with no leaves
    whose structure is the key itself, so two keys differ in structure. The
    error says so, rather than that the examples differ."""
    from ..random import Key

    if any(isinstance(x, Key) for x in items):
        raise ValueError(f"fm.vmap: {where} holds fm.random keys, which vmap cannot map (a key "
                         "is a pytree with no leaves, only its own structure): draw the "
                         "numbers first and map them, e.g. fm.random.normal(key, n) for n "
                         "examples, or a tuple of fm.random.normal(k) for k in the keys")


def _expr_columns(arr: np.ndarray, depth: int, where: str) -> Any:
    """A (B, ...) object array of nodes as nested tuples of stacked columns."""
    def build(index: tuple) -> Any:
        if len(index) == arr.ndim - 1:
            return _stack(arr[(slice(None),) + index].tolist(), 0, depth, where)
        return tuple(build(index + (j,)) for j in range(arr.shape[len(index) + 1]))

    return build(())


def _tuples(x: Any) -> Any:
    """Rows of an object array (jit's traced arrays) as nested tuples."""
    if isinstance(x, np.ndarray):
        return tuple(_tuples(r) for r in x) if x.ndim else x.item()
    return x


def _dense(items: list) -> np.ndarray | None:
    """``items`` as one float array when they are numbers or equal-shape tuples of them."""
    if not isinstance(items[0], (tuple, numbers.Real)):
        return None
    try:
        arr = np.array(items, dtype=object)
    except ValueError:  # ragged
        return None
    kinds = set(map(type, arr.ravel()))
    if arr.ndim == 0 or not kinds <= {float, int, np.float64}:
        return None
    if int in kinds and any(x.__class__ is int and inexact_int(x) for x in arr.ravel()):
        return None  # ``_stack`` names it
    level = items  # every container of every example a plain tuple (a list in any of
    for _ in range(arr.ndim - 1):  # them, read as a row of numbers, came to f as a tuple)
        if set(map(type, level)) != {tuple}:
            return None
        level = list(chain.from_iterable(level))
    return arr.astype(float)


def _columns(arr: np.ndarray, depth: int) -> Any:
    """A (B, ...) float array as nested tuples of batched constant columns."""
    def build(index: tuple) -> Any:
        if len(index) == arr.ndim - 1:
            column = arr[(slice(None),) + index]
            return const(column.reshape(column.shape + (1,) * depth))
        return tuple(build(index + (j,)) for j in range(arr.shape[len(index) + 1]))

    return build(())


def _stack(column: list, rank: int, depth: int, where: str, example: Any = None,
           k: int = -1) -> Any:
    """The batched leaf of ``column`` (leaf ``k`` of each example, for an
    error's path in ``example``, the first)."""
    for i, leaf in enumerate(column):
        if isinstance(leaf, bool) or not (isinstance(leaf, (Expr, numbers.Real, np.ndarray))):
            place = f" (example {i}, at {_path_of(example, k)})" if k >= 0 else ""
            raise TypeError(f"fm.vmap: {where} has a leaf that is {type(leaf).__name__} "
                            f"{leaf!r}{place}; expected numbers or fm.Expr")
        if isinstance(leaf, np.ndarray) and leaf.ndim:
            raise TypeError(f"fm.vmap: {where}'s examples hold a numpy array of shape "
                            f"{leaf.shape}; stacked, its entries would be read as examples of "
                            "another batch and mixed. fmicrograd is scalar-valued: give each "
                            "example its numbers as a tuple (tuple(arr.tolist())), or map the "
                            "array itself as an argument (a 2-D array is one example per row)")
        if isinstance(leaf, (int, np.integer)) and inexact_int(leaf):
            _inexact_error(where)
    # numpy scalars (int8, float32, ...) and Fractions as float64, as every transform reads
    # them: stacked as they are, ints would wrap and float16 overflow in their own dtype
    column = [x if x.__class__ is float or isinstance(x, Expr) else float(x) for x in column]
    stacked = apply(Stack(depth + rank), *column)
    if not isinstance(stacked, Expr):  # plain numbers: a constant node, as for tuples
        stacked = const(stacked)
    return _move(stacked, 0, rank) if rank else stacked


def _inexact_error(where: str) -> None:
    raise ValueError(f"fm.vmap: {where} has an integer beyond 2**53, which the float64 "
                     "batch would round; pass it unmapped (in_axes None) or as a float")


def _move(x: Any, src: int, dst: int) -> Any:
    return apply(MoveAxis(src, dst), x) if src != dst else x


def _pad(x: Any, rank: int, depth: int) -> Any:
    """Give a batched leaf unit axes for the enclosing batches it lacks."""
    shape = np.shape(x.value if isinstance(x, Expr) else x)
    want = rank + depth + 1
    if len(shape) >= want:
        return x
    after = shape[:rank + 1] + (1,) * (want - len(shape)) + shape[rank + 1:]
    return apply(Reshape(shape, after), x)


def _ranks(treedef: tr.TreeDef) -> list:
    """For each leaf, how many ``Batched`` nodes hold it (its leading example axes)."""
    out: list = []

    def walk(td: tr.TreeDef, r: int) -> None:
        if td.kind is None:
            out.append(r)
        elif td.kind is Batched:  # its leaves are those of its example structure
            walk(td.meta[0], r + 1)
        else:
            for c in td.children:
                walk(c, r)

    walk(treedef, 0)
    return out


def _collect(out: Any, size: int, depth: int, unmapped: tuple = ()) -> Any:
    """The outputs of the examples: a tuple of them (nothing traced) or a
    ``Batched``. ``unmapped``: the arguments not mapped, whose arrays the
    function may not return as they are."""
    leaves, treedef = tr.flatten(out)
    given: list | None = None  # the unmapped arguments' leaves, read once if needed
    for j, leaf in enumerate(leaves):
        if not isinstance(leaf, (Expr, numbers.Real, np.ndarray, np.bool_)) or (
                isinstance(leaf, np.ndarray) and leaf.dtype.kind not in "fiub"):
            if _has_mask(out):
                raise TypeError("fm.vmap: the mapped function returns a comparison whose "
                                "examples disagree (a per-example bool); return a number per "
                                "example instead, e.g. fm.where(x > 0.0, 1.0, 0.0)")
            given = tr.leaves(unmapped) if given is None else given
            if leaf.__class__ is np.ndarray and any(x is leaf for x in given):
                # (an array argument that fm.jit traces, one node per entry)
                _returns_unmapped(out, j, leaf, "as fm.jit traces it (a node per entry)")
            path = tr.flatten_with_paths(out)[1][j]
            raise TypeError(f"fm.vmap: the mapped function's output has a leaf at "
                            f"{tr.keystr(path)} that is {type(leaf).__name__} {leaf!r}; every "
                            "output leaf must be a number, a numeric array or an fm.Expr "
                            "(return other values outside the mapped function)")
    ranks = _ranks(treedef)
    plain = depth == 0 and not any(reaches_variable(x) for x in leaves)
    for j, (leaf, r) in enumerate(zip(leaves, ranks)):
        # an unmapped argument's array, returned as it is: the loop gives every example
        # the whole array, where the batched values would read its first axis (its last
        # ones under an enclosing vmap) as the examples'; only the plain values of one
        # vmap (nothing traced) give each example the whole of an array of 2+ axes, and
        # one number broadcasts to every example (never split)
        if leaf.__class__ is not np.ndarray or r or leaf.size < 2 or (leaf.ndim > 1 and plain):
            continue
        given = tr.leaves(unmapped) if given is None else given
        if any(x is leaf for x in given):
            _returns_unmapped(out, j, leaf, "")
    if plain:
        values = [_whole(x.value if isinstance(x, Expr) else x, size, r)
                  for x, r in zip(leaves, ranks)]
        return _materialize(values, treedef, size)
    batched = [_batch_first(x, size, r, depth) for x, r in zip(leaves, ranks)]
    return Batched(tuple(batched), treedef, size)



def _returns_unmapped(out: Any, j: int, leaf: np.ndarray, how: str) -> None:
    """The error for output leaf ``j``, the array of an argument not mapped."""
    path = tr.flatten_with_paths(out)[1][j]
    raise TypeError(f"fm.vmap: the mapped function returns, at {tr.keystr(path)}, "
                    f"the numpy array of shape {leaf.shape} of an argument it does "
                    f"not map (in_axes None){', ' + how if how else ''}: its entries would be "
                    "split across the examples, where the loop gives every example the whole "
                    "array. Return it outside the mapped function")


def _has_mask(tree: Any) -> bool:
    if isinstance(tree, Mask):
        return True
    node = tr._node_of(tree)
    return node is not None and any(map(_has_mask, node[1]))


def _whole(value: Any, size: int, rank: int) -> Any:
    value = np.asarray(value, dtype=float)
    if value.ndim == rank + 1:  # this vmap's axis (maybe broadcast, size 1) after rank ones
        value = value if rank == 0 else np.moveaxis(value, rank, 0)
        if value.shape[0] not in (1, size):
            raise ValueError(f"fm.vmap: the mapped function returns an array of shape "
                             f"{value.shape}, not one value for each of the {size} examples; "
                             "return numbers or nodes per example, and arrays of your own "
                             "outside the mapped function")
        return np.broadcast_to(value, (size,) + value.shape[1:])
    return np.broadcast_to(value, (size,) + value.shape)


def _batch_first(x: Any, size: int, rank: int, depth: int) -> Expr:
    """Leaf ``x`` with this ``vmap``'s batch axis first, broadcast if absent."""
    if not isinstance(x, Expr):
        x = const(np.array(x, dtype=float) if not isinstance(x, float) else x)  # (a copy, as
        # a mapped array's: the user may change theirs before a sweep reads it)
    shape = np.shape(x.value)
    if len(shape) - rank == depth + 1:  # has this vmap's axis, maybe broadcast (size 1)
        x = _move(x, rank, 0)
        return x if shape[rank] == size else x + _minus_zeros((size,) + (1,) * (len(shape) - 1))
    if rank == 0:
        return x + _minus_zeros((size,) + (1,) * depth)
    return x + _minus_zeros((size,) + (1,) * len(shape))


def _minus_zeros(shape: tuple) -> np.ndarray:
    """``-0.0`` in ``shape``: added to a value, it broadcasts it without
    changing it (``-0.0 + 0.0`` is ``0.0``, which would drop a ``-0.0``)."""
    return np.full(shape, -0.0)


def _materialize(values: list, treedef: tr.TreeDef, size: int) -> tuple:
    if treedef.kind is None:
        return tuple(_item(v) for v in values[0])
    return tuple(tr.unflatten(treedef, [_item(v[i]) for v in values]) for i in range(size))


def _item(v: Any) -> Any:
    return scalar(v) if np.ndim(v) == 0 else v


@dataclass(frozen=True, eq=False)
class Batched:
    """One output per example, held as batched leaves (example axis first).

    >>> b = vmap(lambda x: x * Var(2.0))((1.0, 2.0, 3.0))
    >>> len(b), b[1].value, [e.value for e in b], fm.mean(b).value
    (3, 4.0, [2.0, 4.0, 6.0], 4.0)
    """

    leaves: tuple
    treedef: tr.TreeDef
    size: int

    __fm_examples__ = True  # transforms that sweep outputs take it example by example

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return tuple(self[j] for j in range(*i.indices(self.size)))
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise TypeError(f"Batched indices must be integers or slices, not "
                            f"{type(i).__name__}")
        if not -self.size <= i < self.size:
            raise IndexError(f"Batched index {i} is out of range for {self.size} examples")
        i = int(i) % self.size
        return tr.unflatten(self.treedef, [_example(x, i) for x in self.leaves])

    def __iter__(self) -> Iterator:
        return (self[i] for i in range(self.size))

    def unstacked(self) -> list[list]:
        """Each batched leaf's examples, leaf by leaf: ``[[b[i] leaf k for i],
        for k]``, the nodes ``b[i]`` holds. A leaf of one number per example
        (a shape ``(size,)`` array) is taken apart in one pass, without the
        array operations of ``b[i]`` (``fm.optim``'s updates over a model's
        leaves, ``optim.base.leafwise``: 0.6 s of an 18,817-parameter step's
        trace).

        >>> b = vmap(lambda x: (x * Var(2.0), x))((1.0, 2.0))
        >>> [[e.value for e in leaf] for leaf in b.unstacked()]
        [[2.0, 4.0], [1.0, 2.0]]
        """
        columns: list[list] = []
        for x in self.leaves:
            value = stored_value(x)
            vector = value.__class__ is np.ndarray or isinstance(value, NoNumbers)
            if vector and value.shape == (self.size,) and value.dtype == np.float64 and \
                    self.size != 1 and x.op != "const":
                # as ``apply(Take(i, 0, full, ()), x)``, whose value is ``float(value[i])``
                # (a scalar without numbers in a trace without them, ``core/shaped.py``)
                full = (self.size,)
                values = value.tolist() if value.__class__ is np.ndarray else \
                    [value[0]] * self.size
                columns.append([prim("custom", v, (x,), Take(i, 0, full, ()))
                                for i, v in enumerate(values)])
            else:  # as ``b[i]`` takes this leaf (a value without numbers, a unit axis)
                columns.append([_example(x, i) for i in range(self.size)])
        return columns

    def __fm_reduce__(self, kind: str) -> Expr:
        if self.treedef.kind is not None:
            raise TypeError(f"fm.{kind} of a vmap result needs one number per example; each "
                            f"example here is {self.treedef!r}: reduce each leaf yourself, "
                            f"e.g. with fm.tree.map")
        (x,) = self.leaves
        with np.errstate(all="ignore"):  # (inf + -inf is nan, silently, as in the sweeps)
            total = x.value.sum(axis=0)
        total = scalar(total) if total.ndim == 0 else total
        s = const(total) if x.op == "const" else prim("batch_sum", total, (x,), (0,))
        return s if kind == "sum" else s / float(self.size)

    def __repr__(self) -> str:
        return f"Batched(size={self.size}, example={self.treedef!r})"


def _example(x: Expr, i: int) -> Any:
    """Example ``i`` of batched leaf ``x`` (its example axis first; a unit
    axis is the same for every example: a stand-in's, see ``_with_examples``)."""
    shape = np.shape(stored_value(x))
    return apply(Take(i if shape[0] != 1 else 0, 0, shape, shape[1:]), x)


def _unflatten_batched(meta: tuple, children: tuple) -> Any:
    treedef, size = meta
    if not any(isinstance(c, Expr) for c in children):
        # a Batched leaf holds its own example axis first (see _batch_first)
        values = [np.broadcast_to(np.asarray(c, dtype=float), (size,) + np.shape(c)[1:])
                  for c in children]
        return _materialize(values, treedef, size)
    # a leaf without the example axis (a gradient's zero for a leaf that the
    # function does not use: ``grad(g)(r)`` of a vmap result ``r`` of dicts, a
    # rule's 0.0 stand-in for an output it is not asked about) is the same on
    # every example: give it the axis, as ``_batch_first`` does, and unit axes
    # for those of an inner vmap result and of the enclosing vmaps (``DEPTH``)
    axes = [r + DEPTH.get() for r in _ranks(treedef)]
    return Batched(tuple(_with_examples(c, size, k) for c, k in zip(children, axes)),
                   treedef, size)


def _with_examples(c: Any, size: int, after: int = 0) -> Expr:
    """Leaf ``c`` of a ``Batched`` of ``size`` examples, with the example axis
    first: a number (no axes) gets it, and ``after`` unit axes after it.

    >>> _with_examples(0.0, 3, 1).value.shape, _with_examples(np.ones((3, 2)), 3, 1).value.shape
    ((3, 1), (3, 2))
    """
    zeros = np.zeros((size,) + (1,) * after)
    if not isinstance(c, Expr):
        if np.ndim(c):
            return const(np.broadcast_to(np.asarray(c, dtype=float),
                                         (size,) + np.shape(c)[1:]).copy())
        return const(zeros + float(c))
    return c if np.ndim(c.value) else c + zeros


tr.register(Batched, lambda b: (b.leaves, (b.treedef, b.size)), _unflatten_batched)
