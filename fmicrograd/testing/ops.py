"""Every primitive with its fmicrograd entry point, its torch twin and the
input domain where it is smooth: the table the rule tests iterate over.

>>> case = OPS["log"]
>>> case.call(2.0) == fm.log(2.0), case.domain
(True, ((0.05, 20.0),))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ..core import functions as F
from ..core.torch_ops import TORCH


class OpCase(NamedTuple):
    """One primitive: ``call(*args)`` applies it to floats or Exprs; ``torch(t, *args)`` is the
    reference; ``domain`` gives one ``(lo, hi)`` interval per input (n-ary ops: per item);
    ``kinks`` are points where the op is not differentiable (finite differences avoid them)."""

    op: str
    call: Callable[..., Any]
    torch: Callable[..., Any]
    domain: tuple[tuple[float, float], ...]
    kinks: tuple[float, ...] = ()


_R = (-4.0, 4.0)
_POS = (0.05, 20.0)

OPS: dict[str, OpCase] = {c.op: c for c in [
    OpCase("+", lambda a, b: a + b, TORCH["+"], (_R, _R)),
    OpCase("-", lambda a, b: a - b, TORCH["-"], (_R, _R)),
    OpCase("*", lambda a, b: a * b, TORCH["*"], (_R, _R)),
    OpCase("/", F.div, TORCH["/"], (_R, (0.25, 4.0))),
    # the exponent interval is off-centre so that random graphs, which map 0 to its
    # middle, do not land on exponent 0, where torch's second derivative is wrong
    OpCase("**", F.power, TORCH["**"], ((0.1, 4.0), (-2.5, 2.7))),
    OpCase("neg", lambda a: -a, TORCH["neg"], (_R,)),
    OpCase("abs", lambda a: abs(a), TORCH["abs"], (_R,), (0.0,)),
    OpCase("exp", F.exp, TORCH["exp"], ((-6.0, 6.0),)),
    OpCase("log", F.log, TORCH["log"], (_POS,)),
    OpCase("sqrt", F.sqrt, TORCH["sqrt"], (_POS,)),
    OpCase("tanh", F.tanh, TORCH["tanh"], (_R,)),
    OpCase("sigmoid", F.sigmoid, TORCH["sigmoid"], ((-8.0, 8.0),)),
    OpCase("relu", F.relu, TORCH["relu"], (_R,), (0.0,)),
    OpCase("sin", F.sin, TORCH["sin"], ((-6.0, 6.0),)),
    OpCase("cos", F.cos, TORCH["cos"], ((-6.0, 6.0),)),
    OpCase("maximum", F.maximum, TORCH["maximum"], (_R, _R)),
    OpCase("minimum", F.minimum, TORCH["minimum"], (_R, _R)),
    OpCase("sum", lambda *xs: F.sum(xs), TORCH["sum"], (_R, _R, _R)),
    OpCase("mean", lambda *xs: F.mean(xs), TORCH["mean"], (_R, _R, _R)),
    OpCase("dot", lambda *xs: F.dot(xs[:len(xs) // 2], xs[len(xs) // 2:]), TORCH["dot"],
           (_R, _R, _R, _R)),
]}
