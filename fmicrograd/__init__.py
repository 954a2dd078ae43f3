"""fmicrograd: purely functional scalar automatic differentiation.

>>> import fmicrograd as fm
>>> fm.grad(lambda x: fm.tanh(x) * x)(0.5)  # doctest: +ELLIPSIS
0.8553...

Submodules (``fm.nn``, ``fm.optim``, ...) and the heavier transforms load on
first use, so ``import fmicrograd`` stays light and never imports numpy.
"""

import importlib
from typing import Any

# _interrupts first: run as the command line, Ctrl-C exits quietly even mid-import
from . import _interrupts, tree  # noqa: F401
from .core.expr import Const, Expr, Var
from .core.functions import (
    cos,
    div,
    dot,
    exp,
    log,
    maximum,
    mean,
    minimum,
    power,
    relu,
    sigmoid,
    sin,
    sqrt,
    stop_gradient,
    sum,
    tanh,
)
from .transforms.autodiff import grad, jvp, trace, value_and_grad, vjp

# name -> module that defines it (loaded on first access)
_LAZY = {
    "jacrev": "transforms.jacobians", "jacfwd": "transforms.jacobians",
    "jacobian": "transforms.jacobians", "hessian": "transforms.jacobians",
    "custom_vjp": "transforms.custom", "debug_nans": "transforms.debug",
    "jit": "compiler.compile", "vmap": "batching.vectorize", "to_torch": "compiler.export",
}
_SUBMODULES = ("nn", "random", "losses", "optim", "train", "datasets", "viz", "io",
               "testing", "cli", "plot")

__all__ = [
    "Expr", "Var", "Const", "tree",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum", "minimum",
    "sum", "mean", "dot", "div", "power", "stop_gradient",
    "grad", "value_and_grad", "vjp", "jvp", "trace", *_LAZY, *_SUBMODULES,
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'fmicrograd' has no attribute {name!r}")
