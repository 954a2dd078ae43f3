"""Tools to test derivative rules, your own included.

- ``OPS``: every primitive with its torch twin and smooth input domain.
- ``check_grads(f, args, order=...)``: forward and reverse derivatives of any
  order against central differences.
- ``assert_trees_close(actual, expected)``: pytrees compared leaf by leaf.
- ``programs`` and ``dags``: hypothesis strategies drawing random expression
  DAGs that run on floats, ``fm.Expr`` and torch tensors alike.

>>> check_grads(fm.tanh, (0.3,), order=3)
"""

import importlib
from typing import Any

from .check_grads import ATOL, EPS, RTOL, assert_trees_close, check_grads
from .ops import OPS, OpCase

# the strategies need hypothesis (a test dependency): loaded on first use
_STRATEGIES = ("Program", "Dag", "programs", "dags", "op_args", "SMOOTH_OPS")

__all__ = ["OPS", "OpCase", "check_grads", "assert_trees_close", "EPS", "ATOL", "RTOL",
           *_STRATEGIES]


def __getattr__(name: str) -> Any:
    if name in _STRATEGIES:
        return getattr(importlib.import_module(".strategies", __name__), name)
    raise AttributeError(f"module 'fmicrograd.testing' has no attribute {name!r}")
