"""The derivative table: one vector-Jacobian rule per primitive.

``VJP[op](ct, out, *args)`` returns one cotangent per input, given the
output's cotangent ``ct``, the output ``out`` and the inputs ``args``. Rules
are written with the generic functions of ``functions``, so they run on
floats (first order), on graph nodes (higher order: the sweep builds nodes)
and on numpy arrays (``vmap``). Forward mode needs no second table: an op's
partial derivatives are its VJP at ``ct = 1`` (see ``sweep.forward``).

Conventions at kinks follow torch: relu'(0) = 0, abs'(0) = 0, maximum and
minimum split a tie 0.5/0.5, and pow's masks at a zero base or exponent.

>>> VJP["*"](1.0, 6.0, 2.0, 3.0)
(3.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import batch_axes as batching
from . import dot_cotangents, scalar
from . import functions as F
from . import numeric as num
from .expr import Expr, const, lift, node, prim
from .expr import stored_value as _value
from .functions import where_value as v
from .numeric import _np

Rule = Callable[..., tuple]


# Kinks and masks: a rule factor that depends on an input's value (relu's step,
# abs's sign, maximum's share, pow's masks) is a node when the rule runs on nodes,
# so a compiled graph (fm.jit) recomputes it from run-time values instead of
# freezing the value seen while tracing. Its derivative is zero.
def _factor(fn: Callable, *args: Any) -> Any:
    for a in args:
        if isinstance(a, Expr):
            return prim("factor", fn(*[v(a) for a in args]), tuple(map(lift, args)), fn)
    return fn(*args)


def _select(pred: Callable, conds: tuple, yes: Any, no: Any) -> Any:
    """``yes`` where ``pred(*conds)`` holds, else ``no``."""
    if not any(isinstance(a, Expr) for a in (*conds, yes, no)):
        return num.select(pred(*conds), yes, no)
    cond, yes_value, no_value = pred(*[v(c) for c in conds]), v(yes), v(no)
    if cond.__class__ is bool and (yes_value.__class__ is not float
                                   or no_value.__class__ is not float):
        # one branch holds a vmap batch: the node has the batch's shape whichever branch
        # the unbatched condition picks (a plain 0.0 picked would claim one number for
        # the whole batch, and the compiled code, which broadcasts, would disagree)
        value = _np().where(cond, yes_value, no_value)
    else:
        value = num.select(cond, yes_value, no_value)
    return prim("select", value, tuple(map(lift, (*conds, yes, no))), pred)


def _select_vjp(ct: Any, out: Any, pred: Callable, *args: Any) -> tuple:
    conds = args[:-2]
    return ((0.0,) * len(conds) + (_select(pred, conds, ct, 0.0), _select(pred, conds, 0.0, ct)))


def _zero_both(a: Any, b: Any) -> Any:
    # torch masks d/da wherever b == 0, which loses its dependence on b (an
    # asymmetric Hessian); on nodes fm masks only 0 ** 0 (see ``_pow``)
    return (a == 0) & (b == 0)


def _zero_base(a: Any, b: Any) -> Any:
    return (a == 0) & (b >= 0)


def _pow_values(ct: Any, out: Any, a: Any, b: Any) -> tuple:
    # numbers (a first-order sweep): masked wherever b == 0, as torch, since
    # b * a ** (b - 1) is 0 * inf there when a is below ~1e-308
    da = num.select(b == 0, 0.0, ct * (b * F.power(a, b - 1.0)))
    db = num.select(_zero_base(a, b), 0.0, ct * (out * F.log(a)))
    return da, db


def _pow(ct: Any, out: Any, a: Any, b: Any) -> tuple:
    if not (isinstance(a, Expr) or isinstance(b, Expr)):
        if a.__class__ is float:
            return _pow_values(ct, out, a, b)
        with num.quiet():  # arrays (vmap): 0 * log(0) at a zero base warns, then is masked
            return _pow_values(ct, out, a, b)
    if _constant(b):  # x ** 2.0: no mask can apply, and the exponent, a constant
        # leaf, needs no cotangent (no sweep asks a leaf for one); x ** 0.0 is
        # constant in x (b * a ** -1 would be 0 * inf below a ~ 1e-308, and its
        # derivatives NaN below 1e-154)
        if b.value == 0:
            return 0.0, 0.0
        return ct * (b * F.power(a, const(b.value - 1.0))), 0.0
    if _constant(a) and a.value != 0:  # 2.0 ** x: likewise for the base
        return 0.0, ct * (out * const(num.log(a.value)))
    # on nodes, a masked branch reads safe values where it is masked, so its own
    # derivatives stay finite instead of 0 * inf (the "double where" trick). Where
    # b == 0, d/da = b * a ** (b - 1) is written (b / a) * a ** b: the same value
    # (0), the same derivatives in b at every order (1 / a in the Hessian, 2 log(a)
    # / a at the third), and no 0 * inf where a ** -1 overflows (a below ~1e-308;
    # a ** -2, in the second derivative, below ~1e-154)
    a1 = _select(_zero_exponent, (a, b), 1.0, a)
    a2 = _select(_zero_base, (a, b), 1.0, a)
    a3 = _select(_zero_or_nan, (a,), 1.0, a)  # 0 / nan would be nan, torch's d/da is 0
    b0 = _select(_zero_exponent, (a, b), b, 0.0)
    # a ** b where b == 0, else 1 ** 0: not ``out`` itself, whose partials (inf where
    # a ** b overflows) would meet this masked branch's zero cotangent (0 * inf), nor
    # 1 ** b, whose slope in its base is b (inf * 0 at an infinite exponent, NaN in the
    # second derivative of forward mode at (1, inf) until round 24)
    out0 = F.power(_select(_zero_exponent, (a, b), a, 1.0), b0)
    # and the masked d/da is 0, as on numbers and in torch, at an infinite or nan
    # cotangent too (not inf * 0 = nan); its derivatives in b are those at ct = 0 there
    ct0 = _select(_finite, (ct,), ct, 0.0)
    general = ct * (b * F.power(a1, b - 1.0))
    # (+ 0.0: at b = -0.0 the masked slope is torch's 0.0, as on numbers, not -0.0)
    da = _select(_zero_both, (a, b), 0.0,
                 _select(_zero_exponent, (a, b), ct0 * (F.div(b0, a3) * out0) + 0.0, general))
    db = _select(_zero_base, (a, b), 0.0, ct * (out * F.log(a2)))
    return da, db


def _zero_exponent(a: Any, b: Any) -> Any:
    return b == 0


def _finite(a: Any) -> Any:
    return abs(a) < math.inf  # (no numpy warning at inf - inf)


def _zero_or_nan(a: Any) -> Any:
    return (a == 0) | (a != a)


def _constant(x: Any) -> bool:
    """A float constant leaf (its value can change neither under ``jit`` nor per
    example)."""
    return isinstance(x, Expr) and x.op == "const" and x.value.__class__ is float


def _one_minus(x: Any) -> Any:
    """``1.0 - x``, on nodes with one shared constant leaf for the 1.0."""
    if isinstance(x, Expr):
        return node("-", 1.0 - _value(x), (_ONE, x))
    return 1.0 - x


_ONE = const(1.0)


def _above_threshold(a: Any) -> Any:
    return a > scalar.SOFTPLUS_THRESHOLD


def _at_threshold(a: Any) -> Any:
    return a == scalar.SOFTPLUS_THRESHOLD


def _softplus_slope(a: Any) -> Any:
    # torch: slope 1 above the threshold, sigmoid(a) up to it; its second
    # derivative is 0 from the threshold on (>=), so at exactly 20 the sigmoid's
    # input carries no derivative
    at = _select(_at_threshold, (a,), F.stop_gradient(a), a)
    return _select(_above_threshold, (a,), 1.0, F.sigmoid(at))


def _in_range(x: Any, lo: Any, hi: Any) -> Any:
    return (x >= lo) & (x <= hi)


def _below_min(x: Any, lo: Any, hi: Any) -> Any:
    return (x < lo) & (lo < hi)


def _above_max(x: Any, lo: Any, hi: Any) -> Any:
    return (x > hi) | (hi < lo)


def _clip(ct: Any, out: Any, x: Any, lo: Any, hi: Any) -> tuple:
    # torch.clamp's masks: x passes the cotangent on the closed interval; lo and hi
    # take it where they bind (hi wins when lo > hi)
    conds = (x, lo, hi)
    return (_select(_in_range, conds, ct, 0.0), _select(_below_min, conds, ct, 0.0),
            _select(_above_max, conds, ct, 0.0))


def _is_zero(a: Any) -> Any:
    return a == 0


def _atan2(ct: Any, out: Any, y: Any, x: Any) -> tuple:
    # torch's slopes x / r**2 and -y / r**2, 0 at the origin; divided by r = hypot(y, x)
    # twice, as r**2 underflows to 0 below 1.5e-154 (torch's slope 0 there, not 5e199 at
    # 1e-200) and overflows above 1.3e154
    # (x / r / r, not x * (1 / r) ** 2: 1 / r overflows below r = 5.6e-309, where the slope
    # is finite; 0 * inf made NaN)
    # (divided by 1 at the origin, whose slope the select drops: 0 / 0 there was a NaN
    # that debug_nans reported, though no result carried it)
    r = F.hypot(y, x)
    d = _select(_is_zero, (r,), 1.0, r)
    return (ct * _select(_is_zero, (r,), 0.0, F.div(F.div(x, d), d)),
            ct * _select(_is_zero, (r,), 0.0, F.div(F.div(-y, d), d)))


def _square_minus_one_root(a: Any) -> Any:
    # sqrt(a * a - 1) as sqrt(a - 1) sqrt(a + 1) from 2 on (a * a overflowed above 1.3e154:
    # a slope of 0 for 1e-155); below, as torch (inf at 1, and its second derivative); the
    # first branch's argument is 2.0 there, so that its slope, which the select multiplies
    # by 0, stays finite. (The same split near 1, or of asin's 1 - a * a into
    # (1 - a)(1 + a), which keeps digits there, made 0 * inf a NaN at 1 and lost the sign
    # of a zero second derivative at 0: a review's finds.)
    safe = _select(_at_least_two, (a,), a, 2.0)
    return _select(_at_least_two, (a,), F.sqrt(safe - 1.0) * F.sqrt(safe + 1.0),
                   F.sqrt(a * a - 1.0))


def _at_least_two(a: Any) -> Any:
    return a >= 2.0


def _erf_slope(a: Any) -> Any:
    return _TWO_OVER_SQRT_PI * F.exp(-(a * a))


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _dot(ct: Any, out: Any, *args: Any) -> tuple:
    n = len(args) // 2
    if isinstance(ct, Expr) and all(isinstance(a, Expr) for a in args):
        # ``ct * a`` for every factor, built directly: a layer's backward pass
        # makes one product per weight (same nodes, same values)
        cv = _value(ct)
        return tuple([node("*", cv * _value(a), (ct, a)) for a in args[n:] + args[:n]])
    return (*(ct * y for y in args[n:]), *(ct * x for x in args[:n]))


def _sum(ct: Any, out: Any, *args: Any) -> tuple:
    return (ct,) * len(args)


def _mean(ct: Any, out: Any, *args: Any) -> tuple:
    return (F.div(ct, float(len(args))),) * len(args)


VJP: dict[str, Rule] = {
    "+":             lambda ct, out, a, b: (ct, ct),
    "-":             lambda ct, out, a, b: (ct, -ct),
    "*":             lambda ct, out, a, b: (ct * b, ct * a),
    "/":             lambda ct, out, a, b: (F.div(ct, b), -(ct * F.div(out, b))),
    "**":            _pow,
    "neg":           lambda ct, out, a: (-ct,),
    "abs":           lambda ct, out, a: (ct * _factor(num.sign, a),),
    "exp":           lambda ct, out, a: (ct * out,),
    "log":           lambda ct, out, a: (F.div(ct, a),),
    "sqrt":          lambda ct, out, a: (F.div(ct, 2.0 * out),),
    "tanh":          lambda ct, out, a: (ct * _one_minus(out * out),),
    "sigmoid":       lambda ct, out, a: (ct * (out * F.sigmoid(-a)),),  # not 1 - out: cancels
    "relu":          lambda ct, out, a: (ct * _factor(num.step, a),),
    "sin":           lambda ct, out, a: (ct * F.cos(a),),
    "cos":           lambda ct, out, a: (-(ct * F.sin(a)),),
    "maximum":       lambda ct, out, a, b: (ct * _factor(num.share, a, b),
                                          ct * _factor(num.share, b, a)),
    "minimum":       lambda ct, out, a, b: (ct * _factor(num.share, b, a),
                                          ct * _factor(num.share, a, b)),
    "tan":           lambda ct, out, a: (ct * (1.0 + out * out),),
    "sinh":          lambda ct, out, a: (ct * F.cosh(a),),
    "cosh":          lambda ct, out, a: (ct * F.sinh(a),),
    "asin":          lambda ct, out, a: (F.div(ct, F.sqrt(1.0 - a * a)),),
    "acos":          lambda ct, out, a: (-F.div(ct, F.sqrt(1.0 - a * a)),),
    "atan":          lambda ct, out, a: (F.div(ct, a * a + 1.0),),
    "atan2":         _atan2,
    "asinh":         lambda ct, out, a: (F.div(ct, F.hypot(a, 1.0)),),  # (a * a overflows)
    "acosh":         lambda ct, out, a: (F.div(ct, _square_minus_one_root(a)),),
    "atanh":         lambda ct, out, a: (F.div(ct, 1.0 - a * a),),
    "erf":           lambda ct, out, a: (ct * _erf_slope(a),),
    "erfc":          lambda ct, out, a: (-(ct * _erf_slope(a)),),
    "log1p":         lambda ct, out, a: (F.div(ct, a + 1.0),),
    "expm1":         lambda ct, out, a: (ct * F.exp(a),),  # (out + 1 rounds to 0 at -40)
    "log2":          lambda ct, out, a: (F.div(ct, a * _LN2),),
    "log10":         lambda ct, out, a: (F.div(ct, a * _LN10),),
    "softplus":      lambda ct, out, a: (ct * _softplus_slope(a),),
    "log_sigmoid":   lambda ct, out, a: (ct * F.sigmoid(-a),),
    "sign":          lambda ct, out, a: (0.0,),
    "hypot":         lambda ct, out, a, b: (F.div(ct * a, out), F.div(ct * b, out)),
    "clip":          _clip,
    "where":         lambda ct, out, c, a, b: (0.0, F.where(c, ct, 0.0), F.where(c, 0.0, ct)),
    "greater":       lambda ct, out, a, b: (0.0, 0.0),
    "greater_equal": lambda ct, out, a, b: (0.0, 0.0),
    "sum":           _sum,
    "mean":          _mean,
    "dot":           _dot,
    "var":           lambda ct, out, a: (ct,),
    "stop_gradient": lambda ct, out, a: (0.0,),
}


# Rules of ``Prim`` nodes, which also get the node's ``param``:
# ``PARAM_VJP[op](ct, out, param, *args)``.
# A ``"custom"`` node carries its own rule as ``param``, so a module can add
# an op (``custom_vjp``, batching) without touching this table.
PARAM_VJP: dict[str, Rule] = {
    "batch_sum": batching.batch_sum_vjp,
    "batch_dot": dot_cotangents.batch_dot_vjp,
    "custom":    lambda ct, out, rule, *args: rule(ct, out, *args),
    "factor":    lambda ct, out, fn, *args: (0.0,) * len(args),
    "select":    _select_vjp,
}
