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
    """``a / b`` with IEEE results at ``b == 0``: ``div(1.0, 0.0) == inf``."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return nan
        return math.copysign(inf, a) * math.copysign(1.0, b)


def power(a: float, b: float) -> float:
    """``a ** b`` as C's ``pow``: ``power(-8.0, 1/3)`` is nan, not complex."""
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
    """``e ** x``; ``exp(1000.0) == inf``."""
    try:
        return math.exp(x)
    except OverflowError:
        return inf


def log(x: float) -> float:
    """Natural log; ``log(0.0) == -inf``, ``log(-1.0)`` is nan."""
    if x > 0:
        return math.log(x)
    return -inf if x == 0 else nan


def sqrt(x: float) -> float:
    """Square root; ``sqrt(-1.0)`` is nan."""
    return math.sqrt(x) if x >= 0 else nan


def tanh(x: float) -> float:
    """Hyperbolic tangent."""
    return math.tanh(x)


def sigmoid(x: float) -> float:
    """Logistic function, stable at both tails."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = exp(x)
    return e / (1.0 + e)


def sin(x: float) -> float:
    """Sine; nan at infinity."""
    return math.sin(x) if x - x == 0 else nan


def cos(x: float) -> float:
    """Cosine; nan at infinity."""
    return math.cos(x) if x - x == 0 else nan


def relu(x: float) -> float:
    """``max(x, 0)``; nan stays nan as in torch."""
    return x if x > 0 or x != x else 0.0


def step(x: float) -> float:
    """Derivative of relu: 1 where ``x > 0``, else 0 (torch's relu'(0) = 0)."""
    return 1.0 if x > 0 else 0.0


def sign(x: float) -> float:
    """Derivative of abs: -1, 0 or 1 (torch's abs'(0) = 0); nan for nan."""
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x if x != x else 0.0


def maximum(a: float, b: float) -> float:
    """Larger of two; nan if either is nan (as torch.maximum)."""
    if a != a or b != b:
        return nan
    return a if a >= b else b


def minimum(a: float, b: float) -> float:
    """Smaller of two; nan if either is nan (as torch.minimum)."""
    if a != a or b != b:
        return nan
    return a if a <= b else b


def share(a: float, b: float) -> float:
    """Share of d max(a, b) that goes to ``a``: 1, 0.5 on a tie, or 0."""
    if a > b:
        return 1.0
    return 0.5 if a == b else 0.0
