"""Tools to test derivative rules, your own included.

- ``OPS``: every primitive with its torch twin and smooth input domain.
- ``check_grads(f, args, order=...)``: forward and reverse derivatives of any
  order against central differences.
- ``assert_trees_close(actual, expected)``: pytrees compared leaf by leaf.
- ``programs`` and ``dags``: hypothesis strategies drawing random expression
  DAGs that run on floats, ``fm.Expr`` and torch tensors alike, over ``OPS``
  or your own ops (``ops={"name": OpCase(...)}``).
- ``check_op(fm_fn, torch_fn, arity=..., domain=..., order=...)``: your own op
  or rule against torch float64, values and derivatives, on hypothesis inputs.

>>> fm.testing.check_grads(fm.tanh, (0.3,), order=3)
"""

import importlib
from typing import Any

from .check_grads import ATOL, EPS, RTOL, assert_trees_close, check_grads
from .ops import OPS, OpCase

# the strategies need hypothesis (a test dependency): loaded on first use
_STRATEGIES = ("Program", "Dag", "programs", "dags", "op_args", "SMOOTH_OPS")
_LAZY = {**dict.fromkeys(_STRATEGIES, ".strategies"), "check_op": ".op_check"}

__all__ = ["OPS", "OpCase", "check_grads", "assert_trees_close", "EPS", "ATOL", "RTOL",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'fmicrograd.testing' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the lazy strategies and ``check_op`` included."""
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})
