"""Source text that reads node values from the arrays where they live.

In batched code a node's value is a row of an array: of the input vector
``I`` or of a group's array ``g{j}``. Reading the values of a list of nodes,
stacked on a new first axis, costs nothing when the rows are a whole array,
little when they are a range with a step (a slice is a view; a descending
range is the reversed view ``_rev(...)``), and a copy otherwise (an index
array, a concatenation). ``Rows`` writes the cheapest text, estimates what a
read costs (so the emitter can order a group's rows to make its reads cheap),
and reads matrix operands as strided views only where BLAS sees the layout a
copy would have (positive steps, unit inner stride): a product then gives the
same bits either way.

>>> import numpy as np
>>> from fmicrograd.compiler.codegen import Source
>>> from fmicrograd.compiler.ir import Program
>>> p = Program()
>>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(12)])
>>> rows = Rows(p, Source())
>>> rows.gather([0, 1, 2]), rows.gather([9, 6, 3]), rows.gather(list(range(12)))
('I[0:3]', '_rev(I[3:10:3])', 'I')
>>> rows.matrix([1, 2, 5, 6, 9, 10], (3, 2), ())
'I[0:12].reshape((3, 4))[:, 1:3]'
"""

from __future__ import annotations

import numpy as np

from .codegen import Source
from .ir import Program

__all__ = ["Rows", "input_shapes"]

_WHOLE, _SLICE, _REV, _INDEX = range(4)
_COST = (0.0, 0.2, 0.4, 1.0)  # rough microseconds of a read of each kind
_JOIN = 1.0  # a concatenation of reads, or the permutation after it


def input_shapes(p: Program) -> list:
    """The distinct shapes of ``p``'s inputs, in order of first appearance:
    with several, the program's input is one array per shape, its inputs as
    rows in order (``I0, I1, ... = I``).

    >>> p = Program()
    >>> _ = p.add("in", (), 0, (3,)), p.add("in", (), 1, ()), p.add("in", (), 2, (3,))
    >>> p.n_inputs = 3
    >>> input_shapes(p), Rows(p, Source()).elem(2)
    ([(3,), ()], 'I0[1]')
    """
    return list(dict.fromkeys(p.shapes[i] for i in range(p.n_inputs)))


class Rows:
    """Where each node's value lives, and source text reading them.

    >>> p = Program()
    >>> nodes = [p.add("in", (), k, ()) for k in range(8)]
    >>> p.n_inputs = 4
    >>> rows = Rows(p, Source())
    >>> rows.place("g0", [7, 5])
    >>> rows.gather([5, 7, 3]), rows.elem(7)
    ('_cat((_rev(g0), I[3:4],))', 'g0[0]')
    """

    def __init__(self, p: Program, src: Source, views: bool = True) -> None:
        self.p = p
        self.src = src
        self.views = views
        self.loc: dict[int, tuple[str, int]] = {i: ("I", i) for i in range(p.n_inputs)}
        self.sizes: dict[str, int] = {"I": p.n_inputs}
        self.rank: dict[str, int] = {"I": 0}
        self.shapes: dict[str, tuple] = {}
        self.inputs = input_shapes(p)
        if len(self.inputs) > 1:  # jit under vmap: ``I`` is one array per input shape
            for c, shape in enumerate(self.inputs):
                self.place(f"I{c}", [i for i in range(p.n_inputs) if p.shapes[i] == shape])
        scalars = [o for o in p.outputs if p.ops[o] != "const" and p.shapes[o] == ()]
        self.out_pos = {o: k for k, o in enumerate(scalars)}  # read by one gather
        self.reused = 0

    def place(self, var: str, order: list) -> None:
        """Record that row ``r`` of array ``var`` holds node ``order[r]``."""
        self.sizes[var] = len(order)
        self.shapes[var] = (len(order),) + self.p.shapes[order[0]]
        self.rank[var] = len(self.rank)
        loc = self.loc
        for r, m in enumerate(order):
            loc[m] = (var, r)

    def key(self, i: int) -> tuple:
        """Sort key of node ``i``'s place: arrays in creation order, then rows."""
        if self.p.ops[i] == "const":
            return (len(self.rank), i)
        var, row = self.loc[i]
        return (self.rank[var], row)

    def elem(self, i: int) -> str:
        """Source text for one node's value."""
        if self.p.ops[i] == "const":
            v = self.p.params[i]
            return self.src.literal(v) if isinstance(v, float) else self.src.name(v, "c")
        var, row = self.loc[i]
        return f"{var}[{row}]"

    # reads -----------------------------------------------------------------------
    def _kind(self, var: str, rows: list, steps: bool) -> tuple[int, int]:
        """``(kind, step)`` of the cheapest read of ``rows`` of ``var``; only
        unit steps unless ``steps``."""
        k, a = len(rows), rows[0]
        s = rows[1] - a if k > 1 else 1
        if s == 0 or (s != 1 and not steps) or rows != list(range(a, a + k * s, s)):
            return _INDEX, 0
        if s == 1 and a == 0 and k == self.sizes[var]:
            return _WHOLE, 1
        return (_SLICE if s > 0 else _REV), s

    def _text(self, var: str, rows: list, kind: int, s: int) -> str:
        a, k = rows[0], len(rows)
        if kind == _WHOLE:
            return var
        if kind == _SLICE:
            return f"{var}[{a}:{a + (k - 1) * s + 1}{'' if s == 1 else f':{s}'}]"
        if kind == _REV:
            if s == -1 and k == self.sizes[var]:
                return f"_rev({var})"
            return f"_rev({var}[{a + (k - 1) * s}:{a + 1}{'' if s == -1 else f':{-s}'}])"
        return f"{var}[{self.src.name(np.array(rows, dtype=np.intp), 'i')}]"

    def _pieces(self, ids: list, steps: bool) -> tuple[list, list, list]:
        """The reads of ``ids``: ``(pieces, consts, order)`` with pieces
        ``(var, rows, kind, step)``, the positions of constants, and the
        position of each row of the concatenated pieces (constants last)."""
        parts: dict[str, list] = {}
        consts: list = []
        ops, loc = self.p.ops, self.loc
        for pos, i in enumerate(ids):
            if ops[i] == "const":
                consts.append(pos)
            else:
                var, row = loc[i]
                parts.setdefault(var, []).append((pos, row))
        pieces, order = [], []
        for var, items in parts.items():
            rows = [r for _, r in items]
            pieces.append((var, rows, *self._kind(var, rows, steps)))
            order += [pos for pos, _ in items]
        return pieces, consts, order + consts

    def cost(self, ids: list) -> float:
        """Rough microseconds that ``gather(ids)`` spends reading."""
        if all(self.p.ops[i] == "const" for i in ids):
            return 0.0
        pieces, consts, order = self._pieces(ids, True)
        total = sum(_COST[kind] for _, _, kind, _ in pieces)
        if len(pieces) + bool(consts) > 1:
            total += _JOIN
            if order != list(range(len(ids))):
                total += _JOIN
        return total

    def gather(self, ids: list, steps: bool = True) -> str:
        """Source text for the values of nodes ``ids`` stacked on a new first
        axis (a strided or reversed view where one reads them, unless not
        ``steps``: then a whole array, a unit-step slice or a copy)."""
        p = self.p
        if all(p.ops[i] == "const" for i in ids):
            return self.src.name(np.stack([np.asarray(p.params[i], float) for i in ids]), "c")
        pieces, consts, order = self._pieces(ids, steps)
        texts = [self._text(var, rows, kind, s) for var, rows, kind, s in pieces]
        if consts:
            texts.append(self.gather([ids[pos] for pos in consts]))
        if len(texts) == 1:
            return texts[0]
        text = f"_cat(({', '.join(texts)},))"
        if order == list(range(len(ids))):
            return text
        perm = np.empty(len(order), dtype=np.intp)
        perm[order] = np.arange(len(order))
        return f"{text}[{self.src.name(perm, 'i')}]"

    def reads(self, lists: list) -> list:
        """``gather`` of each list, an identical one read once (named by ``:=``)."""
        seen: dict = {}
        texts: list[str] = []
        for ids in lists:
            t = tuple(ids)
            if t in seen:
                first, name = seen[t]
                if name is None:
                    name = f"_r{self.reused}"
                    self.reused += 1
                    texts[first] = f"({name} := {texts[first]})"
                    seen[t] = (first, name)
                texts.append(name)
            else:
                seen[t] = (len(texts), None)
                texts.append(self.gather(ids))
        return texts

    def order(self, members: list, positions: list) -> list:
        """The members in the order that makes reading their arguments at
        ``positions`` (and the program's outputs among them) cheapest: as they
        come, or sorted by where one argument lives, or by output position
        (ties go to the earlier candidate, so rows follow their inputs)."""
        if len(members) < 2:
            return members
        args, key, cost, out = self.p.args, self.key, self.cost, self.out_pos
        reads: dict = {}
        for pos in positions:
            ids = tuple(args[m][pos] for m in members)
            if ids not in reads and any(i != ids[0] for i in ids):
                reads[ids] = pos
        candidates = [sorted(members, key=lambda m: key(args[m][pos]))
                      for pos in list(reads.values())[:4]]
        if any(m in out for m in members):
            candidates.append(sorted(members, key=lambda m: out.get(m, len(out))))
        best, least = members, None
        for order in candidates + [members]:
            total = sum(cost([args[m][pos] for m in order]) for pos in reads.values())
            where = sorted((out[m], r) for r, m in enumerate(order) if m in out)
            rows = [r for _, r in where]
            if rows and rows != list(range(rows[0], rows[0] + len(rows))):
                total += 1.0  # the outputs then read these rows with an index
            if least is None or total < least:
                best, least = order, total
        return best

    # matrix operands ------------------------------------------------------------------
    def matrix(self, ids: list, lead: tuple, tail: tuple) -> str:
        """Source text for an array of shape ``lead + tail`` whose rows (over
        ``lead``) are the values of ``ids``, laid out for BLAS as a copy would
        be: a view when the rows are a grid of ``var`` with positive steps and
        unit inner stride (and ``views`` is on), else a copy.

        >>> p = Program()
        >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(10)])
        >>> rows = Rows(p, Source())
        >>> rows.matrix([0, 2, 4, 6], (2, 2), ()), rows.matrix([0, 1, 2, 3], (2, 2), ())
        ('I[i0].reshape((2, 2))', 'I[0:4].reshape((2, 2))')
        """
        shape = lead + tail
        ops, loc = self.p.ops, self.loc
        if self.views and all(ops[i] != "const" for i in ids) and len(
                {loc[i][0] for i in ids}) == 1:
            var = loc[ids[0]][0]
            view = self._view(var, [loc[i][1] for i in ids], lead, tail)
            if view is not None:
                return view
        return f"{self.gather(ids, steps=False)}.reshape({shape})"

    def _view(self, var: str, rows: list, lead: tuple, tail: tuple) -> str | None:
        """``rows`` of ``var`` as a strided view of shape ``lead + tail``, or None."""
        shape, n = lead + tail, self.sizes[var]
        kind, s = self._kind(var, rows, True)
        if kind == _WHOLE or (kind == _SLICE and (s == 1 or tail)):
            text = self._text(var, rows, kind, s)
            if lead == (len(rows),) and self.shapes.get(var, ())[1:] == tail:
                return text  # already that shape
            return f"{text}.reshape({shape})"
        if len(lead) != 2 or lead[0] < 2 or lead[1] < 2:
            return None
        nr, nc = lead
        base, s0, s1 = rows[0], rows[1] - rows[0], rows[nc] - rows[0]
        width = (nc - 1) * s0 + 1
        if s0 < 1 or (s0 != 1 and not tail) or s1 < width or nr * s1 > n:
            return None
        grid = base + s1 * np.arange(nr)[:, None] + s0 * np.arange(nc)
        if grid.ravel().tolist() != rows:
            return None
        start = min(base, n - nr * s1)
        off = base - start
        if off + width > s1:
            return None
        cols = f"{off}:{off + width}{'' if s0 == 1 else f':{s0}'}"
        return f"{var}[{start}:{start + nr * s1}].reshape({(nr, s1) + tail})[:, {cols}]"
