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
from .renumber import Changed, Edges, duplicated

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
        n = p.leading_inputs()  # (their code at once: a million under a large batch)
        self.codes = np.full(size, self.kinds.get("in", 0), dtype=np.intp)
        self.codes[n:] = np.fromiter(map(self.kinds.__getitem__, ops[n:] if n else ops),
                                     dtype=np.intp, count=size - n)
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
        self.q = p.blank()
        self.new: list = []
        self.uses: list = []
        self.deferred: list = []
        self.merged = False

    def as_is(self) -> Program | None:
        """``run``'s result without the pass, or None. When every deferred node
        is a product in a sum (so not flattened, nor absorbed by a batch sum),
        every sum has two terms or more and every node but the constants is
        used, the pass only renames ``+`` to ``sum`` and, at each sum with
        deferred products, emits them just before it, or, when there are two
        or more with the same shapes, one ``dot`` of them instead (and the sum
        over that ``dot`` and its other terms). ``_prune`` then has nothing to
        drop (a node with a use has a user; the last node of a dead chain has
        none). That is the usual case of a traced training step: its sums come
        from the sweep, gathered. None too when a node made here equals
        another (the pass would merge them)."""
        p, counts = self.p, self.counts
        ops, args = p.ops, p.args
        deferred = np.flatnonzero(self.waits)
        if len(deferred) > _FEW_MOVES:
            return None
        products: dict = {}  # a sum -> its deferred products
        at = np.flatnonzero(self.waits[self.edges])  # each deferred node's one use
        users = np.searchsorted(self.ends, at, side="right")
        for m, user in zip(self.edges[at].tolist(), users.tolist()):
            if ops[m] != "*" or ops[user] not in _ADDS:
                return None  # flattened, or absorbed by a batch sum
            products.setdefault(user, set()).add(m)
        if (counts[self.has(_ADDS)] < 2).any():
            return None  # a sum of one term is that term
        for i in np.flatnonzero(self.used == 0).tolist():
            if ops[i] != "const" and ops[i] != "in":
                return None  # nothing uses it: ``_prune``'s case
        big = Changed(p)
        before: dict = {}  # a sum -> what is emitted just before it (numbers in ``big``)
        for u, ms in products.items():
            prods = [t for t in args[u] if t in ms]  # in the order of the terms
            if len(prods) < 2 or len({(p.shapes[args[t][0]], p.shapes[args[t][1]])
                                      for t in prods}) > 1:
                before[u] = prods  # each emitted as it is
                continue
            dot = (tuple(args[t][0] for t in prods) + tuple(args[t][1] for t in prods))
            rest = tuple(t for t in args[u] if t not in ms)
            if rest:
                before[u] = [big.add("dot", dot, _broadcast(p, prods))]
                big.change(u, "sum", (before[u][0], *rest), p.shapes[u])
            else:  # the sum is that dot
                big.change(u, "dot", dot, _broadcast(p, prods))
        q, number = big.renumbered(before, deferred.tolist(),
                                    Edges(self.counts, self.ends, self.edges))
        plus = [i for i in np.flatnonzero(self.has(_PLUS)).tolist() if i not in big.changed]
        for i in plus:  # (a changed node has its op already)
            q.ops[int(number[i])] = "sum"
        suspects = number[plus + list(big.changed)].tolist() + \
            number[p.size:p.size + len(big.added)].tolist()
        return None if duplicated(q, suspects) else q

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
        start = p.leading_inputs()  # the inputs first, as they are (never merged)
        q_ops += ops[:start]
        q_args += args[:start]
        q_params += params[:start]
        q_shapes += shapes[:start]
        new[:start] = range(start)
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
_FEW_MOVES = 100_000  # more deferred nodes than this: the pass itself (a bound on as_is's loops)
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
    q, renum = p.taking(compress(range(p.size), live))
    q.outputs = [renum[o] for o in p.outputs]
    q.guards = [(op, renum[a], renum[b], e) for op, a, b, e in p.guards]
    return q
