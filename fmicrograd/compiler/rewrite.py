"""``optimize``: a lowered program rewritten for array execution.

``+`` chains become n-ary sums, a sum of single-use products a ``dot``, and a
batch sum of a product a ``bdot`` (a contraction over batch axes), so the
batched backend can find matrix products; nodes nothing needs are dropped
(constants stay where they are: they cost nothing, and dropping one would
renumber every node after it).

>>> from fmicrograd.core.expr import variable, next_level
>>> from fmicrograd.compiler.ir import lower
>>> lv = next_level()
>>> x, y = variable(2.0, lv), variable(3.0, lv)
>>> q = optimize(lower([x * y + x * 2.0 + 1.0], [x, y], [], lv))
>>> [(q.ops[i], q.args[i]) for i in range(2, q.size)]
[('const', ()), ('const', ()), ('dot', (0, 0, 1, 3)), ('sum', (4, 2))]
"""

from __future__ import annotations

from itertools import compress
from typing import Any

import numpy as np

from ..core.expr import next_level, variable  # noqa: F401 -- doctests use them
from .ir import Program, _const_key, lower  # noqa: F401 -- doctests use lower

__all__ = ["optimize"]


def optimize(p: Program) -> Program:
    """``p`` rewritten for batched execution (see the module docstring), with
    nodes nothing needs removed.

    >>> lv = next_level()
    >>> x = variable(3.0, lv)
    >>> optimize(lower([(x * 2.0 + x * x) + 1.0], [x], [], lv)).ops
    ['in', 'const', 'const', 'dot', 'sum']
    """
    rewrite = _Rewrite(p)
    same = rewrite.as_is()
    return same if same is not None else _prune(rewrite.run())


class _Rewrite:
    """One pass in topological order. A single-use ``+`` under another sum is
    never emitted (the outer sum takes its terms); a single-use product under
    a sum or a batch sum is emitted only if that consumer does not absorb it.

    Identical new nodes are merged, as ``Program.add`` does, but cheaper: the
    old nodes are all different (``lower`` merged them), so while no two old
    nodes have become one new node (``merged`` still False), a node copied
    with its arguments renumbered cannot equal an earlier one, and only the
    kinds this pass also makes (``_MADE``) are looked up. The first merge
    fills in the lookup table and from then on every node is looked up."""

    def __init__(self, p: Program) -> None:
        self.p = p
        ops, size = p.ops, p.size
        self.kinds = {op: k for k, op in enumerate(set(ops))}  # each op as a small number
        self.codes = np.fromiter(map(self.kinds.__getitem__, ops), dtype=np.intp, count=size)
        self.counts, self.edges = counts, edges = p.edges()
        self.ends = np.cumsum(counts)  # node i's arguments: edges[ends[i] - counts[i]:ends[i]]
        uses = _uses(p, edges)
        self.used = uses  # arrays here, lists for ``run``
        # a single-use argument of a sum (a product, or a + or sum not under a batch sum)
        sums = np.flatnonzero(self.has(_SUMS))
        k = counts[sums]
        at = np.arange(int(k.sum())) + np.repeat(self.ends[sums] - k - (np.cumsum(k) - k), k)
        users = np.repeat(sums, k)  # the sum each of those edges leads to
        under = uses[edges[at]] == 1
        args, users = edges[at[under]], users[under]
        deferred = np.zeros(size, dtype=bool)
        deferred[args] = self.has(_TIMES)[args] | (self.has(_ADDS)[args] &
                                                   ~self.has(_BSUM)[users])
        self.waits = deferred
        self.q = Program()
        self.q.n_inputs = p.n_inputs
        self.new: list = []
        self.uses: list = []
        self.deferred: list = []
        self.merged = False

    def as_is(self) -> Program | None:
        """``run``'s result without the pass, or None. When every deferred node
        is a product alone in its sum (so not absorbed, and emitted just before
        that sum), every sum has two terms or more and no ``+`` is a copy of
        another sum, the pass would only rename ``+`` to ``sum`` and move those
        products; and when every node but the constants is used, ``_prune``
        has nothing to drop (a node with a use has a user; the last node of a
        dead chain has none). That is the usual case of a traced training
        step: its sums come from the sweep, gathered."""
        p, counts = self.p, self.counts
        ops, args, size = p.ops, p.args, p.size
        before: dict = {}  # a sum -> the deferred product it is emitted after
        deferred = np.flatnonzero(self.waits)
        if len(deferred) > _FEW_MOVES:
            return None
        for m in deferred.tolist():
            (at,) = np.flatnonzero(self.edges == m)  # its one use
            user = int(np.searchsorted(self.ends, at, side="right"))
            if ops[m] != "*" or ops[user] not in _ADDS or user in before:
                return None  # flattened, or absorbed (a batch sum's; two in one sum)
            before[user] = m
        sums = self.has(_ADDS)
        if (counts[sums] < 2).any():
            return None  # a sum of one term is that term
        plus = np.flatnonzero(self.has(_PLUS)).tolist()
        pairs = [args[i] for i in np.flatnonzero(sums & (counts == 2)).tolist()]
        if plus and len(set(pairs)) < len(pairs):
            return None  # a + and a sum over the same terms: one node after the pass
        for i in np.flatnonzero(self.used == 0).tolist():
            if ops[i] != "const" and ops[i] != "in":
                return None  # nothing uses it: ``_prune``'s case
        skip = set(before.values())
        runs = []  # the new order, as runs of old numbers [a, b)
        done = 0
        for i in sorted(skip | before.keys()):
            runs.append((done, i))
            if i in before:
                runs += [(before[i], before[i] + 1), (i, i + 1)]
            done = i + 1
        runs.append((done, size))
        q, number = _renumbered(p, [(a, b) for a, b in runs if a < b], self)
        for i in plus:
            q.ops[int(number[i])] = "sum"
        return q

    def has(self, kinds: frozenset) -> np.ndarray:
        """Which nodes have an op in ``kinds`` (a boolean array)."""
        table = np.zeros(len(self.kinds), dtype=bool)
        table[[self.kinds[op] for op in kinds if op in self.kinds]] = True
        return table[self.codes]

    def add(self, op: str, args: tuple, param: Any, shape: tuple) -> int:
        """``self.q.add``, noting a merge."""
        size = self.q.size
        i = self.q.add(op, args, param, shape)
        if i < size:
            self.merge()
        return i

    def merge(self) -> None:
        """Two old nodes are one new node: look every node up from now on."""
        if not self.merged:
            self.merged = True
            q = self.q
            for k, (op, a, param) in enumerate(zip(q.ops, q.args, q.params)):
                q._memo.setdefault(("const", _const_key(param)) if op == "const" else
                                   (op, a, param), k)

    def get(self, i: int) -> int:
        """The new number of old node ``i``, emitting a deferred product now."""
        n = self.new[i]
        if n is None:
            p = self.p
            n = self.new[i] = self.add(p.ops[i], tuple(map(self.get, p.args[i])),
                                       p.params[i], p.shapes[i])
        return n

    def run(self) -> Program:
        self.uses, self.deferred = self.used.tolist(), self.waits.tolist()
        self.new = [None] * self.p.size
        p, q, new, deferred = self.p, self.q, self.new, self.deferred
        ops, args, params, shapes = p.ops, p.args, p.params, p.shapes
        q_ops, q_args, q_params, q_shapes, memo = q.ops, q.args, q.params, q.shapes, q._memo
        start = p.n_inputs
        if ops[:start] == ["in"] * start:  # the inputs first, as they are (never merged)
            q_ops += ops[:start]
            q_args += args[:start]
            q_params += params[:start]
            q_shapes += shapes[:start]
            new[:start] = range(start)
        else:
            start = 0
        for i, op in enumerate(ops[start:], start):
            if deferred[i]:
                continue
            a = args[i]
            param = params[i]
            if op == "+" or op == "sum":
                t: tuple = tuple([new[k] for k in a])
                if None in t or len(t) < 2:  # a term to absorb (a deferred node has no number)
                    new[i] = self._sum(i)
                    continue
                op, param = "sum", None  # nothing to absorb: the sum as it is
                key: tuple = (op, t, param)
            elif op == "bsum" and deferred[a[0]]:
                x, y = map(self.get, args[a[0]])
                new[i] = self.add("bdot", (x, y), param, shapes[i])
                continue
            elif op == "const":  # the inlined ``q.add`` below, with a constant's key
                key = ("const", _const_key(param))
                t = ()
            else:
                t = tuple([new[k] for k in a])
                if None in t:  # a deferred product used here after all
                    t = tuple(map(self.get, a))
                if not self.merged and op not in _MADE:  # a new node (see the class)
                    new[i] = len(q_ops)
                    q_ops.append(op)
                    q_args.append(t)
                    q_params.append(param)
                    q_shapes.append(shapes[i])
                    continue
                key = (op, t, param)
            j = memo.get(key)
            if j is None:
                j = memo[key] = len(q_ops)
                q_ops.append(op)
                q_args.append(t)
                q_params.append(param)
                q_shapes.append(shapes[i])
            else:
                self.merge()
            new[i] = j
        q.outputs = [self.get(o) for o in p.outputs]
        q.guards = [(op, self.get(a), self.get(b), e) for op, a, b, e in p.guards]
        q._memo = {}
        return q

    def _sum(self, i: int) -> int:
        """An n-ary sum over the leaves of the single-use ``+`` tree at ``i``,
        with its single-use products gathered into one ``dot``."""
        p, uses, get, new = self.p, self.uses, self.get, self.new
        ops, args, shapes = p.ops, p.args, p.shapes
        terms: list = []
        stack = list(args[i])
        stack.reverse()
        while stack:
            a = stack.pop()
            op = ops[a]
            if (op == "+" or op == "sum") and uses[a] == 1:
                stack.extend(reversed(args[a]))
            else:
                terms.append(a)
        prods = [t for t in terms if ops[t] == "*" and uses[t] == 1]
        out: list = []
        if len(prods) >= 2 and len({(shapes[args[t][0]], shapes[args[t][1]])
                                    for t in prods}) == 1:
            xs = tuple([get(args[t][0]) for t in prods])
            ys = tuple([get(args[t][1]) for t in prods])
            out.append(self.add("dot", xs + ys, None, _broadcast(p, prods)))
            absorbed = set(prods)
            terms = [t for t in terms if t not in absorbed]
        done = [new[t] for t in terms]
        out += [get(t) for t in terms] if None in done else done
        if len(out) == 1:
            if terms:  # the one term is itself the sum
                self.merge()
            return out[0]
        return self.add("sum", tuple(out), None, shapes[i])


_SUMS = frozenset(("+", "sum", "bsum"))  # the consumers that may absorb a single-use node
_ADDS = frozenset(("+", "sum"))
_PLUS, _TIMES, _BSUM = frozenset(("+",)), frozenset(("*",)), frozenset(("bsum",))
_FEW_MOVES = 64  # more deferred products than this: the pass itself
_MADE = frozenset(("sum", "dot", "bdot"))  # the kinds of node ``_Rewrite`` makes


def _broadcast(p: Program, nodes: list) -> tuple:
    shapes = p.shapes
    first = shapes[nodes[0]]
    if all(shapes[n] == first for n in nodes):  # the usual case, without numpy
        return first
    return tuple(np.broadcast_shapes(*[shapes[n] for n in nodes]))


def _uses(p: Program, edges: np.ndarray) -> np.ndarray:
    uses = np.bincount(edges, minlength=p.size)
    extra = p.outputs + [x for _, a, b, _ in p.guards for x in (a, b)]
    np.add.at(uses, np.asarray(extra, dtype=np.intp), 2)  # needed as themselves
    return uses


def _renumbered(p: Program, runs: list, r: _Rewrite) -> tuple[Program, np.ndarray]:
    """A copy of ``p`` with its nodes in the order of ``runs`` (ranges ``[a,
    b)`` of old numbers; the others dropped), arguments renumbered. The lists
    are joined from slices; from the first node that moves on, the arguments
    are mapped in one array operation and rebuilt as tuples a column at a
    time, by number of arguments. Returns the program and the map old -> new
    number (an array; -1: dropped)."""
    q = Program()
    q.n_inputs = p.n_inputs
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
    built = np.empty(len(tail), dtype=object)
    for k in np.flatnonzero(np.bincount(cnt)).tolist():  # (``np.unique`` imports numpy.ma)
        rows = np.flatnonzero(cnt == k)
        if k > len(rows):  # few nodes with many arguments: one slice each
            each = [tuple(mapped[a:a + k].tolist()) for a in starts[rows].tolist()]
            built[rows] = np.fromiter(each, dtype=object, count=len(rows))
            continue
        columns = [mapped[starts[rows] + c].tolist() for c in range(k)]
        built[rows] = np.fromiter(zip(*columns) if k else ((),) * len(rows), dtype=object,
                                  count=len(rows))
    q.args = p.args[:first] + built.tolist()
    # the new program's edges, taken along: the runs' slices of the mapped ones
    q._edges = (counts[order], np.concatenate(
        [mapped[ends[a] - counts[a]:ends[b - 1]] for a, b in runs]) if runs else mapped[:0])
    q.outputs = number[p.outputs].tolist() if p.outputs else []
    q.guards = [(op, int(number[a]), int(number[b]), e) for op, a, b, e in p.guards]
    return q, number


def _prune(p: Program) -> Program:
    """``p`` without nodes that no output or guard needs (inputs and
    constants are kept)."""
    live = [op == "const" for op in p.ops]  # constants cost nothing: kept in place
    for i in range(p.n_inputs):
        live[i] = True
    for i in p.outputs:
        live[i] = True
    for _, a, b, _ in p.guards:
        live[a] = live[b] = True
    args = p.args
    for i in range(p.size - 1, -1, -1):  # consumers come after what they use
        if live[i]:
            for a in args[i]:
                live[a] = True
    if all(live):
        return p
    renum: list = [0] * p.size
    q = Program()
    q.n_inputs = p.n_inputs
    for i in compress(range(p.size), live):
        renum[i] = len(q.ops)
        q.ops.append(p.ops[i])
        q.args.append(tuple([renum[a] for a in args[i]]))
        q.params.append(p.params[i])
        q.shapes.append(p.shapes[i])
    q.outputs = [renum[o] for o in p.outputs]
    q.guards = [(op, renum[a], renum[b], e) for op, a, b, e in p.guards]
    return q
