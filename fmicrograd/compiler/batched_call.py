"""``jit`` under ``vmap``: traced once per input structure, run compiled over the batch.

Under ``vmap`` a jitted function's argument leaves are batched nodes (their
values numpy arrays, one entry per example on axis 0, the axes of enclosing
``vmap`` calls after it) next to unbatched numbers (an ``in_axes=None``
argument such as a model's parameters). ``BatchedCalls`` traces the function
once per input structure (the pytree, each leaf's shape, the ``vmap`` depth)
with variables holding those values, so every node of the trace is one array
operation over the whole batch, and compiles the trace with the batched
backend (``autobatch``, fed one input array per shape). The program has as many
nodes as one example's computation: its size does not grow with the batch
(a new batch size is a new structure, as in JAX).

Comparisons are guarded as under ``jit``. One on per-example values (all the
examples agreed while tracing) cannot be re-checked by array code, so that
structure runs the function itself, which answers as ``vmap`` always does (a
``Mask`` that ``if`` refuses and ``fm.where`` takes). So do functions the
trace cannot take (``float()`` of an argument, a variable of an enclosing
transform): the function runs, as before.

>>> import numpy as np
>>> calls = []
>>> def f(x, w):
...     calls.append(1)
...     return fm.tanh(x * w) + w
>>> g = fm.vmap(fm.jit(f), in_axes=(0, None))
>>> g(np.array([0.0, 1.0]), 2.0), g(np.array([1.0, 0.0]), 2.0), len(calls)
((2.0, 2.964027580075817), (2.964027580075817, 2.0), 1)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tree as tr
from ..core.batch_axes import DEPTH
from ..core.control import running
from ..core.expr import GUARDS, Expr, const, next_level, traced_variable
from . import autobatch, ir
from .jit_io import SCALAR, classify, variables
from .threads import single_thread

__all__ = ["BatchedCalls", "NotBatchable"]


class NotBatchable(Exception):
    """An argument leaf the batched trace cannot take; run the function itself."""


class _Entry:
    """One input structure: whether it runs the function itself (``inline``)
    and its compiled variants ``(run, build)``, the branch seen last first."""

    __slots__ = ("inline", "variants", "classes")

    def __init__(self) -> None:
        self.inline = False
        self.variants: list = []
        self.classes: list = []  # the program's input shapes (see ``_pack``)


class BatchedCalls:
    """``jitted.f`` called on batched arguments, compiled per input structure.

    ``calls(args, static)`` returns what ``f(*args)`` returns under ``vmap``
    (batched leaves as constant nodes), computed by compiled array code;
    ``static`` lists the positions of static arguments.

    >>> calls = BatchedCalls(lambda x, y: x * y + 1.0, 32, 8)
    >>> out = calls((fm.Const(np.array([1.0, 2.0])), 3.0), ())
    >>> out.value.tolist()
    [4.0, 7.0]
    """

    def __init__(self, f: Callable, max_structures: int, max_variants: int) -> None:
        self.f = f
        self.max_structures = max_structures
        self.max_variants = max_variants
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, args: tuple, static: tuple) -> Any:
        dyn = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, treedef = tr.flatten(dyn)
        kinds = tuple(map(_kind, leaves))
        key = (treedef, kinds, len(args), tuple((i, type(args[i]), args[i]) for i in static),
               DEPTH.get())
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
                if len(self._entries) > self.max_structures:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        if entry.inline:
            return self.f(*args)
        if entry.variants:
            inputs = _pack(leaves, kinds, entry.classes)
            for k, (run, build) in enumerate(tuple(entry.variants)):
                out = single_thread(run, inputs)
                if out is not None:
                    if k:
                        with self._lock:
                            if run in [v[0] for v in entry.variants]:
                                entry.variants.remove((run, build))
                                entry.variants.insert(0, (run, build))
                    return build(out)
        return self._trace(entry, args, static, leaves, kinds, treedef)

    def _trace(self, entry: _Entry, args: tuple, static: tuple, leaves: list, kinds: tuple,
               treedef: tr.TreeDef) -> Any:
        level = next_level()
        inputs: list = []
        swapped = []
        for leaf, kind in zip(leaves, kinds):
            if kind == SCALAR or kind[0] == "in":
                swapped.append(traced_variable(_value(leaf), level))
                inputs.append(swapped[-1])
            elif kind[0] == "array":
                swapped.append(variables(leaf, level, inputs))
            else:
                swapped.append(leaf)
        it = iter(tr.unflatten(treedef, swapped))
        new_args = tuple(a if i in static else next(it) for i, a in enumerate(args))
        log: list = []
        token = GUARDS.set(log)
        try:
            with running(level, "fm.jit", traces=True):
                out = self.f(*new_args)
        except Exception:  # noqa: BLE001 -- the function itself answers (or raises) as before
            GUARDS.reset(token)
            result = self.f(*args)
            entry.inline = True  # it ran where the trace could not
            return result
        GUARDS.reset(token)
        outs, out_def = tr.flatten(out)
        try:
            program = ir.lower(outs, inputs, log, level)
        except (ir.NotCompilable, TypeError):  # a per-example guard, float(), outer variables
            entry.inline = True
            return self.f(*args)
        optimized = ir.optimize(program)
        run = autobatch.batched_program(optimized)
        build = _builder(out_def)
        with self._lock:
            entry.classes = autobatch.input_shapes(optimized)
            entry.variants.insert(0, (run, build))
            del entry.variants[self.max_variants:]
        result = single_thread(run, _pack(leaves, kinds, entry.classes))
        if result is None:  # cannot happen: the trace took exactly these branches
            raise RuntimeError("fm.jit: a freshly compiled batched variant rejected its inputs")
        return build(result)


def _value(leaf: Any) -> Any:
    return leaf.value if isinstance(leaf, Expr) else float(leaf)


def _kind(leaf: Any) -> Any:
    """A leaf's part of the cache key: ``("in", shape)`` for a node or a
    number (one program input of that shape), else as ``jit`` classifies it."""
    if isinstance(leaf, Expr):
        value = leaf.value
        if value.__class__ is float:
            return ("in", ())
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            return ("in", value.shape)
        raise NotBatchable
    kind = classify(leaf)
    if kind != SCALAR and kind[0] not in ("array", "static"):
        raise NotBatchable  # nodes in an object array
    return kind if kind == SCALAR or kind[0] == "static" else ("array", kind[1], str(kind[2]))


def _pack(leaves: list, kinds: tuple, classes: list) -> Any:
    """The program's inputs: one vector, or one array per input shape."""
    if len(classes) <= 1:
        shape = classes[0] if classes else ()
        parts = [_value(x) if k == SCALAR or k[0] == "in" else np.asarray(x, float).reshape(-1)
                 for x, k in zip(leaves, kinds) if k == SCALAR or k[0] != "static"]
        if shape:
            return np.stack(parts)
        return np.array([p for part in parts for p in np.atleast_1d(part).tolist()], float)
    rows: list[list] = [[] for _ in classes]
    where = {shape: rows[c] for c, shape in enumerate(classes)}
    for x, k in zip(leaves, kinds):
        if k == SCALAR:
            where[()].append(float(x))
        elif k[0] == "in":
            where[k[1]].append(_value(x))
        elif k[0] == "array":
            where[()].extend(np.asarray(x, float).reshape(-1).tolist())
    return tuple(np.stack(r) if shape else np.array(r, float)
                 for r, shape in zip(rows, classes))


def _builder(out_def: tr.TreeDef) -> Callable:
    """The output pytree from the program's outputs, batched arrays as
    constant nodes (what the function returns under ``vmap``)."""
    def build(out: list) -> Any:
        return tr.unflatten(out_def, [const(x) if getattr(x, "ndim", 0) else x for x in out])

    return build
