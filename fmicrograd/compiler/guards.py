"""Guards checked on the values the trace computed, not on the optimized program's.

A jitted function's branches become guards: the compiled code checks that a
comparison comes out as it did in the trace, and retraces where it does
not. ``optimize`` regroups sums (``(a + b) + (c + d)`` runs as one
left-to-right sum, a sum of products as a ``dot``), so the compiled value
of a comparison's operand can differ from the traced one in the last bits,
and at an exact tie the branch flipped: ``(0.1 + 0.2) + (-0.1 + -0.2) > 0.0``
is False in Python and was True in the compiled program. ``exact_guards``
makes a separate straight-line program of the guards and what they read,
from the program as lowered (every operation as the trace did it, with the
same scalar functions), checked before the optimized program runs without
guards of its own.

>>> from fmicrograd.core.expr import variable, next_level
>>> from fmicrograd.compiler.ir import lower
>>> lv = next_level()
>>> x, y = variable(0.1, lv), variable(0.2, lv)
>>> p = lower([x * y], [x, y], [(">", (x + y) + (-x + -y), 0.0, False)], lv)
>>> check, where = exact_guards(p)
>>> check([0.1, 0.2]), where.tolist()  # (0.1 + 0.2) + (-0.1 + -0.2) is 0.0
([], [0, 1])
>>> check2, _ = exact_guards(lower([x], [x, y], [(">", x + y, 0.25, True)], lv))
>>> check2([0.1, 0.2]), check2([0.1, 0.1])
([], None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import codegen
from .ir import NotCompilable, Program

__all__ = ["exact_guards", "checked", "value_checks", "values_checked", "LIMIT",
           "BATCHED_BRANCH"]

BATCHED_BRANCH = ("a Python branch on a value computed over a vmap batch (the compiled "
                  "program's regrouped sums could take the other branch); compute the value in "
                  "the jitted function and branch outside it, or choose with fm.where")

# At most this many nodes behind the guards (a branch on a whole forward pass
# would run it twice, once as scalar Python): beyond, the optimized program
# checks its own guards, as before.
LIMIT = 20_000


def exact_guards(p: Program, limit: int = LIMIT) -> tuple[Callable, np.ndarray] | None:
    """``(check, inputs)``: ``check(values)`` runs ``p``'s guards as a
    straight-line scalar program (None where one fails, ``[]`` otherwise) on
    the values of ``p``'s inputs at positions ``inputs``. None when ``p`` has
    no guards, or what they read has more than ``limit`` nodes. Raises
    ``NotCompilable`` where they read arrays (values computed over a ``vmap``
    batch) or operations the scalar backend lacks: the compiled program's
    regrouped values could take another branch than Python's, so the
    function runs as Python."""
    if not p.guards:
        return None
    need: set = set()
    stack = [x for _, a, b, _ in p.guards for x in (a, b)]
    while stack:
        i = stack.pop()
        if i in need:
            continue
        need.add(i)
        if p.shapes[i] != ():
            raise NotCompilable(BATCHED_BRANCH)
        if len(need) > limit:
            return None
        stack.extend(p.args[i])
    q = Program()
    number: dict = {}
    used = sorted(i for i in need if p.ops[i] == "in")
    for k, i in enumerate(used):
        number[i] = k
    q.ops, q.args, q.params, q.shapes = ["in"] * len(used), [()] * len(used), \
        list(range(len(used))), [()] * len(used)
    q.n_inputs = len(used)
    for i in sorted(need):
        if p.ops[i] == "in":
            continue
        number[i] = len(q.ops)
        q.ops.append(p.ops[i])
        q.args.append(tuple(number[a] for a in p.args[i]))
        q.params.append(p.params[i])
        q.shapes.append(())
    q.guards = [(op, number[a], number[b], e) for op, a, b, e in p.guards]
    if not codegen.supports(q):
        raise NotCompilable("a branch on a value computed with an operation that the exact "
                            "check of branches cannot run")
    return codegen.scalar_program(q), np.array([p.params[i] for i in used], dtype=np.intp)


def checked(guards: tuple[Callable, np.ndarray], run: Callable, vector: bool) -> Callable:
    """``run`` (a compiled program without guards, taking an array of input
    values if ``vector``, else a list) behind ``guards`` (``exact_guards``):
    None, as a failed guard, without running it.

    >>> check = lambda values: None if values[0] < 0.0 else []
    >>> run = checked((check, np.array([0])), lambda values: [2.0 * values[0]], False)
    >>> run([3.0]), run([-3.0])
    ([6.0], None)
    """
    check, where = guards
    if vector:
        def guarded(values: Any) -> Any:
            return None if check(values[where].tolist()) is None else run(values)
    else:
        positions = where.tolist()

        def guarded(values: Any) -> Any:
            return None if check([values[k] for k in positions]) is None else run(values)
    guarded.__dict__.update(run.__dict__)  # (its source, for ``lower``)
    # (its ``I`` is the inputs at ``where``, not the program's: said in the text)
    read = ", ".join(f"I[{k}]" for k in where.tolist())
    guarded.__fm_guards__ = (f"# (its I is [{read}] of the program's I)\n"  # type: ignore[attr-defined]
                             + getattr(check, "__fm_source__", ""))
    return guarded


def value_checks(p: Program) -> list[tuple[np.ndarray, Callable]]:
    """``(positions, ok)`` for the labels ``fm.losses`` checked in the trace
    (``p.checks``) that are inputs of ``p``: an argument (an ``in`` node), or
    a column that ``vmap`` maps (a ``stack`` of inputs, a ``col``). Checks with one
    ``ok`` are merged. A label computed from the inputs is left out
    (``derived_labels`` checks those).

    >>> p = Program()
    >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(3)])
    >>> col = p.add("stack", (1, 2), None, (2,))
    >>> ok = lambda y: y > 0
    >>> p.checks = [(0, ok), (col, ok), (p.add("*", (0, 1), None, ()), ok)]
    >>> [(where.tolist(), f is ok) for where, f in value_checks(p)]
    [([0, 1, 2], True)]
    """
    merged: dict = {}
    for i, ok in p.checks:
        where = _read_at(p, i)
        if where is not None:
            merged.setdefault(ok, []).extend(where)
    return [(np.unique(np.array(where, dtype=np.intp)), ok) for ok, where in merged.items()]


def _read_at(p: Program, i: int) -> list | None:
    """The input positions node ``i`` reads as it is (an input, a stack of
    inputs, a column), or None for a value computed from them."""
    if p.ops[i] == "in":
        return [p.params[i]]
    if p.ops[i] == "stack" and all(a < p.n_inputs and p.ops[a] == "in" for a in p.args[i]):
        return [p.params[a] for a in p.args[i]]
    if p.ops[i] == "col":  # (a large array's column: no node per entry)
        return p.params[i].positions().tolist()
    return None


def derived_labels(p: Program, every: bool = False) -> tuple[Program, list] | None:
    """The labels ``fm.losses`` checked in the trace that ``p`` computes from
    its inputs (``hinge(s, 2 * y - 1)``): a program of ``p``'s nodes with
    those labels as its outputs, and their checks; None where there are none.
    With ``every``, the labels that are inputs too (``vmap`` of a jitted
    function checks them all this way).
    (Until round 45 they were checked at the trace only: a later call with
    a label of 0 gave hinge's number, where the function raises.)

    >>> p = Program()
    >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(2)])
    >>> ok = lambda y: y > 0
    >>> p.checks = [(0, ok), (p.add("*", (0, 1), None, ()), ok)]
    >>> q, oks = derived_labels(p)
    >>> q.outputs, oks == [ok]
    ([2], True)
    """
    found = [(i, ok) for i, ok in p.checks if every or _read_at(p, i) is None]
    if not found:
        return None
    need: set = set()  # the nodes the labels read (not the whole step: compiled again)
    stack = [i for i, _ in found]
    while stack:
        i = stack.pop()
        if i not in need and i >= p.n_inputs:
            need.add(i)
            stack.extend(p.args[i])
    # every input kept, at its position: the same input vector as ``p``'s
    q, number = p.taking([*range(p.n_inputs), *sorted(need)])
    q.outputs = [number[i] for i, _ in found]
    return q, [ok for _, ok in found]


def derived_checked(labels: Callable, takes_array: bool, oks: list, run: Callable,
                    vector: bool) -> Callable:
    """``run`` behind the checks of labels computed from the inputs:
    ``labels`` (compiled from ``derived_labels``'s program, taking an array
    if ``takes_array``) computes them from the values ``run`` takes; None,
    as a failed guard, where an ``ok`` rejects one, so that the call traces
    again and the loss raises its error.

    >>> run = derived_checked(lambda v: [2.0 * v[0] - 1.0], False, [lambda y: y > 0],
    ...                       lambda v: [v[0]], False)
    >>> run([1.0]), run([0.25])
    ([1.0], None)
    """
    def guarded(values: Any) -> Any:
        given = np.asarray(values, dtype=float) if takes_array and not vector else values
        for label, ok in zip(labels(given), oks):
            if not np.all(ok(np.asarray(label, dtype=float))):
                return None
        return run(values)

    guarded.__dict__.update(run.__dict__)  # (its source and guards, for ``lower``)
    return guarded


def values_checked(checks: list[tuple[np.ndarray, Callable]], run: Callable,
                   vector: bool) -> Callable:
    """``run`` behind ``checks`` (``value_checks``): None, as a failed guard,
    where an ``ok`` rejects an input value, so that the call traces again and
    the loss raises its error.

    >>> run = values_checked([(np.array([1]), lambda y: y > 0)], lambda v: [v[0]], False)
    >>> run([5.0, 1.0]), run([5.0, -1.0])
    ([5.0], None)
    """
    # (a run of positions, the usual layout of a label argument, read as a slice)
    reads = [(slice(int(w[0]), int(w[-1]) + 1) if len(w) and w[-1] - w[0] == len(w) - 1
              else w, ok) for w, ok in checks]

    def guarded(values: Any) -> Any:
        array = values if vector else np.asarray(values, dtype=float)
        for where, ok in reads:
            if not ok(array[where]).all():
                return None
        return run(values)

    guarded.__dict__.update(run.__dict__)  # (its source and guards, for ``lower``)
    return guarded
