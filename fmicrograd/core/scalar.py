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
    """``a ** b`` as C's ``pow``: nan, not complex, for a negative base.

    >>> power(-8.0, 1 / 3), power(0.0, -1.0), power(2.0, 10.0)
    (nan, inf, 1024.0)
    """
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
    """Derivative of abs: -1, 0 or 1 (torch's abs'(0) = 0); nan for nan.

    >>> sign(-3.0), sign(0.0), sign(2.0)
    (-1.0, 0.0, 1.0)
    """
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x if x != x else 0.0


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
