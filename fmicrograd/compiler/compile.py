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
cannot be compiled: then the function simply runs. When argument leaves are
graph nodes (``grad(jit(f))``, ``hessian(jit(f))``), the call becomes one
node computed by compiled code (see ``through``); under ``vmap`` the
function is traced once per structure with the batch's values and compiled to
array code over the whole batch (see ``batched_call``), a compiled node
again when a batched argument is differentiated (``grad`` of a ``vmap``).

The program runs with one BLAS thread (``threads``), a large training step as
two batch halves on two threads (``split``); an immutable pytree of
numbers that the function returned and gets back (the parameters), or that
was passed before and comes again (a dataset of tuples), is not walked again
(``jit_io.matcher``);
``jit(f).lower(*args).as_text()`` shows the program (``lowered``).

Caches hold only generated code and constants, never graphs, and are
bounded: at most ``MAX_STRUCTURES`` structures per jitted function (least
recently used first out), ``MAX_VARIANTS`` branch variants per structure.

>>> f = jit(lambda x, y: x * y if x > 0 else -x)
>>> f(2.0, 3.0), f(-2.0, 3.0), f(4.0, 0.5)
(6.0, 2.0, 2.0)
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import numbers
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..batching.traced_arrays import TRACED, TracedArrays
from ..core import pytree as tr
from ..core.batch_axes import DEPTH
from ..core.control import (
    CHECKS,
    PREBUILT,
    RUNNING,
    TRACE_VALUES,
    check_callable,
    out_of_ended_vmap,
    refuse_foreign,
    running,
)
from ..core.expr import GUARDS, Expr, next_level, traced_variables
from ..core.shaped import Shaped, ValuesRead
from ..transforms.autodiff import CHECK_VALUES
from ..transforms.custom import ClosesOver, bound
from ..transforms.custom_rule import checks_linearity
from . import autobatch, codegen, guards, ir, jit_io, prebuilt, split, unread
from .batched_call import MISS, BatchedCalls, NotBatchable
from .heap import steady_heap
from .jit_io import (
    EXPR,
    SCALAR,
    Structures,
    builder,
    classify,
    has_numpy,
    matcher,
    own_numbers,
    variables,
)
from .lowered import Lowered
from .outputs import Deferred, _carry, _finish, _Floats, _floats, _node_arrays, built  # noqa: F401
from .static_names import defaulted, keywords, named, static_pair, unwrapping
from .threads import CORES, single_thread
from .through import STANDING, NotThrough, constant_nodes, plan, seen_through, under_trace

__all__ = ["jit", "Jitted", "MAX_STRUCTURES", "MAX_VARIANTS"]

MAX_STRUCTURES = 32
MAX_VARIANTS = 8


def jit(f: Callable, static_argnums: int | tuple[int, ...] = (),
        static_argnames: str | tuple[str, ...] = ()) -> Jitted:
    """``f`` compiled: same results, traced once per input structure.

    Arguments listed in ``static_argnums`` (by position) or ``static_argnames``
    (by name) are compile-time constants (they must be hashable; a new value
    compiles anew); so are non-numeric leaves. As in JAX, a parameter named in
    one is static when passed the other way too.

    >>> step = fm.jit(fm.value_and_grad(lambda w: fm.relu(w) * 3.0))
    >>> step(2.0), step(-1.0)
    ((6.0, 3.0), (0.0, 0.0))
    >>> times = fm.jit(lambda x, n: fm.sum([x] * n), static_argnames="n")
    >>> times(2.0, n=3), times(2.0, 4)
    (6.0, 8.0)
    """
    check_callable(f, "jit")
    given: Any = static_argnums
    try:
        found = (given,) if isinstance(given, numbers.Integral) else tuple(given)
    except TypeError:  # (a float, a 0-d array)
        found = (given,)
    if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in found):
        raise ValueError(f"fm.jit: static_argnums must be an int or a tuple of ints, "
                         f"got {static_argnums!r}")
    nums = tuple(int(i) for i in found)  # (numpy ints too, as ``grad``'s argnums)
    if isinstance(static_argnames, (bytes, bytearray)) or (
            not isinstance(static_argnames, str) and not hasattr(static_argnames, "__iter__")):
        # (a bare "'int' object is not iterable")
        raise ValueError(f"fm.jit: static_argnames must be a str or a tuple of str, got "
                         f"{static_argnames!r}")
    names = (static_argnames,) if isinstance(static_argnames, str) else tuple(static_argnames)
    nums, names = static_pair(f, nums, names)
    # updated=(): copying f's __dict__ would overwrite this jit's state with an
    # inner jit's when f is one (or wraps one, as grad(jit(g)) does)
    jitted = Jitted(f, nums, names)
    functools.update_wrapper(jitted, f, updated=())
    return jitted


def _attribute(obj: Any, dotted: str) -> Any:
    """``obj.a.b`` for ``dotted`` ``"a.b"``, or None."""
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
    return obj


class _Entry:
    """One input structure: its matcher, its compiled variants, and the
    immutable pytrees it returned last that may come back as arguments, or
    was passed last (``known``: argument position -> (object, its leaves as a
    vector))."""

    __slots__ = ("match", "variants", "inline", "known", "treedef", "kinds", "positions",
                 "items", "prebuilt", "reads_entries", "reads_values", "large", "order")

    def __init__(self, treedef: tr.TreeDef, kinds: list, static: dict, nargs: int,
                 order: tuple = ()) -> None:
        self.known: dict = {}
        self.items: dict = {}  # a variant's build -> (builder, start, stop, carried to) per item
        self.match = matcher(treedef, kinds, static, nargs, self.known, order)
        self.variants: list = []  # (run, build, vector, carry)
        self.inline: str | bool = False  # True, or why: the call runs f as Python
        self.treedef = treedef
        self.kinds = kinds
        self.positions = [i for i in range(nargs) if i not in static]
        self.prebuilt: dict | None = None  # a variant's run -> its notes (``prebuilt``)
        self.reads_entries = False  # f reads entries of a large array (see ``unread``)
        self.reads_values = False  # f needs the numbers of values computed from one
        # the array arguments of ``unread.MOST`` entries or more (by their number among the
        # arrays), and the arrays' order in the input vector: those after the others (None:
        # as they come), so that a large one's entries, without input nodes while it has
        # placeholders, come after every input node (``ir.Program.width``)
        sizes = [int(np.prod(k[1])) for k in kinds if k != SCALAR and k[0] == "array"]
        self.large = frozenset(j for j, n in enumerate(sizes) if n >= unread.MOST)
        arranged = sorted(range(len(sizes)), key=self.large.__contains__)
        self.order = None if arranged == sorted(arranged) else arranged


class Jitted:
    """The callable ``jit`` returns (see ``jit``): call it as ``f``; ``lower``
    shows the compiled program, ``deferred`` keeps outputs in its layout."""

    def __init__(self, f: Callable, static_argnums: tuple, static_argnames: tuple = ()) -> None:
        self.f = unwrapping(f) if static_argnames else f  # (see ``static_names``)
        self.static_argnums = static_argnums
        self.static_argnames = static_argnames
        self._entries = Structures(MAX_STRUCTURES)  # one _Entry per input structure
        self._lock = threading.Lock()
        self._through: dict = {}  # (nargs, static positions) -> custom_vjp (see ``through``)
        self._batched = BatchedCalls(f, MAX_STRUCTURES, MAX_VARIANTS, self)  # under vmap
        self.calls_rules = False  # a trace of f holds a user's custom_vjp (checks_linearity)

    __get__ = bound  # on a class, a method

    def __copy__(self) -> Jitted:  # copied as a function is: the same one
        return self

    def __deepcopy__(self, memo: dict) -> Jitted:
        """Itself where its function deep-copies as itself (a plain function);
        else the jit of the copy (a bound method of an object being copied:
        bound to the copy, as a method is), compiling on its first call."""
        f = getattr(self, "__wrapped__", self.f)
        copied = copy.deepcopy(f, memo)
        return self if copied is f else jit(copied, self.static_argnums, self.static_argnames)

    def __reduce__(self) -> tuple | str:
        """Pickled by name where it is its module's global (``@fm.jit`` on a
        module-level function), else as the jit of its function (pickled by
        reference, as functions are): unpickled, a ``jit`` that compiles on
        its first call."""
        name = getattr(self, "__qualname__", "")
        module = sys.modules.get(getattr(self, "__module__", "") or "")
        if "<" not in name and _attribute(module, name) is self:
            return name
        return (jit, (getattr(self, "__wrapped__", self.f), self.static_argnums,
                      self.static_argnames))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.static_argnames:
            kwargs = keywords(kwargs, self.static_argnames)
        if DEPTH.get():
            out_of_ended_vmap()  # (a context copied inside a vmap that has returned)
        if RUNNING.get() or DEPTH.get():  # inside another transform (see ``_slow``)
            return self._slow(tuple(map(built, args)), {k: built(v) for k, v in kwargs.items()},
                              inside=True, user=True)
        return self._call(args, kwargs, True)

    def compiled(self, *args: Any, **kwargs: Any) -> Any:
        """The call, from compiled code where there is any (``seen_through``'s
        calls on the values of a differentiated call)."""
        if self.static_argnames:
            kwargs = keywords(kwargs, self.static_argnames)
        return self._call(args, kwargs, False)

    def _call(self, args: tuple, kwargs: dict, user: bool) -> Any:
        """The compiled variant that matches the call, else ``_slow``; ``user``:
        the user's own call (its nodes are checked for a prebuilt graph)."""
        for entry in self._entries.order:  # a snapshot: threads may add
            found = entry.match(args, kwargs)
            if found is not None:
                return self._run(entry, found, args, kwargs)
        # a ``Deferred`` not recognised (an older one, or another function's): its pytree
        return self._slow(tuple(map(built, args)), {k: built(v) for k, v in kwargs.items()},
                          user=user)

    def deferred(self, *args: Any) -> Any:
        """Call with the output's items that can come back as arguments (a
        training step's parameters and optimizer state) left in the
        program's flat layout, as ``Deferred`` objects: passed back to this
        function they are not built at all; ``Deferred.get()`` builds one.
        The same numbers as a plain call (``fit(jit=True)`` uses it); items
        of scalar programs, and of a call that traces, are built as usual.

        >>> xs = np.linspace(0.0, 2.0, 201)
        >>> def step(p, xs):
        ...     g = fm.grad(lambda w: fm.mean(fm.vmap(lambda x: (w[0] * x - w[1]) ** 2)(xs)))(p)
        ...     return tuple(a - 0.1 * d for a, d in zip(p, g)), g[0]
        >>> f = jit(step)
        >>> p, _ = f.deferred((1.0, 0.0), xs)  # traced and compiled: built
        >>> p, g = f.deferred(p, xs)
        >>> p, [round(v, 9) for v in p.get()]
        (Deferred(2 numbers), [0.576800444, 0.306533333])
        """
        if DEPTH.get():
            out_of_ended_vmap()
        if RUNNING.get() or DEPTH.get():  # inside another transform: as a plain call there
            return self._slow(tuple(map(built, args)), {}, inside=True, user=True)
        for entry in self._entries.order:
            found = entry.match(args, {})
            if found is not None:
                return self._run(entry, found, args, {}, lazy=True)
        return self._slow(tuple(map(built, args)), {}, user=True)

    def _static(self, nargs: int, kwargs: Any = ()) -> list:
        out = []
        for i in self.static_argnums:
            if i >= nargs and defaulted(self.f, i, kwargs):  # left out: its default, a constant
                continue
            if i >= nargs and named(self.f, i) in kwargs:  # by keyword: ``static_argnames``
                continue
            if not -nargs <= i < nargs:
                raise ValueError(f"fm.jit: static_argnums {i} is out of range for a call with "
                                 f"{nargs} positional arguments (pass static arguments by "
                                 f"position, or name them in static_argnames)")
            out.append(i % nargs)
        return sorted(set(out))

    def _slow(self, args: tuple, kwargs: dict, inside: bool = False, user: bool = False) -> Any:
        if not kwargs and self._batched.seen:  # under vmap, a structure compiled before
            out = self._batched.lookup(args)
            if out is not MISS:
                return out
        static_pos = self._static(len(args), kwargs)
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
        kinds = []
        try:
            for x in leaves:
                kinds.append(classify(x))
        except TypeError as e:  # named by where it is: args[1]['w'][0]
            where = _leaf_path(dyn, kwargs, static_pos, len(kinds))
            raise TypeError(f"{e} (the argument at {where})") from None
        if EXPR in kinds:  # inside another transform: one compiled node if possible
            # no transform runs here: a node of a trace running in another thread would be
            # seen through for a trace this thread cannot see (under grad alone it works)
            if not RUNNING.get():
                for x, kind in zip(leaves, kinds):
                    if kind == EXPR:
                        refuse_foreign(x, f"{self!r} called", tracing=True)
            return self._under_transform(args, kwargs, tuple(static_pos), inside, user)
        if inside:  # no node in, yet f may read one (a global, a closure) that compiled
            return self._python(args, kwargs)  # code from an earlier trace would hold frozen
        key = _key(treedef, kinds, len(args), static, tuple(kwargs))
        entry = self._entries.entry(key, lambda: _Entry(treedef, kinds, static, len(args),
                                                        tuple(kwargs)))
        return self._run(entry, _split(leaves, kinds), args, kwargs)

    def _entry_of(self, args: tuple, kwargs: dict) -> tuple | None:
        """``(entry, inputs)`` of a call compiled before, found as ``_slow``
        finds it (for ``lower``: the fast match leaves an ``np.float32`` or a
        0-d array to that path), or None."""
        static_pos = self._static(len(args), kwargs)
        static = {i: args[i] for i in static_pos}
        dyn = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, treedef = tr.flatten((dyn, kwargs))
        kinds = [classify(x) for x in leaves]
        entry = self._entries.get(_key(treedef, kinds, len(args), static, tuple(kwargs)))
        return None if entry is None else (entry, _split(leaves, kinds))

    def _under_transform(self, args: tuple, kwargs: dict, static: tuple,
                         inside: bool = False, user: bool = False) -> Any:
        if CHECK_VALUES.get() is not None:  # under debug_nans: f's own ops, so that the
            return self._python(args, kwargs)  # error names the op, not the compiled call
        if has_numpy(args, kwargs):  # copies: the node made here keeps its arguments for
            # the sweep, which ran later on the caller's array as refilled by then
            args, kwargs = own_numbers(args, kwargs, static)
        found = None if kwargs else plan(args, static)
        if found is None and not inside and not kwargs and constant_nodes(args, static):
            # ``seen_through``'s own call with nodes that reach no variable (a higher-order
            # sweep's constant cotangents): their values, compiled, as its calls with
            # values are; run as Python, each such call swept f again (hessian(jit(jvp(
            # jit(f)))) took 20 s for 0.03 s without jit)
            return self._slow(_values(args), {})
        if found is None or (found[2] is not None and under_trace(found[2])):
            return self._python(args, kwargs)  # jit(vmap(jit(f))): the outer trace takes f
        nondiff, batched, _ = found
        try:
            if len(nondiff) == len(args):  # under vmap, nothing differentiated
                return self._batched(args, static)
            depth = DEPTH.get() if batched else None
            key = (len(args), static, nondiff, depth)
            node = self._through.get(key)
            if node is None:
                node = self._through.setdefault(
                    key, seen_through(self, static, nondiff, len(args), depth))
            if batched or not user:  # (a sweep's call again with nodes: checked at the first)
                return node(*args)
            old = prebuilt.ARGUMENTS.get()  # (for ``prebuilt.check``: the user's nodes)
            try:
                levels = frozenset(lv for lv, _, _ in RUNNING.get())
                prebuilt.ARGUMENTS.set((self, args, kwargs, levels, not levels and not inside))
                return node(*args)
            finally:
                prebuilt.ARGUMENTS.set(old)
        except (NotThrough, NotBatchable, ClosesOver):  # (ClosesOver: f closes over a value
            return self._python(args, {})                # the transform differentiates)

    def _run(self, entry: _Entry, found: tuple, args: tuple, kwargs: dict,
             lazy: bool = False) -> Any:
        if entry.inline:  # (a Deferred the match took by identity: f gets its pytree)
            return self._as_python(tuple(map(built, args)),
                                   {k: built(v) for k, v in kwargs.items()})
        scalars, arrays = found
        variants = entry.variants
        inputs = None
        for k, (run, build, vector, carry) in enumerate(variants):
            fill = getattr(run, "fill", None)
            if fill is not None and fill.owner is run:  # (its buffer filled from the parts:
                # ``hoist.held``; a guard's wrapper, which copies the attributes, is not
                # its owner: its own call checks the guards first)
                out = single_thread(fill, _parts(scalars, arrays, entry.order))
            else:
                if inputs is None:
                    inputs = _inputs(scalars, arrays, entry.order)
                out = single_thread(run, inputs if vector else inputs.tolist())
            if out is not None:
                if entry.prebuilt is not None and run in entry.prebuilt:
                    prebuilt.check(self, entry.prebuilt[run])  # the user's prebuilt graph
                if k:  # keep the branch seen last in front
                    with self._lock:
                        if k < len(variants) and variants[k][0] is run:
                            variants.insert(0, variants.pop(k))
                return _finish(entry, build, carry, out, lazy)
        # a new branch: traced with the pytrees of Deferred arguments (as static leaves
        # they would have shifted every later number onto the wrong input)
        return self._trace(entry, scalars, arrays, tuple(map(built, args)),
                           {k: built(v) for k, v in kwargs.items()})

    def _trace(self, entry: _Entry, scalars: list, arrays: list, args: tuple,
               kwargs: dict) -> Any:
        with _collector_paused():
            # large arrays with placeholders first (see ``unread``): their columns without
            # numbers, then with the values; a failed tier is not tried again for this
            # structure (an error there is raised again, or not, by the next)
            for shaped in (True, False):
                if entry.reads_entries or not entry.large:
                    break
                if shaped and (entry.reads_values or not unread.SHAPED):
                    continue
                try:
                    return self._compile_and_run(entry, scalars, arrays, args, kwargs, True,
                                                 shaped)
                except (unread.EntriesRead, Exception) as e:
                    entry.reads_values = True
                    if not shaped or e.__class__ is unread.EntriesRead:
                        entry.reads_entries = True  # (then with a variable per entry)
            return self._compile_and_run(entry, scalars, arrays, args, kwargs)

    def _compile_and_run(self, entry: _Entry, scalars: list, arrays: list, args: tuple,
                         kwargs: dict, placeholders: bool = False, shaped: bool = False) -> Any:
        level = next_level()
        inputs = traced_variables([x for seg in scalars for x in seg.tolist()], level)
        traced = TracedArrays(level)  # (so that vmap maps them column by column)
        traced_arrays: list = [None] * len(arrays)
        start = len(inputs)  # each array's position in the input vector, in its order there
        for j in entry.order or range(len(arrays)):
            a = arrays[j]
            values = Shaped(a.shape) if shaped and j in entry.large else \
                np.array(a, dtype=float)  # (a copy: f may change its argument)
            if placeholders and j in entry.large:  # (after every input node: entry.order)
                traced_arrays[j] = unread.placeholders(a)
                traced.add(traced_arrays[j], start, traced_arrays[j].reshape(-1).tolist(),
                           values, nodes=False)
            else:
                traced_arrays[j] = variables(a, level, inputs)
                traced.add(traced_arrays[j], start, inputs[start:], values)
            start += a.size
        new_args, new_kwargs = _substitute(args, kwargs, self._static(len(args), kwargs), inputs,
                                           traced_arrays)
        log: list = []
        checks: list = []  # the labels fm.losses checked (``control.CHECKS``)
        record = prebuilt.Record(new_args, new_kwargs, level)
        olds = (GUARDS.get(), TRACED.get(), CHECKS.get(), TRACE_VALUES.get(), PREBUILT.get(),
                prebuilt.ARGUMENTS.get())
        try:  # (set inside, and set again at the end: see ``control.running``)
            GUARDS.set(log)
            TRACED.set(traced)
            CHECKS.set(checks)
            TRACE_VALUES.set([None])
            PREBUILT.set(record)
            prebuilt.ARGUMENTS.set(None)  # (not the trace's own calls of this function)
            with running(level, "fm.jit", traces=True):
                out = self.f(*new_args, **new_kwargs)
        except IndexError as e:  # numpy's, for an int array argument used as indices
            if "used as indices" in str(e) and any(a.dtype.kind in "iu" for a in arrays):
                raise IndexError(
                    f"{e} (fm.jit traces every numeric array argument as float variables, "
                    "one per entry, so an int array argument cannot index: pass the indices "
                    "as a tuple of ints in static_argnums, or index outside the jitted "
                    "function)") from e
            raise
        finally:  # one per level: an interrupt between two still runs the rest (a value
            try:  # cache left set sent later eager sums to the trace's BLAS path)
                TRACE_VALUES.set(olds[3])
            finally:
                try:
                    GUARDS.set(olds[0])
                finally:
                    try:
                        TRACED.set(olds[1])
                    finally:
                        try:
                            CHECKS.set(olds[2])
                        finally:
                            try:
                                PREBUILT.set(olds[4])
                            finally:
                                prebuilt.ARGUMENTS.set(olds[5])
        outs, out_def = tr.flatten(_node_arrays(out))
        try:
            program = ir.lower(outs, inputs, log, level, columns=traced.lowered, checks=checks,
                               width=start)
        except ir.NotCompilable as e:
            if placeholders:  # (with variables, where placeholders were frozen into a constant)
                raise unread.EntriesRead from e
            entry.inline = str(e) or True  # (the reason, for ``lower``)
            return self._as_python(args, kwargs)
        if not self.calls_rules and "custom" in program.ops:  # f calls a custom_vjp: forward
            self.calls_rules = any(  # mode through this function checks its rule is linear
                op == "custom" and checks_linearity(getattr(q, "fn", None))
                for op, q in zip(program.ops, program.params))
        # the traced graph and the unoptimized program are dropped as soon as
        # they are used, so they do not sit in memory beside what comes next
        del out, outs, inputs, traced_arrays, traced, new_args, new_kwargs, log, checks
        labels = guards.value_checks(program)
        derived = guards.derived_labels(program)
        try:
            exact = guards.exact_guards(program)  # (the branches, checked as traced)
        except ir.NotCompilable as e:
            entry.inline = str(e)
            return self._as_python(args, kwargs)
        if exact is not None:
            program.guards = []
        optimized = ir.optimize(program)
        del program
        run, vector = _compile(optimized)
        if exact is not None:
            run = guards.checked(exact, run, vector)
        if labels:
            run = guards.values_checked(labels, run, vector)
        if derived is not None:  # (labels the program computes: computed again to check)
            run = guards.derived_checked(*_compile(ir.optimize(derived[0])), derived[1], run,
                                         vector)
        build = builder(out_def)
        carry = _carry(entry, out_def, optimized)
        if vector and carry and out_def.kind is tuple:  # for ``deferred``: item by item
            ends = np.cumsum([c.num_leaves for c in out_def.children]).tolist()
            carried = {k: pos for k, pos, _, _ in carry}
            entry.items[build] = [(builder(c), a, b, carried.get(k)) for k, (c, a, b) in
                                  enumerate(zip(out_def.children, [0] + ends[:-1], ends))]
        with self._lock:
            if record.found:  # (checked at every later call that takes this branch; set
                # before the variant is there to be taken, by a thread or after a Ctrl-C)
                entry.prebuilt = {**(entry.prebuilt or {}), run: record.found}
            entry.variants.insert(0, (run, build, vector, carry))
            for old_run, old, _, _ in entry.variants[MAX_VARIANTS:]:
                entry.items.pop(old, None)
                if entry.prebuilt:
                    entry.prebuilt.pop(old_run, None)
            del entry.variants[MAX_VARIANTS:]
        if record.found:  # the user's prebuilt graph, passed to this call
            prebuilt.check(self, record.found)
        flat = _inputs(scalars, arrays, entry.order)
        result = single_thread(run, flat if vector else flat.tolist())
        if result is None:
            with self._lock:  # (the variant just made: not kept)
                if entry.variants and entry.variants[0][0] is run:
                    entry.variants.pop(0)
            if shaped:  # a label the program rejects (``losses``), or a guard: traced again
                raise ValuesRead  # with the numbers
            # a branch on more values than the exact check takes (guards.LIMIT), whose
            # compiled (regrouped) value falls on the other side of a tie: as Python
            entry.inline = ("a Python branch at a tie that the compiled program's regrouped "
                            "values decide the other way")
            return self._as_python(args, kwargs)
        return _finish(entry, build, carry, result)

    def _as_python(self, args: tuple, kwargs: dict) -> Any:
        """``f`` run as Python on the call's values, where its trace cannot be
        compiled, with float64 copies of its numeric arrays; on the user's
        nodes themselves when the call has them (``NotThrough``:
        ``_under_transform`` runs it so), whose own checks (micrograd's
        prebuilt graph) see them."""
        if prebuilt.calling(self):
            raise NotThrough
        return self._python(args, kwargs)

    def _python(self, args: tuple, kwargs: dict) -> Any:
        """``f`` on the call's arguments, its numpy arrays and numbers as wide
        copies (``own_numbers``: it wrote into the caller's array, and a uint8
        one wrapped around where the compiled code computes in float64).
        Never on the numbers a compiled call seen through stands for
        (``through.STANDING``): ``NotThrough``, and ``f`` runs on the nodes."""
        if STANDING.get() is self:
            raise NotThrough
        if has_numpy(args, kwargs):
            args, kwargs = own_numbers(args, kwargs, self._static(len(args), kwargs))
        return self.f(*args, **kwargs)

    def lower(self, *args: Any, **kwargs: Any) -> Lowered:
        """The program this function runs for these arguments (compiled now
        if it was not yet); ``.as_text()`` shows it.

        >>> text = jit(lambda x: fm.tanh(x) * 2.0).lower(0.5).as_text()
        >>> "_tanh(v0)" in text
        True
        """
        kwargs = keywords(kwargs, self.static_argnames)
        self(*args, **kwargs)
        name = getattr(self.f, "__name__", repr(self.f))
        located = [(entry, entry.match(args, kwargs)) for entry in self._entries.order]
        if all(found is None for _, found in located):
            located = [self._entry_of(tuple(map(built, args)), kwargs) or (None, None)]
        for entry, found in located:
            if found is None:
                continue
            if entry.inline:
                return Lowered(name, "python", 0, 0, 0, None,
                               entry.inline if isinstance(entry.inline, str) else
                               "it uses a variable of an enclosing transform or a "
                               "per-example value of an enclosing vmap, calls debug_nans, "
                               "or uses an op without a compiled form")
            inputs = _inputs(found[0], found[1], entry.order)
            for run, _, vector, _ in entry.variants:
                if single_thread(run, inputs if vector else inputs.tolist()) is not None:
                    source = run.__fm_source__
                    skip = ("with ", "return ", "def ", "#")  # not array operations
                    lines = [x for x in source.splitlines()[1:]
                             if x.strip() and not x.strip().startswith(skip)]
                    n_out = len(run(inputs if vector else inputs.tolist()))
                    guards_source = getattr(run, "__fm_guards__", None)
                    if guards_source is not None:  # (checked first, see ``guards``)
                        source = ("# the branches, checked first on the values as traced:\n"
                                  f"{guards_source}# then:\n{source}")
                    return Lowered(name, "batched" if vector else "scalar", len(inputs),
                                   n_out, len(lines) - (0 if vector else 1), source)
        return Lowered(name, "python", 0, 0, 0, None,
                       "an argument is a value of an enclosing transform")

    def __repr__(self) -> str:
        return f"jit({getattr(self.f, '__name__', self.f)!r})"


def _values(args: tuple) -> tuple:
    """``args`` with each node leaf replaced by its value (``constant_nodes``)."""
    return tuple(tr.map(lambda x: x.value if isinstance(x, Expr) else x, a) for a in args)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a trace compiles, then
    restored. A trace builds hundreds of thousands of graph nodes and program
    entries, all acyclic (reference counting frees them), and the collector
    would otherwise rescan the growing heap over and over: 10-15% of a compile.
    It is left alone if it was already off (by the user, or by another
    thread's compile, which restores it)."""
    if not gc.isenabled():
        yield
        return
    try:  # (disabled inside: a Ctrl-C right after it left the collector off for good)
        gc.disable()
        yield
    finally:
        gc.enable()


def _leaf_path(dyn: tuple, kwargs: dict, static: list, k: int) -> str:
    """Where leaf ``k`` of ``(dyn, kwargs)`` (the call's non-static
    positional arguments, then its keyword arguments) sits in the call, as
    Python accessors: ``args[1]['w'][0]``, ``kwargs['lr']``."""
    _, paths, _ = tr.flatten_with_paths((dyn, kwargs))
    path = paths[k]
    if path[0][1] == 0:  # a positional argument: its position in the call
        positions = [i for i in range(len(dyn) + len(static)) if i not in static]
        return f"args[{positions[path[1][1]]}]{tr.keystr(path[2:]) if path[2:] else ''}"
    return f"kwargs{tr.keystr(path[1:])}"


def _key(treedef: tr.TreeDef, kinds: list, nargs: int, static: dict, order: tuple) -> tuple:
    """The cache key of a call's structure: its leaves' kinds, its static
    values, the order of its keyword arguments (``f(**kw)`` may read it)."""
    return (treedef, tuple(map(jit_io.kind_key, kinds)), nargs,
            tuple((i, type(v), jit_io.static_key(v)) for i, v in static.items()), order,
            jit_io.registered_metas(treedef))


def _split(leaves: list, kinds: list) -> tuple[list, list]:
    """A call's inputs from its leaves: the scalars as one vector, the arrays."""
    scalars = [np.array([float(x) for x, k in zip(leaves, kinds) if k == SCALAR])]
    arrays = [x for x, k in zip(leaves, kinds) if k != SCALAR and k[0] == "array"]
    return scalars, arrays


def _inputs(scalars: list, arrays: list, order: list | None = None) -> np.ndarray:
    """The program's input vector: the scalar segments, then the arrays'
    entries, in ``order`` where given (``_Entry.order``) (copied: a program's
    outputs may be views of it, and a user's array may change in place
    later)."""
    parts = _parts(scalars, arrays, order)
    if len(parts) == 1 and not arrays:
        return parts[0]
    return np.concatenate(parts, dtype=float) if parts else np.zeros(0)


def _parts(scalars: list, arrays: list, order: list | None = None) -> list:
    """The input vector's pieces, in order: the scalar segments, then the
    arrays' entries (in ``order`` where given)."""
    if order is not None:
        arrays = [arrays[j] for j in order]
    return scalars + [a.reshape(-1) for a in arrays]


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
    leaves, td = tr.flatten((dyn, kwargs))  # (swap once per leaf, in order: a map that
    # fell back from a walk too deep for it ran swap twice on some: IndexError)
    new_dyn, new_kwargs = tr.unflatten(td, [swap(x) for x in leaves])
    it = iter(new_dyn)
    new_args = tuple(a if i in static else next(it) for i, a in enumerate(args))
    return new_args, {k: new_kwargs[k] for k in kwargs}  # in the call's order, not sorted


def _compile(p: ir.Program) -> tuple[Callable, bool]:
    """The fastest backend for ``p``: ``(run, takes_an_array)``."""
    if codegen.supports(p) and not autobatch.worth_it(p):
        return codegen.scalar_program(p), False
    steady_heap()  # (array code: its arrays' pages kept from one call to the next)
    if CORES > 1:
        run = split.split(p, _NAMESPACE)
        if run is not None:
            return run, True
    return autobatch.batched_program(p, _NAMESPACE), True


_Jitted = Jitted  # (the name tests and older code use)


# a batched program's all-scalar outputs come back as their vector (see ``_finish``)
_NAMESPACE = dict(autobatch.NUMPY, _tolist=_floats, _out=lambda a: a)
