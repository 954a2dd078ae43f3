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
from ..core import softmax as S
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
_UNIT = (-0.95, 0.95)
_WEIGHTS = (0.3, -1.1, 2.0)  # softmax's outputs, weighted into one scalar


def _weighted(t: Any, outs: tuple) -> Any:
    return sum(w * o for w, o in zip(_WEIGHTS, outs))

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
    OpCase("tan", F.tan, TORCH["tan"], ((-1.3, 1.3),)),
    OpCase("sinh", F.sinh, TORCH["sinh"], ((-4.0, 4.0),)),
    OpCase("cosh", F.cosh, TORCH["cosh"], ((-4.0, 4.0),)),
    OpCase("asin", F.asin, TORCH["asin"], (_UNIT,)),
    OpCase("acos", F.acos, TORCH["acos"], (_UNIT,)),
    OpCase("atan", F.atan, TORCH["atan"], (_R,)),
    OpCase("atan2", F.atan2, TORCH["atan2"], (_R, (0.25, 4.0))),
    OpCase("asinh", F.asinh, TORCH["asinh"], (_R,)),
    OpCase("acosh", F.acosh, TORCH["acosh"], ((1.1, 20.0),)),
    OpCase("atanh", F.atanh, TORCH["atanh"], (_UNIT,)),
    OpCase("erf", F.erf, TORCH["erf"], (_R,)),
    OpCase("erfc", F.erfc, TORCH["erfc"], (_R,)),
    OpCase("log1p", F.log1p, TORCH["log1p"], ((-0.95, 20.0),)),
    OpCase("expm1", F.expm1, TORCH["expm1"], ((-6.0, 6.0),)),
    OpCase("log2", F.log2, TORCH["log2"], (_POS,)),
    OpCase("log10", F.log10, TORCH["log10"], (_POS,)),
    # torch's softplus is x itself above 20: a (tiny) kink there
    OpCase("softplus", F.softplus, TORCH["softplus"], ((-30.0, 30.0),), (20.0,)),
    OpCase("log_sigmoid", F.log_sigmoid, TORCH["log_sigmoid"], ((-30.0, 30.0),)),
    OpCase("sign", F.sign, TORCH["sign"], (_R,), (0.0,)),
    OpCase("square", F.square, TORCH["square"], (_R,)),
    OpCase("hypot", F.hypot, TORCH["hypot"], (_R, (0.25, 4.0))),
    # x, lo, hi: kinks where x meets a bound (strategies keep off them)
    OpCase("clip", F.clip, TORCH["clip"], (_R, (-2.0, -0.5), (0.5, 2.0))),
    # where(c > 0, a, b): a jump where c crosses 0
    OpCase("where", lambda c, a, b: F.where(F.greater(c, 0.0), a, b),
           lambda t, c, a, b: t.where(c > 0, a, b), (_R, _R, _R), (0.0,)),
    OpCase("logsumexp", lambda *xs: S.logsumexp(xs), TORCH["logsumexp"], (_R, _R, _R)),
    OpCase("softmax", lambda *xs: _weighted(None, S.softmax(xs)),
           lambda t, *xs: _weighted(t, TORCH["softmax"](t, *xs)), (_R, _R, _R)),
    OpCase("log_softmax", lambda *xs: _weighted(None, S.log_softmax(xs)),
           lambda t, *xs: _weighted(t, TORCH["log_softmax"](t, *xs)), (_R, _R, _R)),
    OpCase("sum", lambda *xs: F.sum(xs), TORCH["sum"], (_R, _R, _R)),
    OpCase("mean", lambda *xs: F.mean(xs), TORCH["mean"], (_R, _R, _R)),
    OpCase("dot", lambda *xs: F.dot(xs[:len(xs) // 2], xs[len(xs) // 2:]), TORCH["dot"],
           (_R, _R, _R, _R)),
]}
