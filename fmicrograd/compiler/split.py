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
operations, ``dot``, ``stack`` of inputs, ``col``, constants), and depends
on no batch sum; the only nodes reading batched values are full batch sums;
there are no guards and no batched outputs or inputs. Arrays the examples do
not reach (an optimizer's update over the parameters, run under ``vmap``:
``optim.base.leafwise``) belong to the rest, whatever their length; the
batch is then the shape a batch sum sums over. Anything else runs uncut.

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
from itertools import islice
from operator import itemgetter
from typing import Any

import numpy as np

from .autobatch import _FACTORS, _ROWWISE, NUMPY, batched_program
from .ir import Program
from .renumber import arg_tuples
from .threads import Pace, both

__all__ = ["split", "MIN_BATCH", "MIN_WORK"]

MIN_BATCH = 128  # examples: each half has at least 64
# Work (entries computed, plus the multiply-adds of products) below which a cut
# program is slower (benchmarks/halves.py): both threads take the GIL between
# their array operations, and when these are small (a 2-16-16-1 x 1000 step,
# 2M, runs in 1.8x the time cut) the hand-offs cost more than the second core
# saves; a 2-64-64-1 x 1000 step (26M) runs in 0.85x, wider ones in 0.6-0.8x.
MIN_WORK = 10_000_000
_EXAMPLEWISE = (_ROWWISE | {"dot", "stack", "col", "const"}) - {"factor"}


def split(p: Program, namespace: dict = NUMPY, min_work: int | None = None) -> Callable | None:
    """``run(I)`` computing ``p`` from its input vector ``I`` in two batch
    halves on two threads, or None when ``p`` cannot be cut (see the module
    docstring) or does too little work (``min_work``) to gain from it.
    ``namespace`` is the one ``batched_program`` takes."""
    cut = _cut(p, MIN_WORK if min_work is None else min_work)
    if cut is None:
        return None
    cuts, sources, rows, consts, batched = cut
    size = rows.shape[1] // 2
    # what each part computes: the half up to the sums, not past the sources (its rows
    # stand for the inputs a source stacks); the rest from the sums on
    in_half, in_post = _needed(p, cuts, sources), _needed(p, p.outputs, cuts)
    used = np.flatnonzero((in_half | in_post)[:p.n_inputs])
    # the inputs both read beside the examples, up to the last (the parameters, which fm's
    # input vector puts before the arrays); one at least: the half's input is then two
    # arrays, ``I0, I1 = I``, as ``run`` passes
    lead = max(int(used[-1]) + 1 if len(used) else 0, min(p.n_inputs, 1))
    half: Any = batched_program(_half(p, cuts, sources, size, lead, in_half, batched),
                                dict(namespace, _out=_same), any_order=True)  # the sums as one
    # vector, in the order the half computes them
    post: Any = batched_program(_post(p, [cuts[k] for k in half.__fm_order__], lead, in_post),
                                namespace)
    # where each half's per-example inputs come from: [half, input row, example]
    idx = np.stack([rows[:, :size], rows[:, size:]])
    extra = np.asarray(consts, dtype=float)
    pace = Pace()  # (whether the helper thread pays for this program: ``threads.Pace``)

    def run(inputs: Any) -> Any:
        base = inputs if not len(extra) else np.concatenate((inputs, extra))
        data = base[idx]
        own = inputs[:lead]  # (the inputs the halves and the rest read: not the data)
        a, b = both(half, (own, data[0]), (own, data[1]), pace)
        with np.errstate(all="ignore"):  # as inside the programs: inf + -inf is nan, silently
            np.add(a, b, out=a)
        return post(np.concatenate((own, a)))

    run.__fm_source__ = "\n".join((  # type: ignore[attr-defined]
        f"# two halves of {size} examples at once (one on a helper thread), then the rest",
        half.__fm_source__.replace("def run(", "def half(", 1),
        post.__fm_source__.replace("def run(", "def post(", 1),
        "def run(I):", "    data = I[idx]  # each half's examples: data[0], data[1]",
        *(() if lead == p.width else (f"    I = I[:{lead}]  # (what the halves read beside "
                                          "their examples)",)),
        "    a, b = _both(half, (I, data[0]), (I, data[1]), pace)",
        "    return post(_cat((I, a + b)))  # the batch sums of the whole batch"))
    return run


def _same(a: Any) -> Any:
    return a


def _cut(p: Program, min_work: int) -> tuple | None:
    """``(cuts, sources, rows, consts)``: the batch sums; the per-example
    inputs of the half program (each ``stack`` of inputs, ``col`` and batched
    constant); and for each, its ``B`` entries as positions in ``I`` followed
    by ``consts``. None when ``p`` is not cut. The unbatched nodes (most of a
    training step's: the update) are judged with array operations."""
    shapes, ops, args, params = p.shapes, p.ops, p.args, p.params
    n = p.n_inputs  # (a jit input array's entries: a million at a large batch)
    if p.guards or any(shapes[o] != () for o in p.outputs) or shapes[:n].count(()) != n:
        return None
    batch = next((s for s in islice(shapes, n, None) if s != ()), None)
    batched = np.zeros(p.size, dtype=bool)  # (the inputs are scalars, checked above)
    batched[n:] = np.fromiter(map(bool, islice(shapes, n, None)), dtype=bool, count=p.size - n)
    counts, flat = p.edges()
    owner = np.repeat(np.arange(p.size), counts)
    mixed = any(shapes[i] != batch for i in np.flatnonzero(batched).tolist())
    if mixed:  # arrays of another length too (an optimizer's update over the leaves, run
        # under ``vmap``: ``optim.base.leafwise``): the batch is what a batch sum sums
        first = min((ops.index(op) for op in ("bsum", "bdot") if op in ops), default=None)
        batch = shapes[args[first][0]] if first is not None else None
    if batch is None or len(batch) != 1 or batch[0] % 2 or batch[0] < MIN_BATCH:
        return None
    size = batch[0]
    if mixed:  # the nodes of one value per example: what the examples reach
        reached = _per_example(p, batch, batched, owner, flat)
        if reached is None:
            return None
        batched = reached
    reads = np.zeros(p.size, dtype=bool)
    reads[owner[batched[flat]]] = True
    cut = np.flatnonzero(reads & ~batched)
    cuts = cut.tolist()
    if not cuts or not {ops[i] for i in cuts} <= {"bsum", "bdot"} or \
            {params[i] for i in cuts} != {(0,)}:
        return None
    if _reach(p, cuts)[cuts].any():  # a batch sum feeds a per-example value
        return None
    work = int(counts[cut].sum()) * size
    sources = []
    columns = set()  # the data columns: ``col`` nodes and stacks of inputs only
    used = np.zeros(p.size, dtype=bool)
    used[flat] = True
    for i in np.flatnonzero(batched).tolist():
        op, a = ops[i], args[i]
        if op == "const" and not used[i]:
            continue  # left over from folding (``optimize`` keeps constants): not an input
        if op not in _EXAMPLEWISE and not (op == "factor" and params[i] in _FACTORS):
            return None
        if op == "col" or op == "stack" and _inputs_only(a, p.n_inputs):
            columns.add(i)
        elif op == "stack" and any(shapes[k] != () or not (
                ops[k] == "in" or (ops[k] == "const" and type(params[k]) is float)) for k in a):
            return None
        if op == "const" and np.asarray(params[i]).dtype != np.float64:
            return None  # the halves read their examples from one float64 array
        if op in ("stack", "col", "const"):
            sources.append(i)
        else:
            work += len(a) * size
    if work < min_work:
        return None
    # the halves' example rows in the order of the inputs they hold (a data matrix's
    # columns in order): a layer then reads them as a slice, not through an index
    sources.sort(key=lambda i: _first_input(p, i))
    consts: list = []
    rows = []
    for i in sources:
        if ops[i] == "col":  # (a data column without a node per entry)
            rows.append(params[i].positions())
        elif i in columns:  # (a data column)
            rows.append(np.fromiter(itemgetter(*args[i])(params) if len(args[i]) > 1 else
                                    (params[args[i][0]],), dtype=np.intp, count=size))
        elif ops[i] == "stack":
            row = []
            for k in args[i]:
                if ops[k] == "in":
                    row.append(params[k])
                else:
                    row.append(p.width + len(consts))
                    consts.append(float(params[k]))
            rows.append(np.array(row, dtype=np.intp))
        else:
            start = p.width + len(consts)
            consts.extend(np.asarray(params[i], dtype=float).tolist())
            rows.append(np.arange(start, start + size))
    return (cuts, sources, np.array(rows, dtype=np.intp).reshape(len(rows), size), consts,
            batched)


def _per_example(p: Program, batch: tuple, wide: np.ndarray, owner: np.ndarray,
                 flat: np.ndarray) -> np.ndarray | None:
    """Which nodes hold one value per example: those of shape ``batch``
    that read the examples (each ``stack``, ``col`` or constant of that
    shape), and what they reach through nodes of that shape; ``wide`` marks
    every node that is not a scalar. None when one of them reads an array
    that is not one (the half would take it for one of its examples'), or
    when one of that shape is not reached from the examples."""
    shapes, ops = p.shapes, p.ops
    ids = np.flatnonzero(wide)
    same = np.zeros(p.size, dtype=bool)
    same[ids] = np.fromiter((shapes[i] == batch for i in ids.tolist()), dtype=bool,
                            count=len(ids))
    reached = np.zeros(p.size, dtype=bool)
    for i in np.flatnonzero(same).tolist():
        if ops[i] in ("stack", "col", "const"):
            reached[i] = True
    # the edges between arrays, grouped by the node they read (a few thousand: a
    # training step's scalars, the many, are left out)
    between = np.flatnonzero(wide[flat] & wide[owner])
    order = between[np.argsort(flat[between], kind="stable")]
    readers, read = owner[order], flat[order]
    starts = np.searchsorted(read, np.arange(p.size))
    ends = np.searchsorted(read, np.arange(p.size), side="right")
    frontier = np.flatnonzero(reached)
    while len(frontier):
        k = ends[frontier] - starts[frontier]
        at = np.repeat(starts[frontier] - np.cumsum(k) + k, k) + np.arange(int(k.sum()))
        users = readers[at]
        users = users[~reached[users]]
        reached[users] = True
        frontier = np.unique(users)
    if (same & ~reached).any() or (reached[owner] & wide[flat] & ~reached[flat]).any() \
            or (reached & ~same).any():
        return None
    if any(ops[i] == "col" for i in np.flatnonzero(wide & ~reached).tolist()):
        return None  # data read from past the inputs, which the rest is not given
    return reached


def _inputs_only(a: tuple, n_inputs: int) -> bool:
    """Whether the nodes ``a`` are all inputs (scalars: ``_cut`` takes no
    batched input), judged on an array: a stack of a data column has one
    per example."""
    return len(a) > 0 and int(np.fromiter(a, dtype=np.intp, count=len(a)).max()) < n_inputs


def _first_input(p: Program, i: int) -> int:
    """Where the first input that batched node ``i`` stacks sits in the input
    vector (after every input for a node that stacks none)."""
    if p.ops[i] == "col":
        return p.params[i].start
    for k in p.args[i] if p.ops[i] == "stack" else ():
        if p.ops[k] == "in":
            return p.params[k]
    return p.width


def _reach(p: Program, roots: list, stop: np.ndarray | None = None) -> np.ndarray:
    """Which nodes the arguments of ``roots`` reach, through arguments, not
    past a node in ``stop`` (a mask): one array step per level of the graph."""
    counts, flat = p.edges()
    starts = np.cumsum(counts) - counts
    seen = np.zeros(p.size, dtype=bool)
    frontier = np.asarray(roots, dtype=np.intp)
    if stop is not None:
        frontier = frontier[~stop[frontier]]
    fresh = np.zeros(p.size, dtype=bool)
    while len(frontier):
        c = counts[frontier]
        # the argument positions of the frontier's nodes, one range per node
        at = np.repeat(starts[frontier] - np.cumsum(c) + c, c) + np.arange(int(c.sum()))
        fresh[:] = False
        fresh[flat[at]] = True
        fresh &= ~seen
        seen |= fresh
        if stop is not None:
            fresh &= ~stop
        frontier = np.flatnonzero(fresh)
    return seen


def _needed(p: Program, roots: list, stop: list) -> np.ndarray:
    """``roots`` and the nodes their arguments reach, not past a node of
    ``stop`` (a mask)."""
    mask = np.zeros(p.size, dtype=bool)
    mask[stop] = True
    need = _reach(p, roots, mask)
    need[roots] = True
    return need


def _new(p: Program, extra: list, shape: tuple, lead: int) -> tuple[Program, np.ndarray]:
    """A program with ``p``'s first ``lead`` inputs, each at its position,
    then one input of ``shape`` standing for each node of ``extra``; and the
    numbering of ``p``'s nodes in it so far (-1: not there)."""
    q = Program()
    q.ops = ["in"] * (lead + len(extra))
    q.args = [()] * len(q.ops)
    q.params = list(range(len(q.ops)))
    q.shapes = [()] * lead + [shape] * len(extra)
    q.n_inputs = len(q.ops)
    number = np.full(p.size, -1, dtype=np.intp)
    number[:lead] = np.arange(lead)
    number[np.asarray(extra, dtype=np.intp)] = np.arange(lead, q.n_inputs)
    return q, number


def _half(p: Program, cuts: list, sources: list, half: int, lead: int,
          need: np.ndarray, batched: np.ndarray) -> Program:
    """The per-example part on ``half`` examples (the nodes ``need``):
    ``p``'s first ``lead`` inputs, then one input of shape ``(half,)`` per
    node of ``sources``; the batch sums are its outputs."""
    q, number = _new(p, sources, (half,), lead)
    _copy(p, q, need, number, (half,), batched)
    q.outputs = number[cuts].tolist()
    return q


def _post(p: Program, cuts: list, lead: int, need: np.ndarray) -> Program:
    """What comes after the batch sums (the nodes ``need``): ``p``'s first
    ``lead`` inputs, then the sums as inputs, then the nodes ``p``'s outputs
    need."""
    q, number = _new(p, cuts, (), lead)
    _copy(p, q, need, number, (), None)
    q.outputs = number[p.outputs].tolist()
    return q


def _copy(p: Program, q: Program, need: np.ndarray, number: np.ndarray, batch: tuple,
          batched: np.ndarray | None) -> None:
    """Append ``p``'s needed nodes not numbered yet to ``q`` in order, those
    ``batched`` marks (a mask) with shape ``batch``, the others with their
    own; ``number`` is updated."""
    take = np.flatnonzero(need & (number < 0))
    number[take] = len(q.ops) + np.arange(len(take))
    counts, flat = p.edges()
    c = counts[take]
    at = np.repeat((np.cumsum(counts) - counts)[take] - np.cumsum(c) + c, c) + \
        np.arange(int(c.sum()))
    new = number[flat[at]]
    ids = take.tolist()
    counts0, flat0 = q.edges()  # of the nodes so far (inputs: cheap)
    ops, params, shapes = p.ops, p.params, p.shapes
    q.ops += [ops[i] for i in ids]
    q.params += [params[i] for i in ids]
    marks = batched[take].tolist() if batched is not None else [False] * len(ids)
    q.shapes += [batch if m else shapes[i] for i, m in zip(ids, marks)]
    q.args += arg_tuples(new, np.cumsum(c) - c, c)
    # its edges are known already: not counted again from the tuples (``Program.edges``)
    q._edges = (np.concatenate((counts0, c)), np.concatenate((flat0, new)))
