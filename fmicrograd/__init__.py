"""fmicrograd: purely functional scalar automatic differentiation.

>>> import fmicrograd as fm
>>> fm.grad(lambda x: fm.tanh(x) * x)(0.5)  # doctest: +ELLIPSIS
0.8553...
"""

from . import tree
from .expr import Const, Expr, Var
from .functions import (
                        cos,
                        dot,
                        exp,
                        log,
                        maximum,
                        mean,
                        minimum,
                        relu,
                        sigmoid,
                        sin,
                        sqrt,
                        stop_gradient,
                        sum,
                        tanh,
)
from .transforms import grad, jvp, trace, value_and_grad, vjp

__all__ = [
    "Expr", "Var", "Const", "tree",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum", "minimum",
    "sum", "mean", "dot", "stop_gradient",
    "grad", "value_and_grad", "vjp", "jvp", "trace",
]
__version__ = "0.1.0"
