"""jit's array arguments, mapped by ``vmap`` one column at a time.

``fm.jit`` traces a numpy array argument as an object array of variables,
one per entry, so that any code can index it. A training step maps its data
matrix with ``vmap``: each column of a ``(B, F)`` matrix becomes one batched
node, a ``Stack`` of ``B`` variables. Built that way, the trace and every
compile pass after it walk ``B * F`` nodes, so a compile grew with the batch.

Here each column of such an argument is instead one variable of the trace
holding the column's values (``vmap`` reads them through ``TRACED``), and
``ir.lower`` writes it as the ``stack`` of the column's input positions that
the ``Stack`` node lowered to: the compiled program is the same, and the
trace does not depend on the batch size. A large array traced with
placeholders (``compiler/unread.py``) has no input node per entry: its
columns are ``col`` nodes, ``(start, step, size, depth)`` in the input
vector, so the compiled program does not grow with the batch either. The
variables stand only for jit's own inputs, which no transform inside the
trace differentiates (a transform makes variables of its own for its
arguments: a new array, mapped as before).

>>> import numpy as np
>>> from fmicrograd.core.expr import next_level, traced_variables
>>> lv = next_level()
>>> inputs = traced_variables([1.0, 2.0, 3.0, 4.0], lv)
>>> arr = np.empty(4, dtype=object); arr[:] = inputs; arr = arr.reshape(2, 2)
>>> traced = TracedArrays(lv)
>>> traced.add(arr, 0, inputs)
>>> col = traced.columns(arr, 0)[1]
>>> col.value.tolist(), traced.lowered[col][:2]
([2.0, 4.0], ('stack', (1, 3)))
"""

from __future__ import annotations

import operator
from contextvars import ContextVar
from typing import Any, NamedTuple

import numpy as np

from ..core.expr import stored_value, traced_variable
from .vmap_ops import Stack

__all__ = ["TracedArrays", "TRACED", "Column"]


class Column(NamedTuple):
    """A ``col`` node's param: the entries ``start, start + step, ...``
    (``size`` of them) of the input vector, mapped at ``vmap`` depth
    ``depth`` (which the node's shape shows, as a ``Stack``'s does).

    >>> Column(3, 4, 2, 0).positions().tolist()
    [3, 7]
    """

    start: int
    step: int
    size: int
    depth: int

    def positions(self) -> np.ndarray:
        """The entries' positions in the input vector."""
        return np.arange(self.start, self.start + self.step * self.size, self.step)


class TracedArrays:
    """The array arguments of one ``jit`` trace at ``level``, and the column
    variables ``vmap`` made of them: ``lowered`` maps each to ``(input
    positions, Stack param, shape)``, what ``ir.lower`` writes for it."""

    def __init__(self, level: int) -> None:
        self.level = level
        self._arrays: dict[int, tuple] = {}  # id -> (array, start, its variables, shape)
        self._made: dict[tuple, Any] = {}  # (id, depth) -> the columns, as vmap takes them
        self.lowered: dict[Any, tuple] = {}

    def add(self, arr: np.ndarray, start: int, variables: list,
            values: Any = None, nodes: bool = True) -> None:
        """Record ``arr`` (an object array of ``variables``, the trace's
        inputs from position ``start`` on, in row-major order, or of the
        placeholders that stand for them, ``compiler/unread.py``); ``values``,
        where given (always, for placeholders), is a float64 array of their
        values in ``arr``'s shape, which nothing changes (so that ``vmap``'s
        columns need not read a value from each variable), or a ``Shaped``
        of that shape (``core/shaped.py``): columns without numbers.
        ``nodes``: whether the entries are input nodes of the program (a
        column is then their ``stack``), or placeholders (a ``col``)."""
        if arr.ndim >= 1 and arr.size:
            self._arrays[id(arr)] = (arr, start, variables, arr.shape, values, nodes)

    def columns(self, arr: Any, depth: int) -> Any:
        """``arr``'s columns as nested tuples of batched variables at
        ``depth``, as ``vmap`` maps it, or None when ``arr`` is not an array
        argument of this trace holding its own variables in its own shape (a
        slice, a copy, one the function changed or reshaped in place)."""
        hit = self._arrays.get(id(arr))
        if hit is None or hit[0] is not arr or arr.shape != hit[3]:
            return None  # (reshaped in place: the general path)
        _, start, variables, _, values, nodes = hit
        if not all(map(operator.is_, arr.reshape(-1).tolist(), variables)):
            return None  # entries replaced by the function: the general path
        key = (id(arr), depth)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = self._build(arr.shape, start, variables, depth, values,
                                                 nodes)
        return made

    def _build(self, shape: tuple, start: int, variables: list, depth: int,
               values: np.ndarray | None, nodes: bool) -> Any:
        if values is None:
            values = np.array([stored_value(v) for v in variables], dtype=float).reshape(shape)
        size, inner = shape[0], int(np.prod(shape[1:], dtype=np.intp))
        lead = np.arange(size) * inner + start
        param = Stack(depth)
        # the column variables in row-major order of their index (a loop: a recursive
        # closure is a cycle, which kept this object and its arrays' placeholders
        # alive until the collector's next pass, 1.6 million of them in a large batch)
        made = []
        for index in np.ndindex(*shape[1:]):
            column = values[(slice(None),) + index].reshape((size,) + (1,) * depth)
            var = traced_variable(column, self.level)
            offset = int(np.ravel_multi_index(index, shape[1:])) if index else 0
            self.lowered[var] = ("stack", tuple((lead + offset).tolist()), param,
                                 column.shape) if nodes else \
                ("col", (), Column(start + offset, inner, size, depth), column.shape)
            made.append(var)
        return _nested(made, shape[1:])


def _nested(items: list, shape: tuple) -> Any:
    """``items`` (row-major) as nested tuples of ``shape``; the one item where
    ``shape`` is ``()``.

    >>> _nested([1, 2, 3, 4, 5, 6], (2, 3))
    ((1, 2, 3), (4, 5, 6))
    """
    if not shape:
        return items[0]
    step = len(items) // shape[0] if shape[0] else 0
    return tuple(_nested(items[k * step:(k + 1) * step], shape[1:]) for k in range(shape[0]))


# the running trace's array arguments (None outside ``fm.jit``'s trace)
TRACED: ContextVar[TracedArrays | None] = ContextVar("TRACED", default=None)
