"""Source text for a group of contractions ``sum_r x[r] * y[r]`` (``dot`` and
full ``bdot`` nodes): matrix products where the operands form a grid.

A group of ``k`` contractions over ``n`` terms, member ``m`` reading operand
lists ``(xs_m, ys_m)``, is a matrix product when there are few distinct
lists: with ``ni`` distinct ``xs`` and ``nj`` distinct ``ys``, the product
``X @ Y.T`` of the ``(ni, n)`` and ``(nj, n)`` matrices holds every member's
value (a layer's neurons: each weight row against the same inputs). When
they are not few, some *columns* may still be: the weight gradients of a
batch unrolled in Python are ``sum_b cot[b][i] * h[b][j]`` over the examples
plus a few terms of their own (``c * w[i][j]`` from an L2 penalty). Then the
columns whose ``x`` follows the row label and whose ``y`` the column label
are one matrix product, and the rest a small contraction added to it (the
same terms, summed in another order). Otherwise each member's operands are
gathered into ``(k, n)`` arrays and contracted row by row.

>>> from fmicrograd.compiler.codegen import Source
>>> from fmicrograd.compiler.gather import Rows
>>> from fmicrograd.compiler.ir import Program
>>> p = Program()
>>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(18)])
>>> c = p.add("const", (), 0.5, ())
>>> # member (i, j): x = (I[i], I[3 + i], I[6 + i], c), y = (.., .., I[6 + j], I[9 + 3 i + j])
>>> lists = [((i, 3 + i, 6 + i, c), (j, 3 + j, 6 + j, 9 + 3 * i + j))
...          for i in range(3) for j in range(3)]
>>> outer_columns(lists, 4)
(array([0, 1, 2]), array([3]))
>>> order, text = contract(Rows(p, Source()), list(range(9)), lists, (), (), 4, ())
>>> text  # rows (i, j) in i-major order: the leftover I[9 + 3 i + j] is a slice
'(I[i0].reshape((3, 3)) @ I[i1].reshape((3, 3)).T).reshape(-1) + (0.5) * I[9:18]'
>>> order == list(range(9))
True
"""

from __future__ import annotations

import numpy as np

from .gather import Rows

__all__ = ["contract", "contract_rows", "outer_columns"]

_GRID = 2  # a grid product may compute up to this many times the needed entries
_FEW = 4  # a leftover of up to this many columns is a sum of column products


def _sort(index: dict, keys: np.ndarray) -> dict:
    """``index`` (item -> position) renumbered in the order of ``keys``, one per item."""
    items = list(index)
    return {items[k]: pos for pos, k in enumerate(np.argsort(keys, kind="stable"))}


def _follows(ids: np.ndarray, label: np.ndarray) -> np.ndarray:
    """For each column of ``ids`` (members x columns), whether its entry is the
    same for every two members with the same ``label``."""
    order = np.argsort(label, kind="stable")
    a, lab = ids[order], label[order]
    same = lab[1:] == lab[:-1]
    return np.all((a[1:] == a[:-1]) | ~same[:, None], axis=0)


def outer_columns(lists: list, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(outer, rest)`` column positions of operand lists ``(xs, ys)`` (``n``
    terms each): in the outer columns a member's ``xs`` entries follow one
    label (those of its column ``r0``) and its ``ys`` entries another, with
    few enough label pairs for a matrix product; None unless reading the
    outer columns as matrices and gathering the rest reads at most half the
    entries that gathering every column would."""
    k = len(lists)
    xs = np.array([x for x, _ in lists], dtype=np.intp).reshape(k, n)
    ys = np.array([y for _, y in lists], dtype=np.intp).reshape(k, n)
    best, least = None, k * n  # entries read, at most half of the 2 k n of a gather
    for r0 in dict.fromkeys((0, n - 1, n // 2)):  # the label columns to try
        cols = np.flatnonzero(_follows(xs, xs[:, r0]) & _follows(ys, ys[:, r0]))
        ni, nj = len(np.unique(xs[:, r0])), len(np.unique(ys[:, r0]))
        reads = (ni + nj) * len(cols) + 2 * k * (n - len(cols))
        if len(cols) >= 2 and ni * nj <= _GRID * k and reads <= least:
            best, least = cols, reads
    if best is None:
        return None
    return best, np.setdiff1d(np.arange(n), best)


def contract(rows: Rows, members: list, lists: list, sx: tuple, sy: tuple, n: int,
             out: tuple) -> tuple[list, str]:
    """``(order, text)``: ``text`` is an array whose row ``r`` is member
    ``order[r]``'s ``sum_r x[r] * y[r]`` for operand lists ``lists`` (``x`` of
    shape ``sx``, ``y`` of shape ``sy``, result ``out``)."""
    found = _grid(rows, members, lists, sx, sy, n)
    if found is not None:
        return found
    split = outer_columns(lists, n) if sx == () and len(members) > 1 else None
    if split is None:
        return members, _dense(rows, lists, sx, sy, n, out)
    outer, rest = split
    part = [(tuple([xs[c] for c in outer]), tuple([ys[c] for c in outer])) for xs, ys in lists]
    of = dict(zip(members, lists))

    def leftover(order: list) -> list:
        return [(tuple([of[m][0][c] for c in rest]), tuple([of[m][1][c] for c in rest]))
                for m in order]

    def cost(x_major: bool) -> float:  # of reading the leftover columns in that order
        order = _full(rows, members, part, sy, x_major)
        if order is None:
            return 0.0
        left = leftover(order)
        return sum(rows.cost([ids[r] for ids in column]) for r in range(len(rest))
                   for column in zip(*left))

    x_major = sy == () and len(rest) > 0 and cost(True) < cost(False)
    found = _grid(rows, members, part, sx, sy, len(outer), x_major)
    assert found is not None, "outer_columns gives a grid"
    order, text = found
    if len(rest):
        text = f"{text} + {_dense(rows, leftover(order), sx, sy, len(rest), out)}"
    return order, text


def _layout(rows: Rows, lists: list, sy: tuple, x_major: bool) -> tuple[dict, dict]:
    """The distinct ``xs`` and ``ys`` of ``lists``, each numbered (a product's
    left operand, and the batch of a 3-d one, numbered in the order where its
    rows live: that changes no bit and makes reads cheap)."""
    xs_of: dict = {}
    ys_of: dict = {}
    for xs, ys in lists:
        xs_of.setdefault(xs, len(xs_of))
        ys_of.setdefault(ys, len(ys_of))
    if rows.views:
        if not x_major:
            ys_of = _sort(ys_of, rows.keys([ys[0] for ys in ys_of]))
        if x_major or sy != ():
            xs_of = _sort(xs_of, rows.keys([xs[0] for xs in xs_of]))
    return xs_of, ys_of


def _cells(lists: list, members: list, xs_of: dict, ys_of: dict, x_major: bool) -> list | None:
    """The members in the order of the product's entries if they fill it, one each."""
    ni, nj = len(xs_of), len(ys_of)
    cell = {(xs_of[xs], ys_of[ys]): m for m, (xs, ys) in zip(members, lists)}
    if len(cell) != ni * nj or len(cell) != len(members):
        return None
    if x_major:
        return [cell[(i, j)] for i in range(ni) for j in range(nj)]
    return [cell[(i, j)] for j in range(nj) for i in range(ni)]


def _full(rows: Rows, members: list, lists: list, sy: tuple, x_major: bool) -> list | None:
    """``_cells`` of the layout ``_grid`` takes."""
    return _cells(lists, members, *_layout(rows, lists, sy, x_major), x_major)


def _grid(rows: Rows, members: list, lists: list, sx: tuple, sy: tuple, n: int,
          x_major: bool = False) -> tuple[list, str] | None:
    """A matrix product over the distinct operand lists, or None if there
    are too many of them; its entries ``y``-major, or ``x``-major if
    ``x_major`` (scalar ``y`` only)."""
    if sx != ():
        return None
    xs_of, ys_of = _layout(rows, lists, sy, x_major)
    k, ni, nj, views = len(members), len(xs_of), len(ys_of), rows.views
    if ni * nj > _GRID * k:
        return None
    flat = int(np.prod(sy, dtype=int))
    X = rows.matrix([a for xs in xs_of for a in xs], (ni, n), ())
    if sy == ():
        Y = rows.matrix([a for ys in ys_of for a in ys], (nj, n), ())
        text = f"({X} @ {Y}.T).reshape(-1)" if x_major else f"({Y} @ {X}.T).reshape(-1)"
    else:
        Y = rows.matrix([a for ys in ys_of for a in ys], (nj, n)[nj == 1 and views:], (flat,))
        if nj > 1 or not views:
            text = f"_np.matmul({X}, {Y}).reshape({(nj * ni,) + sy})"
        elif len(sy) > 1:
            text = f"({X} @ {Y}).reshape({(ni,) + sy})"
        else:
            text = f"{X} @ {Y}"
    order = _cells(lists, members, xs_of, ys_of, x_major)
    if order is not None:  # a full grid: no gather
        return order, text
    if x_major:
        at = [xs_of[xs] * nj + ys_of[ys] for xs, ys in lists]
    else:
        at = [ys_of[ys] * ni + xs_of[xs] for xs, ys in lists]
    return members, f"{text}[{rows.src.name(np.array(at, dtype=np.intp), 'i')}]"


def _dense(rows: Rows, lists: list, sx: tuple, sy: tuple, n: int, out: tuple) -> str:
    """Each member's operands gathered and contracted on their own: a sum of
    column products for a few columns, else ``(k, n)`` arrays."""
    k, nd = len(lists), len(out)
    if n <= _FEW:
        terms = [f"{rows.column([xs[r] for xs, _ in lists], nd)} * "
                 f"{rows.column([ys[r] for _, ys in lists], nd)}" for r in range(n)]
        return terms[0] if n == 1 else f"({' + '.join(terms)})"
    X = rows.gather([a for xs, _ in lists for a in xs], steps=False)
    Y = rows.gather([a for _, ys in lists for a in ys], steps=False)
    if sx == () and sy == ():
        return f"_np.einsum('kn,kn->k', {X}.reshape({(k, n)}), {Y}.reshape({(k, n)}))"
    X = f"{X}.reshape({(k, n) + (1,) * (nd - len(sx)) + sx})"
    Y = f"{Y}.reshape({(k, n) + (1,) * (nd - len(sy)) + sy})"
    return f"({X} * {Y}).sum(1)"


def contract_rows(rows: Rows, members: list, lists: list, flat: int) -> tuple[list, str]:
    """``contract`` for full contractions of batch arrays of ``flat``
    entries, operand lists ``((a,), (b,))``: ``A @ B.T`` over their rows."""
    k = len(members)
    as_of: dict = {}
    bs_of: dict = {}
    for (a,), (b,) in lists:
        as_of.setdefault(a, len(as_of))
        bs_of.setdefault(b, len(bs_of))
    ni, nj = len(as_of), len(bs_of)
    if ni * nj > _GRID * k:
        A = rows.gather([a for (a,), _ in lists], steps=False)
        B = rows.gather([b for _, (b,) in lists], steps=False)
        return members, f"_np.einsum('kb,kb->k', {A}.reshape({(k, flat)}), " \
                        f"{B}.reshape({(k, flat)}))"
    if rows.views:  # rows in any order: those that make reads cheap
        as_of = _sort(as_of, rows.keys(list(as_of)))
        bs_of = _sort(bs_of, rows.keys(list(bs_of)))
    A = rows.matrix(list(as_of), (ni,), (flat,))
    B = rows.matrix(list(bs_of), (nj,), (flat,))
    cell = {(as_of[a], bs_of[b]): m for m, ((a,), (b,)) in zip(members, lists)}
    if rows.views:
        # a-major: for a weight gradient, a neuron's cotangent times each of its
        # inputs, in the order the weights are laid out (the product may round
        # differently from the b-major one; both are within rounding of the graph)
        text = f"({A} @ {B}.T).reshape(-1)"
        order = [cell.get((i, j)) for i in range(ni) for j in range(nj)]
        at = [as_of[a] * nj + bs_of[b] for (a,), (b,) in lists]
    else:  # b-major, as the graph gives them
        text = f"({B} @ {A}.T).reshape(-1)"
        order = [cell.get((i, j)) for j in range(nj) for i in range(ni)]
        at = [bs_of[b] * ni + as_of[a] for (a,), (b,) in lists]
    if len(cell) == ni * nj and len(cell) == k:
        return order, text
    return members, f"{text}[{rows.src.name(np.array(at, dtype=np.intp), 'i')}]"
