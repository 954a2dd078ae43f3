"""Batch-axis helpers shared by the sweeps and ``vmap``.

Under ``vmap`` a node's value is a numpy array whose leading axes are batch
axes (the innermost ``vmap`` first). A cotangent that reaches an unbatched
input must be summed over the batch axes it gained.

>>> import numpy as np
>>> reduce_to(np.array([1.0, 2.0, 3.0]), 0.5)
6.0
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from typing import Any

from .expr import Expr, prim
from .placeholder import scalar

# How many ``vmap`` calls enclose the running code (set by ``vmap`` for the
# duration of its call). A sweep that runs inside them keeps their batch axes,
# the trailing ones: its inputs are per-example values (``vmap(grad(f))``).
DEPTH: ContextVar[int] = ContextVar("fmicrograd_vmap_depth", default=0)
# The per-example input leaves of every running ``vmap`` call, one tuple per call: a
# ``jit`` traced inside one must not compile them in as constants (a function that
# reads them from a closure runs uncompiled, as with a ``grad``'s variable).
BATCHES: ContextVar[tuple] = ContextVar("fmicrograd_vmap_batches", default=())


class at_depth:  # noqa: N801 -- used as a function: ``with at_depth(depth):``
    """Run the ``with`` block at ``vmap`` depth ``depth`` (None: leave it as
    it is), for code that runs later than its call (a VJP during the sweep)
    but must see the batch axes of the call as per-example ones.

    >>> with at_depth(2):
    ...     DEPTH.get()
    2
    >>> DEPTH.get()
    0
    """

    def __init__(self, depth: int | None) -> None:
        self.depth = depth

    def __enter__(self) -> None:
        self.token = DEPTH.get()  # (set again at the end: see ``control.running``)
        if self.depth is not None:
            try:
                DEPTH.set(self.depth)
            except BaseException:
                DEPTH.set(self.token)
                raise

    def __exit__(self, *exc: Any) -> None:
        DEPTH.set(self.token)


def _extra_axes(ndim: int, like: Any) -> tuple:
    """The leading axes of a value with ``ndim`` axes that ``like`` (a value)
    does not have, the per-example axes of an enclosing ``vmap`` kept.

    >>> import numpy as np
    >>> _extra_axes(2, np.zeros(3)), _extra_axes(1, 0.0), _extra_axes(0, 0.0)
    ((0,), (0,), ())
    """
    extra = ndim - max(getattr(like, "ndim", 0), DEPTH.get())
    return tuple(range(max(extra, 0)))


def reduce_to(ct: Any, like: Any) -> Any:
    """Sum ``ct`` over the leading axes that ``like`` does not have.

    >>> import numpy as np
    >>> reduce_to(np.ones((3, 2)), np.zeros(2)).tolist()
    [3.0, 3.0]
    """
    if isinstance(ct, Expr):
        axes = _extra_axes(getattr(ct.value, "ndim", 0), like)
        if not axes:
            return ct
        return prim("batch_sum", _sum_axes(ct.value, axes), (ct,), axes)
    axes = _extra_axes(getattr(ct, "ndim", 0), like)
    if not axes:
        return ct
    return _sum_axes(ct, axes)


def _sum_axes(value: Any, axes: tuple) -> Any:
    total = value.sum(axis=axes)
    return scalar(total) if getattr(total, "ndim", 0) == 0 else total


def linear_tangent(n: Any, tangents: list) -> Any:
    """Forward-mode tangent of a node that moves values along batch axes
    (``batch_sum``, or a ``batching.vmap_ops`` op): the op applied to its
    inputs' tangents, zeros standing in for inputs without one.

    >>> import numpy as np
    >>> from fmicrograd.core.expr import const
    >>> s = prim("batch_sum", 3.0, (const(np.ones(3)),), (0,))
    >>> linear_tangent(s, [np.array([1.0, 0.0, 2.0])]), linear_tangent(s, [2.0])
    (3.0, 6.0)
    """
    import numpy as np

    if n.op == "batch_sum":
        (t,) = tangents
        return sum_tangent(t, np.shape(n.children[0].value), n.param)
    ts = [_like(t, np.shape(c.value)) for c, t in zip(n.children, tangents)]
    from ..batching.vmap_ops import apply

    return apply(n.param, *ts)


def sum_tangent(t: Any, shape: tuple, axes: tuple) -> Any:
    """Tangent of a batch sum over ``axes`` of a value of ``shape``, given the
    tangent ``t`` of that value (None: zero).

    >>> import numpy as np
    >>> sum_tangent(np.array([1.0, 2.0]), (2,), (0,)), sum_tangent(1.5, (2,), (0,))
    (3.0, 3.0)
    """
    import numpy as np

    t = _like(t, shape)
    if isinstance(t, Expr):
        return prim("batch_sum", _sum_axes(t.value, axes), (t,), axes)
    return _sum_axes(np.asarray(t), axes) if np.ndim(t) else t


def _like(t: Any, shape: tuple) -> Any:
    """Tangent ``t`` broadcast up to its primal's ``shape`` (zeros for None)."""
    import numpy as np

    if t is None:
        return np.zeros(shape)
    value = t.value if isinstance(t, Expr) else t
    if np.ndim(value) >= len(shape):
        return t
    return t + np.zeros(shape) if isinstance(t, Expr) else np.broadcast_to(t, shape) + 0.0


def batch_sum_vjp(ct: Any, out: Any, axes: tuple, a: Any) -> tuple:
    """Rule of the ``batch_sum`` node: broadcast the cotangent back over the
    summed batch axes.

    >>> import numpy as np
    >>> batch_sum_vjp(2.0, 6.0, (0,), np.ones(3))[0].tolist()
    [2.0, 2.0, 2.0]
    """
    # the input had more (batch) axes than the output: broadcast back
    shape = (a.value if isinstance(a, Expr) else a).shape
    import numpy as np

    return (ct + np.zeros(shape),)


def batch_valued(x: Any) -> bool:
    """Whether ``x`` is a float array holding one value per example of the
    running ``vmap``s (the batch shape of their mapped values): a value an
    inner transform computed per example without reaching a variable.

    >>> import numpy as np
    >>> batch_valued(np.zeros(3))
    False
    """
    np = sys.modules.get("numpy")  # (no array exists before numpy is imported)
    if np is None or x.__class__ is not np.ndarray or x.dtype.kind != "f" or \
            not 0 < x.ndim <= DEPTH.get():
        return False
    shapes = [np.shape(getattr(v, "value", v)) for level in BATCHES.get() for v in level]
    try:
        batch = np.broadcast_shapes(*shapes) if shapes else ()
        return bool(batch) and np.broadcast_shapes(x.shape, batch) == batch
    except ValueError:  # (shapes that do not broadcast: not the batch's)
        return False
