"""fmicrograd: purely functional scalar automatic differentiation.

>>> import fmicrograd as fm
>>> fm.grad(lambda x: fm.tanh(x) * x)(0.5)  # doctest: +ELLIPSIS
0.8553...

Submodules (``fm.nn``, ``fm.optim``, ...) and the heavier transforms load on
first use, so ``import fmicrograd`` stays light and never imports numpy.
"""

import importlib
from typing import Any

from . import tree
from .core.expr import Const, Expr, Var
from .core.functions import (
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    clip,
    cos,
    cosh,
    div,
    dot,
    erf,
    erfc,
    exp,
    expm1,
    greater,
    greater_equal,
    hypot,
    less,
    less_equal,
    log,
    log1p,
    log2,
    log10,
    log_sigmoid,
    maximum,
    mean,
    minimum,
    power,
    relu,
    sigmoid,
    sign,
    sin,
    sinh,
    softplus,
    sqrt,
    square,
    stop_gradient,
    sum,
    tan,
    tanh,
    where,
)
from .core.softmax import log_softmax, logsumexp, softmax
from .transforms.autodiff import grad, jvp, trace, value_and_grad, vjp

# name -> module that defines it (loaded on first access)
_LAZY = {
    "jacrev": "transforms.jacobians", "jacfwd": "transforms.jacobians",
    "jacobian": "transforms.jacobians", "hessian": "transforms.jacobians",
    "custom_vjp": "transforms.custom", "debug_nans": "transforms.debug",
    "custom_jvp": "transforms.custom_jvp", "linearize": "transforms.linearize",
    "checkpoint": "transforms.checkpoint", "remat": "transforms.checkpoint",
    "jit": "compiler.compile", "vmap": "batching.vectorize", "to_torch": "compiler.export",
}
_SUBMODULES = ("nn", "random", "losses", "optim", "train", "datasets", "viz", "io",
               "testing", "cli", "plot", "distributed")

__all__ = [
    "Expr", "Var", "Const", "tree",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum", "minimum",
    "sum", "mean", "dot", "div", "power", "stop_gradient",
    "tan", "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "erf",
    "erfc", "log1p", "expm1", "log2", "log10", "softplus", "log_sigmoid", "sign", "square",
    "hypot", "clip", "where", "greater", "greater_equal", "less", "less_equal",
    "logsumexp", "softmax", "log_softmax",
    "grad", "value_and_grad", "vjp", "jvp", "trace", *_LAZY, *_SUBMODULES,
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fmicrograd' has no attribute {name!r}")
