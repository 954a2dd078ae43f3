"""``assert_trees_close``: compare two pytrees of numbers leaf by leaf.

>>> assert_trees_close({"a": (1.0, 2.0)}, {"a": (1.0, 2.0 + 1e-15)})
>>> assert_trees_close((1.0, 2.0), (1.0, 2.5))
Traceback (most recent call last):
    ...
AssertionError: trees differ at [1]: got 2.0, expected 2.5 (|diff| 0.5 > tolerance 2.5e-12)
"""

from __future__ import annotations

import math
from typing import Any

from .. import tree as tr
from ..expr import Expr

__all__ = ["assert_trees_close"]


def assert_trees_close(actual: Any, expected: Any, rtol: float = 1e-12,
                       atol: float = 0.0) -> None:
    """Assert same structure (a dict matches a ``PMap``, a list a ``PVector``)
    and ``|a - e| <= atol + rtol * |e|`` at every leaf; NaNs must match NaNs.
    ``Expr`` leaves compare by value. The error names the worst leaf's path.

    >>> assert_trees_close(fm.grad(lambda p: p["w"] ** 2)({"w": 3.0}), {"w": 6.0})
    """
    got, got_paths, got_def = tr.flatten_with_paths(actual)
    want, _, want_def = tr.flatten_with_paths(expected)
    tr.check_same(tr.persistent(got_def), tr.persistent(want_def), "assert_trees_close")
    worst = None
    for a, e, path in zip(got, want, got_paths):
        a, e = _float(a), _float(e)
        tol = atol + rtol * abs(e)
        if math.isnan(a) or math.isnan(e):
            score = 0.0 if math.isnan(a) and math.isnan(e) else math.inf
        elif a == e:  # equal infinities too
            score = 0.0
        else:
            score = abs(a - e) / tol if tol > 0 else math.inf
        if score > 1.0 and (worst is None or score > worst[0]):
            worst = (score, path, a, e, tol)
    if worst is not None:
        _, path, a, e, tol = worst
        raise AssertionError(f"trees differ at {tr.keystr(path)}: got {a!r}, expected {e!r} "
                             f"(|diff| {abs(a - e):.6g} > tolerance {tol:.6g})")


def _float(x: Any) -> float:
    return float(x.value if isinstance(x, Expr) else x)
