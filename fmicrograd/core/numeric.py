"""Forward values of every primitive, on floats and on numpy arrays.

Graph nodes hold plain floats, or numpy arrays under ``vmap`` (one entry per
example). Each function here takes either and returns the same kind, with
IEEE semantics; numpy is imported only when an array actually shows up.

>>> exp(1.0) == math.exp(1.0), log(0.0)
(True, -inf)
"""

from __future__ import annotations

import math
from typing import Any

from . import scalar

_NUMBER = (float, int)


def _np() -> Any:
    import numpy

    return numpy


def _array(name: str, *xs: Any) -> Any:
    np = _np()
    with np.errstate(all="ignore"):
        return _ARRAY_FUNCS[name](np)(*xs)


_ARRAY_FUNCS = {
    "exp": lambda np: np.exp,
    "log": lambda np: np.log,
    "sqrt": lambda np: np.sqrt,
    "tanh": lambda np: np.tanh,
    "sin": lambda np: np.sin,
    "cos": lambda np: np.cos,
    "div": lambda np: np.divide,
    "power": lambda np: np.power,
    "sigmoid": lambda np: lambda x: np.exp(-np.logaddexp(0.0, -x)),
    "relu": lambda np: lambda x: np.where(x > 0, x, np.where(x != x, x, 0.0)),
    "step": lambda np: lambda x: (x > 0).astype(float),
    "sign": lambda np: np.sign,
    "maximum": lambda np: np.maximum,
    "minimum": lambda np: np.minimum,
    "share": lambda np: lambda a, b: np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)),
}


def _unary(name: str) -> Any:
    fn = getattr(scalar, name)

    def f(x: Any) -> Any:
        if isinstance(x, _NUMBER):
            return fn(x)
        return _array(name, x)

    f.__name__ = name
    f.__doc__ = (f"{name} of a float or an array; see ``scalar.{name}``.\n\n"
                 f">>> import numpy as np\n"
                 f">>> bool({name}(0.5) == {name}(np.array([0.5]))[0])\nTrue")
    return f


def _binary(name: str) -> Any:
    fn = getattr(scalar, name)

    def f(a: Any, b: Any) -> Any:
        if isinstance(a, _NUMBER) and isinstance(b, _NUMBER):
            return fn(a, b)
        return _array(name, a, b)

    f.__name__ = name
    f.__doc__ = (f"{name} of floats or arrays; see ``scalar.{name}``.\n\n"
                 f">>> import numpy as np\n"
                 f">>> bool({name}(0.5, 2.0) == {name}(np.array([0.5]), 2.0)[0])\nTrue")
    return f


exp = _unary("exp")
log = _unary("log")
sqrt = _unary("sqrt")
tanh = _unary("tanh")
sigmoid = _unary("sigmoid")
sin = _unary("sin")
cos = _unary("cos")
relu = _unary("relu")
step = _unary("step")
sign = _unary("sign")
div = _binary("div")
power = _binary("power")
maximum = _binary("maximum")
minimum = _binary("minimum")
share = _binary("share")


def select(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` else ``b``; ``cond`` a bool or a boolean array.

    >>> import numpy as np
    >>> select(True, 1.0, 2.0), select(np.array([True, False]), 1.0, 2.0).tolist()
    (1.0, [1.0, 2.0])
    """
    if isinstance(cond, bool):
        return a if cond else b
    return _np().where(cond, a, b)


__all__ = ["exp", "log", "sqrt", "tanh", "sigmoid", "sin", "cos", "relu", "step",
           "sign", "div", "power", "maximum", "minimum", "share", "select", "math"]
