"""Every primitive as a torch function: the single map from fmicrograd's ops
to torch, used by the tests (torch float64 is the reference for every rule)
and by ``to_torch`` (lowering a graph to torch tensors).

``TORCH[op](torch, *args)`` computes the op on tensors (or Python floats
where torch accepts them). torch is passed in, never imported here, so this
module costs nothing for users without torch.

>>> import torch
>>> TORCH["maximum"](torch, torch.tensor(1.0), torch.tensor(2.0)).item()
2.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _sum(t: Any, *xs: Any) -> Any:
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return total


_FUNCTIONS: dict = {}  # (torch module, op) -> its autograd Function (made on first use)


def _with_slope(name: str, forward: Callable, *slopes: Callable) -> Callable:
    """The torch op ``forward`` whose derivative in its i-th argument is
    ``g * slopes[i](t, *args)``, each slope made of differentiable ops, so every
    order follows fmicrograd's rule. Used where torch's own backward cancels
    in a tail: ``sigmoid``'s ``out * (1 - out)`` loses up to 9 digits at 16;
    the second derivatives of ``softplus`` and ``log_sigmoid`` lose 3 at 10.
    And where torch masks a cotangent that fmicrograd (like JAX) multiplies by
    a 0/1 factor: ``relu``, ``maximum`` and ``minimum`` of an infinite
    cotangent give NaN on the side not taken, not 0, as fmicrograd does."""
    def op(t: Any, *args: Any) -> Any:
        if (t, name) not in _FUNCTIONS:
            class Op(t.autograd.Function):
                generate_vmap_rule = True  # so torch.func transforms accept it

                @staticmethod
                def forward(*xs: Any) -> Any:
                    return forward(t, *xs)

                @staticmethod
                def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
                    ctx.save_for_backward(*inputs)
                    ctx.save_for_forward(*inputs)

                @staticmethod
                def backward(ctx: Any, g: Any) -> Any:
                    xs = ctx.saved_tensors
                    grads = tuple(g * slope(t, *xs) for slope in slopes)
                    return grads[0] if len(grads) == 1 else grads

                @staticmethod
                def jvp(ctx: Any, *tangents: Any) -> Any:  # forward mode (torch.func.jvp)
                    xs = ctx.saved_tensors
                    return _sum(t, *[d * slope(t, *xs) for d, slope in zip(tangents, slopes)
                                     if d is not None])

            _FUNCTIONS.setdefault((t, name), Op.apply)
        return _FUNCTIONS[(t, name)](*args)
    return op


def _first(t: Any, keep: Any, a: Any, b: Any) -> Any:
    """``a`` where ``keep`` or where ``a`` is NaN, else ``b``: maximum and
    minimum as eager fm computes them, the first argument at a tie of 0.0 and
    -0.0 (torch's own kernels give the first in their scalar loops and the
    second in their 8-wide vector blocks), NaN if either is NaN."""
    return t.where(keep | (a != a), a, b)


def _clamped(t: Any, x: Any, y: Any) -> Any:
    """``torch.clamp``'s ``y`` of ``x``, but ``x`` itself where they are equal:
    at a tie of 0.0 and -0.0 with a bound, eager fm's ``clip`` keeps ``x``'s
    zero (torch's kernels give either); the gradient is clamp's."""
    return t.where(y == x, x, y)


def _share(t: Any, a: Any, b: Any) -> Any:
    """maximum's slope in ``a`` (as ``numeric.share``): 1, 0.5 at a tie, 0."""
    one = t.ones_like(a + b)
    return t.where(a > b, one, t.where(a == b, 0.5 * one, 0.0 * one))


def _softplus_slope(t: Any, x: Any) -> Any:
    # as fmicrograd's rule and torch: slope 1 above the threshold (20), and the
    # second derivative 0 from it on
    at = t.where(x >= 20.0, x.detach(), x)
    return t.where(x > 20.0, t.ones_like(x), TORCH["sigmoid"](t, at))


def _same_value(t: Any, value: Any, slope_path: Any) -> Any:
    """``value``, differentiated (at every order, forward mode and torch.func
    included) as ``slope_path``, a function equal to it computed another way:
    ``value - (path - path)``, the path's difference exactly 0 where finite
    (and -0.0 kept: x - 0.0 is x)."""
    return value.detach() - (slope_path.detach() - slope_path)


def _expm1(t: Any, a: Any) -> Any:
    # torch's backward of expm1 is g * (out + 1), which cancels below -1 (0 at -40, where
    # the slope is 4.2e-18): there the slope follows exp(a) - 1, as fm's rule; plain torch
    # ops, so torch.func's forward-over-forward differentiates it too (a custom
    # autograd.Function's forward rule is not, see ``_with_slope``)
    # (torch's own slope, finite everywhere, is where's unselected branch below -1)
    low = a < -1.0
    tail = t.exp(t.where(low, a, t.full_like(a, -1.0))) - 1.0
    out = t.expm1(a)
    return t.where(low, _same_value(t, out, tail), out)


def _atan2(t: Any, y: Any, x: Any) -> Any:
    # torch's slopes x / (y*y + x*x) under/overflow (inf at radius 1e-160, 0 at 1e160): the
    # slopes follow atan2(y / s, x / s), s = max(|y|, |x|) held constant (the same function
    # at every order), as fm's rule divides by r twice; at the origin or an infinite or NaN
    # argument torch's own
    s = t.maximum(y.abs(), x.abs()).detach()
    ok = t.isfinite(s) & (s > 0)
    s = t.where(ok, s, t.ones_like(s))
    scaled = t.atan2(t.where(ok, y, t.zeros_like(y)) / s, t.where(ok, x, t.ones_like(x)) / s)
    plain = t.atan2(t.where(ok, y.detach(), y), t.where(ok, x.detach(), x))
    return t.where(ok, _same_value(t, plain, scaled), plain)


def _dot(t: Any, *xs: Any) -> Any:
    n = len(xs) // 2
    return _sum(t, *[xs[i] * xs[n + i] for i in range(n)])


TORCH: dict[str, Callable[..., Any]] = {
    "+":             lambda t, a, b: a + b,
    "-":             lambda t, a, b: a - b,
    "*":             lambda t, a, b: a * b,
    "/":             lambda t, a, b: a / b,
    "**":            lambda t, a, b: t.pow(a, b),
    "neg":           lambda t, a: -a,
    "abs":           lambda t, a: t.abs(a),
    "exp":           lambda t, a: t.exp(a),
    "log":           lambda t, a: t.log(a),
    "sqrt":          lambda t, a: t.sqrt(a),
    "tanh":          lambda t, a: t.tanh(a),
    "sigmoid":       _with_slope("sigmoid", lambda t, a: t.sigmoid(a),
                                 lambda t, a: TORCH["sigmoid"](t, a) * TORCH["sigmoid"](t, -a)),
    "relu":          _with_slope("relu", lambda t, a: t.relu(a) + 0.0,  # relu(-0.0) is 0.0
                                 lambda t, a: (a > 0).to(a.dtype)),
    "sin":           lambda t, a: t.sin(a),
    "cos":           lambda t, a: t.cos(a),
    "maximum":       _with_slope("maximum", lambda t, a, b: _first(t, a >= b, a, b),
                                 lambda t, a, b: _share(t, a, b), lambda t, a, b: _share(t, b, a)),
    "minimum":       _with_slope("minimum", lambda t, a, b: _first(t, a <= b, a, b),
                                 lambda t, a, b: _share(t, b, a), lambda t, a, b: _share(t, a, b)),
    "tan":           lambda t, a: t.tan(a),
    "sinh":          lambda t, a: t.sinh(a),
    "cosh":          lambda t, a: t.cosh(a),
    "asin":          lambda t, a: t.asin(a),
    "acos":          lambda t, a: t.acos(a),
    "atan":          lambda t, a: t.atan(a),
    "atan2":         lambda t, a, b: _atan2(t, a, b),
    "asinh":         lambda t, a: t.asinh(a),
    "acosh":         lambda t, a: t.acosh(a),
    "atanh":         lambda t, a: t.atanh(a),
    "erf":           lambda t, a: t.erf(a),
    "erfc":          lambda t, a: t.erfc(a),
    "log1p":         lambda t, a: t.log1p(a),
    "expm1":         lambda t, a: _expm1(t, a),
    "log2":          lambda t, a: t.log2(a),
    "log10":         lambda t, a: t.log10(a),
    "softplus":      _with_slope("softplus", lambda t, a: t.nn.functional.softplus(a),
                                 _softplus_slope),
    "log_sigmoid":   _with_slope("log_sigmoid", lambda t, a: t.nn.functional.logsigmoid(a),
                                 lambda t, a: TORCH["sigmoid"](t, -a)),
    "sign":          lambda t, a: t.sign(a),
    "square":        lambda t, a: t.square(a),
    "hypot":         lambda t, a, b: t.hypot(a, b),
    "clip":          lambda t, x, lo, hi: _clamped(t, x, t.clamp(x, lo, hi)),
    "where":         lambda t, c, a, b: t.where(c != 0, a, b),
    "greater":       lambda t, a, b: t.gt(a, b).to(t.result_type(a, b)),
    "greater_equal": lambda t, a, b: t.ge(a, b).to(t.result_type(a, b)),
    "logsumexp":     lambda t, *xs: t.logsumexp(t.stack(xs), 0),
    "softmax":       lambda t, *xs: tuple(t.softmax(t.stack(xs), 0).unbind(0)),
    "log_softmax":   lambda t, *xs: tuple(t.log_softmax(t.stack(xs), 0).unbind(0)),
    "sum":           _sum,
    "mean":          lambda t, *xs: _sum(t, *xs) / len(xs),
    "dot":           _dot,
    "var":           lambda t, a: a,
    "stop_gradient": lambda t, a: a.detach(),
}
