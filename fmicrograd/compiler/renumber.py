"""Programs put in a new order with their arguments renumbered, for
``rewrite``'s fast path (``as_is``): a few nodes moved, changed or added, the
rest copied a slice at a time, never node by node where it can be helped.

>>> from fmicrograd.core.expr import variable, next_level
>>> from fmicrograd.compiler.ir import lower
>>> lv = next_level()
>>> x, y = variable(2.0, lv), variable(3.0, lv)
>>> p = lower([x * y, x + y], [x, y], [], lv)  # (the last output is numbered first)
>>> counts, flat = p.edges()
>>> q, number = renumbered(p, [(0, 2), (3, 4), (2, 3)], Edges(counts, counts.cumsum(), flat))
>>> q.ops, q.args, number.tolist()
(['in', 'in', '*', '+'], [(), (), (0, 1), (0, 1)], [0, 1, 3, 2])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:  # ``ir`` imports ``rewrite``, which imports this module
    from .ir import Program

__all__ = ["Changed", "Edges", "arg_tuples", "duplicated", "renumbered"]


class Changed:
    """``as_is``'s program: ``p`` with a few nodes changed and a few appended
    (numbered from ``p.size`` on), then put in order by ``renumbered``."""

    def __init__(self, p: Program) -> None:
        """Nothing changed yet.

        >>> from fmicrograd.compiler.ir import Program
        >>> c = Changed(Program())
        >>> c.add("dot", (0, 1), ()), c.changed
        (0, {})
        """
        self.p = p
        self.changed: dict = {}  # node -> (op, args, shape)
        self.added: list = []  # (op, args, shape)

    def add(self, op: str, args: tuple, shape: tuple) -> int:
        """The number of a new node."""
        self.added.append((op, args, shape))
        return self.p.size + len(self.added) - 1

    def change(self, i: int, op: str, args: tuple, shape: tuple) -> None:
        """Node ``i`` becomes ``op(args)``."""
        self.changed[i] = (op, args, shape)

    def renumbered(self, before: dict, skip: list, r: Edges) -> tuple[Program, np.ndarray]:
        """The program in order, each node of ``skip`` emitted at the sum that
        lists it in ``before`` (with the new nodes), and the map from numbers
        to new numbers (see ``renumbered``)."""
        p, big = self.p, self.p
        edges = r
        if self.changed or self.added:
            big = p.blank()
            big.ops, big.args, big.params, big.shapes = (list(p.ops), list(p.args),
                                                         list(p.params), list(p.shapes))
            big.outputs, big.guards = p.outputs, p.guards
            for i, (op, a, shape) in self.changed.items():
                big.ops[i], big.args[i], big.params[i], big.shapes[i] = op, a, None, shape
            for op, a, shape in self.added:
                big.ops.append(op)
                big.args.append(a)
                big.params.append(None)
                big.shapes.append(shape)
            # the edges: p's, with the changed nodes' and the new ones' spliced in
            counts, pieces, at = r.counts.copy(), [], 0
            for i in sorted(self.changed):
                pieces += [r.edges[at:r.ends[i] - counts[i]], np.asarray(big.args[i], np.intp)]
                at = r.ends[i]
                counts[i] = len(big.args[i])
            pieces.append(r.edges[at:])
            pieces += [np.asarray(a, dtype=np.intp) for _, a, _ in self.added]
            counts = np.concatenate((counts, np.asarray([len(a) for _, a, _ in self.added],
                                                        dtype=np.intp)))
            big._edges = (counts, np.concatenate(pieces))
            edges = Edges(counts, np.cumsum(counts), big._edges[1])
        runs, done = [], 0  # the new order, as runs of numbers [a, b)
        gone = set(skip)
        for i in sorted(gone | before.keys()):
            runs.append((done, i))
            runs += [(b, b + 1) for b in before.get(i, ())]
            if i not in gone:
                runs.append((i, i + 1))
            done = i + 1
        runs.append((done, p.size))
        return renumbered(big, [(a, b) for a, b in runs if a < b], edges)


def duplicated(q: Program, suspects: list) -> bool:
    """Whether a node of ``suspects`` has the op and arguments of another
    node: a renamed ``+`` or a node ``as_is`` made (the others are all
    different: ``lower`` merged them, and renumbering keeps them apart).

    >>> from fmicrograd.compiler.ir import Program
    >>> q = Program()
    >>> q.ops, q.args = ["in", "in", "sum", "sum"], [(), (), (0, 1), (0, 1)]
    >>> duplicated(q, [3]), duplicated(q, [])
    (True, False)
    """
    if not suspects:
        return False
    counts = q.edges()[0]
    for op, k in {(q.ops[i], len(q.args[i])) for i in suspects}:
        same = [q.args[i] for i in np.flatnonzero(counts == k).tolist() if q.ops[i] == op]
        if len(set(same)) < len(same):
            return True
    return False


class Edges(NamedTuple):
    """A program's edge arrays: node ``i``'s arguments are
    ``edges[ends[i] - counts[i]:ends[i]]``."""

    counts: np.ndarray
    ends: np.ndarray  # node i's arguments: edges[ends[i] - counts[i]:ends[i]]
    edges: np.ndarray


def renumbered(p: Program, runs: list, r: Edges) -> tuple[Program, np.ndarray]:
    """A copy of ``p`` with its nodes in the order of ``runs`` (ranges ``[a,
    b)`` of old numbers; the others dropped), arguments renumbered. The lists
    are joined from slices; from the first node that moves on, the arguments
    are mapped in one array operation and rebuilt as tuples a column at a
    time, by number of arguments. Returns the program and the map old -> new
    number (an array; -1: dropped). See the module's example."""
    q = p.blank()
    for name in ("ops", "params", "shapes"):
        old, kept = getattr(p, name), []
        for a, b in runs:
            kept += old[a:b]
        setattr(q, name, kept)
    order = np.concatenate([np.arange(a, b) for a, b in runs]) if runs else \
        np.zeros(0, dtype=np.intp)
    number = np.full(p.size, -1, dtype=np.intp)
    number[order] = np.arange(len(order))
    first = 0  # the nodes before it keep their numbers and arguments
    for a, b in runs:
        if a != first:
            break
        first = b
    counts, ends = r.counts, r.ends
    mapped = number[r.edges]
    tail = order[first:]
    cnt = counts[tail]
    starts = ends[tail] - cnt
    q.args = p.args[:first] + arg_tuples(mapped, starts, cnt)
    # the new program's edges, taken along: the runs' slices of the mapped ones
    q._edges = (counts[order], np.concatenate(
        [mapped[ends[a] - counts[a]:ends[b - 1]] for a, b in runs]) if runs else mapped[:0])
    q.outputs = number[p.outputs].tolist() if p.outputs else []
    q.guards = [(op, int(number[a]), int(number[b]), e) for op, a, b, e in p.guards]
    return q, number


def arg_tuples(values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> list:
    """``[tuple(values[s:s + k]) for s, k in zip(starts, counts)]``, made a
    column at a time for each number of arguments (the many binary nodes of a
    program in one ``zip``), a slice each only where few nodes have many.

    >>> arg_tuples(np.array([3, 4, 5]), np.array([0, 2, 3]), np.array([2, 1, 0]))
    [(3, 4), (5,), ()]
    """
    out = np.empty(len(counts), dtype=object)
    for k in np.flatnonzero(np.bincount(counts)).tolist():  # (``np.unique`` imports numpy.ma)
        rows = np.flatnonzero(counts == k)
        at = starts[rows]
        if k > len(rows):  # few nodes with many arguments: one slice each
            each: Any = [tuple(values[a:a + k].tolist()) for a in at.tolist()]
        else:
            each = zip(*(values[at + c].tolist() for c in range(k))) if k else \
                ((),) * len(rows)
        out[rows] = np.fromiter(each, dtype=object, count=len(rows))
    return out.tolist()
