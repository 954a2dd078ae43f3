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
    "sigmoid":       lambda t, a: t.sigmoid(a),
    "relu":          lambda t, a: t.relu(a),
    "sin":           lambda t, a: t.sin(a),
    "cos":           lambda t, a: t.cos(a),
    "maximum":       lambda t, a, b: t.maximum(a, b),
    "minimum":       lambda t, a, b: t.minimum(a, b),
    "sum":           _sum,
    "mean":          lambda t, *xs: _sum(t, *xs) / len(xs),
    "dot":           _dot,
    "var":           lambda t, a: a,
    "stop_gradient": lambda t, a: a.detach(),
}
