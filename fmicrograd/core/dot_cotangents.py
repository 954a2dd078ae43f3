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
from .expr import Expr, Prim, prim
from .expr import stored_value as _value


def batch_dot(a: Expr, b: Expr, axes: tuple) -> Prim:
    """The node ``sum(a * b)`` over the batch ``axes``, the product never kept.

    >>> import numpy as np
    >>> from fmicrograd.core.expr import const
    >>> batch_dot(const(np.ones((2, 3))), const(np.full(3, 2.0)), (0,)).value.tolist()
    [4.0, 4.0, 4.0]
    """
    total = (_value(a) * _value(b)).sum(axis=axes)  # as the batch sum of the product
    return prim("batch_dot", float(total) if total.ndim == 0 else total, (a, b), axes)


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


def dot_cotangents(n: Expr, g: Expr, relevant: dict, parts: dict) -> None:
    """Add the cotangents of the ``dot`` node ``n``'s relevant factors, given
    its cotangent node ``g``, to the graph-building sweep's ``parts`` (one
    list of contributions per node, see ``accumulate``): a fused batch
    contraction for a factor the batch is summed away from, a pending product
    ``(g, other)`` for the others (see the module docstring).

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
    gnd = _ndim(_value(g))
    for c, other in zip(kids, kids[half:] + kids[:half]):
        if not relevant[c]:
            continue
        vo, vc = _value(other), _value(c)  # ``_ndim`` of both, inlined
        no = 0 if vo.__class__ is float else getattr(vo, "ndim", 0)
        nc = 0 if vc.__class__ is float else getattr(vc, "ndim", 0)
        extra = (gnd if gnd > no else no) - (nc if nc > depth else depth)
        if extra > 0:  # summed over the batch axes ``c`` does not have
            item: Any = batch_dot(g, other, _AXES[extra] if extra < 4 else tuple(range(extra)))
        else:
            item = (g, other)
        pending = parts.get(c)
        if pending is None:
            parts[c] = [item]
        else:
            pending.append(item)


_AXES = ((), (0,), (0, 1), (0, 1, 2))


def _ndim(value: Any) -> int:
    return 0 if value.__class__ is float else getattr(value, "ndim", 0)
