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

import reprlib
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

__all__ = ["GUARDS", "CHECKS", "TRACE_VALUES", "UNCOMPILED", "FORMATTED", "INTEGER_TEST",
           "RUNNING", "PREBUILT", "RAISED", "RAISED_ANYWHERE", "VMAP_NOW", "running", "dependent",
           "out_of_ended_vmap",
           "escape", "refused", "refuse_watched", "raised", "settle", "ended", "check_callable",
           "reaches_variable", "reaches", "reaches_known"]


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
    """``error``, noted as raised for the transform ``key`` (see ``RAISED``):
    in this context while a transform runs in it (a context that runs none,
    a thread the transform's caller started, would keep every error it caught
    and its traceback's frames for good: nothing there settles them), and in
    ``RAISED_ANYWHERE`` for a transform running in another context."""
    if RUNNING.get() or _vmap_depth():
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
            if _CLEAR:
                _CLEAR.clear()
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
                    if _CLEAR:
                        _CLEAR.clear()
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
    if not levels:
        return None
    known = _CLEAR.setdefault(frozenset(levels.items()), {})
    if len(known) > KNOWN_MOST:  # (each node held: without a bound, every graph walked
        known.clear()            # while the other thread's transform runs stays alive)
    return _depends_on(x, levels, known)


KNOWN_MOST = 20_000  # nodes ``foreign`` remembers per set of transforms, at most


# The graphs known to reach no variable of a set of transforms running in other
# threads, by that set: ``{(id(node), stopped): node}`` (the node held, so that its id
# stays its own). Immutable graphs keep the answer, so ``foreign`` walks only what
# was built since: an eager loop that calls ``float()`` on a chain it keeps growing,
# while another thread runs ``fm.grad``, walked the whole chain every time (2,000
# steps: 7 s for 0.01 s). Also, under a name (``reaches_known``'s key), the nodes
# known to reach what that name asks. Emptied whenever a transform starts or ends
# anywhere; each memo holds at most about ``KNOWN_MOST`` nodes.
_CLEAR: dict = {}


def refuse_foreign(x: Any, how: str, tracing: bool = False) -> None:
    """A ``TypeError`` when a transform running in another context (a thread
    the caller started) depends on ``x``: text made from it there (``f"{x:.6f}"``)
    is the trace's number under ``jit`` and, parsed back, carries no
    derivative, and that transform cannot see it to guard or refuse it. With
    ``tracing``, only a transform that traces (``jit``) counts.

    >>> refuse_foreign(Var(1.0), "str()")
    """
    there = foreign(x, tracing) if _ANYWHERE else None
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


def _depends_on(x: Any, levels: dict, known: dict | None = None) -> tuple | None:
    """``(who, level)`` of the transform ``_depends`` finds, or None.
    ``known``: the ``(id(node), stopped)`` pairs found before to reach none of
    ``levels`` (not walked again), which a walk that finds none adds to."""
    done = {} if known is None else known
    if (id(x), False) in done:
        return None
    seen = {(id(x), False): x}  # (each node held: its id stays its own for ``known``)
    stack = [(x, False)]
    while stack:
        n, stopped = stack.pop()
        if n.op == "var":
            hit = levels.get(n.level)
            if hit is not None and (hit[1] or not stopped):
                return hit[0], n.level
        stopped = stopped or n.op == "stop_gradient"
        for c in n.children:
            key = (id(c), stopped)
            if key not in seen and key not in done:
                seen[key] = c
                stack.append((c, stopped))
    if known is not None:
        known.update(seen)
    return None


def reaches(x: Any, hit: Callable[[Any], bool]) -> bool:
    """Whether ``hit`` holds for some node of the graph under ``x`` (``x``
    included): one walk, each shared node visited once.

    >>> reaches(Var(1.0) * 2.0, lambda n: n.op == "var")
    True
    """
    if hit(x):
        return True
    stack, seen = [x], set()
    while stack:
        for c in stack.pop().children:
            if id(c) not in seen:
                if hit(c):  # (as it is met: not after a walk into its siblings' graphs)
                    return True
                seen.add(id(c))
                stack.append(c)
    return False


def reaches_known(x: Any, hit: Callable[[Any], bool], key: Any) -> bool:
    """``reaches(x, hit)``, remembering the nodes found to reach (a fact of an
    immutable graph) under ``key`` (which names ``hit``) until a transform
    starts or ends anywhere, as ``foreign`` remembers the others: a loop that
    calls a jitted step under ``grad`` asks it of each step's arguments, whose
    graph holds the last step's (4,000 steps: 3.5 s for 0.06 s, walking it all).

    >>> y = Var(1.0) * 2.0
    >>> with running(10 ** 9 + 1, "fm.grad"):
    ...     (reaches_known(y, lambda n: n.op == "var", "doc"),
    ...      reaches_known(y * 3.0, lambda n: False, "doc"))  # (y is known to)
    (True, True)
    """
    if not RUNNING.get() and not _vmap_depth():  # (nothing would empty the memo: a sweep
        return reaches(x, hit)  # after its transform ended kept a rollout's graph, 4 MB)
    known = _CLEAR.setdefault(key, {})
    if id(x) in known:
        return True
    if len(known) > KNOWN_MOST:
        known.clear()
    if not reaches(x, lambda n: id(n) in known or hit(n)):
        return False
    known[id(x)] = x  # (held: its id stays its own)
    return True


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

