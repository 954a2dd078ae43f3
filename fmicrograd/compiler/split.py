"""A batched program cut in two halves of its batch, run on two cores.

A training step over ``fm.vmap`` is, in array code, a chain of operations on
arrays of ``width x batch`` entries (the layers' forward and backward) that
ends in sums over the batch (each weight's gradient, a ``bdot``; each bias's,
a ``bsum``), then a little code on the parameters alone (the update). Every
operation before the sums treats each example alike, so the batch can be cut
in two: each half runs the same code on half the examples, the two halves'
sums are added, and the rest runs once. ``split`` builds that as three
programs: ``half`` (the per-example part, up to the batch sums), run on the
two halves at the same time (``threads.both``: the caller takes one, a helper
thread the other, each with one BLAS thread), and ``post`` (the rest, from the
sums of the halves).

The cut is fixed by the program's shapes, never by timing or load, so a
program gives the same bits on every call: the halves' sums are always added
in the same order, and a half computed by either thread has the same bits.
They differ in the last bits from the uncut program's (a batch sum becomes
the sum of two half sums), as any change of summation order does.

Only programs of that shape are cut: every batched node has the one batch
shape ``(B,)`` with ``B`` even, works example by example (row-wise
operations, ``dot``, ``stack`` of inputs, constants), and depends on no batch
sum; the only nodes reading batched values are full batch sums; there are no
guards and no batched outputs or inputs. Anything else runs uncut.

>>> import numpy as np, fmicrograd as fm
>>> from fmicrograd.core.expr import variable, next_level
>>> from fmicrograd.compiler.ir import lower, optimize
>>> lv = next_level()
>>> w = variable(0.5, lv)
>>> xs = np.linspace(-1.0, 1.0, 128)
>>> loss = fm.mean(fm.vmap(lambda x: fm.relu(w * x + 1.0))(xs))
>>> p = optimize(lower([loss, fm.grad(lambda v: v * 2.0)(w)], [w], [], lv))
>>> run = split(p, min_work=0)
>>> [round(v, 12) for v in run(np.array([0.5]))]
[1.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .autobatch import _FACTORS, _ROWWISE, NUMPY, batched_program
from .ir import Program
from .threads import both

__all__ = ["split", "MIN_BATCH", "MIN_WORK"]

MIN_BATCH = 128  # examples: each half has at least 64
# Work (entries computed, plus the multiply-adds of products) below which a cut
# program is slower (benchmarks/halves.py): both threads take the GIL between
# their array operations, and when these are small (a 2-16-16-1 x 1000 step,
# 2M, runs in 1.8x the time cut) the hand-offs cost more than the second core
# saves; a 2-64-64-1 x 1000 step (26M) runs in 0.85x, wider ones in 0.6-0.8x.
MIN_WORK = 10_000_000
_EXAMPLEWISE = (_ROWWISE | {"dot", "stack", "const"}) - {"factor"}


def split(p: Program, namespace: dict = NUMPY, min_work: int | None = None) -> Callable | None:
    """``run(I)`` computing ``p`` from its input vector ``I`` in two batch
    halves on two threads, or None when ``p`` cannot be cut (see the module
    docstring) or does too little work (``min_work``) to gain from it.
    ``namespace`` is the one ``batched_program`` takes."""
    cut = _cut(p, MIN_WORK if min_work is None else min_work)
    if cut is None:
        return None
    cuts, sources, rows, consts = cut
    size = rows.shape[1] // 2
    half: Any = batched_program(_half(p, cuts, sources, size), dict(namespace, _out=_same),
                                any_order=True)  # the sums as one vector
    # the half returns the sums in the order it computes them
    post: Any = batched_program(_post(p, [cuts[k] for k in half.__fm_order__]), namespace)
    # where each half's per-example inputs come from: [half, input row, example]
    idx = np.stack([rows[:, : rows.shape[1] // 2], rows[:, rows.shape[1] // 2:]])
    extra = np.asarray(consts, dtype=float)

    def run(inputs: Any) -> Any:
        base = inputs if not len(extra) else np.concatenate((inputs, extra))
        data = base[idx]
        a, b = both(half, (inputs, data[0]), (inputs, data[1]))
        return post(np.concatenate((inputs, a + b)))

    run.__fm_source__ = "\n".join((  # type: ignore[attr-defined]
        f"# two halves of {size} examples at once (one on a helper thread), then the rest",
        half.__fm_source__.replace("def run(", "def half(", 1),
        post.__fm_source__.replace("def run(", "def post(", 1),
        "def run(I):", "    data = I[idx]  # each half's examples: data[0], data[1]",
        "    a, b = _both(half, (I, data[0]), (I, data[1]))",
        "    return post(_cat((I, a + b)))"))
    return run


def _same(a: Any) -> Any:
    return a


def _cut(p: Program, min_work: int) -> tuple | None:
    """``(cuts, sources, rows, consts)``: the batch sums; the per-example
    inputs of the half program (each ``stack`` of inputs and batched
    constant); and for each, its ``B`` entries as positions in ``I`` followed
    by ``consts``. None when ``p`` is not cut."""
    shapes, ops, args, params = p.shapes, p.ops, p.args, p.params
    batch = next((s for s in shapes if s != ()), None)
    if batch is None or len(batch) != 1 or batch[0] % 2 or batch[0] < MIN_BATCH:
        return None
    if p.guards or any(shapes[o] != () for o in p.outputs) or \
            any(s != () for s in shapes[:p.n_inputs]):
        return None
    size = batch[0]
    after = bytearray(p.size)  # depends on a batch sum
    cuts: list = []
    work = 0
    for i in range(p.n_inputs, p.size):
        op, a = ops[i], args[i]
        if shapes[i] == ():
            if any(shapes[k] != () for k in a):
                if op not in ("bsum", "bdot") or params[i] != (0,):
                    return None
                cuts.append(i)
                after[i] = 1
                work += len(a) * size
            elif any(after[k] for k in a):
                after[i] = 1
            continue
        if shapes[i] != batch or any(after[k] for k in a):
            return None
        if op not in _EXAMPLEWISE and not (op == "factor" and params[i] in _FACTORS):
            return None
        if op == "stack" and any(shapes[k] != () or ops[k] not in ("in", "const") for k in a):
            return None
        if op not in ("stack", "const"):
            work += len(a) * size
    if not cuts or work < min_work:
        return None
    consts: list = []
    rows, sources = [], []
    for i in range(p.n_inputs, p.size):
        if shapes[i] == () or ops[i] not in ("stack", "const"):
            continue
        sources.append(i)
        if ops[i] == "stack":
            row = []
            for k in args[i]:
                if ops[k] == "in":
                    row.append(params[k])
                else:
                    row.append(p.n_inputs + len(consts))
                    consts.append(float(params[k]))
            rows.append(row)
        else:
            start = p.n_inputs + len(consts)
            consts.extend(np.asarray(params[i], dtype=float).tolist())
            rows.append(list(range(start, start + size)))
    return cuts, sources, np.array(rows, dtype=np.intp).reshape(len(rows), size), consts


def _new(p: Program) -> Program:
    """A program with ``p``'s inputs, each at its position."""
    q = Program()
    q.ops = ["in"] * p.n_inputs
    q.args = [()] * p.n_inputs
    q.params = list(range(p.n_inputs))
    q.shapes = [()] * p.n_inputs
    return q


def _needed(p: Program, roots: list, stop: frozenset) -> bytearray:
    """Nodes ``roots`` reach through their arguments, not past ``stop``."""
    need = bytearray(p.size)
    for r in roots:
        need[r] = 1
    args = p.args
    for i in range(p.size - 1, p.n_inputs - 1, -1):
        if need[i] and i not in stop:
            for k in args[i]:
                need[k] = 1
    return need


def _half(p: Program, cuts: list, sources: list, half: int) -> Program:
    """The per-example part on ``half`` examples: ``p``'s inputs, then one
    input of shape ``(half,)`` per node of ``sources``; the batch sums are its
    outputs."""
    q = _new(p)
    number = list(range(p.n_inputs)) + [-1] * (p.size - p.n_inputs)
    for k, i in enumerate(sources):
        number[i] = len(q.ops)
        q.ops.append("in")
        q.args.append(())
        q.params.append(p.n_inputs + k)
        q.shapes.append((half,))
    q.n_inputs = len(q.ops)
    need = _needed(p, cuts, frozenset(sources))
    _copy(p, q, need, number, (half,))
    q.outputs = [number[c] for c in cuts]
    return q


def _post(p: Program, cuts: list) -> Program:
    """What comes after the batch sums: ``p``'s inputs, then the sums as
    inputs, then the nodes ``p``'s outputs need."""
    q = _new(p)
    number = list(range(p.n_inputs)) + [-1] * (p.size - p.n_inputs)
    for k, c in enumerate(cuts):
        number[c] = len(q.ops)
        q.ops.append("in")
        q.args.append(())
        q.params.append(p.n_inputs + k)
        q.shapes.append(())
    q.n_inputs = len(q.ops)
    need = _needed(p, list(p.outputs), frozenset(cuts))
    _copy(p, q, need, number, ())
    q.outputs = [number[o] for o in p.outputs]
    return q


def _copy(p: Program, q: Program, need: bytearray, number: list, batch: tuple) -> None:
    """Append ``p``'s needed nodes not numbered yet to ``q`` in order, batched
    ones with shape ``batch``."""
    for i in range(p.n_inputs, p.size):
        if not need[i] or number[i] >= 0:
            continue
        number[i] = len(q.ops)
        q.ops.append(p.ops[i])
        q.args.append(tuple(number[k] for k in p.args[i]))
        q.params.append(p.params[i])
        q.shapes.append(batch if p.shapes[i] != () else ())
