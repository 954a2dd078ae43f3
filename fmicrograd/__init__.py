"""fmicrograd: purely functional scalar automatic differentiation.

>>> import fmicrograd as fm
>>> fm.grad(lambda x: fm.tanh(x) * x)(0.5)  # doctest: +ELLIPSIS
0.8553...

Submodules (``fm.nn``, ``fm.optim``, ...) and the transforms that need numpy
(``jit``, ``vmap``, ``to_torch``) load on first use, so ``import fmicrograd``
stays light and never imports numpy. Type checkers and ``dir(fm)`` see every
name all the same.

To add a public name: an eager one is one line in the imports below (and its
name in ``__all__``); a lazy one is one line in ``_LAZY`` and the same import
under ``TYPE_CHECKING`` (a test checks the two agree).
"""

import importlib
import sys as _sys
from typing import TYPE_CHECKING, Any

# _interrupts first: run as the command line, Ctrl-C exits quietly even mid-import
from . import _interrupts, tree  # noqa: F401
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

if TYPE_CHECKING:  # what the lazy names below are, for mypy, pyright and IDEs
    from . import (
        cli,
        datasets,
        distributed,
        io,
        losses,
        nn,
        optim,
        plot,
        random,
        testing,
        train,
        viz,
    )
    from .batching.vectorize import vmap
    from .compiler.compile import jit
    from .compiler.export import to_torch
    from .transforms.checkpoint import checkpoint, remat
    from .transforms.custom import custom_vjp
    from .transforms.custom_jvp import custom_jvp
    from .transforms.debug import debug_nans
    from .transforms.jacobians import hessian, jacfwd, jacobian, jacrev
    from .transforms.linearize import linearize

# name -> module that defines it, loaded on first access (a submodule names itself)
_LAZY = {
    "jacrev": "transforms.jacobians",
    "jacfwd": "transforms.jacobians",
    "jacobian": "transforms.jacobians",
    "hessian": "transforms.jacobians",
    "custom_vjp": "transforms.custom",
    "debug_nans": "transforms.debug",
    "jit": "compiler.compile",
    "vmap": "batching.vectorize",
    "to_torch": "compiler.export",
    "custom_jvp": "transforms.custom_jvp",
    "linearize": "transforms.linearize",
    "checkpoint": "transforms.checkpoint",
    "remat": "transforms.checkpoint",
    "nn": "nn",
    "random": "random",
    "losses": "losses",
    "optim": "optim",
    "train": "train",
    "datasets": "datasets",
    "viz": "viz",
    "io": "io",
    "testing": "testing",
    "cli": "cli",
    "plot": "plot",
    "distributed": "distributed",
}

__all__ = [
    "Expr", "Var", "Const", "tree",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum", "minimum",
    "sum", "mean", "dot", "div", "power", "stop_gradient",
    "tan", "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "erf",
    "erfc", "log1p", "expm1", "log2", "log10", "softplus", "log_sigmoid", "sign", "square",
    "hypot", "clip", "where", "greater", "greater_equal", "less", "less_equal",
    "logsumexp", "softmax", "log_softmax",
    "grad", "value_and_grad", "vjp", "jvp", "trace",
    "jacrev", "jacfwd", "jacobian", "hessian", "custom_vjp", "debug_nans", "jit", "vmap",
    "to_torch", "custom_jvp", "linearize", "checkpoint", "remat",
    "nn", "random", "losses", "optim", "train", "datasets", "viz", "io", "testing", "cli",
    "plot", "distributed",
]
__version__ = "0.1.0"

# micrograd's names, and where their fmicrograd form lives
_MICROGRAD = {
    "Value": "fm.Value is micrograd's name: fmicrograd's leaf is fm.Var(2.0, name='a'); "
             "results are plain nodes (fm.Expr) whose number is .value, and gradients come "
             "from transforms: fm.grad(f)(x) instead of .backward() and .grad",
}


def _importing_from(frame: Any) -> bool:
    """Whether ``frame`` is running ``from fmicrograd import ...`` (its current
    instruction is IMPORT_FROM), where Python drops an AttributeError's message."""
    import opcode

    try:
        return frame.f_code.co_code[frame.f_lasti] == opcode.opmap["IMPORT_FROM"]
    except Exception:  # an interpreter without these details: the plain AttributeError
        return False


if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name is an error there too
    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            module = importlib.import_module(f".{_LAZY[name]}", __name__)
            return module if _LAZY[name] == name else getattr(module, name)
        if name in _MICROGRAD:
            if _importing_from(_sys._getframe(1)):
                # `from fmicrograd import Value` would replace an AttributeError's
                # message with its own "cannot import name": raise the ImportError
                raise ImportError(f"cannot import name {name!r} from 'fmicrograd': "
                                  f"{_MICROGRAD[name]}", name=__name__, path=__file__)
            raise AttributeError(_MICROGRAD[name])
        raise AttributeError(f"module 'fmicrograd' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, lazy ones included, and the module's dunders; not the
    helpers this file imports (``Any``, ``importlib``) or loaded internals."""
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})
