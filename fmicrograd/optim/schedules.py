"""Learning-rate schedules: ``step -> learning rate``, as in optax.

A schedule is a frozen dataclass you call with the number of updates made so
far (0 for the first). Anything callable that way is accepted wherever a
learning rate is, and so is a plain number. The built-in schedules also take
a traced count, so ``fm.jit`` compiles them into a whole training step.

>>> s = linear_schedule(1.0, 0.0, transition_steps=4)
>>> [s(k) for k in range(6)]
[1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core import functions as F
from ..core.expr import Expr

__all__ = ["Schedule", "ScalarOrSchedule", "constant_schedule", "linear_schedule",
           "exponential_decay", "cosine_decay_schedule", "micrograd_schedule",
           "ConstantSchedule", "LinearSchedule", "ExponentialDecay", "CosineDecay",
           "MicrogradSchedule"]

Schedule = Callable[[int], float]
ScalarOrSchedule = float | Schedule


def _positive(n: int, who: str, what: str, least: int = 1) -> int:
    """``n`` as a Python int, if it is a whole number (numpy's too) of at least
    ``least``; else a ValueError."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < least:
        kind = "a positive int" if least == 1 else f"an int >= {least}"
        raise ValueError(f"{who}: {what} must be {kind}, got {n!r}")
    return int(n)


def _widened(x: Any) -> Any:
    """A schedule's value in float64 (a numpy float32 ``init_value`` would make
    every value it gives a float32); a node as it is. Anything else is a
    ``TypeError`` (a str failed at the first update, in a comparison)."""
    if x is not None and not isinstance(x, Expr) and (  # (None: an optional bound not given)
            isinstance(x, bool) or not isinstance(x, numbers.Real)):
        raise TypeError(f"schedule: a value must be a number, got {type(x).__name__} {x!r}")
    return F._widened(x, "schedule")


def _begin(n: int, who: str) -> int:
    # optax clamps a negative begin to 0 (with a log line); counting from it instead
    # shifted the whole schedule, so neither is silent here
    return _positive(n, who, "transition_begin (the step the transition starts at)", 0)


def _floor(p: Any) -> Any:
    """``math.floor``, also of a count traced by ``fm.jit``: the two comparisons
    are guards, so a compiled step is reused only on the same stair."""
    if not isinstance(p, Expr):
        return math.floor(p)
    n = math.floor(F.where_value(p))
    if not n <= p < n + 1:
        raise ArithmeticError(f"floor: {p!r} is not in [{n}, {n + 1})")
    return n


def _least(*values: Any) -> Any:
    """The least of a schedule's extreme values, NaN if one is NaN (``min``
    would pass a NaN by); a node (a traced hyper-parameter) as its value."""
    plain = [_lowest_of(F.where_value(v)) for v in values if v is not None]
    return math.nan if any(v != v for v in plain) else min(plain)


def _lowest_of(value: Any) -> Any:
    """A value, or the least of a ``vmap``'s per-example values (an array;
    NaN if one is NaN)."""
    if getattr(value, "ndim", 0) == 0:
        return value
    return math.nan if (value != value).any() else float(value.min())


@dataclass(frozen=True)
class ConstantSchedule:
    """See ``constant_schedule``."""

    value: float

    def __call__(self, count: int) -> float:
        return self.value

    def lowest(self) -> float:
        """The least value this schedule gives (NaN if it gives NaN)."""
        return self.value


@dataclass(frozen=True)
class LinearSchedule:
    """See ``linear_schedule``."""

    init_value: float
    end_value: float
    transition_steps: int
    transition_begin: int = 0

    def __call__(self, count: int) -> float:
        done = min(max(count - self.transition_begin, 0), self.transition_steps)
        frac = 1.0 - done / self.transition_steps
        return (self.init_value - self.end_value) * frac + self.end_value

    def lowest(self) -> float:
        """The least value this schedule gives (NaN if it gives NaN)."""
        return _least(self.init_value, self.end_value)


@dataclass(frozen=True)
class ExponentialDecay:
    """See ``exponential_decay``."""

    init_value: float
    transition_steps: int
    decay_rate: float
    transition_begin: int = 0
    staircase: bool = False
    end_value: float | None = None

    def __call__(self, count: int) -> float:
        p = max(count - self.transition_begin, 0) / self.transition_steps
        value = self.init_value * self.decay_rate ** (_floor(p) if self.staircase else p)
        if self.end_value is None:
            return value
        clip = max if self.decay_rate < 1.0 else min
        return clip(value, self.end_value)

    def lowest(self) -> float:
        """The lesser of ``init_value`` and ``end_value`` (NaN if either is):
        with ``init_value >= 0`` the schedule goes below 0 only if
        ``end_value`` does."""
        return _least(self.init_value, self.end_value)


@dataclass(frozen=True)
class CosineDecay:
    """See ``cosine_decay_schedule``."""

    init_value: float
    decay_steps: int
    alpha: float = 0.0

    def __call__(self, count: int) -> float:
        done = min(max(count, 0), self.decay_steps)
        cosine = 0.5 * (1.0 + F.cos(math.pi * done / self.decay_steps))
        return self.init_value * ((1.0 - self.alpha) * cosine + self.alpha)

    def lowest(self) -> float:
        """The least value this schedule gives (NaN if it gives NaN)."""
        return _least(self.init_value, self.init_value * self.alpha)


@dataclass(frozen=True)
class MicrogradSchedule:
    """See ``micrograd_schedule``."""

    init_value: float = 1.0
    decay: float = 0.9
    steps: int = 100

    def __call__(self, count: int) -> float:
        return self.init_value * (1.0 - self.decay * min(count, self.steps) / self.steps)

    def lowest(self) -> float:
        """The least value this schedule gives (NaN if it gives NaN)."""
        return _least(self.init_value, self.init_value * (1.0 - self.decay))


def constant_schedule(value: float) -> ConstantSchedule:
    """Always ``value``.

    >>> fm.optim.constant_schedule(0.1)(1000)
    0.1
    """
    return ConstantSchedule(_widened(value))


def linear_schedule(init_value: float, end_value: float, transition_steps: int,
                    transition_begin: int = 0) -> LinearSchedule:
    """``init_value`` until ``transition_begin``, then a straight line to
    ``end_value`` over ``transition_steps`` steps, then ``end_value``.

    >>> fm.optim.linear_schedule(1.0, 0.5, 10, transition_begin=5)(10)
    0.75
    """
    steps = _positive(transition_steps, "linear_schedule", "transition_steps")
    return LinearSchedule(_widened(init_value), _widened(end_value), steps,
                          _begin(transition_begin, "linear_schedule"))


def exponential_decay(init_value: float, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False,
                      end_value: float | None = None) -> ExponentialDecay:
    """``init_value * decay_rate ** ((step - transition_begin) / transition_steps)``,
    in whole steps with ``staircase``, never past ``end_value``.

    >>> s = fm.optim.exponential_decay(1.0, 10, 0.5)
    >>> s(0), s(10), s(20)
    (1.0, 0.5, 0.25)
    """
    steps = _positive(transition_steps, "exponential_decay", "transition_steps")
    if not decay_rate > 0.0:  # (NaN too)
        raise ValueError(f"exponential_decay: decay_rate must be > 0, got {decay_rate!r}")
    if not isinstance(staircase, (bool, numbers.Integral)):  # ("no" would have been True)
        raise TypeError(f"exponential_decay: staircase must be True or False, got {staircase!r}")
    return ExponentialDecay(_widened(init_value), steps, _widened(decay_rate),
                            _begin(transition_begin, "exponential_decay"), bool(staircase),
                            _widened(end_value))


def cosine_decay_schedule(init_value: float, decay_steps: int,
                          alpha: float = 0.0) -> CosineDecay:
    """Half a cosine from ``init_value`` down to ``alpha * init_value`` over
    ``decay_steps`` steps, then flat.

    >>> s = fm.optim.cosine_decay_schedule(1.0, 100)
    >>> s(0), s(50), s(100)
    (1.0, 0.5, 0.0)
    """
    steps = _positive(decay_steps, "cosine_decay_schedule", "decay_steps")
    return CosineDecay(_widened(init_value), steps, _widened(alpha))


def micrograd_schedule(init_value: float = 1.0, decay: float = 0.9,
                       steps: int = 100) -> MicrogradSchedule:
    """micrograd demo's ``1.0 - 0.9 * k / 100`` (times ``init_value``),
    held at its last value after ``steps`` steps.

    >>> s = fm.optim.micrograd_schedule()
    >>> s(0), s(50), s(100) == 1.0 - 0.9 * 100 / 100
    (1.0, 0.55, True)
    """
    return MicrogradSchedule(_widened(init_value), _widened(decay),
                             _positive(steps, "micrograd_schedule", "steps"))
