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
>>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(8)])
>>> rows = Rows(p, Source())
>>> # members (i, j): x = (I[i], I[2 + i], I[4]), y = (I[j], I[2 + j], I[5 + 2 * i + j])
>>> lists = [((i, 2 + i, 4), (j, 2 + j, 5 + 2 * i + j)) for i in range(2) for j in range(2)]
>>> outer_columns(lists, 3)
(array([0, 1]), array([2]))
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
    label and its ``ys`` entries another, with few enough label pairs for a
    matrix product; None when fewer than two columns are so."""
    k = len(lists)
    xs = np.array([x for x, _ in lists], dtype=np.intp).reshape(k, n)
    ys = np.array([y for _, y in lists], dtype=np.intp).reshape(k, n)
    best = None
    for r0 in dict.fromkeys((0, n - 1, n // 2)):  # the label columns to try
        cols = np.flatnonzero(_follows(xs, xs[:, r0]) & _follows(ys, ys[:, r0]))
        if len(cols) < 2 or (best is not None and len(cols) <= len(best)):
            continue
        ni, nj = len(np.unique(xs[:, r0])), len(np.unique(ys[:, r0]))
        if ni * nj <= _GRID * k:
            best = cols
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
    found = _grid(rows, members, part, sx, sy, len(outer))
    assert found is not None, "outer_columns gives a grid"
    order, text = found
    if len(rest):
        of = dict(zip(members, lists))
        left = [(tuple([of[m][0][c] for c in rest]), tuple([of[m][1][c] for c in rest]))
                for m in order]
        text = f"{text} + {_dense(rows, left, sx, sy, len(rest), out)}"
    return order, text


def _grid(rows: Rows, members: list, lists: list, sx: tuple, sy: tuple,
          n: int) -> tuple[list, str] | None:
    """A matrix product over the distinct operand lists, or None if there
    are too many of them."""
    k = len(members)
    xs_of: dict = {}
    ys_of: dict = {}
    for xs, ys in lists:
        xs_of.setdefault(xs, len(xs_of))
        ys_of.setdefault(ys, len(ys_of))
    ni, nj = len(xs_of), len(ys_of)
    if sx != () or ni * nj > _GRID * k:
        return None
    views = rows.views
    # the rows of a product's left operand (and the batch of a 3-d one) may
    # come in any order without changing a bit: they follow where they live
    if views:
        ys_of = _sort(ys_of, rows.keys([ys[0] for ys in ys_of]))
    flat = int(np.prod(sy, dtype=int))
    if sy == ():
        X = rows.matrix([a for xs in xs_of for a in xs], (ni, n), ())
        Y = rows.matrix([a for ys in ys_of for a in ys], (nj, n), ())
        text = f"({Y} @ {X}.T).reshape(-1)"
    else:
        if views:
            xs_of = _sort(xs_of, rows.keys([xs[0] for xs in xs_of]))
        X = rows.matrix([a for xs in xs_of for a in xs], (ni, n), ())
        Y = rows.matrix([a for ys in ys_of for a in ys], (nj, n)[nj == 1 and views:], (flat,))
        if nj > 1 or not views:
            text = f"_np.matmul({X}, {Y}).reshape({(nj * ni,) + sy})"
        elif len(sy) > 1:
            text = f"({X} @ {Y}).reshape({(ni,) + sy})"
        else:
            text = f"{X} @ {Y}"
    cell = {(xs_of[xs], ys_of[ys]): m for m, (xs, ys) in zip(members, lists)}
    if len(cell) == ni * nj and len(cell) == k:  # a full grid: rows in (y, x) order
        return [cell[(i, j)] for j in range(nj) for i in range(ni)], text
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
