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

>>> import numpy as np
>>> from fmicrograd.compiler.codegen import Source
>>> from fmicrograd.compiler.gather import Rows
>>> from fmicrograd.compiler.ir import Program
>>> p = Program()
>>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(18)])
>>> c = p.add("const", (), 0.5, ())
>>> # member (i, j): x = (I[i], I[3 + i], I[6 + i], c), y = (.., .., I[6 + j], I[9 + 3 i + j])
>>> xs = np.array([(i, 3 + i, 6 + i, c) for i in range(3) for j in range(3)])
>>> ys = np.array([(j, 3 + j, 6 + j, 9 + 3 * i + j) for i in range(3) for j in range(3)])
>>> outer_columns(xs, ys)
(array([0, 1, 2]), array([3]))
>>> order, text = contract(Rows(p, Source()), list(range(9)), xs, ys, (), (), ())
>>> # rows (i, j) in i-major order: the leftover I[9 + 3 i + j] is a slice; the columns
>>> # of I[0:9].reshape((3, 3)) are read as a copy of their transpose
>>> for term in text.split(" + "): print(term)
(I[0:9].reshape((3, 3)).T.copy() @ I[0:9].reshape((3, 3)).T.copy().T).reshape(-1)
(0.5) * I[9:18]
>>> order == list(range(9))
True
"""

from __future__ import annotations

import numpy as np

from .gather import Rows

__all__ = ["contract", "contract_rows", "outer_columns"]

_GRID = 2  # a grid product may compute up to this many times the needed entries
_FEW = 4  # a leftover of up to this many columns is a sum of column products


def _follows(ids: np.ndarray, label: np.ndarray) -> np.ndarray:
    """For each column of ``ids`` (members x columns), whether its entry is the
    same for every two members with the same ``label``."""
    order = np.argsort(label, kind="stable")
    a, lab = ids[order], label[order]
    same = lab[1:] == lab[:-1]
    return np.all((a[1:] == a[:-1]) | ~same[:, None], axis=0)


def outer_columns(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(outer, rest)`` column positions of operand ids ``xs`` and ``ys``
    (members x terms): in the outer columns a member's ``xs`` entries follow
    one label (those of its column ``r0``) and its ``ys`` entries another,
    with few enough label pairs for a matrix product; None unless reading
    the outer columns as matrices and gathering the rest reads at most half
    the entries that gathering every column would."""
    k, n = xs.shape
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


def contract(rows: Rows, members: list, xs: np.ndarray, ys: np.ndarray, sx: tuple,
             sy: tuple, out: tuple) -> tuple[list, str]:
    """``(order, text)``: ``text`` is an array whose row ``r`` is member
    ``order[r]``'s ``sum_r x[r] * y[r]``, for members x terms arrays ``xs``
    and ``ys`` of node ids (``x`` of shape ``sx``, ``y`` of shape ``sy``,
    result ``out``)."""
    found = _grid(rows, members, xs, ys, sx, sy)
    if found is not None:
        return found
    split = outer_columns(xs, ys) if sx == () and len(members) > 1 else None
    if split is None:
        return members, _dense(rows, xs, ys, sx, sy, out)
    outer, rest = split
    xo, yo, xr, yr = xs[:, outer], ys[:, outer], xs[:, rest], ys[:, rest]
    x_major = False
    if sy == () and len(rest):  # the entries in the order that reads the rest cheapest
        costs, layout = [], _layout(rows, xo, yo)
        for major in (False, True):
            at = _at(*layout, major)
            full = _full(at, len(members))
            costs.append(0.0 if full is None else sum(
                rows.cost(ids[full].tolist()) for ids in (*xr.T, *yr.T)))
        x_major = costs[1] < costs[0]
    found = _grid(rows, members, xo, yo, sx, sy, x_major)
    assert found is not None, "outer_columns gives a grid"
    order, text = found
    if len(rest):
        of = {m: r for r, m in enumerate(members)}
        at = np.array([of[m] for m in order], dtype=np.intp)
        text = f"{text} + {_dense(rows, xr[at], yr[at], sx, sy, out)}"
    return order, text


def _number(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, label)`` of the rows of ``ids``: the position of each
    distinct row's first appearance, and each row's number among them."""
    seen: dict = {}
    label = np.fromiter((seen.setdefault(r.tobytes(), len(seen)) for r in ids),
                        dtype=np.intp, count=len(ids))
    return np.unique(label, return_index=True)[1], label


def _layout(rows: Rows, xs: np.ndarray,
            ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(xfirst, yfirst, xi, yj)``: a member holding each distinct row of
    ``xs`` and of ``ys`` in the product's order, and each member's row
    numbers. With views, both operands' rows are numbered in the order where
    their first nodes live (reads become views and slices); that permutes
    the rows and columns of the product, each entry the same dot product of
    the same rows, which numpy's BLAS computes to the same bits."""
    (xfirst, xi), (yfirst, yj) = _number(xs), _number(ys)
    if rows.views:
        xfirst, xi = _sorted(rows, xs, xfirst, xi)
        yfirst, yj = _sorted(rows, ys, yfirst, yj)
    return xfirst, yfirst, xi, yj


def _sorted(rows: Rows, ids: np.ndarray, first: np.ndarray,
            label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``first`` and ``label`` renumbered in the order where each row's first node lives."""
    perm = np.argsort(rows.keys(ids[first, 0]), kind="stable")
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    return first[perm], rank[label]


def _at(xfirst: np.ndarray, yfirst: np.ndarray, xi: np.ndarray, yj: np.ndarray,
        x_major: bool) -> np.ndarray:
    """Each member's entry in the flattened product."""
    return xi * len(yfirst) + yj if x_major else yj * len(xfirst) + xi


def _full(at: np.ndarray, size: int) -> np.ndarray | None:
    """The members in the order of the product's entries if they fill all
    ``size`` of them, one each; else None."""
    order = np.argsort(at, kind="stable")
    if len(at) != size or not np.array_equal(at[order], np.arange(size)):
        return None
    return order


def _grid(rows: Rows, members: list, xs: np.ndarray, ys: np.ndarray, sx: tuple, sy: tuple,
          x_major: bool = False) -> tuple[list, str] | None:
    """A matrix product over the distinct rows of ``xs`` and ``ys``, or None
    if there are too many of them; its entries ``y``-major, or ``x``-major if
    ``x_major`` (scalar ``y`` only)."""
    if sx != ():
        return None
    xfirst, yfirst, xi, yj = _layout(rows, xs, ys)
    k, n, ni, nj, views = len(members), xs.shape[1], len(xfirst), len(yfirst), rows.views
    if ni * nj > _GRID * k:
        return None
    flat = int(np.prod(sy, dtype=int))
    X = rows.matrix(xs[xfirst].ravel().tolist(), (ni, n), ())
    if sy == ():
        Y = rows.matrix(ys[yfirst].ravel().tolist(), (nj, n), ())
        text = f"({X} @ {Y}.T).reshape(-1)" if x_major else f"({Y} @ {X}.T).reshape(-1)"
    else:
        Y = rows.matrix(ys[yfirst].ravel().tolist(), (nj, n)[nj == 1 and views:], (flat,))
        if nj > 1 or not views:
            text = f"_np.matmul({X}, {Y}).reshape({(nj * ni,) + sy})"
        elif len(sy) > 1:
            text = f"({X} @ {Y}).reshape({(ni,) + sy})"
        else:
            text = f"{X} @ {Y}"
    at = _at(xfirst, yfirst, xi, yj, x_major)
    order = _full(at, ni * nj)
    if order is not None:  # a full grid: no gather
        return [members[r] for r in order], text
    return members, f"{text}[{rows.src.name(at, 'i')}]"


def _dense(rows: Rows, xs: np.ndarray, ys: np.ndarray, sx: tuple, sy: tuple,
           out: tuple) -> str:
    """Each member's operands gathered and contracted on their own: a sum of
    column products for a few columns, else ``(k, n)`` arrays."""
    (k, n), nd = xs.shape, len(out)
    if n <= _FEW:
        terms = [f"{rows.column(xs[:, r].tolist(), nd)} * {rows.column(ys[:, r].tolist(), nd)}"
                 for r in range(n)]
        return terms[0] if n == 1 else f"({' + '.join(terms)})"
    X = rows.gather(xs.ravel().tolist(), steps=False)
    Y = rows.gather(ys.ravel().tolist(), steps=False)
    if sx == () and sy == ():
        return f"_np.einsum('kn,kn->k', {X}.reshape({(k, n)}), {Y}.reshape({(k, n)}))"
    X = f"{X}.reshape({(k, n) + (1,) * (nd - len(sx)) + sx})"
    Y = f"{Y}.reshape({(k, n) + (1,) * (nd - len(sy)) + sy})"
    return f"({X} * {Y}).sum(1)"


def contract_rows(rows: Rows, members: list, a: np.ndarray, b: np.ndarray,
                  flat: int) -> tuple[list, str]:
    """``contract`` for full contractions of batch arrays of ``flat``
    entries, member ``m`` contracting ``a[m]`` with ``b[m]``: ``A @ B.T``
    over their distinct rows (in order of first use, or where they live)."""
    k = len(members)
    ia, A_ids = _distinct(rows, a)
    ib, B_ids = _distinct(rows, b)
    ni, nj = len(A_ids), len(B_ids)
    if ni * nj > _GRID * k:
        A = rows.gather(a.tolist(), steps=False)
        B = rows.gather(b.tolist(), steps=False)
        return members, f"_np.einsum('kb,kb->k', {A}.reshape({(k, flat)}), " \
                        f"{B}.reshape({(k, flat)}))"
    A = rows.matrix(A_ids, (ni,), (flat,))
    B = rows.matrix(B_ids, (nj,), (flat,))
    if rows.views:
        # a-major: for a weight gradient, a neuron's cotangent times each of its
        # inputs, in the order the weights are laid out (the product may round
        # differently from the b-major one; both are within rounding of the graph)
        text = f"({A} @ {B}.T).reshape(-1)"
        at = ia * nj + ib
    else:  # b-major, as the graph gives them
        text = f"({B} @ {A}.T).reshape(-1)"
        at = ib * ni + ia
    if k == ni * nj:  # every cell once: the rows in the product's order
        order = np.full(k, -1, dtype=np.intp)
        order[at] = members
        if np.all(order >= 0):
            return order.tolist(), text
    return members, f"{text}[{rows.src.name(at, 'i')}]"


def _distinct(rows: Rows, ids: np.ndarray) -> tuple[np.ndarray, list]:
    """``(position, distinct)``: the distinct node numbers of ``ids`` in order
    of first appearance (sorted by where they live if ``rows.views``), and
    the position of each entry of ``ids`` among them."""
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    seen = np.argsort(first)  # unique positions in order of first appearance
    if rows.views:
        seen = seen[np.argsort(rows.keys(unique[seen]), kind="stable")]
    rank = np.empty(len(seen), dtype=np.intp)
    rank[seen] = np.arange(len(seen))
    return rank[inverse.reshape(-1)], unique[seen].tolist()
