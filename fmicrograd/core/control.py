"""Control flow on node values: comparisons, truth tests and escapes.

Comparisons answer as the nodes' floats would; under ``fm.jit`` each one is
logged as a guard (``GUARDS``) that the compiled code re-checks. Escapes to a
plain number (``float(x)``, ``math.sin(x)``...) are fine unless a running
transform depends on the node: ``RUNNING`` holds the transforms now running
(set by ``running`` for the duration of each call, a context variable, so
threads and nested calls each see their own), and ``escape`` raises the
``TypeError`` that names the fix.

>>> x = Var(2.0)
>>> with running(x.level, "fm.grad"):
...     x > 1.0
True
"""

from __future__ import annotations

import math
import numbers
import operator
import reprlib
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["GUARDS", "CHECKS", "TRACE_VALUES", "UNCOMPILED", "FORMATTED", "INTEGER_TEST",
           "RUNNING", "PREBUILT", "RAISED", "RAISED_ANYWHERE", "VMAP_NOW", "running", "dependent",
           "out_of_ended_vmap",
           "escape", "refused", "refuse_watched", "raised", "settle", "ended", "check_callable",
           "compare", "integer_test", "Mask", "reaches_variable", "reaches"]


# While ``fm.jit`` traces a function, this holds the trace's log of comparisons
# (and ``float()`` calls) on node values, so the compiled code can re-check each
# one and retrace when a branch flips; outside a trace it is None (one lookup).
GUARDS: ContextVar = ContextVar("fmicrograd_guards", default=None)
# While ``fm.jit`` traces, a list: ``fm.losses`` appends ``(label, ok)`` for each label
# that is a node, so that the compiled code checks ``ok`` on the label's inputs at every
# call (``guards.value_checks``) as the trace checked its values; None otherwise.
CHECKS: ContextVar = ContextVar("fmicrograd_checks", default=None)
# While ``fm.jit`` traces, a list (one cache slot): the trace's values of sums of
# products over a ``vmap`` batch are computed as BLAS matrix-vector products
# (``accumulate.products_sum``, ``dot_cotangents.batch_values``), whose last bits differ
# from the eager sums. A trace's values give no result (the compiled program computes
# every output, and a branch on a value computed over a batch is not compiled); None
# otherwise, where eager values keep the loop's bits.
TRACE_VALUES: ContextVar = ContextVar("fmicrograd_trace_values", default=None)
# An entry of the guard log that keeps the traced function from being compiled: code
# that must run at every call (``debug_nans``'s check) logs it while ``jit`` traces.
UNCOMPILED = ("uncompiled", "debug_nans checks every call", None, None)
# The same for a function that formats a traced value (``f"{x:.4f}"``): the text,
# printed or parsed back into a number, must be the call's own, not the trace's.
FORMATTED = ("uncompiled", "it turns a traced value into text (str(x), f\"{x:.4f}\"), which a "
             "compiled call would freeze", None, None)
# The same for ``x.is_integer()`` of per-example values (``jit`` of ``vmap``): the
# answer comes from the values in Python, and has no compiled form.
INTEGER_TEST = ("uncompiled", "it asks x.is_integer() of per-example values, which has no "
                "compiled form", None, None)

# While ``fm.jit`` traces, a ``compiler.prebuilt.Record``: a transform inside whose
# output was built before the call from nodes only (micrograd's ``c = a * b`` then
# ``fm.jit(fm.grad(lambda a: c))(a)``) notes which of jit's inputs its variables stand
# for and the user's ``fm.Var`` leaves the output holds, so that a call passing one of
# those nodes as that input is the prebuilt-graph error, not a derivative of 0.
PREBUILT: ContextVar = ContextVar("fmicrograd_prebuilt", default=None)

# True while ``fm.to_torch`` traces: a comparison of per-example values stays a mask
# even where the traced examples agree (a torch graph is made for every batch, so
# ``fm.where(x > 0.0, ...)`` must choose per example, and ``if`` cannot be followed).
EVERY_EXAMPLE: ContextVar[bool] = ContextVar("fmicrograd_every_example", default=False)

# The transforms running now, innermost last, as ``(level, who, traces)``:
# ``who`` names the transform, ``traces`` is True for one that records the
# computation (jit, trace), whose variables even ``stop_gradient`` cannot hide.
RUNNING: ContextVar[tuple] = ContextVar("fmicrograd_running", default=())
# advice that ``fit(jit=True)`` adds to jit's errors while its step is traced (its
# own jit: there is no static_argnums to pass, and a schedule's step count is traced)
TRACE_ADVICE: ContextVar[str] = ContextVar("fmicrograd_trace_advice", default="")
# While set (a list), every comparison of a node appends its two operands (a
# ``custom_jvp`` rule's transpose checks it does not branch on a tangent).
COMPARED: ContextVar = ContextVar("fmicrograd_compared", default=None)

# While ``jit`` traces or ``vmap`` maps (the outermost sets it): the nodes found to
# reach no variable but ``jit``'s, by id (each kept, so an id is not reused), so
# that ``where``'s test of its condition walks each node once (see
# ``functions.undifferentiated``); None elsewhere.
FREE_OF_VARIABLES: ContextVar = ContextVar("fmicrograd_free_of_variables", default=None)

# While a transform traces (``running(..., traces=True)``): the constant leaf of each
# float operand value its operators met (``expr.operand``: ``p - lr * g`` over every
# parameter makes one ``Const(lr)``, not one each); None elsewhere.
TRACE_CONSTS: ContextVar = ContextVar("fmicrograd_trace_consts", default=None)
# While a transform traces: ``[whether an fm.vmap has run in the trace]``. An
# optimizer's update over many leaves runs as one ``vmap`` only in a trace with array
# code already (``optim.base.leafwise``): a program of scalars stays float code.
TRACE_MAPS: ContextVar = ContextVar("fmicrograd_trace_maps", default=None)

# The same entries for every thread, by level (each ``running`` block has a level of
# its own): a thread that the caller started does not inherit its context, so code
# there would see no transform at all (a comparison jit does not guard, a float() grad
# does not see). ``foreign`` finds a node of another context's transform; ``TRACING``
# holds the levels of those whose compiled code would freeze a value (``jit``,
# ``to_torch``; not ``fm.trace``), for ``compare``'s one test and ``.value``'s checks.
_ANYWHERE: dict = {}
TRACING: dict = {}
# ``fm.vmap`` calls running in any thread (a key per call): a batch node met where no
# vmap runs is then likely one that crossed into a thread (see ``thread_hint``)
VMAPS: dict = {}


def thread_hint() -> str:
    """For errors about an array-valued node: a note that it may be ``vmap``'s
    batch in a thread that does not share the caller's context, when a
    ``vmap`` runs somewhere but not here.

    >>> thread_hint()
    ''
    """
    if not VMAPS or _vmap_depth():
        return ""
    return (". If this runs inside fm.vmap, in a thread: Python threads do not inherit "
            "the caller's context, so vmap's batch looks like an array there; run the "
            "thread's work in the caller's context, pool.submit(contextvars.copy_context()"
            ".run, fn, *args)")


# Errors a transform raised inside the function it runs (``float()`` of a value it
# traces or differentiates, a branch on examples that disagree), as ``(key, error)``
# with key the transform's level, or ("vmap", depth). Code that catches one and goes
# on no longer computes what f computes: the transform raises it again when the
# function returns (``settle``), so a try/except never turns it into a wrong number.
RAISED: ContextVar[tuple] = ContextVar("fmicrograd_raised", default=())
# The same errors, met in any thread (a worker the function started, whose context is
# a copy or a fresh one, never flows back): the first per running transform, keyed by
# its level, or by the running ``vmap``'s own key (``VMAP_NOW``: (depth, key, the
# enclosing vmap's VMAP_NOW)).
RAISED_ANYWHERE: dict = {}
VMAP_NOW: ContextVar[tuple] = ContextVar("fmicrograd_vmap_now", default=())


_RAISED_LOCK = threading.Lock()  # a record and the end of its transform, one at a time


def out_of_ended_vmap() -> None:
    """In a context copied while a ``vmap`` ran and used after it returned
    (an asyncio task created inside the mapped function,
    ``contextvars.copy_context()``), that ``vmap``'s depth no longer counts:
    its state is put back to that of the innermost enclosing ``vmap`` still
    running, or to none, or every later ``vmap`` there returned a
    ``Batched`` and ``grad`` an array (a transform's entry calls this)."""
    now = VMAP_NOW.get()
    if not now or now[1] in VMAPS:
        return
    from .batch_axes import BATCHES, DEPTH

    while now and now[1] not in VMAPS:
        now = now[2]
    depth = now[0] if now else 0
    DEPTH.set(depth)
    BATCHES.set(BATCHES.get()[:depth])
    VMAP_NOW.set(now)
    if not depth:
        FREE_OF_VARIABLES.set(None)


def raised(key: Any, error: Exception) -> Exception:
    """``error``, noted as raised for the transform ``key`` (see ``RAISED``)."""
    RAISED.set(RAISED.get() + ((key, error),))
    if key.__class__ is not int:  # a vmap's depth: the running vmap's own key
        now = VMAP_NOW.get()
        key = now[1] if now and now[0] == key[1] else None
    with _RAISED_LOCK:  # (only while it runs: its end settles it, and nothing after it)
        if key in _ANYWHERE or key in VMAPS:
            RAISED_ANYWHERE.setdefault(key, error)
    return error


def ended(key: Any, running_now: dict) -> None:
    """Transform ``key`` (a level, or a vmap's key) stops running: out of
    ``running_now`` (``_ANYWHERE`` or ``VMAPS``), so that no error is noted
    for it any more (see ``raised``)."""
    with _RAISED_LOCK:
        running_now.pop(key, None)


def settle(key: Any, failed: bool, anywhere: Any = None) -> None:
    """At the end of transform ``key``'s run of the function: forget the
    errors raised for it, and raise the first again if the function went on
    past it (``failed`` False: it returned). ``anywhere``: its key in
    ``RAISED_ANYWHERE``, if not ``key`` (a ``vmap``'s).

    >>> RAISED.set(((7, TypeError("float() on a traced value")),)) and None
    >>> try:
    ...     settle(7, failed=False)
    ... except TypeError as e:
    ...     print(str(e)[:55])
    float() on a traced value [the function caught this err
    """
    pending = RAISED.get()
    mine = [e for k, e in pending if k == key]
    elsewhere = RAISED_ANYWHERE.pop(key if anywhere is None else anywhere, None)
    if not mine and elsewhere is not None:  # (raised in a thread the function started)
        mine = [elsewhere]
    rest = tuple(p for p in pending if p[0] != key)
    if rest and not RUNNING.get() and not _vmap_depth():
        rest = ()  # outside every transform: nothing would settle them (nor free them)
    if len(rest) != len(pending):
        RAISED.set(rest)
    if mine and not failed:
        first = mine[0]
        raise type(first)(f"{first} [the function caught this error (try/except) and went "
                          "on, so what it computed is not f; let it propagate, or test for "
                          "the case before the call that raises]") from first


_UNSET = object()  # (``running``: a context variable it did not set)


class running:  # noqa: N801 -- used as a function: ``with running(level, who):``
    """Mark the transform whose variables are at ``level`` as running.

    >>> with running(10 ** 9, "fm.grad"):
    ...     len(RUNNING.get())
    1
    """

    __slots__ = ("entry", "token", "memo")
    memo: Any  # the trace's scoped values before it (a triple), or _UNSET

    def __init__(self, level: int, who: str, traces: bool = False) -> None:
        self.entry = (level, who, traces)

    def __enter__(self) -> None:
        level, _, traces = self.entry
        # the values before, which ``_undo`` sets again (not tokens: a Ctrl-C between a
        # set and the store of its token left RUNNING set, and every later jit call ran
        # as Python); a Ctrl-C here would skip __exit__: what was set is undone
        self.token = RUNNING.get()
        self.memo = (FREE_OF_VARIABLES.get(), TRACE_CONSTS.get(), TRACE_MAPS.get()) \
            if traces else _UNSET
        try:
            RUNNING.set(self.token + (self.entry,))
            _ANYWHERE[level] = self.entry
            if traces:
                FREE_OF_VARIABLES.set({})
                TRACE_CONSTS.set({})
                TRACE_MAPS.set([False])
            if traces and self.entry[1] != "fm.trace":  # (fm.trace records the graph as it
                TRACING[level] = self.entry[1]          # runs: nothing replays a read value)
        except BaseException as e:
            self.__exit__(type(e), e, None)  # (failed: only undoes, raises nothing)
            raise

    def __exit__(self, *exc: Any) -> None:
        # one step per level: an interrupt between two of them still runs the rest
        # (``ended`` inlined: a call's first bytecode can take one too)
        try:
            RUNNING.set(self.token)
        finally:
            try:
                if self.memo is not _UNSET:
                    try:
                        FREE_OF_VARIABLES.set(self.memo[0])
                    finally:
                        try:
                            TRACE_CONSTS.set(self.memo[1])
                        finally:
                            TRACE_MAPS.set(self.memo[2])
            finally:
                try:
                    with _RAISED_LOCK:
                        _ANYWHERE.pop(self.entry[0], None)
                finally:
                    TRACING.pop(self.entry[0], None)
        if RAISED.get() or RAISED_ANYWHERE:
            settle(self.entry[0], exc[0] is not None)


def dependent(x: Any, differentiating: bool = False) -> str | None:
    """The name of a running transform that ``x`` depends on (with
    ``differentiating``, only one that differentiates, not one that traces).

    >>> x = Var(1.0)
    >>> with running(x.level, "fm.grad"):
    ...     dependent(x * 2.0), dependent(fm.stop_gradient(x))
    ('fm.grad', None)
    """
    active = RUNNING.get()
    if not active:
        return None
    levels = {lv: (who, traces) for lv, who, traces in active
              if not (differentiating and traces)}
    if not levels:  # (only jit traces: no walk of x's graph, which can be a whole model's)
        return None
    return _depends(x, levels)


def traced(x: Any) -> bool:
    """Whether ``x`` depends on a variable of a running ``jit`` trace (a
    comparison on it is then a guard of the compiled program).

    >>> x = Var(1.0)
    >>> with running(x.level, "fm.jit", traces=True):
    ...     traced(x * 2.0), traced(Var(3.0))
    (True, False)
    """
    active = RUNNING.get()
    if not active:
        return False
    levels = {lv: (who, traces) for lv, who, traces in active if traces}
    return bool(levels) and _depends(x, levels) is not None


def traced_anywhere(x: Any) -> str | None:
    """The name of a running trace whose compiled code would freeze ``x``'s
    number (``fm.jit``, ``fm.to_torch``: those in ``TRACING``), in this thread
    or another (a thread the function started), or None.

    >>> x = Var(1.0)
    >>> with running(x.level, "fm.jit", traces=True):
    ...     traced_anywhere(x * 2.0), traced_anywhere(Var(3.0))
    ('fm.jit', None)
    """
    levels = {lv: (who, True) for lv, who in list(TRACING.items())}
    return _depends(x, levels) if levels else None


def beyond_traces(x: Any) -> bool:
    """Whether ``x`` reaches a variable that no running ``jit`` or ``to_torch``
    trace made (a differentiating transform's, ``vmap``'s, or the user's own).

    >>> x = Var(1.0)
    >>> with running(x.level, "fm.jit", traces=True):
    ...     beyond_traces(x * 2.0), beyond_traces(Var(3.0) * x)
    (False, True)
    """
    active = RUNNING.get()
    traced = {lv for lv, who, traces in active if traces and who != "fm.trace"} \
        if active else set()
    return reaches(x, lambda n: n.op == "var" and n.level not in traced)


def foreign(x: Any, tracing: bool = False) -> tuple | None:
    """``(who, level)`` of a transform running in another context (a thread
    the caller started: threads do not inherit context variables) that ``x``
    depends on, or None; with ``tracing``, only one that traces (``jit``).

    >>> import threading
    >>> x, found = Var(1.0), []
    >>> with running(x.level, "fm.grad"):
    ...     t = threading.Thread(target=lambda: found.append(foreign(x * 2.0)[0]))
    ...     t.start(); t.join()
    >>> found, foreign(x)
    (['fm.grad'], None)
    """
    here = {lv for lv, _, _ in RUNNING.get()}
    levels = {lv: (who, traces) for lv, who, traces in list(_ANYWHERE.values())
              if lv not in here and (traces or not tracing)}
    return _depends_on(x, levels) if levels else None


def refuse_foreign(x: Any, how: str) -> None:
    """A ``TypeError`` when a transform running in another context (a thread
    the caller started) depends on ``x``: text made from it there (``f"{x:.6f}"``)
    is the trace's number under ``jit`` and, parsed back, carries no
    derivative, and that transform cannot see it to guard or refuse it.

    >>> refuse_foreign(Var(1.0), "str()")
    """
    there = foreign(x) if _ANYWHERE else None
    if there is not None:
        raise raised(there[1], TypeError(f"{how} on a value that {there[0]} depends on, "
                                         + _IN_A_THREAD.format(who=there[0])))


_IN_A_THREAD = ("in a thread that does not share the caller's context (Python threads do not "
                "inherit context variables), where {who} cannot see it: run the thread's work "
                "in the caller's context, pool.submit(contextvars.copy_context().run, fn, "
                "*args), or keep the computation on the calling thread")


def _depends(x: Any, levels: dict) -> str | None:
    """The ``who`` of the first of ``levels`` (level -> (who, traces)) whose
    variable ``x`` reaches; through ``stop_gradient`` only a tracing one."""
    hit = _depends_on(x, levels)
    return None if hit is None else hit[0]


def _depends_on(x: Any, levels: dict) -> tuple | None:
    """``(who, level)`` of the transform ``_depends`` finds, or None."""
    stack, seen = [(x, False)], set()
    while stack:
        n, stopped = stack.pop()
        if n.op == "var":
            hit = levels.get(n.level)
            if hit is not None and (hit[1] or not stopped):
                return hit[0], n.level
        stopped = stopped or n.op == "stop_gradient"
        for c in n.children:
            key = (id(c), stopped)
            if key not in seen:
                seen.add(key)
                stack.append((c, stopped))
    return None


def reaches(x: Any, hit: Callable[[Any], bool]) -> bool:
    """Whether ``hit`` holds for some node of the graph under ``x`` (``x``
    included): one walk, each shared node visited once.

    >>> reaches(Var(1.0) * 2.0, lambda n: n.op == "var")
    True
    """
    stack, seen = [x], set()
    while stack:
        n = stack.pop()
        if hit(n):
            return True
        for c in n.children:
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return False


def reaches_user_variable(xs: list, own: int | None = None) -> bool:
    """Whether the graph under the nodes ``xs`` (one walk) reaches a variable
    of no running transform but ``fm.trace`` (a user's ``fm.Var``, a traced
    graph's input), other than one at level ``own``: a derivative of the
    user's eager graph goes through it.

    >>> reaches_user_variable([Var(1.0) * 2.0]), reaches_user_variable([])
    (True, False)
    """
    if not xs:
        return False
    running = {lv for lv, who, _ in RUNNING.get() if who != "fm.trace"}
    stack, seen = list(xs), set()
    while stack:  # (not below stop_gradient: no derivative goes there)
        n = stack.pop()
        if n.op == "var" and not n.children and n.level not in running and n.level != own:
            return True
        if n.op != "stop_gradient":
            for c in n.children:
                if id(c) not in seen:
                    seen.add(id(c))
                    stack.append(c)
    return False


def reaches_variable(x: Any) -> bool:
    """Whether the graph under node ``x`` reaches a leaf that is not a constant
    (a variable of some transform); False for plain values.

    >>> reaches_variable(Var(1.0) * 2.0), reaches_variable(Const(1.0) * 2.0)
    (True, False)
    >>> reaches_variable(3.0)
    False
    """
    if not hasattr(x, "children"):
        return False
    running_levels = {lv for lv, _, _ in RUNNING.get()}
    if not running_levels:
        return reaches(x, _is_variable_leaf)
    # a running transform's variable for a node argument stands on that node: a
    # variable all the same, also where the node is a constant (a vmap result's values)
    return reaches(x, lambda n: _is_variable_leaf(n) or n.op == "var" and
                   getattr(n, "level", None) in running_levels)


def _vmap_depth() -> int:
    """How many ``fm.vmap`` calls enclose this point (the leading batch axes
    of a node's array)."""
    from .batch_axes import DEPTH  # (batch_axes imports expr, which imports this module)

    return DEPTH.get()


def _is_variable_leaf(n: Any) -> bool:
    return not n.children and n.op != "const"


def escape(x: Any, how: str) -> float:
    """``x``'s value as a float, unless a running transform depends on ``x``
    (its derivative, or its value under ``jit``, would be silently lost):
    then a ``TypeError`` that names the fix.

    >>> escape(Var(2.0), "float()")
    2.0
    """
    value = x.value
    if getattr(value, "ndim", 0):
        if value.ndim > _vmap_depth():  # not (only) a batch: an array entered the graph
            error = TypeError(f"{how} on an fm.Expr holding an array of shape {value.shape}: "
                              "a numpy array entered the computation (as in x * arr), and "
                              "fmicrograd is scalar-valued. Compute per entry (tuple(x * a "
                              "for a in arr.tolist())) or reduce it with fm.sum / fm.dot; "
                              "choose per entry with fm.where" + thread_hint())
            there = foreign(x) if _ANYWHERE else None  # (a thread's: noted for its end)
            raise raised(there[1], error) if there is not None else error
        raise raised(("vmap", _vmap_depth()), TypeError(
            f"{how} on an fm.Expr holding one value per example (inside fm.vmap): a Python "
            "number cannot stand for the whole batch. Compute with fm functions (fm.sin(x), "
            "not math.sin(x)), and use fm.where for per-example choices"))
    active = RUNNING.get()
    hit = _depends_on(x, {lv: (w, t) for lv, w, t in active}) if active else None
    if hit is None:
        refuse_foreign(x, how)
        return float(value)
    who, level = hit
    if who in ("fm.jit", "fm.trace"):
        raise raised(level, TypeError(
                        f"{how} on a value that {who} is tracing: the compiled code would "
                        "freeze the number seen while tracing. Compute with fm functions "
                        "(fm.sin(x), not math.sin(x)); compare nodes directly (comparisons are "
                        "guarded, as x != x is for NaN); or pass that argument in "
                        "static_argnums (or static_argnames). (An array argument comes in as an "
                        "array of such values: np.asarray(a, dtype=float) and a.astype(float) "
                        "read them; convert before the call)"
                        + TRACE_ADVICE.get()))
    raise raised(level, TypeError(
                    f"{how} on an fm.Expr that {who} differentiates: the plain number would "
                    "silently drop its derivative. Compute with fm functions (fm.sin(x), not "
                    "math.sin(x); x * y, not float(x) * y), or write fm.stop_gradient(x) where "
                    "dropping the derivative is intended. To print a value inside a loss use "
                    "f\"{x:.4f}\" or x.value; to test for NaN or inf (math.isnan, math.isinf), "
                    "compare the node itself: x != x, abs(x) == math.inf"))


def refuse_watched(x: Any, how: str, fix: str) -> None:
    """A ``TypeError`` (noted for the transform, as ``escape``'s) when a
    running transform differentiates, traces or maps node ``x``: a tool that
    reads the graph's numbers (``fm.viz``) would hand out plain numbers the
    transform cannot follow. Nothing outside a transform.

    >>> refuse_watched(Var(2.0), "fm.viz.to_dot", "call it outside the transform")
    """
    hit = _watcher(x)
    if hit is None:
        return
    who, key = hit
    doing = ("holding one value per example (inside fm.vmap)" if who == "fm.vmap" else
             f"that {who} {'is tracing' if who in ('fm.jit', 'fm.trace') else 'differentiates'}"
             ": the numbers it reads would be frozen at the trace or lose their derivatives")
    raise raised(key, TypeError(f"{how} of a graph {doing}; {fix}"))


def _watcher(x: Any) -> tuple[str, Any] | None:
    """``(who, key)`` of the running transform that maps (a ``vmap``'s batch),
    differentiates or traces node ``x``, the key its errors are noted under
    (``raised``); None where none does."""
    depth = _vmap_depth()
    if depth and 0 < getattr(x.value, "ndim", 0) <= depth:  # vmap's batch
        return "fm.vmap", ("vmap", depth)
    active = RUNNING.get()
    hit = _depends_on(x, {lv: (w, t) for lv, w, t in active}) if active else None
    if hit is None:
        hit = foreign(x) if _ANYWHERE else None  # (a thread's: noted for its end)
    return hit


def check_callable(f: Any, who: str) -> None:
    """A ``TypeError`` when ``f`` is not a function (``fm.grad(loss(p))``).

    >>> check_callable(3.0, "grad")
    Traceback (most recent call last):
        ...
    TypeError: fm.grad: expected a function, got float 3.0; pass the function itself, \
fm.grad(loss)(params), not fm.grad(loss(params))
    """
    if not callable(f):
        raise TypeError(f"fm.{who}: expected a function, got {type(f).__name__} "
                        f"{reprlib.repr(f)}; pass the function itself, fm.{who}(loss)(params), "
                        f"not fm.{who}(loss(params))")


def refused(x: Any, error: Exception) -> Exception:
    """``error``: fm refusing ``x`` where a float would answer (``x % 2``,
    ``x < Decimal("0.1")``, ``pickle``), noted as ``escape``'s errors are when a
    running transform depends on ``x``, so that a try/except around it cannot
    take a branch the float would not (the transform raises it again).

    >>> isinstance(refused(Var(2.0), TypeError("no")), TypeError)
    True
    """
    hit = _watcher(x)
    return raised(hit[1], error) if hit is not None else error


def _as_bools(node: Any) -> Any:
    """``node`` (a ``Mask``'s truths), noted as free of variables for
    ``fm.where`` (``functions.undifferentiated``): in the loop ``vmap`` stands
    for it is a Python bool, so a condition computed from it, ``(x > 0.0) *
    1.0``, picks a branch per example as a float would, even where ``x`` is
    differentiated (its comparison carries no derivative)."""
    memo = FREE_OF_VARIABLES.get()
    if memo is not None and hasattr(node, "children"):
        memo[id(node)] = node  # (held: its id stays its own while the memo lives)
    return node


@dataclass(frozen=True, eq=False)
class Mask:
    """The per-example answers of a comparison under ``fm.vmap`` whose
    examples disagree: usable by ``fm.where``, an error in ``if``.

    >>> import numpy as np
    >>> m = Mask(">", None, 0.0, np.array([True, False]))
    >>> bool(m)
    Traceback (most recent call last):
        ...
    ValueError: `>` on an fm.Expr holding an array (a numpy array entered the computation, as \
in x * arr): Python control flow needs one truth, and an array has one per entry; choose per \
entry with fm.where(cond, a, b), or compare scalars

    (inside ``fm.vmap`` the message names the per-example values).
    """

    op: str  # a comparison's, or "node": ``left`` is the truth as a 0/1 node
    left: Any
    right: Any
    value: Any
    written: str = ""  # the test as the function wrote it (x.is_integer()), for messages

    @property
    def shown(self) -> str:
        """The test as error messages name it: as written, else the comparison."""
        return self.written or self.op

    def __bool__(self) -> bool:
        if EVERY_EXAMPLE.get():
            error = ValueError(f"fm.to_torch: `{self.shown}` in Python control flow: a torch "
                               "graph is made for every batch and cannot follow a branch on a "
                               "per-example value; choose per example with fm.where(cond, a, "
                               "b) (or fm.maximum, fm.minimum, fm.relu, fm.clip)")
            raise raised(("vmap", _vmap_depth()), error) if _vmap_depth() else error
        if not _vmap_depth():  # the entries of an array that entered the graph (x * arr)
            raise ValueError(f"`{self.shown}` on an fm.Expr holding an array (a numpy array "
                             "entered the computation, as in x * arr): Python control flow "
                             "needs one truth, and an array has one per entry; choose per entry "
                             "with fm.where(cond, a, b), or compare scalars" + thread_hint())
        raise raised(("vmap", _vmap_depth()), ValueError(
            f"`{self.shown}` inside fm.vmap: Python control flow cannot depend on a per-example "
            "value (here the examples disagree); choose per example with fm.where(cond, a, "
            "b), e.g. fm.where(x > 0.0, x, 0.0), or fm.maximum / fm.minimum / fm.relu"))

    # As the loop's bools combine, per example: ``==``, ``!=``, ``&``, ``|``, ``^``
    # and ``~`` give the masks of the combined truths (``==`` was identity: a
    # plain bool that picked one branch for the whole batch); arithmetic takes
    # the truths as 0.0 / 1.0, as Python takes a bool as 0 / 1.

    def as_node(self) -> Any:
        """The per-example truths as a node of 0.0 / 1.0 (what ``fm.where`` chooses by).

        >>> import fmicrograd as fm
        >>> fm.vmap(lambda x: (x > 0.0).as_node() if not isinstance(x > 0.0, bool)
        ...         else 0.0)((1.0, -1.0))
        (1.0, 0.0)
        """
        if self.op == "node":
            return _as_bools(self.left)
        from .functions import _COMPARISONS

        exact = _in_float64(self.op, self.right)
        if exact is None:
            return _as_bools(_COMPARISONS[self.op](self.left, _scalar_of(self.right)))
        bounds, negated = exact  # (a constant float64 would not answer as Python does)
        truth: Any = 1.0
        for op, bound in bounds:
            truth = truth * _COMPARISONS[op](self.left, bound)
        return _as_bools(1.0 - truth if negated else truth)

    def __eq__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: 1.0 - abs(a - b), "==")

    def __ne__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: abs(a - b), "!=")

    def __hash__(self) -> int:
        """A set or dict lookup (``(x > 1.0) in {True}``, ``table[x > 1.0]``)
        needs one truth: the ``if`` error (by identity it never matched True,
        and one branch was taken for the whole batch)."""
        self.__bool__()  # (raises: a mask's examples disagree)
        return object.__hash__(self)

    def __str__(self) -> str:
        """Text needs one truth too (``str(x > 1.0) == "True"`` took one branch for
        the whole batch): the ``if`` error; ``repr`` shows the mask."""
        self.__bool__()  # (raises: a mask's examples disagree)
        return repr(self)

    def __format__(self, spec: str) -> str:
        self.__bool__()
        return format(repr(self), spec)

    def __and__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: a * b, "&")

    def __or__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: a + b - a * b, "|")

    def __xor__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: abs(a - b), "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Any:
        # on the loop's bools ~ gives -2 and -1, both true: no mask can mean that
        raise TypeError(f"~ of a comparison (`{self.shown}`) inside fm.vmap: on a Python bool ~ "
                        "gives -2 or -1 (both true), on numpy's bool its negation, and a mask "
                        "of per-example truths cannot tell which the loop has; write `not` as "
                        "the opposite comparison (x <= 0 for not x > 0), or swap fm.where's "
                        "branches")

    def __add__(self, other: Any) -> Any:
        return self.as_node() + _truth(other)

    def __radd__(self, other: Any) -> Any:
        return _truth(other) + self.as_node()

    def __sub__(self, other: Any) -> Any:
        return self.as_node() - _truth(other)

    def __rsub__(self, other: Any) -> Any:
        return _truth(other) - self.as_node()

    def __mul__(self, other: Any) -> Any:
        return self.as_node() * _truth(other)

    def __rmul__(self, other: Any) -> Any:
        return _truth(other) * self.as_node()

    def __truediv__(self, other: Any) -> Any:
        return self.as_node() / _truth(other)

    def __pow__(self, other: Any) -> Any:
        return self.as_node() ** _truth(other)

    def __rpow__(self, other: Any) -> Any:
        return _truth(other) ** self.as_node()

    def __rtruediv__(self, other: Any) -> Any:
        return _truth(other) / self.as_node()

    def __neg__(self) -> Any:
        return -self.as_node()

    def __abs__(self) -> Any:
        return self.as_node()

    def __lt__(self, other: Any) -> Any:
        return self.as_node() < _truth(other)

    def __le__(self, other: Any) -> Any:
        return self.as_node() <= _truth(other)

    def __gt__(self, other: Any) -> Any:
        return self.as_node() > _truth(other)

    def __ge__(self, other: Any) -> Any:
        return self.as_node() >= _truth(other)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        """numpy's functions on a mask (``np.sum(x > arr)``), as on a node."""
        from .numpy_ops import numpy_function_on_node

        return numpy_function_on_node(func, args, kwargs)

    def __float__(self, how: str = "float()") -> float:
        if not _vmap_depth():  # the entries of an array that entered the graph (x * arr)
            raise TypeError(f"{how} of a comparison (`{self.shown}`) on an fm.Expr holding an "
                            "array (a numpy array entered the computation, as in x * arr): "
                            "one number cannot stand for its entries; choose per entry with "
                            "fm.where(cond, a, b), or compare scalars")
        raise raised(("vmap", _vmap_depth()), TypeError(
            f"{how} of a comparison (`{self.shown}`) inside fm.vmap whose examples disagree: "
            "one number cannot stand for every example; compute with it (mask * 1.0 is 0.0 / "
            "1.0 per example) or choose with fm.where"))

    def __int__(self) -> int:
        return int(self.__float__("int()"))

    def __index__(self) -> int:
        return int(self.__float__("using it as an index"))


def _truth(x: Any) -> Any:
    """An operand next to a mask: a mask as its 0/1 node, a bool as 0.0 / 1.0."""
    if isinstance(x, Mask):
        return x.as_node()
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    return x


def _combined(m: Mask, other: Any, f: Any, what: str) -> Any:
    """The mask of ``f`` of the two truths (0/1 nodes), or a plain bool (its
    comparison guarded) where every example agrees, as ``compare`` gives."""
    if not isinstance(other, (Mask, bool)):
        if what in ("==", "!="):  # a mask against a number: the truth as 0/1 against it
            return compare(what, m.as_node(), other, other)
        return NotImplemented
    node = f(m.as_node(), _truth(other))
    value = node.value != 0
    if value.all() or not value.any():
        r = bool(value.all())
        log = GUARDS.get()
        if log is not None:  # (a guard on per-example values: jit runs the function as is)
            log.append(("!=", node, 0.0, r))
        return r
    return Mask("node", node, None, value)


def compare(op: str, a: Any, b: Any, b_value: Any) -> Any:
    """``a op b`` on values, as the floats would answer (guarded under ``jit``);
    a ``Mask`` when ``vmap``'s examples disagree.

    >>> compare("<", Var(1.0), 2.0, 2.0), compare("==", Var(1.0), 2.0, 2.0)
    (True, False)
    """
    value = a.value
    result = _OPS[op](value, b_value) if value.__class__ is float or not getattr(
        value, "ndim", 0) else _compared(op, value, b_value)
    if getattr(result, "ndim", 0):
        if EVERY_EXAMPLE.get():
            return Mask(op, a, b, result)
        if not _vmap_depth():
            if getattr(value, "ndim", 0) or hasattr(b, "children"):
                # a node holding an array (x * arr): the entries' answers, for fm.where; an
                # error in `if`, also where they agree (a bool took a branch there, where
                # the float program raises)
                return Mask(op, a, b, result)
            # a number against an array of the user's: the entries' answers, which one
            # bool cannot stand for (np.sum(arr < x) would count one)
            raise refused(a, TypeError(
                            f"a numpy array entered the computation: `{op}` between an fm node "
                            f"and a numpy array of shape {result.shape} outside fm.vmap; "
                            "fmicrograd is scalar-valued and a comparison answers one bool: "
                            f"compare entry by entry, [x {op} v for v in arr.tolist()], or map "
                            "the array with fm.vmap"))
        if result.all():
            r = True
        elif not result.any():
            r = False
        else:
            return Mask(op, a, b, result)
    else:
        r = bool(result)
    compared = COMPARED.get()
    if compared is not None:
        compared.append((op, a, b))
    log = GUARDS.get()
    if log is not None:
        log.append((op, a, b, r))
    elif TRACING:  # a trace runs somewhere: maybe this comparison is on its values
        there = foreign(a, tracing=True) or (
            foreign(b, tracing=True) if hasattr(b, "children") else None)
        if there is not None:
            raise raised(there[1], TypeError(
                f"`{op}` on a value that {there[0]} is tracing ran "
                + _IN_A_THREAD.format(who=there[0])
                + " (the compiled code could not re-check this branch)"))
    return r


def _compared(op: str, values: Any, b: Any) -> Any:
    """``values op b`` for the float64 values of ``vmap``'s examples, as
    each float would answer: an int beyond 2**53 exactly (numpy would round
    it to a float64 first, or overflow), a float32 or float16 number in its
    own type (as numpy compares a Python float with it).

    >>> import numpy as np
    >>> _compared("<", np.array([2.0 ** 53, 1.0]), 2 ** 53 + 1).tolist()
    [True, True]
    >>> _compared("==", np.array([0.1]), np.float32(0.1)).tolist()
    [True]
    """
    b = _scalar_of(b)
    exact = _in_float64(op, b)
    if exact is None:
        return _OPS[op](values, b)
    bounds, negated = exact  # (the float64 bounds ``Mask.as_node`` compares with too)
    truth = _OPS[bounds[0][0]](values, bounds[0][1])
    for o, bound in bounds[1:]:
        truth &= _OPS[o](values, bound)
    return ~truth if negated else truth


_EXACT_INT = 2 ** 53


def _near(b: Any) -> float | None:
    """For a number a float64 may not hold exactly, the float64 nearest it
    (+-inf beyond float64's range, NaN for a NaN): an int beyond 2**53 (numpy's
    too), a ``Fraction``, a ``np.longdouble``; None for any other ``b``.
    Python compares a float with each of them exactly; numpy would round
    them to a float64 first (or compare as objects, where ``fm.where``'s node
    could not).

    >>> from fractions import Fraction
    >>> _near(2 ** 53 + 1), _near(Fraction(1, 3)), _near(2.0)
    (9007199254740992.0, 0.3333333333333333, None)
    """
    import numpy as np

    kind = b.__class__
    if kind is float:
        return None
    if kind is int or isinstance(b, np.integer):
        if -_EXACT_INT <= b <= _EXACT_INT:
            return None
    elif isinstance(b, numbers.Rational) and not isinstance(b, numbers.Integral):
        pass  # a Fraction
    elif not (isinstance(b, np.floating) and b.dtype.itemsize > 8):  # a long double
        return None
    try:
        return float(b)
    except OverflowError:
        return math.inf if b > 0 else -math.inf


def _scalar_of(b: Any) -> Any:
    """A 0-d numpy array as its scalar (numpy hands ``np.float32(0.1) < x`` to
    the node as one), anything else as it is."""
    if getattr(b, "ndim", None) == 0:
        if b.__class__.__name__ == "ndarray":
            return b[()]
        if b.__class__.__name__ == "Tensor":  # a torch number: as its numpy scalar, whose
            if str(b.dtype) not in _TORCH_FLOATS:  # float32 compares as Python compares it
                raise TypeError(f"a comparison with a {b.dtype} number inside fm.vmap: "
                                "fm compares per example as Python compares floats, and "
                                "torch rounds this one its own way; convert it first "
                                "(t.item(), or float(t))")
            return b.detach().cpu().numpy()[()]
    return b


_TORCH_FLOATS = ("torch.float64", "torch.float32", "torch.float16")


def _in_float64(op: str, b: Any) -> tuple[list[tuple[str, float]], bool] | None:
    """``x op b`` for float64 ``x`` and a constant ``b`` that a float64
    comparison would not answer as Python does (an int beyond 2**53, a
    float32 or float16 number, which numpy compares in its own type), as
    ``(bounds, negated)``: comparisons with float64 bounds that must all hold
    (or, ``negated``, not all hold); None for any other ``b``.

    >>> _in_float64("<", 2 ** 53 + 1), _in_float64("<", 2.0)
    (([('<=', 9007199254740992.0)], False), None)
    """
    import numpy as np

    b = _scalar_of(b)
    near = _near(b)
    if near is not None:
        if op in ("==", "!="):  # equal only at near, and only if near is b itself
            return ([("==", near)] if near == b else [("<", -math.inf)]), op == "!="
        at = _OPS[op](near, b)  # the answer at x == near; any other x answers as with near
        if op in ("<", "<="):
            return [("<=" if at else "<", near)], False
        return [(">=" if at else ">", near)], False
    if isinstance(b, np.floating) and b.dtype.itemsize < 8:
        if b != b:  # NaN: only != holds
            return [("<", -math.inf)], op == "!="
        lo, hi = _rounding_interval(b)  # the float64 x that round to b in b's type
        if op in ("==", "!="):
            return [(">=", lo), ("<=", hi)], op == "!="
        return {"<": [("<", lo)], "<=": [("<=", hi)], ">": [(">", hi)],
                ">=": [(">=", lo)]}[op], False
    return None


def _rounding_interval(b: Any) -> tuple[float, float]:
    """The least and greatest float64 that round to the float32 (or float16)
    ``b``: to nearest, ties to even, and beyond the largest finite number's
    half step up to inf.

    >>> import numpy as np
    >>> lo, hi = _rounding_interval(np.float32(1.0))
    >>> np.float32(lo), np.float32(np.nextafter(lo, -1.0)), np.float32(hi)
    (np.float32(1.0), np.float32(0.99999994), np.float32(1.0))
    """
    import numpy as np

    kind = b.dtype.type
    top = float(np.finfo(kind).max)
    overflow = top + (top - float(np.nextafter(kind(top), kind(0)))) / 2  # rounds to inf
    v = float(b)
    if v == math.inf:
        lo, hi = overflow, math.inf
    elif v == -math.inf:
        lo, hi = -math.inf, -overflow
    else:
        with np.errstate(over="ignore"):  # (the neighbours of the largest finite: +-inf)
            below = float(np.nextafter(b, kind(-np.inf)))
            above = float(np.nextafter(b, kind(np.inf)))
        lo = -overflow if below == -math.inf else (below + v) / 2  # (exact in float64)
        hi = overflow if above == math.inf else (v + above) / 2
    # a midpoint itself rounds to the even neighbour: step inside where that is not b
    with np.errstate(over="ignore"):  # (a bound past the largest finite casts to inf)
        if math.isfinite(lo) and kind(lo) != b:
            lo = float(np.nextafter(lo, math.inf))
        if math.isfinite(hi) and kind(hi) != b:
            hi = float(np.nextafter(hi, -math.inf))
    return lo, hi


def integer_test(x: Any) -> Any:
    """``x.is_integer()`` of a node, as its float answers, told by comparisons
    of ``x`` that ``jit`` guards like any other (a call whose answer differs
    recompiles): ``x == n`` for a whole value ``n``, ``n < x < n + 1``
    otherwise, ``x == x`` for NaN, ``x == inf`` for infinities. Under ``vmap``
    examples that disagree give a ``Mask`` (for ``fm.where``; an error in
    ``if``), and ``jit`` runs the function as Python (see ``INTEGER_TEST``).

    >>> integer_test(Var(3.0)), integer_test(Var(2.5)), integer_test(Var(-math.inf))
    (True, False, False)
    """
    v = x.value
    if getattr(v, "ndim", 0):
        import numpy as np  # only under vmap: importing fmicrograd needs no numpy

        log = GUARDS.get()
        if log is not None and INTEGER_TEST not in log:
            log.append(INTEGER_TEST)
        with np.errstate(invalid="ignore"):
            whole = np.where(np.isfinite(v), np.floor(v), np.nan)  # NaN: equal to none
        truth = compare("==", x, whole, whole)
        return replace(truth, written="x.is_integer()") if isinstance(truth, Mask) else truth
    if v != v:
        return compare("==", x, x, v)  # False, as long as x is NaN
    if v in (math.inf, -math.inf):
        return not compare("==", x, v, v)
    n = float(math.floor(v))
    if v == n:
        return compare("==", x, n, n)
    # strictly between two whole numbers: both comparisons hold (they are the guards)
    return not (compare(">", x, n, n) and compare("<", x, n + 1.0, n + 1.0))


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}
