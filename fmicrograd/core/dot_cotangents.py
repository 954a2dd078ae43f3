"""A ``dot`` node's cotangents under ``vmap``, built without a batch-sized
product per factor.

The reverse sweep gives each factor of ``dot(ws, xs)`` the cotangent
``g * other``. Under ``vmap``, with ``g`` a batch of cotangents, that is one
batch-sized array per weight, twice: ``g * x_j`` for the weight ``w_j`` (then
summed over the batch, as ``w_j`` is unbatched) and ``g * w_j`` for the input
``x_j`` (then added up over every neuron that reads ``x_j``). Kept as graph
nodes, those products hold memory of the size batch x parameters until the
graph is dropped (``fm.jit``'s trace keeps it until it is lowered).

Two nodes take their place, with the same values bit for bit:

- ``batch_dot(g, x)``: the sum over the batch axes of ``g * x``, a ``Prim``
  whose product exists only while its value is computed. Its rules are those
  of the product followed by the batch sum; ``fm.jit`` lowers it to the IR's
  ``bdot``, as it did the pair before.
- the contributions ``g_i * w_ij`` to one input ``x_j`` wait as pairs in the
  sweep's list for ``x_j`` (``accumulate``) while the sweep reaches ``x_j``
  and then become one ``dot`` node of the cotangents and the weights (one node
  per ``x_j`` instead of two per weight), summed in the order the old ``+``
  chain summed them.

>>> import numpy as np
>>> from fmicrograd.core.expr import const
>>> g, x = const(np.array([1.0, 2.0])), const(np.array([3.0, 4.0]))
>>> n = batch_dot(g, x, (0,))
>>> n.op, n.value
('batch_dot', 11.0)
"""

from __future__ import annotations

from typing import Any

from .batch_axes import DEPTH, sum_tangent
from .control import TRACE_VALUES
from .expr import Expr, Prim, prim
from .expr import stored_value as _value
from .placeholder import NoNumbers, scalar


def batch_dot(a: Expr, b: Expr, axes: tuple) -> Prim:
    """The node ``sum(a * b)`` over the batch ``axes``, the product never kept.

    >>> import numpy as np
    >>> from fmicrograd.core.expr import const
    >>> batch_dot(const(np.ones((2, 3))), const(np.full(3, 2.0)), (0,)).value.tolist()
    [4.0, 4.0, 4.0]
    """
    total = (_value(a) * _value(b)).sum(axis=axes)  # as the batch sum of the product
    return prim("batch_dot", scalar(total) if total.ndim == 0 else total, (a, b), axes)


def batch_dot_vjp(ct: Any, out: Any, axes: tuple, a: Any, b: Any) -> tuple:
    """Rule of ``batch_dot``: the batch sum's (``ct`` spread over the batch),
    then the product's.

    >>> import numpy as np
    >>> da, db = batch_dot_vjp(2.0, 11.0, (0,), np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    >>> da.tolist(), db.tolist()
    ([6.0, 8.0], [2.0, 4.0])
    """
    import numpy as np  # only under vmap: importing fmicrograd needs no numpy

    spread = ct + np.zeros(_shape(a, b))
    return spread * b, spread * a


def batch_dot_tangent(n: Prim, ta: Any, tb: Any, on_graph: bool) -> Any:
    """Forward-mode tangent of a ``batch_dot`` node from its inputs'
    tangents (None: no tangent): the product's, summed over the batch.

    >>> import numpy as np
    >>> from fmicrograd.core.expr import const
    >>> n = batch_dot(const(np.array([1.0, 2.0])), const(np.array([3.0, 4.0])), (0,))
    >>> batch_dot_tangent(n, np.array([1.0, 1.0]), None, False)
    7.0
    """
    a, b = n.children
    total = None
    if ta is not None:
        total = (b if on_graph else _value(b)) * ta
    if tb is not None:
        t = (a if on_graph else _value(a)) * tb
        total = t if total is None else total + t
    return sum_tangent(total, _shape(a, b), n.param)


def _shape(a: Any, b: Any) -> tuple:
    import numpy as np

    va = _value(a) if isinstance(a, Expr) else a
    vb = _value(b) if isinstance(b, Expr) else b
    return np.broadcast_shapes(np.shape(va), np.shape(vb))


def dot_cotangents(n: Expr, g: Expr, relevant: dict, parts: dict, last: list | None = None
                   ) -> None:
    """Add the cotangents of the ``dot`` node ``n``'s relevant factors, given
    its cotangent node ``g``, to the graph-building sweep's ``parts`` (one
    list of contributions per node, see ``accumulate``): a fused batch
    contraction for a factor the batch is summed away from, a pending product
    ``(g, other)`` for the others (see the module docstring). ``last``: a
    list the sweep keeps for ``batch_values`` (the factors it stacked last).

    >>> from fmicrograd.core.expr import Var, node
    >>> w, x, g = Var(2.0), Var(3.0), Var(1.5)
    >>> parts = {}
    >>> dot_cotangents(node("dot", 6.0, (w, x)), g, {w: True, x: False}, parts)
    >>> parts[w] == [(g, x)]
    True
    """
    kids = n.children
    half = len(kids) // 2
    depth = DEPTH.get()
    gv = _value(g)
    gnd = _ndim(gv)
    todo: list = []  # (factor, its contribution, or None and the other factor and axes)
    others: list = []  # the other factors of the fused contractions, in order
    for c, other in zip(kids, kids[half:] + kids[:half]):
        if not relevant[c]:
            continue
        vo, vc = _value(other), _value(c)  # ``_ndim`` of both, inlined
        no = 0 if vo.__class__ is float else getattr(vo, "ndim", 0)
        nc = 0 if vc.__class__ is float else getattr(vc, "ndim", 0)
        extra = (gnd if gnd > no else no) - (nc if nc > depth else depth)
        if extra > 0:  # summed over the batch axes ``c`` does not have
            todo.append((c, None, other, _AXES[extra] if extra < 4 else tuple(range(extra))))
            others.append(other)
        else:
            todo.append((c, (g, other), None, None))
    values = batch_values(gv, others, last) if len(others) >= _FEW else None
    for c, item, other, axes in todo:
        if item is None:
            item = batch_dot(g, other, axes) if values is None else \
                prim("batch_dot", next(values), (g, other), axes)
        pending = parts.get(c)
        if pending is None:
            parts[c] = [item]
        else:
            pending.append(item)


def batch_values(gv: Any, others: list, last: list | None = None) -> Any:
    """The values of ``batch_dot(g, o, (0,))`` for each node ``o`` of ``others``
    (an iterator of floats), computed in one array operation, or None unless
    ``gv`` (``g``'s value) and every other value are float64 vectors of one
    length. The same bits as one ``batch_dot`` each: a row's products (``g``
    first), then its sum along the contiguous axis (numpy's pairwise sum, as
    for one vector). ``last`` keeps ``[ids, others, their stacked values, a
    buffer]`` between calls: a layer's neurons share their inputs, stacked once.

    >>> import numpy as np
    >>> from fmicrograd.core.expr import const
    >>> xs = [const(np.arange(3.0) + k) for k in range(2)]
    >>> list(batch_values(np.ones(3), xs))
    [3.0, 6.0]
    """
    import numpy as np

    if isinstance(gv, NoNumbers):  # (a large batch's trace: the values' shapes alone)
        from .shaped import shaped_sums
        return shaped_sums(gv, [_value(o) for o in others])
    if gv.__class__ is not np.ndarray or gv.ndim != 1 or gv.dtype != np.float64:
        return None
    key = tuple(map(id, others))  # identities (``==`` on nodes compares values); ``last``
    if last and last[0] == key:      # holds the nodes, so their ids stay theirs
        stacked, products = last[2], last[3]
    else:
        vs = [_value(o) for o in others]
        shape = gv.shape
        for v in vs:
            if v.__class__ is not np.ndarray or v.shape != shape or v.dtype != np.float64:
                return None
        stacked = np.stack(vs)
        products = None  # (made when first needed: a trace's BLAS product needs none)
        if last is not None:
            last[:] = [key, others, stacked, products]
    if TRACE_VALUES.get() is not None:  # jit's trace: one BLAS product (see control)
        return iter((stacked @ gv).tolist())
    if products is None:
        products = np.empty_like(stacked)  # reused: no fresh pages per neuron
        if last is not None:
            last[3] = products
    return iter(np.multiply(gv, stacked, out=products).sum(axis=1).tolist())


_FEW = 8  # fewer fused contractions than this are computed one by one


_AXES = ((), (0,), (0, 1), (0, 1, 2))


def _ndim(value: Any) -> int:
    return 0 if value.__class__ is float else getattr(value, "ndim", 0)
