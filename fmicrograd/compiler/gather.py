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

from operator import itemgetter
from typing import Any

import numpy as np

from .codegen import Source
from .ir import Program

__all__ = ["Rows", "input_shapes"]

_WHOLE, _SLICE, _REV, _INDEX = range(4)
_COST = (0.0, 0.2, 0.4, 1.0)  # rough microseconds of a read of each kind
_JOIN = 1.0  # a concatenation of reads, or the permutation after it
# reads of up to this many nodes are worked out on Python lists: numpy's calls on
# arrays this small cost more than the work (the answers are the same either way)
_SMALL = 256


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
    return list(dict.fromkeys(p.shapes[:p.n_inputs]))


class Rows:
    """Where each node's value lives, and source text reading them.

    Node ``i`` lives in row ``row_of[i]`` of array ``names[var_of[i]]``
    (``var_of`` is -1 for a constant); ``views`` allows strided views as
    matrix operands.

    >>> p = Program()
    >>> nodes = [p.add("in", (), k, ()) for k in range(8)]
    >>> p.n_inputs = 4
    >>> rows = Rows(p, Source())
    >>> rows.place("g0", [7, 5])
    >>> rows.gather([5, 7, 3]), rows.elem(7)
    ('_cat((_rev(g0), I[3:4],))', 'g0[0]')
    """

    def __init__(self, p: Program, src: Source, views: bool = True,
                 through: frozenset = frozenset(), any_order: bool = False) -> None:
        self.p = p
        self.src = src
        self.views = views
        self.names: list[str] = ["I"]
        self.sizes: list[int] = [p.width]  # (``I``: the inputs, then entries read as ``col``)
        self.shapes: list[tuple] = [(p.width,)]
        self.var_of = np.full(p.size, -1, dtype=np.intp)
        self.row_of = np.zeros(p.size, dtype=np.intp)
        self.var_of[:p.n_inputs] = 0
        self.row_of[:p.n_inputs] = np.arange(p.n_inputs)
        # ``var_of`` and ``row_of`` as lists, for the small reads (``_SMALL``)
        self.var_list: list[int] = self.var_of.tolist()
        self.row_list: list[int] = self.row_of.tolist()
        self.inputs = input_shapes(p)
        if len(self.inputs) > 1:  # jit under vmap: ``I`` is one array per input shape
            code = {shape: c for c, shape in enumerate(self.inputs)}
            codes = np.fromiter(map(code.__getitem__, p.shapes[:p.n_inputs]), dtype=np.intp,
                                count=p.n_inputs)
            for c in range(len(self.inputs)):
                self.place(f"I{c}", np.flatnonzero(codes == c).tolist())
        # with ``any_order`` the outputs ask for no order of the rows that lead to them
        self.demand = np.full(p.size, -1, dtype=np.intp) if any_order else _demand(p, through)
        counts, self.flat = p.edges()
        self.starts = np.cumsum(counts) - counts  # where each node's arguments begin in flat
        self.reused = 0

    def place(self, var: str, order: list, below: int = 0) -> None:
        """Record that row ``r`` of array ``var`` holds node ``order[r]``
        (and that ``below`` more rows follow them: ``layers.ones_below``)."""
        self.var_of[order] = len(self.names)
        self.row_of[order] = np.arange(len(order))
        at, var_list, row_list = len(self.names), self.var_list, self.row_list
        if len(order) > len(var_list) // 8:  # (a jit input array's entries: the lists
            self.var_list = self.var_of.tolist()  # anew, not an item at a time)
            self.row_list = self.row_of.tolist()
        else:
            for r, i in enumerate(order):
                var_list[i] = at
                row_list[i] = r
        self.names.append(var)
        self.sizes.append(len(order) + below)
        self.shapes.append((len(order) + below,) + self.p.shapes[order[0]])

    def keys(self, ids: Any) -> np.ndarray:
        """Sort keys of the places of nodes ``ids``: arrays in creation order,
        then rows; constants last."""
        ids = np.asarray(ids, dtype=np.intp)
        var = np.where(self.var_of[ids] < 0, len(self.names), self.var_of[ids])
        return var * (self.p.size + 1) + np.where(self.var_of[ids] < 0, ids, self.row_of[ids])

    def elem(self, i: int) -> str:
        """Source text for one node's value."""
        if self.p.ops[i] == "const":
            v = self.p.params[i]
            return self.src.literal(v) if isinstance(v, float) else self.src.name(v, "c")
        if self.var_of[i] < 0:  # read before its group exists: never a name that happens to fit
            raise RuntimeError(f"fm.jit: node {i} ({self.p.ops[i]}) is read before it is "
                               "computed (a compiler bug)")
        return f"{self.names[self.var_of[i]]}[{self.row_of[i]}]"

    # reads -----------------------------------------------------------------------
    def _kind(self, var: int, rows: np.ndarray, steps: bool) -> tuple[int, int]:
        """``(kind, step)`` of the cheapest read of ``rows`` of array number
        ``var``; only unit steps unless ``steps``."""
        k, a = len(rows), int(rows[0])
        s = int(rows[1]) - a if k > 1 else 1
        if s == 0 or (s != 1 and not steps) or (
                k > 2 and not np.array_equal(rows, np.arange(a, a + k * s, s))):
            return _INDEX, 0
        if s == 1 and a == 0 and k == self.sizes[var]:
            return _WHOLE, 1
        return (_SLICE if s > 0 else _REV), s

    def _text(self, var: int, rows: np.ndarray, kind: int, s: int) -> str:
        a, k, name = int(rows[0]), len(rows), self.names[var]
        if kind == _WHOLE:
            return name
        if kind == _SLICE:
            return f"{name}[{a}:{a + (k - 1) * s + 1}{'' if s == 1 else f':{s}'}]"
        if kind == _REV:
            if s == -1 and k == self.sizes[var]:
                return f"_rev({name})"
            return f"_rev({name}[{a + (k - 1) * s}:{a + 1}{'' if s == -1 else f':{-s}'}])"
        return f"{name}[{self.src.name(np.array(rows, dtype=np.intp), 'i')}]"

    def _pieces(self, ids: Any, steps: bool) -> tuple[list, np.ndarray, np.ndarray]:
        """The reads of ``ids``: ``(pieces, consts, order)`` with pieces
        ``(var, rows, kind, step)`` (one per array, in order of first use), the
        positions of constants, and the position of each row of the
        concatenated pieces (constants last)."""
        at_ = np.asarray(ids, dtype=np.intp)
        var, row = self.var_of[at_], self.row_of[at_]
        if len(var) and var[0] >= 0 and np.all(var == var[0]):  # one array: no sort
            v = int(var[0])
            return [(v, row, *self._kind(v, row, steps))], at_[:0], np.arange(len(var))
        consts = np.flatnonzero(var < 0)
        used, first = np.unique(var[var >= 0], return_index=True)
        pieces, order = [], []
        for v in used[np.argsort(first)]:
            at = np.flatnonzero(var == v)
            rows = row[at]
            pieces.append((int(v), rows, *self._kind(int(v), rows, steps)))
            order.append(at)
        return pieces, consts, np.concatenate(order + [consts])

    def _kind_list(self, var: int, rows: list, steps: bool) -> tuple[int, int]:
        """``_kind`` for ``rows`` as a list of ints."""
        k, a = len(rows), rows[0]
        s = rows[1] - a if k > 1 else 1
        if s == 0 or (s != 1 and not steps) or (
                k > 2 and rows != list(range(a, a + k * s, s))):
            return _INDEX, 0
        if s == 1 and a == 0 and k == self.sizes[var]:
            return _WHOLE, 1
        return (_SLICE if s > 0 else _REV), s

    def _pieces_list(self, ids: list, steps: bool) -> tuple[list, list, list]:
        """``_pieces`` for ``ids`` as a list, with lists for arrays: the rows
        of each piece, the positions of constants, and the order."""
        var_list, row_list = self.var_list, self.row_list
        var = [var_list[i] for i in ids]
        row = [row_list[i] for i in ids]
        v = var[0] if var else -1
        if v >= 0 and var.count(v) == len(var):  # one array
            return [(v, row, *self._kind_list(v, row, steps))], [], list(range(len(var)))
        at: dict[int, list] = {}  # each array's positions, in order of first use
        consts = []
        for pos, v in enumerate(var):
            if v < 0:
                consts.append(pos)
            elif v in at:
                at[v].append(pos)
            else:
                at[v] = [pos]
        pieces, order = [], []
        for v, where in at.items():
            rows = [row[pos] for pos in where]
            pieces.append((v, rows, *self._kind_list(v, rows, steps)))
            order.extend(where)
        return pieces, consts, order + consts

    def _cost_list(self, var: list, row: list) -> float:
        """``cost`` of the nodes at arrays ``var`` (-1 for a constant) and rows
        ``row`` (lists): the same sum, added in the same order."""
        v = var[0]
        if v >= 0 and var.count(v) == len(var):  # one array
            return sum([_COST[self._kind_list(v, row, True)[0]]])
        at: dict[int, list] = {}  # each array's rows, in order of first use
        consts = 0
        for v, r in zip(var, row):
            if v < 0:
                consts += 1
            elif v in at:
                at[v].append(r)
            else:
                at[v] = [r]
        if not at:
            return 0.0
        total = sum([_COST[self._kind_list(v, rows, True)[0]] for v, rows in at.items()])
        if len(at) + bool(consts) > 1:
            total += _JOIN
            if not _runs_in_order(var):
                total += _JOIN
        return total

    def cost(self, ids: Any) -> float:
        """Rough microseconds that ``gather(ids)`` spends reading."""
        if 0 < len(ids) <= _SMALL:
            ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
            return self._cost_list([self.var_list[i] for i in ids],
                                   [self.row_list[i] for i in ids])
        pieces, consts, order = self._pieces(ids, True)
        if not pieces:
            return 0.0
        total = sum(_COST[kind] for _, _, kind, _ in pieces)
        if len(pieces) + bool(len(consts)) > 1:
            total += _JOIN
            if np.any(order != np.arange(len(ids))):
                total += _JOIN
        return total

    def positions(self, at: np.ndarray) -> str:
        """Source text for the entries of ``I`` at positions ``at`` (an
        integer array): a view where they are a range with a step, else a
        copy. The ``col`` nodes' entries, which have no node each.

        >>> p = Program()
        >>> p.n_inputs, p.extra = len([p.add("in", (), k, ()) for k in range(2)]), 6
        >>> rows = Rows(p, Source())
        >>> rows.positions(np.arange(2, 8, 2)), rows.positions(np.arange(8))
        ('I[2:7:2]', 'I')
        """
        return self._text(0, at, *self._kind(0, at, True))

    def gather(self, ids: Any, steps: bool = True) -> str:
        """Source text for the values of nodes ``ids`` (a list or an integer
        array) stacked on a new first axis (a strided or reversed view where
        one reads them, unless not ``steps``: then a whole array, a unit-step
        slice or a copy)."""
        p = self.p
        small = len(ids) <= _SMALL
        consts: Any  # positions and order: lists for a small read, else arrays
        order: Any
        if small:
            ids = ids.tolist() if isinstance(ids, np.ndarray) else ids
            pieces, consts, order = self._pieces_list(ids, steps)
        else:
            pieces, consts, order = self._pieces(ids, steps)
        if not pieces:
            values = [p.params[i] for i in ids]
            if not values:  # nothing to read (a function with no outputs)
                return self.src.name(np.zeros(0), "c")
            if all(v.__class__ is float for v in values):  # (as np.stack, sooner)
                return self.src.name(np.array(values, dtype=float), "c")
            return self.src.name(np.stack([np.asarray(v, float) for v in values]), "c")
        texts = [self._text(var, rows, kind, s) for var, rows, kind, s in pieces]
        if len(consts):
            texts.append(self.gather([ids[pos] for pos in consts]))
        if len(texts) == 1:
            return texts[0]
        text = f"_cat(({', '.join(texts)},))"
        if order == list(range(len(ids))) if small else np.all(order == np.arange(len(ids))):
            return text
        perm = np.empty(len(order), dtype=np.intp)
        perm[order] = np.arange(len(order))
        return f"{text}[{self.src.name(perm, 'i')}]"

    def column(self, ids: Any, ndim: int) -> str:
        """Source text for the values of nodes ``ids`` shaped to broadcast
        against ``ndim`` trailing axes: one broadcast row (a literal for a
        float constant) when they are all one node, else ``gather(ids)``
        (``ids``: a list or an integer array).

        >>> p = Program()
        >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(3)])
        >>> c = p.add("const", (), 2.0, ())
        >>> rows = Rows(p, Source())
        >>> rows.column([c, c], 0), rows.column([2, 1], 1)
        ('(2.0)', '_rev(I[1:3]).reshape((2, 1))')
        """
        p = self.p
        ids = np.asarray(ids, dtype=np.intp)
        if len(ids) <= _SMALL:
            ids = ids.tolist()
            i = ids[0]
            same = ids.count(i) == len(ids)
        else:
            i = int(ids[0])
            same = bool(np.all(ids == i))
        shape = p.shapes[i]
        if len(ids) > 1 and same:
            if p.ops[i] == "const" and isinstance(p.params[i], float):
                return self.src.literal(p.params[i])
            text, k = self.gather([i]), 1
        else:
            text, k = self.gather(ids), len(ids)
        if len(shape) < ndim:
            text = f"{text}.reshape({(k,) + (1,) * (ndim - len(shape)) + shape})"
        return text

    def reads(self, lists: list) -> list:
        """``gather`` of each list (or integer array), an identical one read
        once (named by ``:=``)."""
        seen: dict = {}
        texts: list[str] = []
        for ids in lists:
            ids = np.asarray(ids, dtype=np.intp)
            t = ids.tobytes()
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
        ``positions`` (and the program's outputs they lead to) cheapest: as
        they come, or sorted by where one argument lives, or by the output
        each leads to (ties go to the earlier candidate, so rows follow their
        inputs)."""
        if len(members) < 2:
            return members
        return self.arrange(members, positions, self.arg_grid(members))[0]

    def arrange(self, members: list, positions: list, grid: np.ndarray) -> tuple:
        """``(order(members, positions), grid)`` for ``grid = arg_grid(members)``,
        the grid's rows permuted alike."""
        if len(members) < 2:
            return members, grid
        if len(members) <= _SMALL:
            return self._arrange_list(members, positions, grid)
        reads: dict = {}
        for pos in positions:
            ids = grid[:, pos]
            key = ids.tobytes()
            if key not in reads and np.any(ids != ids[0]):
                reads[key] = ids
        candidates = [np.argsort(self.keys(ids), kind="stable")
                      for ids in list(reads.values())[:4]]
        nodes = np.asarray(members, dtype=np.intp)
        where = self.demand[nodes]
        if where.max() >= 0:
            last = where.max() + 1
            candidates.append(np.argsort(np.where(where < 0, last, where), kind="stable"))
        best, least = None, None
        tried = set()
        for perm in candidates + [np.arange(len(members))]:
            key = perm.tobytes()
            if key in tried:  # the same total again: the earlier one stands
                continue
            tried.add(key)
            total = sum(self.cost(ids[perm]) for ids in reads.values())
            at = np.flatnonzero(where[perm] >= 0)  # rows outputs read, in output order
            at = at[np.argsort(where[perm][at], kind="stable")]
            if len(at) and not np.array_equal(at, np.arange(at[0], at[0] + len(at))):
                total += _COST[_INDEX]  # an index, here or where the outputs are read
            if least is None or total < least:
                best, least = perm, total
        assert best is not None  # set on the first turn
        return nodes[best].tolist(), grid[best]

    def _arrange_list(self, members: list, positions: list, grid: np.ndarray) -> tuple:
        """``arrange`` worked out on Python lists (for ``_SMALL`` groups): the
        same candidates, totals added in the same order, the same choice."""
        n = len(members)
        var_list, row_list = self.var_list, self.row_list
        reads: dict = {}  # each distinct read: its nodes' arrays and rows
        for column in grid[:, positions].T.tolist():
            key = tuple(column)
            if key not in reads and column.count(column[0]) != n:
                var = [var_list[i] for i in column]
                one = var[0] >= 0 and var.count(var[0]) == n  # all in one array
                reads[key] = (var, [row_list[i] for i in column], var[0] if one else -1)
        candidates = []
        last, size = len(self.names), self.p.size + 1
        for column, (var, row, _) in list(reads.items())[:4]:
            keys = [(v * size + r) if v >= 0 else last * size + i
                    for i, v, r in zip(column, var, row)]
            candidates.append(sorted(range(n), key=keys.__getitem__))  # stable
        nodes = np.asarray(members, dtype=np.intp)
        where = self.demand[nodes].tolist()
        most = max(where)
        if most >= 0:
            wait = [most + 1 if w < 0 else w for w in where]
            candidates.append(sorted(range(n), key=wait.__getitem__))
        best, least = None, None
        tried = set()
        for perm in candidates + [list(range(n))]:
            key = tuple(perm)
            if key in tried:  # the same total again: the earlier one stands
                continue
            tried.add(key)
            get = itemgetter(*perm)  # (a tuple: there are at least two members)
            total = sum([_COST[self._kind_list(one, list(get(row)), True)[0]] if one >= 0
                         else self._cost_list(list(get(var)), list(get(row)))
                         for var, row, one in reads.values()])
            if most >= 0:
                moved = [where[j] for j in perm]
                at = [r for r, w in enumerate(moved) if w >= 0]  # rows outputs read,
                at.sort(key=moved.__getitem__)  # in output order
                if at != list(range(at[0], at[0] + len(at))):
                    total += _COST[_INDEX]  # an index, here or where the outputs are read
            if least is None or total < least:
                best, least = perm, total
        assert best is not None  # set on the first turn
        order = np.array(best, dtype=np.intp)
        return nodes[order].tolist(), grid[order]

    def arg_grid(self, members: list) -> np.ndarray:
        """The arguments of ``members`` (nodes of one arity) as a ``(k, n)``
        array of node numbers, read from the program's edge arrays.

        >>> p = Program()
        >>> x, y = p.add("in", (), 0, ()), p.add("in", (), 1, ())
        >>> p.n_inputs = 2
        >>> a, b = p.add("*", (x, y), None, ()), p.add("*", (y, y), None, ())
        >>> Rows(p, Source()).arg_grid([a, b]).tolist()
        [[0, 1], [1, 1]]
        """
        n = len(self.p.args[members[0]])
        at = self.starts[np.asarray(members, dtype=np.intp)]
        return self.flat[at[:, None] + np.arange(n)]

    # matrix operands ------------------------------------------------------------------
    def matrix(self, ids: list, lead: tuple, tail: tuple) -> str:
        """Source text for an array of shape ``lead + tail`` whose rows (over
        ``lead``) are the values of ``ids``, laid out for BLAS as a copy would
        be: a view when the rows are a grid of one array's rows with positive
        steps and unit inner stride (and ``views`` is on), else a copy.

        A matrix (``tail`` empty) that is the transpose of such a view (a
        weight matrix read column by column, as a layer's backward pass reads
        it) is copied from that view: the copy an index read would make, in
        a third of its time. (The transposed view itself, read by BLAS
        directly, was 10% faster again, but OpenBLAS's AVX-512 kernels round
        some such products differently from a copy's.)

        >>> p = Program()
        >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(10)])
        >>> rows = Rows(p, Source())
        >>> rows.matrix([0, 2, 4, 6], (2, 2), ()), rows.matrix([0, 1, 2, 3], (2, 2), ())
        ('I[i0].reshape((2, 2))', 'I[0:4].reshape((2, 2))')
        >>> rows.matrix([0, 3, 1, 4, 2, 5], (3, 2), ())
        'I[0:6].reshape((2, 3)).T.copy()'
        """
        shape = lead + tail
        at = np.asarray(ids, dtype=np.intp)
        var = self.var_of[at]
        if self.views and var[0] >= 0 and np.all(var == var[0]):
            rows = self.row_of[at]
            view = self._view(int(var[0]), rows, lead, tail)
            if view is None and not tail and len(lead) == 2:
                view = self._view(int(var[0]), rows.reshape(lead).T.ravel(), lead[::-1], ())
                if view is not None:
                    view += ".T.copy()"
            if view is not None:
                return view
        return f"{self.gather(ids, steps=False)}.reshape({shape})"

    def _view(self, var: int, rows: np.ndarray, lead: tuple, tail: tuple) -> str | None:
        """``rows`` of array ``var`` as a strided view of shape ``lead + tail``, or None."""
        shape, n, name = lead + tail, self.sizes[var], self.names[var]
        kind, s = self._kind(var, rows, True)
        if kind == _WHOLE or (kind == _SLICE and (s == 1 or tail)):
            text = self._text(var, rows, kind, s)
            if lead == (len(rows),) and self.shapes[var][1:] == tail:
                return text  # already that shape
            return f"{text}.reshape({shape})"
        if len(lead) != 2 or lead[0] < 2 or lead[1] < 2:
            return None
        nr, nc = lead
        base, s0, s1 = int(rows[0]), int(rows[1] - rows[0]), int(rows[nc] - rows[0])
        width = (nc - 1) * s0 + 1
        if s0 < 1 or (s0 != 1 and not tail) or s1 < width or nr * s1 > n:
            return None
        grid = base + s1 * np.arange(nr)[:, None] + s0 * np.arange(nc)
        if not np.array_equal(grid.ravel(), rows):
            return None
        start = min(base, n - nr * s1)
        off = base - start
        if off + width > s1:
            return None
        cols = f"{off}:{off + width}{'' if s0 == 1 else f':{s0}'}"
        return f"{name}[{start}:{start + nr * s1}].reshape({(nr, s1) + tail})[:, {cols}]"


def _runs_in_order(var: list) -> bool:
    """Whether each array's positions in ``var`` are one run and the
    constants' (-1) come last: the pieces of a read, concatenated, are then
    its rows in order.

    >>> _runs_in_order([2, 2, 0, -1]), _runs_in_order([2, 0, 2]), _runs_in_order([-1, 0])
    (True, False, False)
    """
    seen: set = set()
    last = None
    for v in var:
        if v != last:
            if v in seen or (last is not None and last < 0):
                return False
            seen.add(v)
            last = v
    return True


def _demand(p: Program, through: frozenset) -> np.ndarray:
    """For each node, the position among the program's scalar outputs of the
    output it becomes through ops in ``through`` that keep its shape (-1 if
    none): rows in that order reach the outputs without an index."""
    demand = [-1] * p.size
    k = 0
    for o in p.outputs:
        if p.ops[o] != "const" and p.shapes[o] == ():
            if demand[o] < 0:
                demand[o] = k
            k += 1
    ops, args, shapes = p.ops, p.args, p.shapes
    low = p.leading_inputs()  # (an input has no arguments)
    for i in range(p.size - 1, low - 1, -1):
        d = demand[i]
        if d < 0 or ops[i] not in through:
            continue
        shape = shapes[i]
        for a in args[i]:
            if demand[a] < 0 and shapes[a] == shape:
                demand[a] = d
    return np.array(demand, dtype=np.intp)
