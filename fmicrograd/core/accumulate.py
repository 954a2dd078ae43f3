"""Cotangent sums that a graph-building reverse sweep turns into few nodes.

When the reverse sweep builds the gradient as a graph (inside another
transform), each node's cotangent is the sum of its contributions, one per
use. Added up one at a time, as the float sweep does, ``k`` contributions
cost ``k - 1`` binary ``+`` nodes, and each product ``ct * y`` that the rules
of ``*`` and ``dot`` send down is a node of its own. Here the contributions
of a node are collected first (a ``Parts`` list) and built once, when the
sweep reaches the node:

- a product ``ct * y`` is kept as the pair ``(ct, y)`` until then, and a run
  of pairs at the front becomes one n-ary ``dot`` node;
- the rest becomes one n-ary ``sum`` node over the terms, in arrival order.

Both are exact: the node's value is the left-to-right sum of the same
floats in the same order as the chain of ``+`` it replaces (products are
commutative in IEEE arithmetic), and ``dot`` and ``sum`` have the derivatives
of the chain at every order. Only the node count changes (the enclosing
sweeps then visit fewer nodes). A plain ``-0.0`` term next to others is
dropped (it changes no sum); a ``0.0`` is kept, as it turns a ``-0.0`` sum
into ``0.0`` (a zero slope, such as ``sign``'s, beside a ``-0.0`` one: torch's
and the float sweep's ``0.0``).

>>> from fmicrograd.core.expr import Var
>>> x, y, g = Var(2.0), Var(3.0), Var(0.5)
>>> parts: Parts = []
>>> add_product(parts, g, y); add_product(parts, g, x)
>>> s = total(parts)
>>> s.op, s.value, len(s.children)
('dot', 2.5, 4)
"""

from __future__ import annotations

import math
from itertools import chain
from operator import mul
from typing import Any

from .control import TRACE_VALUES
from .expr import Expr, lift, node
from .expr import stored_value as _value

__all__ = ["Parts", "add_product", "float_valued", "total", "products_sum"]

Parts = list  # a node's contributions: terms (floats, nodes, arrays) and (ct, y) pairs


def add_product(parts: Parts, ct: Any, y: Any) -> None:
    """Record the contribution ``ct * y``: as the pair ``(ct, y)`` when both
    are float-valued and one is a node, so that it is built later, in a
    ``dot``; otherwise as the product (a factor ``1.0`` gives the other
    factor itself, as ``Expr.__mul__`` does).

    >>> parts: Parts = []
    >>> add_product(parts, 1.0, Var(4.0)); add_product(parts, 2.0, 3.0)
    >>> parts[0].value, parts[1]
    (4.0, 6.0)
    """
    if ct.__class__ is float and ct == 1.0:
        parts.append(y)
    elif y.__class__ is float and y == 1.0:
        parts.append(ct)
    elif (float_valued(ct) and float_valued(y)
          and (ct.__class__ is not float or y.__class__ is not float)):
        parts.append((ct, y))
    else:
        parts.append(ct * y)


def float_valued(x: Any) -> bool:
    """A float, or a node holding one (not an array: a ``vmap`` batch).

    >>> float_valued(2.0), float_valued(Var(2.0)), float_valued([2.0])
    (True, True, False)
    """
    return x.__class__ is float or (isinstance(x, Expr) and _value(x).__class__ is float)


def _product(ct: Any, y: Expr) -> Any:
    return ct * y  # the operator: the node ``*`` would have built


def _fold(values: list) -> Any:
    """Left-to-right sum from the first value, as a chain of ``+`` adds them."""
    acc = values[0]
    for v in values[1:]:
        acc = acc + v
    return acc


def _dot(pairs: list, consts: dict | None) -> Expr:
    if not all(isinstance(ct, Expr) and isinstance(y, Expr) for ct, y in pairs):
        # a float factor (a cotangent, a tangent): a constant leaf
        pairs = [(_lift(ct, consts), _lift(y, consts)) for ct, y in pairs]
    kids = tuple([ct for ct, _ in pairs] + [y for _, y in pairs])
    half = len(pairs)
    return node("dot", products_sum(list(map(_value, kids[:half])),
                                    list(map(_value, kids[half:]))), kids)


def products_sum(xs: list, ys: list, start: Any = None) -> Any:
    """``sum(map(mul, xs, ys), start)`` (``_fold`` of the products when
    ``start`` is None), on values. Where every product is a float64 array of
    the first one's shape (a layer over a ``vmap`` batch), each is written
    into one buffer and added in place: the same roundings in the same order,
    without a fresh array per product (which, over a large batch, left the
    cache).

    >>> import numpy as np
    >>> products_sum([np.array([1.0, 2.0]), 0.5], [3.0, np.array([4.0, 6.0])]).tolist()
    [5.0, 9.0]
    >>> products_sum([2.0, 3.0], [4.0, 5.0], 0.0)
    23.0
    """
    if len(xs) >= 3 and (xs[0].__class__ is not float or ys[0].__class__ is not float) and \
            (start is None or start.__class__ is float):  # (floats, the usual case: below)
        cache = TRACE_VALUES.get()
        if cache is not None and len(xs) >= _MANY:
            fast = _matrix_vector(xs, ys, start, cache)
            if fast is not None:
                return fast
        fused = _in_place(xs, ys, start)
        if fused is not None:
            return fused
    if start is None:
        return _fold([a * b for a, b in zip(xs, ys)])
    return sum(map(mul, xs, ys), start)


def _in_place(xs: list, ys: list, start: float | None) -> Any:
    import numpy as np  # (only here: arrays exist, so numpy is loaded)

    acc = xs[0] * ys[0]
    if acc.__class__ is not np.ndarray or acc.dtype != np.float64:
        return None
    shape, ndarray, float64 = acc.shape, np.ndarray, acc.dtype
    for v in chain(xs, ys):
        if v.__class__ is not float and (v.__class__ is not ndarray or v.shape != shape
                                         or v.dtype != float64):
            return None
    if start is not None and _adds_something(start):
        np.add(acc, start, out=acc)
    buffer, multiply, add = np.empty_like(acc), np.multiply, np.add
    for a, b in zip(xs[1:], ys[1:]):
        multiply(a, b, out=buffer)
        add(acc, buffer, out=acc)
    return acc


_MANY = 8  # fewer terms are summed as below even while jit traces
_LONG = 256  # and so are shorter arrays


def _matrix_vector(xs: list, ys: list, start: float | None, cache: list) -> Any:
    """While ``jit`` traces (``control.TRACE_VALUES``): the sum of products
    of floats and same-length float64 vectors (a layer's neurons over a
    ``vmap`` batch, forward or backward) as one BLAS matrix-vector product,
    the vectors stacked once for every neuron that shares them (``cache``
    keeps the last stack). Its last bits differ from the eager sum's; a
    trace's values give no result. None where the terms are of another kind."""
    import numpy as np

    if xs[0].__class__ is float:
        floats, arrays = xs, ys
    else:
        floats, arrays = ys, xs
    first = arrays[0]
    if first.__class__ is not np.ndarray or first.ndim != 1 or len(first) < _LONG or \
            first.dtype != np.float64:
        return None
    if any(f.__class__ is not float for f in floats):
        return None
    key = tuple(map(id, arrays))
    if cache[0] is not None and cache[0][0] == key:
        stacked = cache[0][2]
    else:
        shape = first.shape
        if any(a.__class__ is not np.ndarray or a.shape != shape or a.dtype != np.float64
               for a in arrays):
            return None
        stacked = np.stack(arrays)
        cache[0] = (key, arrays, stacked)  # (the arrays held, so their ids stay theirs)
    out = np.array(floats) @ stacked
    if start is not None and _adds_something(start):
        np.add(out, start, out=out)
    return out


def _adds_something(start: float) -> bool:
    """Whether a sum's ``start`` changes it: not -0.0 (``x + -0.0`` is ``x``,
    bit for bit: ``fm.dot`` sums from it).

    >>> _adds_something(-0.0), _adds_something(0.0)
    (False, True)
    """
    return start != 0.0 or math.copysign(1.0, start) > 0.0


def _lift(x: Any, consts: dict | None) -> Expr:
    """``x`` as a constant leaf, the same leaf each time within one sweep
    (``consts``, keyed by identity, holds ``x`` so that its id stays its own)."""
    if isinstance(x, Expr):
        return x
    if consts is None:
        return lift(x)
    hit = consts.get(id(x))
    if hit is None:
        hit = consts[id(x)] = (x, lift(x))
    return hit[1]


def total(parts: Parts, consts: dict | None = None) -> Any:
    """The sum of ``parts`` in arrival order, with at most two new nodes: a
    ``dot`` for the products at the front and a ``sum`` over the rest. A
    float factor of a product is lifted to a constant leaf through
    ``consts`` (a dict a sweep keeps), so that its uses share one leaf.

    >>> x = Var(1.5)
    >>> total([x]) is x, total([x, -0.0]) is x, total([x, 0.0]).op
    (True, True, 'sum')
    >>> s = total([x, 2.0, x])
    >>> s.op, s.value
    ('sum', 5.0)
    """
    if len(parts) == 1:
        p = parts[0]
        return _product(*p) if p.__class__ is tuple else p
    if isinstance(parts[0], Expr):  # no product in front: a sum of nodes, the usual case
        nodes: list = []
        acc: Any = None
        last: Any = None  # the last product built, and its pair
        for p in parts:
            if p.__class__ is tuple:
                ct, y = p
                if last is not None and ct is last[1] and y is last[2]:
                    nodes.append(last[0])  # the same product again (``x`` in ``dot(x, x)``)
                    v = _value(last[0])
                else:
                    if not (isinstance(ct, Expr) and isinstance(y, Expr)):
                        break
                    v = _value(ct) * _value(y)
                    last = (node("*", v, p), ct, y)  # ``ct * y``, inlined
                    nodes.append(last[0])
            elif isinstance(p, Expr):
                nodes.append(p)
                v = _value(p)
            else:
                break
            acc = v if acc is None else acc + v  # the left-to-right sum, as ``_fold``
        else:
            return node("sum", acc, tuple(nodes))
    k = 0  # the products in front
    while k < len(parts) and parts[k].__class__ is tuple:
        k += 1
    if k == len(parts):
        return _dot(parts, consts)
    terms: list = [_dot(parts[:k], consts)] if k > 1 else []
    for p in parts[k if k > 1 else 0:]:
        if p.__class__ is tuple:
            ct, y = p
            if isinstance(ct, Expr) and isinstance(y, Expr):  # ``ct * y``, inlined
                terms.append(node("*", _value(ct) * _value(y), p))
            else:
                terms.append(_product(ct, y))
        elif not (p.__class__ is float and p == 0.0 and math.copysign(1.0, p) < 0):
            terms.append(p)  # (a -0.0 is the identity; a 0.0 turns a -0.0 sum into 0.0)
    if not terms:
        return 0.0
    if len(terms) == 1:
        return terms[0]
    for t in terms:
        if isinstance(t, Expr):
            break
    else:
        return _fold(terms)
    kids = tuple([t if isinstance(t, Expr) else lift(t) for t in terms])
    return node("sum", _fold([_value(k) for k in kids]), kids)
