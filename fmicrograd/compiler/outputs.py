"""``fm.jit``'s outputs: the pytree built from a compiled program's output
vector (``_finish``), the parts of it that a later call may pass back and
that are then matched by identity instead of walked (``_carry``), and
``Deferred``, an output item kept as its vector until it is read
(``Jitted.deferred``, what ``fit(jit=True)`` passes from step to step).

>>> step = fm.jit(lambda p: tuple(x * 0.5 for x in p))
>>> d = step.deferred((1.0, 2.0))
>>> built(d)
(0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core import pytree as tr
from ..core.expr import Expr
from . import ir, jit_io
from .jit_io import SCALAR, immutable

__all__ = ["Deferred", "built"]


class _NodeArray:
    """An output leaf that is a numpy object array holding traced nodes (an
    array argument's entries, or arithmetic on them): its entries are the
    compiled program's outputs, rebuilt as the float array ``f`` returns
    (a constant array would freeze the first call's values)."""

    __slots__ = ("items", "shape")

    def __init__(self, items: list, shape: tuple) -> None:
        self.items, self.shape = items, shape


tr.register(_NodeArray, lambda a: (a.items, a.shape),
            lambda shape, items: np.array(list(items), dtype=float).reshape(shape))


def _node_arrays(out: Any) -> Any:
    """``out`` with every object array of nodes in it made a ``_NodeArray``."""
    def wrap(leaf: Any) -> Any:
        if isinstance(leaf, np.ndarray) and leaf.dtype == object and \
                any(isinstance(x, Expr) for x in leaf.flat):
            return _NodeArray(leaf.reshape(-1).tolist(), leaf.shape)
        return leaf

    return tr.map(wrap, out)


def _carry(entry: Any, out_def: tr.TreeDef, p: ir.Program) -> list:
    """``(output part, argument position, start, stop)`` for every immutable
    part of the output (the whole output, or an item of an output tuple) that
    has the structure of an all-scalar argument, so that the part, passed
    back, is not walked again (see ``_Entry.known``). The part's leaves are
    program outputs ``start:stop``, all scalars."""
    shapes, ops = p.shapes, p.ops  # (an MLP step has ~20k outputs)
    if not all(shapes[o] == () and ops[o] != "const" for o in p.outputs):
        return []
    parts: list[tuple[int | None, tr.TreeDef, int]] = [(None, out_def, 0)]
    if out_def.kind is tuple:
        start = 0
        for k, c in enumerate(out_def.children):
            parts.append((k, c, start))
            start += c.num_leaves
    dyn = entry.treedef.children[0].children
    kinds = iter(entry.kinds)
    wanted = []
    for pos, td in zip(entry.positions, dyn):
        mine = [next(kinds) for _ in range(td.num_leaves)]
        if mine and all(k == SCALAR for k in mine) and immutable(td):
            wanted.append((pos, td))
    out, used = [], set()
    for index, part, first in parts:
        # the first argument of its structure that no earlier part took (a step's new
        # parameters and new velocity, alike, come back at two positions), else the first
        same = [pos for pos, want in wanted if _alike(part, want)]
        if same:
            pos = next((q for q in same if q not in used), same[0])
            used.add(pos)
            out.append((index, pos, first, first + part.num_leaves))
    return out


def _alike(a: tr.TreeDef, b: tr.TreeDef) -> bool:
    """Whether an output part of structure ``a`` can stand for an argument of
    structure ``b`` (``_carry``): the same structure, with registered nodes'
    aux data of the same types and bits (``TreeDef``'s ``==`` takes ``1`` for
    ``True`` and ``0.0`` for ``-0.0``, which key different programs)."""
    try:
        same = tr.equal(a, b)
    except (ValueError, TypeError):  # aux data whose ``==`` raises (a numpy scalar against
        return False  # a tuple: numpy's "truth value ... is ambiguous"): not alike
    return bool(same) and jit_io.registered_metas(a) == jit_io.registered_metas(b)


def _finish(entry: Any, build: Callable, carry: list, out: Any, lazy: bool = False) -> Any:
    """The output pytree; its parts listed in ``carry`` are remembered.
    ``out``: the program's outputs, a list, or the vector of a batched
    program's all-scalar outputs. ``lazy``: the carried items of an output
    tuple stay ``Deferred`` (see ``Jitted.deferred``)."""
    items = entry.items.get(build) if lazy and isinstance(out, np.ndarray) else None
    if items is not None:
        result = []
        for make, a, b, pos in items:
            if pos is None:
                result.append(make(out[a:b].tolist()))
            else:
                vector = out[a:b]
                vector.flags.writeable = False  # (the pytree ``get`` builds is matched to it)
                part = Deferred(vector, make, entry.known, pos)
                entry.known[pos] = (part, part.vector)
                result.append(part)
        return tuple(result)
    values: np.ndarray | None
    if isinstance(out, np.ndarray):  # its floats made once, not copied into a list subclass
        values, out = out, out.tolist()
    else:
        values = getattr(out, "array", None)
    result = build(out)
    if carry:
        for k, pos, a, b in carry:
            part = result if k is None else result[k]
            entry.known[pos] = (part, values[a:b] if values is not None else
                                np.array(out[a:b], dtype=float))
    return result


class _Floats(list):
    """The batched program's scalar outputs as a list, with the vector they
    came from (``array``), so a carried part needs no conversion back."""

    __slots__ = ("array",)
    array: np.ndarray


class Deferred:
    """An item of a jitted call's output kept as the program's flat vector
    (``Jitted.deferred``). Passed back to the same function, it is matched
    by identity and not built; ``get()`` builds the pytree once, and the
    function then recognises that pytree in its place."""

    __slots__ = ("vector", "_make", "_tree", "_known", "_pos")

    def __init__(self, vector: np.ndarray, make: Callable, known: dict, pos: int) -> None:
        self.vector = vector
        self._make, self._known, self._pos = make, known, pos
        self._tree: Any = None

    def get(self) -> Any:
        """The pytree, built on the first call."""
        if self._tree is None:
            self._tree = self._make(self.vector.tolist())
            k = self._known.get(self._pos)
            if k is not None and k[0] is self:
                self._known[self._pos] = (self._tree, self.vector)
        return self._tree

    def __repr__(self) -> str:
        return f"Deferred({len(self.vector)} numbers)"


def built(x: Any) -> Any:
    """``x``, or the pytree ``x`` stands for if it is a ``Deferred``.

    >>> built((1.0, 2.0))
    (1.0, 2.0)
    """
    return x.get() if x.__class__ is Deferred else x


def _floats(a: np.ndarray) -> _Floats:
    out = _Floats(a.tolist())
    out.array = a
    return out
