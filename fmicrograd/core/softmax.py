"""Stable reductions over a sequence: ``logsumexp``, ``softmax``, ``log_softmax``.

Each is composed from primitives, as torch computes it: the inputs are
shifted by their maximum ``m`` (a constant for differentiation, and 0 when
it is infinite) before ``exp``, so large inputs never overflow, and the
derivatives are exactly those of the formula without the shift.

>>> logsumexp([1000.0, 1000.0]) == 1000.0 + math.log(2.0)
True
>>> [round(p, 4) for p in softmax([0.0, math.log(3.0)])]
[0.25, 0.75]
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from . import functions as F

__all__ = ["logsumexp", "softmax", "log_softmax"]


def _items(xs: Iterable, who: str) -> tuple:
    items = F._items(xs, who)
    if not items:
        raise ValueError(f"fm.{who} of an empty sequence; pass at least one value")
    # numbers in float64 (a float32's ``x - m`` rounds in float32), as Python floats
    return tuple(x if x.__class__ is float else F._float(x, who) for x in items)


def _shifted(items: tuple, finite: bool) -> tuple[tuple, Any]:
    """``items`` minus their maximum ``m`` (without derivative), and ``m``. With
    ``finite``, an infinite ``m`` is not subtracted, as in torch's logsumexp
    (its softmax does: an infinite input gives nan there): a ``-inf`` one
    (every item ``-inf``) is replaced by 0, a ``+inf`` one by the largest
    finite item (0 if there is none), so that a finite item's weight in the
    derivative is ``exp(x - big) / inf``, 0, as torch's ``exp(x - inf)`` (with
    0 for it, ``exp(1000.0)`` overflowed: ``inf / inf`` was nan)."""
    m = items[0]
    for x in items[1:]:
        m = F.maximum(m, x)
    m = F.stop_gradient(m)
    if finite:
        big: Any = -math.inf  # the largest finite item
        for x in items:
            big = F.maximum(big, F.where(F.less(abs(x), math.inf), x, -math.inf))
        big = F.stop_gradient(F.where(F.less(abs(big), math.inf), big, 0.0))
        m = F.where(F.greater_equal(abs(m), math.inf), F.where(F.greater(m, 0.0), big, 0.0), m)
    return tuple(x - m for x in items), m


def logsumexp(xs: Iterable) -> Any:
    """``log(sum(exp(x) for x in xs))`` without overflow; derivative ``softmax(xs)``.

    >>> import math
    >>> fm.logsumexp([0.0, 0.0]) == math.log(2.0), fm.logsumexp([1e308, 1e308]) < math.inf
    (True, True)
    """
    shifted, m = _shifted(_items(xs, "logsumexp"), finite=True)
    return F.log(F.sum([F.exp(z) for z in shifted])) + m


def softmax(xs: Iterable) -> tuple:
    """``exp(x) / sum(exp(x))`` for each item, as a tuple, without overflow.

    >>> fm.softmax([1000.0, 1000.0])
    (0.5, 0.5)
    """
    shifted, _ = _shifted(_items(xs, "softmax"), finite=False)
    exps = [F.exp(z) for z in shifted]
    total = F.sum(exps)
    return tuple(F.div(e, total) for e in exps)


def log_softmax(xs: Iterable) -> tuple:
    """``x - logsumexp(xs)`` for each item, as a tuple, computed stably.

    >>> import math
    >>> [round(v, 6) for v in fm.log_softmax([0.0, 0.0])] == [round(-math.log(2.0), 6)] * 2
    True
    """
    shifted, _ = _shifted(_items(xs, "log_softmax"), finite=False)
    log_total = F.log(F.sum([F.exp(z) for z in shifted]))
    return tuple(z - log_total for z in shifted)
