"""IEEE-754 float64 arithmetic on plain Python numbers, as torch computes it.

Python raises where IEEE (and torch) return ``inf`` or ``nan``: ``1/0``,
``math.log(0)``, ``math.exp(1000)``, ``(-8) ** (1/3)`` (complex!). Every
function here returns a ``float`` instead and never raises.

>>> log(0.0), div(1.0, 0.0), exp(1000.0)
(-inf, inf, inf)
"""

from __future__ import annotations

import math

inf = math.inf
nan = math.nan


def div(a: float, b: float) -> float:
    """``a / b`` with IEEE results at ``b == 0``.

    >>> div(1.0, 0.0), div(-1.0, 0.0), div(3.0, 2.0)
    (inf, -inf, 1.5)
    """
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return nan
        return math.copysign(inf, a) * math.copysign(1.0, b)


def power(a: float, b: float) -> float:
    """``a ** b`` as C's ``pow``: nan, not complex, for a negative base;
    ``a ** 0.5`` as ``sqrt(a)``, as numpy (``vmap``'s arrays) and torch
    compute it (``-inf ** 0.5`` is nan, ``-0.0 ** 0.5`` is -0.0; C's pow
    gives inf and 0.0).

    >>> power(-8.0, 1 / 3), power(0.0, -1.0), power(2.0, 10.0), power(-0.0, 0.5)
    (nan, inf, 1024.0, -0.0)
    """
    if b == 0.5:
        return math.sqrt(a) if a >= 0 else nan  # (-0.0 >= 0: sqrt keeps its sign)
    try:
        r = math.pow(a, b)
    except ZeroDivisionError:
        return inf
    except OverflowError:
        return -inf if a < 0 and b == int(b) and int(b) % 2 else inf
    except ValueError:  # 0 ** negative: C gives +-inf; negative ** fraction: nan
        if a == 0:
            odd = b == int(b) and int(b) % 2
            return math.copysign(inf, a) if odd else inf
        return nan
    return r


def exp(x: float) -> float:
    """``e ** x``, ``inf`` on overflow.

    >>> exp(1000.0), exp(0.0)
    (inf, 1.0)
    """
    try:
        return math.exp(x)
    except OverflowError:
        return inf


def log(x: float) -> float:
    """Natural log; ``-inf`` at 0, nan below.

    >>> log(0.0), log(-1.0), log(1.0)
    (-inf, nan, 0.0)
    """
    if x > 0:
        return math.log(x)
    return -inf if x == 0 else nan


def sqrt(x: float) -> float:
    """Square root; nan below 0.

    >>> sqrt(4.0), sqrt(-1.0)
    (2.0, nan)
    """
    return math.sqrt(x) if x >= 0 else nan


def tanh(x: float) -> float:
    """Hyperbolic tangent.

    >>> tanh(0.0), tanh(1000.0)
    (0.0, 1.0)
    """
    return math.tanh(x)


def sigmoid(x: float) -> float:
    """Logistic function, stable at both tails.

    >>> sigmoid(0.0), sigmoid(-1000.0), sigmoid(1000.0)
    (0.5, 0.0, 1.0)
    """
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = exp(x)
    return e / (1.0 + e)


def sin(x: float) -> float:
    """Sine; nan at infinity.

    >>> sin(0.0), sin(inf)
    (0.0, nan)
    """
    return math.sin(x) if x - x == 0 else nan


def cos(x: float) -> float:
    """Cosine; nan at infinity.

    >>> cos(0.0), cos(-inf)
    (1.0, nan)
    """
    return math.cos(x) if x - x == 0 else nan


def relu(x: float) -> float:
    """``max(x, 0)``; nan stays nan as in torch.

    >>> relu(-2.0), relu(3.0), relu(nan)
    (0.0, 3.0, nan)
    """
    return x if x > 0 or x != x else 0.0


def step(x: float) -> float:
    """Derivative of relu: 1 where ``x > 0``, else 0 (torch's relu'(0) = 0).

    >>> step(0.0), step(2.0)
    (0.0, 1.0)
    """
    return 1.0 if x > 0 else 0.0


def sign(x: float) -> float:
    """-1, 0 or 1, and 0 for nan, as torch.sign (also abs's derivative: abs'(0) = 0).

    >>> sign(-3.0), sign(0.0), sign(2.0), sign(nan)
    (-1.0, 0.0, 1.0, 0.0)
    """
    if x > 0:
        return 1.0
    return -1.0 if x < 0 else 0.0


def maximum(a: float, b: float) -> float:
    """Larger of two; nan if either is nan (as torch.maximum).

    >>> maximum(1.0, 2.0), maximum(nan, 1.0)
    (2.0, nan)
    """
    if a != a or b != b:
        return nan
    return a if a >= b else b


def minimum(a: float, b: float) -> float:
    """Smaller of two; nan if either is nan (as torch.minimum).

    >>> minimum(1.0, 2.0), minimum(1.0, nan)
    (1.0, nan)
    """
    if a != a or b != b:
        return nan
    return a if a <= b else b


def share(a: float, b: float) -> float:
    """Share of d max(a, b) that goes to ``a``: 1, 0.5 on a tie, or 0.

    >>> share(2.0, 1.0), share(1.0, 1.0), share(0.0, 1.0)
    (1.0, 0.5, 0.0)
    """
    if a > b:
        return 1.0
    return 0.5 if a == b else 0.0


# math's own versions never raise: inf and nan in, IEEE results out
atan = math.atan
atan2 = math.atan2
asinh = math.asinh
erf = math.erf
erfc = math.erfc
hypot = math.hypot


def _finite(x: float) -> bool:
    return x - x == 0


def tan(x: float) -> float:
    """Tangent; nan at infinity.

    >>> tan(0.0), tan(inf)
    (0.0, nan)
    """
    return math.tan(x) if _finite(x) else nan


def sinh(x: float) -> float:
    """Hyperbolic sine, ``+-inf`` on overflow.

    >>> sinh(0.0), sinh(-1000.0)
    (0.0, -inf)
    """
    try:
        return math.sinh(x)
    except OverflowError:
        return math.copysign(inf, x)


def cosh(x: float) -> float:
    """Hyperbolic cosine, ``inf`` on overflow.

    >>> cosh(0.0), cosh(-1000.0)
    (1.0, inf)
    """
    try:
        return math.cosh(x)
    except OverflowError:
        return inf


def asin(x: float) -> float:
    """Inverse sine; nan outside ``[-1, 1]``.

    >>> asin(0.0), asin(2.0)
    (0.0, nan)
    """
    return math.asin(x) if -1.0 <= x <= 1.0 else nan


def acos(x: float) -> float:
    """Inverse cosine; nan outside ``[-1, 1]``.

    >>> acos(1.0), acos(-2.0)
    (0.0, nan)
    """
    return math.acos(x) if -1.0 <= x <= 1.0 else nan


def acosh(x: float) -> float:
    """Inverse hyperbolic cosine; nan below 1.

    >>> acosh(1.0), acosh(0.5)
    (0.0, nan)
    """
    return math.acosh(x) if x >= 1.0 else nan


def atanh(x: float) -> float:
    """Inverse hyperbolic tangent; ``+-inf`` at ``+-1``, nan beyond.

    >>> atanh(0.0), atanh(1.0), atanh(-2.0)
    (0.0, inf, nan)
    """
    if -1.0 < x < 1.0:
        return math.atanh(x)
    return math.copysign(inf, x) if x in (1.0, -1.0) else nan


def log1p(x: float) -> float:
    """``log(1 + x)``, accurate near 0; ``-inf`` at -1, nan below.

    >>> log1p(0.0), log1p(-1.0), log1p(-2.0)
    (0.0, -inf, nan)
    """
    if x > -1.0:
        return math.log1p(x)
    return -inf if x == -1.0 else nan


def expm1(x: float) -> float:
    """``e ** x - 1``, accurate near 0; ``inf`` on overflow.

    >>> expm1(0.0), expm1(1000.0), expm1(-inf)
    (0.0, inf, -1.0)
    """
    try:
        return math.expm1(x)
    except OverflowError:
        return inf


def log2(x: float) -> float:
    """Base-2 log; ``-inf`` at 0, nan below.

    >>> log2(8.0), log2(0.0)
    (3.0, -inf)
    """
    if x > 0:
        return math.log2(x)
    return -inf if x == 0 else nan


def log10(x: float) -> float:
    """Base-10 log; ``-inf`` at 0, nan below.

    >>> log10(1000.0), log10(-1.0)
    (3.0, nan)
    """
    if x > 0:
        return math.log10(x)
    return -inf if x == 0 else nan


SOFTPLUS_THRESHOLD = 20.0  # torch's default: above it softplus(x) is x, exactly


def softplus(x: float) -> float:
    """``log(1 + e ** x)``, and ``x`` itself above 20 (torch's threshold).

    >>> softplus(0.0) == math.log(2.0), softplus(1000.0), softplus(-1000.0)
    (True, 1000.0, 0.0)
    """
    return x if x > SOFTPLUS_THRESHOLD else math.log1p(exp(x))


def log_sigmoid(x: float) -> float:
    """``log(sigmoid(x))``, stable at both tails (torch's formula).

    >>> log_sigmoid(0.0) == -math.log(2.0), log_sigmoid(-1000.0), log_sigmoid(1000.0)
    (True, -1000.0, 0.0)
    """
    low = x if x < 0 or x != x else 0.0
    return low - math.log1p(exp(-abs(x)))


def clip(x: float, lo: float, hi: float) -> float:
    """``x`` clamped to ``[lo, hi]`` as ``torch.clamp`` (``hi`` wins if ``lo > hi``).

    >>> clip(5.0, 0.0, 1.0), clip(-5.0, 0.0, 1.0), clip(nan, 0.0, 1.0)
    (1.0, 0.0, nan)
    """
    return minimum(maximum(x, lo), hi)


def where(cond: float, a: float, b: float) -> float:
    """``a`` if ``cond`` is true (nonzero) else ``b``.

    >>> where(1.0, 2.0, 3.0), where(0.0, 2.0, 3.0)
    (2.0, 3.0)
    """
    return a if cond else b


def greater(a: float, b: float) -> float:
    """1.0 where ``a > b``, else 0.0 (nan compares false).

    >>> greater(2.0, 1.0), greater(1.0, 1.0), greater(nan, 0.0)
    (1.0, 0.0, 0.0)
    """
    return 1.0 if a > b else 0.0


def greater_equal(a: float, b: float) -> float:
    """1.0 where ``a >= b``, else 0.0 (nan compares false).

    >>> greater_equal(1.0, 1.0), greater_equal(0.0, 1.0)
    (1.0, 0.0)
    """
    return 1.0 if a >= b else 0.0
