"""``fm.jit``: trace a function once per input structure, then run compiled code.

A call with a new structure (pytree shape, leaf kinds, static arguments)
runs the function once with fresh variables in place of its number leaves
(a numeric array leaf becomes an object array of them). The output graph,
which for ``jit(value_and_grad(f))`` holds the forward and the backward
computation, is lowered to a flat program (``ir``) and compiled to Python
source: straight-line float code for small scalar programs (``codegen``),
array code that evaluates same-op nodes together otherwise (``autobatch``).

Python control flow on traced values is guarded: every comparison made
while tracing is re-checked by the compiled code, and a call whose branch
differs traces again (the new variant is kept too). ``float()`` of a traced
value is an error (reading a traced node's ``.value`` cannot be seen and would
freeze it). Values the function closes over are constants of the compiled
code, as in JAX. Values that depend on an enclosing transform's variables
cannot be compiled: then, and when an argument leaf is itself a graph node
(``grad(jit(f))``, ``vmap(jit(f))``), the function simply runs.

Caches hold only generated code and constants, never graphs, and are
bounded: at most ``MAX_STRUCTURES`` structures per jitted function (least
recently used first out), ``MAX_VARIANTS`` branch variants per structure.

>>> f = jit(lambda x, y: x * y if x > 0 else -x)
>>> f(2.0, 3.0), f(-2.0, 3.0), f(4.0, 0.5)
(6.0, 2.0, 2.0)
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tree as tr
from ..core.expr import GUARDS, next_level, running, variable
from . import autobatch, codegen, ir
from .jit_io import EXPR, SCALAR, builder, classify, matcher, variables

__all__ = ["jit", "MAX_STRUCTURES", "MAX_VARIANTS"]

MAX_STRUCTURES = 32
MAX_VARIANTS = 8


def jit(f: Callable, static_argnums: int | tuple[int, ...] = ()) -> Callable:
    """``f`` compiled: same results, traced once per input structure.

    Arguments listed in ``static_argnums`` are compile-time constants (they
    must be hashable; a new value compiles anew); so are non-numeric leaves.

    >>> step = jit(fm.value_and_grad(lambda w: fm.relu(w) * 3.0))
    >>> step(2.0), step(-1.0)
    ((6.0, 3.0), (0.0, 0.0))
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in nums):
        raise ValueError(f"fm.jit: static_argnums must be an int or a tuple of ints, "
                         f"got {static_argnums!r}")
    # updated=(): copying f's __dict__ would overwrite this jit's state with an
    # inner jit's when f is one (or wraps one, as grad(jit(g)) does)
    return functools.update_wrapper(_Jitted(f, nums), f, updated=())


class _Entry:
    """One input structure: its matcher and its compiled variants."""

    __slots__ = ("match", "variants", "inline")

    def __init__(self, match: Callable) -> None:
        self.match = match
        self.variants: list = []  # (run, build) pairs
        self.inline = False


class _Jitted:
    """The callable ``jit`` returns (see ``jit``)."""

    def __init__(self, f: Callable, static_argnums: tuple) -> None:
        self.f = f
        self.static_argnums = static_argnums
        self._entries: OrderedDict = OrderedDict()  # key -> _Entry, most recent last
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for entry in reversed(tuple(self._entries.values())):  # a snapshot: threads may add
            found = entry.match(args, kwargs)
            if found is not None:
                return self._run(entry, found, args, kwargs)
        return self._slow(args, kwargs)

    def _static(self, nargs: int) -> list:
        out = []
        for i in self.static_argnums:
            if not -nargs <= i < nargs:
                raise ValueError(f"fm.jit: static_argnums {i} is out of range for a call with "
                                 f"{nargs} positional arguments")
            out.append(i % nargs)
        return sorted(set(out))

    def _slow(self, args: tuple, kwargs: dict) -> Any:
        static_pos = self._static(len(args))
        static = {i: args[i] for i in static_pos}
        for i, v in static.items():
            try:
                hash(v)
            except TypeError:
                raise TypeError(f"fm.jit: static argument {i} must be hashable, got "
                                f"{type(v).__name__}; pass a tuple instead of a list, or do "
                                f"not mark it static") from None
        dyn = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, treedef = tr.flatten((dyn, kwargs))
        kinds = [classify(x) for x in leaves]
        if EXPR in kinds:  # inside another transform: run the function itself
            return self.f(*args, **kwargs)
        key = (treedef, tuple(map(_kind_key, kinds)), len(args),
               tuple((i, type(v), v) for i, v in static.items()))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = _Entry(matcher(treedef, kinds, static, len(args)))
                self._entries[key] = entry
                if len(self._entries) > MAX_STRUCTURES:
                    self._entries.popitem(last=False)
            else:
                self._entries.move_to_end(key)
        scalars = [float(x) for x, k in zip(leaves, kinds) if k == SCALAR]
        arrays = [x for x, k in zip(leaves, kinds) if k != SCALAR and k[0] == "array"]
        return self._run(entry, (scalars, arrays), args, kwargs)

    def _run(self, entry: _Entry, found: tuple, args: tuple, kwargs: dict) -> Any:
        if entry.inline:
            return self.f(*args, **kwargs)
        scalars, arrays = found
        variants = entry.variants
        for k, (run, build, vector) in enumerate(variants):
            out = run(_inputs(scalars, arrays, vector))
            if out is not None:
                if k:  # keep the branch seen last in front
                    with self._lock:
                        if k < len(variants) and variants[k][0] is run:
                            variants.insert(0, variants.pop(k))
                return build(out)
        return self._trace(entry, scalars, arrays, args, kwargs)

    def _trace(self, entry: _Entry, scalars: list, arrays: list, args: tuple,
               kwargs: dict) -> Any:
        level = next_level()
        inputs = [variable(x, level) for x in scalars]
        traced_arrays = [variables(a, level, inputs) for a in arrays]
        new_args, new_kwargs = _substitute(args, kwargs, self._static(len(args)), inputs,
                                           traced_arrays)
        log: list = []
        token = GUARDS.set(log)
        try:
            with running(level, "fm.jit", traces=True):
                out = self.f(*new_args, **new_kwargs)
        finally:
            GUARDS.reset(token)
        outs, out_def = tr.flatten(out)
        try:
            program = ir.lower(outs, inputs, log, level)
        except ir.NotCompilable:
            entry.inline = True
            return self.f(*args, **kwargs)
        run, vector = _compile(ir.optimize(program))
        build = builder(out_def)
        with self._lock:
            entry.variants.insert(0, (run, build, vector))
            del entry.variants[MAX_VARIANTS:]
        result = run(_inputs(scalars, arrays, vector))
        if result is None:  # cannot happen: the trace took exactly these branches
            raise RuntimeError("fm.jit: a freshly compiled variant rejected its own inputs")
        return build(result)

    def __repr__(self) -> str:
        return f"jit({getattr(self.f, '__name__', self.f)!r})"


def _kind_key(kind: Any) -> Any:
    if kind == SCALAR:
        return kind
    if kind[0] == "array":
        return ("array", kind[1], str(kind[2]))
    return kind


def _inputs(scalars: list, arrays: list, vector: bool) -> Any:
    if not vector:
        if not arrays:
            return scalars
        return scalars + [x for a in arrays for x in a.reshape(-1).tolist()]
    if not arrays:
        return np.array(scalars, dtype=float)
    return np.concatenate([np.array(scalars, dtype=float)]
                          + [np.asarray(a, dtype=float).reshape(-1) for a in arrays])


def _substitute(args: tuple, kwargs: dict, static: list, inputs: list,
                arrays: list) -> tuple:
    """``args`` and ``kwargs`` with number leaves replaced by ``inputs`` and
    numeric array leaves by ``arrays`` (object arrays of variables)."""
    scalars = iter(inputs)
    arrs = iter(arrays)

    def swap(leaf: Any) -> Any:
        kind = classify(leaf)
        if kind == SCALAR:
            return next(scalars)
        if kind != EXPR and kind[0] == "array":
            return next(arrs)
        return leaf

    dyn = tuple(a for i, a in enumerate(args) if i not in static)
    new_dyn, new_kwargs = tr.map(swap, (dyn, kwargs))
    it = iter(new_dyn)
    new_args = tuple(a if i in static else next(it) for i, a in enumerate(args))
    return new_args, new_kwargs


def _compile(p: ir.Program) -> tuple[Callable, bool]:
    """The fastest backend for ``p``: ``(run, takes_an_array)``."""
    if codegen.supports(p) and not autobatch.worth_it(p):
        return codegen.scalar_program(p), False
    return autobatch.batched_program(p), True
