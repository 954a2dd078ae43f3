"""Nodes that move values along batch axes, for ``vmap``.

Each is a ``"custom"`` node (see ``rules.PARAM_VJP``) whose ``param`` is one of
the small frozen classes below: calling it is the node's VJP rule, ``forward``
recomputes its value from its inputs' values (``fm.jit`` replays graphs with
it) and ``torch`` is the same operation on tensors (``fm.to_torch``).

A cotangent may carry more leading axes than its node (batch axes of an inner
``vmap``, summed away at the inputs by ``batching.reduce_to``), so every rule
keeps ``lead = ct.ndim - out.ndim`` leading axes untouched.

>>> import numpy as np
>>> x = Var(1.0) + np.array([[1.0, 2.0], [3.0, 4.0]])
>>> row = apply(Take(1, 0, (2, 2), (2,)), x)
>>> row.value.tolist(), fm.grad(lambda v: fm.sum([apply(Take(0, 0, (2, 2), ()), v + x)]))(0.0)
([4.0, 5.0], 2.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.batch_axes import DEPTH
from ..core.expr import Expr, const, prim, stored_value
from ..core.placeholder import NoNumbers, scalar
from ..core.shaped import Shaped

__all__ = ["Take", "Put", "Stack", "Reshape", "MoveAxis", "apply", "sum_to"]


def apply(param: Any, *xs: Any) -> Any:
    """``param``'s operation on ``xs``: a node when any input is a non-constant
    node, a constant node for constant nodes, a plain value for values.

    >>> apply(Stack(0), 1.0, 2.0).tolist(), apply(Stack(0), Var(1.0), 2.0).op
    ([1.0, 2.0], 'custom')
    """
    if any(isinstance(x, Expr) and x.op != "const" for x in xs):
        kids = tuple(x if isinstance(x, Expr) else const(x) for x in xs)
        return prim("custom", param.forward(*[stored_value(k) for k in kids]), kids, param)
    values = [x.value if isinstance(x, Expr) else x for x in xs]
    out = param.forward(*values)
    return const(out) if any(isinstance(x, Expr) for x in xs) else out


def _plain(a: Any) -> Any:
    return scalar(a) if getattr(a, "ndim", 0) == 0 else a


def sum_to(a: Any, lead: int, shape: tuple) -> Any:
    """Sum ``a`` (``lead`` leading axes kept) down to trailing ``shape``, the
    inverse of broadcasting ``shape`` up to ``a``'s trailing axes.

    >>> sum_to(np.ones((2, 3)), 0, (3,)).tolist(), sum_to(np.ones((2, 3)), 1, (1,)).tolist()
    ([2.0, 2.0, 2.0], [[3.0], [3.0]])
    """
    a = np.asarray(a)
    tail = a.ndim - lead
    extra = tail - len(shape)
    axes = tuple(range(lead, lead + extra)) + tuple(
        lead + extra + i for i, n in enumerate(shape) if n == 1 and a.shape[lead + extra + i] != 1)
    if axes:
        a = a.sum(axis=axes, keepdims=True)
        a = a.reshape(a.shape[:lead] + tuple(shape))
    return _plain(a)


def _keeping(shape: tuple, tail: tuple) -> tuple:
    """An input's cotangent shape: its own ``shape`` with its trailing axes
    (the enclosing vmaps', where a sweep runs inside them) those of ``tail``,
    one value per example, also where the input has unit axes there (a value
    those vmaps do not map: summing them would add up the examples).

    >>> _keeping((3, 1), (2,)), _keeping((), (2,)), _keeping((3,), ())
    ((3, 2), (2,), (3,))
    """
    return shape[:len(shape) - len(tail)] + tail if len(shape) >= len(tail) else tail


def _per_example(shape: tuple, ct: Any, lead: int) -> tuple:
    """``_keeping`` for a cotangent ``ct`` (its axes after ``lead``): the
    trailing axes of the vmaps the sweep runs in (``DEPTH``)."""
    keep = DEPTH.get()
    full = np.shape(ct.value if isinstance(ct, Expr) else ct)[lead:]
    return _keeping(shape, full[len(full) - keep:] if 0 < keep < len(full) else ())


def _lead(ct: Any, out: Any) -> int:
    value = ct.value if isinstance(ct, Expr) else ct
    done = out.value if isinstance(out, Expr) else out
    return max(np.ndim(value) - np.ndim(done), 0)


@dataclass(frozen=True)
class Take:
    """``x[index]`` along axis ``lead``, of an ``x`` shaped ``full`` after its
    ``lead`` axes (broadcast up to it first), summed down to ``shape``.

    >>> Take(1, 0, (2, 3), (3,)).forward(np.arange(6.0).reshape(2, 3)).tolist()
    [3.0, 4.0, 5.0]
    """

    linear = True  # forward mode applies the op to tangents (sweep.forward)
    selects = True  # its derivative reaches one example of its input (core.reach)

    index: int
    lead: int
    full: tuple
    shape: tuple

    def forward(self, x: Any) -> Any:
        x = np.asarray(x)
        full, shape = self.full, self.shape
        wide = np.broadcast_shapes(full[1:], x.shape[self.lead + 1:])
        if wide != full[1:]:  # more per-example values than the take was built for (the
            full = full[:1] + wide  # tangents of a vmap over jvp's tangents): kept
            shape = np.broadcast_shapes(shape, wide)
        x = np.broadcast_to(x, x.shape[:self.lead] + full)
        return sum_to(x[(slice(None),) * self.lead + (self.index,)], self.lead, shape)

    def __call__(self, ct: Any, out: Any, x: Any) -> tuple:
        lead = self.lead + _lead(ct, out)
        # the cotangent may hold one value per example of an enclosing vmap where
        # the example has a unit axis (a vmap result indexed inside a vmap that
        # leaves it alone): the input's cotangent keeps those axes, as ``Stack``'s
        tail = np.shape(ct.value if isinstance(ct, Expr) else ct)[lead:]
        full = self.full
        try:
            full = full[:1] + np.broadcast_shapes(full[1:], tail)
        except ValueError:  # (not broadcastable: ``Put`` names the shapes)
            pass
        return (apply(Put(self.index, lead, full), ct),)

    def torch(self, t: Any, x: Any) -> Any:
        x = x.expand(tuple(x.shape[:self.lead]) + self.full)
        y = x.select(self.lead, self.index)
        return _torch_sum_to(y, self.lead, self.shape)


@dataclass(frozen=True)
class Put:
    """Zeros shaped ``full`` (after ``lead`` leading axes) holding ``c`` at
    ``index``: the transpose of ``Take``.

    >>> Put(1, 0, (3,)).forward(5.0).tolist()
    [0.0, 5.0, 0.0]
    """

    linear = True  # forward mode applies the op to tangents (sweep.forward)
    selects = True  # its tangent lives on one example of its output (core.reach)

    index: int
    lead: int
    full: tuple

    def forward(self, c: Any) -> Any:
        c = np.asarray(c)
        z = np.zeros(c.shape[:self.lead] + self.full)
        z[(slice(None),) * self.lead + (self.index,)] = c
        return z

    def __call__(self, ct: Any, out: Any, c: Any) -> tuple:
        lead = self.lead + _lead(ct, out)
        shape = np.shape(c.value if isinstance(c, Expr) else c)[self.lead:]
        return (apply(Take(self.index, lead, self.full, _per_example(shape, ct, lead)), ct),)

    def torch(self, t: Any, c: Any) -> Any:
        lead_shape = tuple(c.shape[:self.lead])
        row = c.expand(lead_shape + self.full[1:])
        zero = t.zeros_like(row)
        return t.stack([row if i == self.index else zero for i in range(self.full[0])],
                       dim=self.lead)


@dataclass(frozen=True)
class Stack:
    """Its inputs broadcast together, padded with leading unit axes to
    ``ndim`` axes and stacked on a new leading axis.

    >>> Stack(1).forward(1.0, np.array([2.0, 3.0])).tolist()
    [[1.0, 1.0], [2.0, 3.0]]
    """

    linear = True  # forward mode applies the op to tangents (sweep.forward)

    ndim: int

    def forward(self, *xs: Any) -> Any:
        if xs and all(x.__class__ is float for x in xs):  # jit's traced inputs, at once
            return np.array(xs).reshape((len(xs),) + (1,) * self.ndim)
        common = np.broadcast_shapes(*[np.shape(x) for x in xs])
        common = (1,) * (self.ndim - len(common)) + common
        if any(isinstance(x, NoNumbers) for x in xs):  # (a trace without the batch's
            # numbers, ``core/shaped.py``: an optimizer's update over its gradients)
            return Shaped((len(xs),) + common)
        return np.stack([np.broadcast_to(x, common) for x in xs])

    def __call__(self, ct: Any, out: Any, *xs: Any) -> list:
        lead = _lead(ct, out)
        # the cotangent may hold one value per example of an enclosing vmap where the
        # stack (of inputs that vmap does not map) has a unit axis: ``vmap(grad(f))``
        # with ``f`` stacking an argument the outer vmap leaves alone. Each input's
        # cotangent then keeps those trailing axes, as ``batching.reduce_to`` does.
        full = np.broadcast_shapes(np.shape(out.value if isinstance(out, Expr) else out),
                                   np.shape(ct.value if isinstance(ct, Expr) else ct)[lead:])
        keep = DEPTH.get()
        tail = full[len(full) - keep:] if 0 < keep < len(full) else ()
        takes = []
        for i, x in enumerate(xs):
            shape = np.shape(x.value if isinstance(x, Expr) else x)
            # the enclosing vmaps' axes (trailing) are the cotangent's, example by example,
            # also where the input has unit axes there (a value those vmaps do not map)
            takes.append(apply(Take(i, lead, full, _keeping(shape, tail)), ct))
        return takes

    def torch(self, t: Any, *xs: Any) -> Any:
        xs = t.broadcast_tensors(*[t.as_tensor(x) for x in xs])
        common = tuple(xs[0].shape)
        common = (1,) * (self.ndim - len(common)) + common
        return t.stack([x.reshape(common) for x in xs])


@dataclass(frozen=True)
class Reshape:
    """``x`` reshaped from ``before`` to ``after`` (kept leading axes aside).

    >>> Reshape((2,), (2, 1)).forward(np.ones(2)).shape
    (2, 1)
    """

    linear = True  # forward mode applies the op to tangents (sweep.forward)

    before: tuple
    after: tuple

    def forward(self, x: Any) -> Any:
        x = np.asarray(x)
        return x.reshape(x.shape[:x.ndim - len(self.before)] + self.after)

    def __call__(self, ct: Any, out: Any, x: Any) -> tuple:
        ct = _whole(ct, self.after)
        # the cotangent may hold one value per example of a vmap that a unit axis
        # of ``after`` stands for (a vmap result mapped again inside a vmap that
        # leaves it alone): the input is the same on those examples, so its
        # cotangent is their sum. The last ``DEPTH`` axes (the examples of the
        # vmaps enclosing the sweep, ``vmap(grad(f))``) stay apart.
        lead = _lead(ct, out)
        shape = np.shape(ct.value if isinstance(ct, Expr) else ct)[lead:]
        keep = len(self.after) - DEPTH.get()
        axes = [k for k, (n, m) in enumerate(zip(self.after, shape))
                if n == 1 and m != 1 and k < keep]
        for k in reversed(axes):
            ct = _sum_axis(ct, lead + k)
        after = tuple(m for k, m in enumerate(shape) if k not in axes)
        # a kept axis where the input has a unit one keeps its values, as ``Stack``'s
        before = list(self.before)
        for j in range(1, min(len(self.after) - keep, len(before)) + 1):
            if before[-j] == 1:
                before[-j] = after[-j]
        return (apply(Reshape(after, tuple(before)), ct),)

    def torch(self, t: Any, x: Any) -> Any:
        return x.reshape(tuple(x.shape[:x.dim() - len(self.before)]) + self.after)


def _sum_axis(ct: Any, axis: int) -> Any:
    """``ct`` summed over ``axis`` (moved first, so that ``batch_sum``'s rule
    broadcasts it back).

    >>> _sum_axis(np.ones((2, 3)), 1).tolist()
    [3.0, 3.0]
    """
    if not isinstance(ct, Expr):
        return _plain(np.asarray(ct).sum(axis=axis))
    if axis:
        ct = apply(MoveAxis(axis, 0), ct)
    if ct.op == "const":
        return const(_plain(ct.value.sum(axis=0)))
    return prim("batch_sum", _plain(ct.value.sum(axis=0)), (ct,), (0,))


@dataclass(frozen=True)
class MoveAxis:
    """``x``'s axis ``src`` moved to ``dst`` (both counted after ``lead`` axes).

    >>> MoveAxis(0, 1).forward(np.zeros((2, 3))).shape
    (3, 2)
    """

    linear = True  # forward mode applies the op to tangents (sweep.forward)

    src: int
    dst: int
    lead: int = 0

    def forward(self, x: Any) -> Any:
        return np.moveaxis(np.asarray(x), self.lead + self.src, self.lead + self.dst)

    def __call__(self, ct: Any, out: Any, x: Any) -> tuple:
        whole = _whole(ct, np.shape(out.value if isinstance(out, Expr) else out))
        return (apply(MoveAxis(self.dst, self.src, self.lead + _lead(whole, out)), whole),)

    def torch(self, t: Any, x: Any) -> Any:
        return t.movedim(x, self.lead + self.src, self.lead + self.dst)


def _whole(ct: Any, shape: tuple) -> Any:
    """``ct`` broadcast up to trailing ``shape`` (a rule may pass a smaller one)."""
    value = ct.value if isinstance(ct, Expr) else ct
    if np.shape(value)[-len(shape) or len(np.shape(value)):] == shape:
        return ct
    return ct + np.zeros(shape)


def _torch_sum_to(y: Any, lead: int, shape: tuple) -> Any:
    extra = y.dim() - lead - len(shape)
    axes = list(range(lead, lead + extra)) + [
        lead + extra + i for i, n in enumerate(shape) if n == 1 and y.shape[lead + extra + i] != 1]
    if axes:
        y = y.sum(dim=axes, keepdim=True)
        y = y.reshape(tuple(y.shape[:lead]) + tuple(shape))
    return y
