"""Forward values of every primitive, on floats and on numpy arrays.

Graph nodes hold plain floats, or numpy arrays under ``vmap`` (one entry per
example). Each function here takes either and returns the same kind, with
IEEE semantics; numpy is imported only when an array actually shows up.

>>> exp(1.0) == math.exp(1.0), log(0.0)
(True, -inf)
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
from typing import Any

from . import scalar

_NUMBER = (float, int)


def inexact_int(n: Any) -> bool:
    """Whether integer ``n`` lies beyond 2**53, where a float64 may round it.

    >>> inexact_int(2 ** 53), inexact_int(-2 ** 53 - 1)
    (False, True)
    """
    return not -2 ** 53 <= n <= 2 ** 53


def rounded_int(n: Any) -> bool:
    """Whether int ``n`` (Python's, numpy's, a 0-d int array) is one a
    float64 cannot hold exactly: beyond 2**53 and not a number a float64
    holds (``2 ** 60`` it holds), or beyond float64's range.

    >>> rounded_int(2 ** 60), rounded_int(2 ** 60 + 1), rounded_int(10 ** 400)
    (False, True, True)
    """
    n = int(n)
    if -2 ** 53 <= n <= 2 ** 53:
        return False
    try:
        return int(float(n)) != n
    except OverflowError:
        return True


def foreign_array(x: Any) -> str:
    """``"torch.Tensor"`` for another library's array (one with ``__array__``
    or ``__dlpack__`` that is not numpy's), else "": for messages.

    >>> foreign_array([1.0]), foreign_array(2.0)
    ('', '')
    """
    if not (hasattr(x, "__array__") or hasattr(x, "__dlpack__")) or \
            type(x).__module__.split(".")[0] == "numpy":
        return ""
    return f"{type(x).__module__.split('.')[0]}.{type(x).__name__}"


def inexact_ints(a: Any) -> bool:
    """Whether numpy array ``a`` holds an integer beyond 2**53 (see ``inexact_int``)."""
    return a.dtype.kind in "iu" and bool(a.size) and bool(
        a.max() > 2 ** 53 or a.min() < -2 ** 53)


def _np() -> Any:
    import numpy

    return numpy


def _array(name: str, *xs: Any) -> Any:
    np = _np()
    with np.errstate(all="ignore"):
        return _ARRAY_FUNCS[name](np)(*xs)


@functools.cache
def _special(name: str) -> Any:
    """numpy has no erf: math's, one element at a time, so arrays get the very
    floats of the scalar path (within 5e-16 of torch's, see
    benchmarks/op_accuracy.py; scipy's erfc is off by up to 6e-14 in the
    tail), at about 100x the cost of a numpy ufunc."""
    np = _np()
    ufunc = np.frompyfunc(getattr(scalar, name), 1, 1)
    return lambda x: np.asarray(ufunc(x), dtype=float)


def _sigmoid(np: Any, x: Any) -> Any:
    """``scalar.sigmoid``'s formula on arrays (``vmap``'s and the compiled
    code's), so they round as floats do: ``exp(-logaddexp(0, -x))`` is 8 ulp
    off at ``x = -30``.

    >>> import numpy as np
    >>> _sigmoid(np, np.array([-30.0, 0.0]))[0] == scalar.sigmoid(-30.0)
    np.True_
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def power_array(np: Any, a: Any, b: Any) -> Any:
    """``np.power(a, b)``, but ``a ** 0.5`` as ``sqrt(a)`` also where the
    exponent is an array, as ``scalar.power`` computes it (numpy does so for a
    number exponent only: an array's 0.5 takes C's pow, ``inf`` at ``-inf``
    and ``0.0`` at ``-0.0`` where sqrt gives ``nan`` and ``-0.0``).

    >>> import numpy as np
    >>> power_array(np, np.array([-np.inf, -0.0, 4.0]), np.array([0.5, 0.5, 0.5])).tolist()
    [nan, -0.0, 2.0]
    """
    out = np.power(a, b)
    if b.__class__ is np.ndarray:
        half = b == 0.5
        if half.any():
            with np.errstate(invalid="ignore"):  # (a negative base: nan, as pow's)
                out = np.where(half, np.sqrt(a), out)
    return out


_ARRAY_FUNCS = {
    "exp": lambda np: np.exp,
    "log": lambda np: np.log,
    "sqrt": lambda np: np.sqrt,
    "tanh": lambda np: np.tanh,
    "sin": lambda np: np.sin,
    "cos": lambda np: np.cos,
    "div": lambda np: np.divide,
    "power": lambda np: lambda a, b: power_array(np, a, b),
    "sigmoid": lambda np: lambda x: _sigmoid(np, x),
    "relu": lambda np: lambda x: np.where(x > 0, x, np.where(x != x, x, 0.0)),
    "step": lambda np: lambda x: (x > 0).astype(float),
    "sign": lambda np: lambda x: np.where(x != x, 0.0, np.sign(x)),
    # (numpy's and torch's tensors give the second argument at a tie, 0.0 against -0.0,
    # eager fm the first, as ``scalar.maximum``: called the other way round)
    "maximum": lambda np: lambda a, b: np.maximum(b, a),
    "minimum": lambda np: lambda a, b: np.minimum(b, a),
    "share": lambda np: lambda a, b: np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0)),
    "tan": lambda np: np.tan,
    "sinh": lambda np: np.sinh,
    "cosh": lambda np: np.cosh,
    "asin": lambda np: np.arcsin,
    "acos": lambda np: np.arccos,
    "atan": lambda np: np.arctan,
    "atan2": lambda np: np.arctan2,
    "asinh": lambda np: np.arcsinh,
    "acosh": lambda np: np.arccosh,
    "atanh": lambda np: np.arctanh,
    "erf": lambda np: _special("erf"),
    "erfc": lambda np: _special("erfc"),
    "log1p": lambda np: np.log1p,
    "expm1": lambda np: np.expm1,
    "log2": lambda np: np.log2,
    "log10": lambda np: np.log10,
    "softplus": lambda np: lambda x: np.where(x > scalar.SOFTPLUS_THRESHOLD, x,
                                              np.log1p(np.exp(x))),
    "log_sigmoid": lambda np: lambda x: np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x))),
    "hypot": lambda np: np.hypot,
    "clip": lambda np: lambda x, lo, hi: np.minimum(hi, np.maximum(lo, x)),
    "where": lambda np: lambda c, a, b: np.where(np.not_equal(c, 0), a, b),
    "greater": lambda np: lambda a, b: np.greater(a, b).astype(float),
    "greater_equal": lambda np: lambda a, b: np.greater_equal(a, b).astype(float),
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
                 f">>> bool(np.allclose({name}(0.5), {name}(np.array([0.5])),\n"
                 f"...                    equal_nan=True))\nTrue")
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
tan = _unary("tan")
sinh = _unary("sinh")
cosh = _unary("cosh")
asin = _unary("asin")
acos = _unary("acos")
atan = _unary("atan")
asinh = _unary("asinh")
acosh = _unary("acosh")
atanh = _unary("atanh")
erf = _unary("erf")
erfc = _unary("erfc")
log1p = _unary("log1p")
expm1 = _unary("expm1")
log2 = _unary("log2")
log10 = _unary("log10")
softplus = _unary("softplus")
log_sigmoid = _unary("log_sigmoid")
atan2 = _binary("atan2")
hypot = _binary("hypot")
greater = _binary("greater")
greater_equal = _binary("greater_equal")


def _ternary(name: str) -> Any:
    fn = getattr(scalar, name)

    def f(a: Any, b: Any, c: Any) -> Any:
        if isinstance(a, _NUMBER) and isinstance(b, _NUMBER) and isinstance(c, _NUMBER):
            return fn(a, b, c)
        return _array(name, a, b, c)

    f.__name__ = name
    f.__doc__ = (f"{name} of floats or arrays; see ``scalar.{name}``.\n\n"
                 f">>> import numpy as np\n"
                 f">>> bool({name}(0.5, 0.0, 1.0) == {name}(np.array([0.5]), 0.0, 1.0)[0])\nTrue")
    return f


clip = _ternary("clip")
where = _ternary("where")


def quiet() -> Any:
    """numpy's floating-point warnings off, as a context manager: for array
    arithmetic whose NaN or inf a ``select`` then masks out.

    >>> import numpy as np
    >>> with quiet():
    ...     select(np.array([0.0]) == 0.0, 0.0, np.array([0.0]) * -np.inf).tolist()
    [0.0]
    """
    return _np().errstate(all="ignore")


def quiet_arrays() -> Any:
    """``quiet()`` where numpy is loaded, else a context that does nothing
    (no array exists then, and ``import fmicrograd`` does not load numpy):
    for sweeps and traces, whose values are arrays under ``vmap``, silent as
    eager float code and compiled code are.

    >>> with quiet_arrays():
    ...     pass
    """
    np = sys.modules.get("numpy")
    return _NOTHING if np is None else np.errstate(all="ignore")


_NOTHING = contextlib.nullcontext()


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
           "sign", "div", "power", "maximum", "minimum", "share", "select", "quiet", "quiet_arrays",
           "math",
           "tan", "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh",
           "erf", "erfc", "log1p", "expm1", "log2", "log10", "softplus", "log_sigmoid",
           "hypot", "clip", "where", "greater", "greater_equal", "inexact_int", "inexact_ints",
           "power_array"]
