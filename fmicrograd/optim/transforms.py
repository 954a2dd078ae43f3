"""The stages optimizers are chained from, each a ``GradientTransformation``
with its own NamedTuple state (optax's names and conventions).

Every rule is written with generic arithmetic and ``fm`` functions, so it
runs on float gradients and, inside another transform, on graph nodes
(differentiating through an optimizer step works).

>>> opt = scale(-0.5)
>>> opt.update({"w": 2.0}, opt.init({"w": 0.0}))
({'w': -1.0}, EmptyState())
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

from ..core import functions as F
from ..core import pytree as tree
from ..core.batch_axes import DEPTH
from ..core.expr import Expr
from .base import (
    EmptyState,
    GradientTransformation,
    _identity_update,
    _name_a_leaf,
    global_norm,
    leafwise,
    zeros_like,
)
from .schedules import (
    ConstantSchedule,
    CosineDecay,
    ExponentialDecay,
    LinearSchedule,
    MicrogradSchedule,
    ScalarOrSchedule,
)

_BUILT_IN = (ConstantSchedule, CosineDecay, ExponentialDecay, LinearSchedule, MicrogradSchedule)

__all__ = ["scale", "scale_by_schedule", "scale_by_learning_rate", "trace", "scale_by_adam",
           "scale_by_rms", "add_decayed_weights", "clip_by_global_norm",
           "ScaleByScheduleState", "TraceState", "ScaleByAdamState", "ScaleByRmsState"]


def _stateless(update: Callable, **hyper: Any) -> GradientTransformation:
    return GradientTransformation(_empty_init, functools.partial(update, **hyper))


def _empty_init(params: Any) -> EmptyState:
    return EmptyState()


def _map(f: Callable[..., Any], updates: Any, *rest: Any, who: str = "update") -> Any:
    td, (out,) = leafwise(lambda *a: (f(*a),), 1, updates, *rest, who=who,
                          names=("the gradient tree", "the parameter tree"))
    return tree.unflatten(td, out)


def check_number(who: str, name: str, value: Any, lo: float, hi: float | None = None) -> Any:
    """``value`` as a float64 Python number (a numpy float32 learning rate
    would make every eager step compute in float32, and differ from the
    compiled one), after refusing a hyper-parameter that is not a number in
    ``[lo, hi)`` (``hi`` None: no upper bound, but finite: an infinite
    learning rate, momentum, eps or decay made every step -inf, nan or 0,
    silently), as torch.optim does. A node (a hyper-parameter being
    differentiated) is not checked.

    >>> import numpy as np
    >>> check_number("sgd", "lr", np.float32(0.5), 0.0)
    0.5
    >>> check_number("adam", "b1", 1.0, 0.0, 1.0)
    Traceback (most recent call last):
    ValueError: adam: b1 must be a number in [0.0, 1.0), got 1.0
    """
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{who}: {name} must be a number, got {type(value).__name__} {value!r}")
    number: Any = value  # a Real: compared as it is (an int beyond float range too)
    if not (lo <= number and (hi is None or number < hi)):  # NaN fails both
        where = f"in [{lo}, {hi})" if hi is not None else f">= {lo}"
        raise ValueError(f"{who}: {name} must be a number {where}, got {value!r}")
    wide = F._widened(value, who)  # (+-inf for an int beyond float range)
    if wide == math.inf:
        raise ValueError(f"{who}: {name} must be a finite number >= {lo}, got {value!r:.40}")
    return wide


def _expect(state: Any, kind: type, who: str) -> None:
    """A TypeError naming the state ``who`` needs, for another optimizer's
    (a ``ScaleByScheduleState`` taken for an ``EmptyState`` read
    ``tuple.count``, a method, and failed in the arithmetic)."""
    if state.__class__ is not kind:
        raise TypeError(f"{who}: the optimizer state is {type(state).__name__} "
                        f"{str(state)[:60]}, not the {kind.__name__} this optimizer keeps: "
                        "pass the state this optimizer's init made (a state saved from, or "
                        "made by, another optimizer does not carry over; call opt.init(params))")


# scale ------------------------------------------------------------------------

def _scale_update(grads: Any, state: EmptyState, params: Any = None, *,
                  step_size: float) -> tuple:
    return _map(lambda g: step_size * g, grads, who="scale.update"), state


def scale(step_size: float) -> GradientTransformation:
    """Multiply updates by a fixed ``step_size``.

    >>> fm.optim.scale(2.0).update((1.0, 3.0), fm.optim.EmptyState())[0]
    (2.0, 6.0)
    """
    if not isinstance(step_size, Expr) and (isinstance(step_size, bool) or not isinstance(
            step_size, numbers.Real)):  # (a str failed at the first update, unnamed)
        raise TypeError(f"scale: step_size must be a number, got {type(step_size).__name__} "
                        f"{step_size!r}")
    return _stateless(_scale_update, step_size=F._widened(step_size, "scale"))


class ScaleByScheduleState(NamedTuple):
    """How many updates were made (the schedule's argument)."""

    count: int  # type: ignore[assignment]  # shadows tuple.count, as optax's field


def _schedule_init(params: Any) -> ScaleByScheduleState:
    return ScaleByScheduleState(0)


def _schedule_update(grads: Any, state: ScaleByScheduleState, params: Any = None, *,
                     schedule: Callable[[int], float], sign: float) -> tuple:
    _expect(state, ScaleByScheduleState, "scale_by_schedule.update")
    value = F._widened(_scheduled(schedule, state.count), "schedule")
    if sign < 0.0 and not 0.0 <= value < math.inf:  # a learning rate (NaN fails too; a
        # guard under jit; inf made every update -inf, as adam(inf) is refused)
        raise ValueError(f"learning-rate schedule {schedule!r} gave {F.where_value(value)!r} "
                         f"at step {F.where_value(state.count):g}: a learning rate must be "
                         "finite and >= 0 (a negative one climbs the loss)")
    step_size = sign * value
    return _map(lambda g: step_size * g, grads, who="scale_by_schedule.update"), \
        ScaleByScheduleState(state.count + 1)


def _scheduled(schedule: Callable[[int], float], count: Any) -> Any:
    """``schedule(count)``, which must be one number (a float, an int, an fm
    node, a numpy scalar): anything else is a ``TypeError`` naming the
    schedule and the step (``None`` from a branch that forgot to return
    failed in a comparison; a 1-entry array made the parameters arrays)."""
    value = schedule(count)
    kind = getattr(getattr(value, "dtype", None), "kind", "")
    if isinstance(value, (numbers.Real, Expr)) or (
            getattr(value, "ndim", None) == 0 and kind in "fiu") or (
            getattr(value, "ndim", 0) and DEPTH.get()):  # (under vmap: one per example)
        return value
    raise TypeError(f"learning-rate schedule {schedule!r} gave {type(value).__name__} "
                    f"{value!r} at step {F.where_value(count):g}: a schedule returns one number "
                    "(a float, or an fm node of the step)")


def scale_by_schedule(schedule: Callable[[int], float],
                      sign: float = 1.0) -> GradientTransformation:
    """Multiply updates by ``sign * schedule(count)``, count = updates so far.

    >>> opt = fm.optim.scale_by_schedule(lambda k: 10.0 ** -k)
    >>> u, s = opt.update((1.0,), opt.init((0.0,)))
    >>> u, opt.update((1.0,), s)[0]
    ((1.0,), (0.1,))
    """
    _takes_the_step(schedule)
    return GradientTransformation(
        _schedule_init, functools.partial(_schedule_update, schedule=schedule, sign=sign))


def _takes_the_step(schedule: Callable) -> None:
    """Refuse, where the optimizer is made, a schedule that cannot be called
    with the step alone (Python's own error came at the first update, naming
    ``<lambda>()`` and not the schedule's role)."""
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):  # (some built-ins have none: they are tried when called)
        return
    try:
        signature.bind(0)
    except TypeError as e:
        raise TypeError(f"learning-rate schedule {schedule!r} cannot be called as "
                        f"schedule(step): {e}; a schedule takes the number of updates so far "
                        "and returns the learning rate, e.g. lambda k: 0.1 * 0.99 ** k"
                        ) from None


def scale_by_learning_rate(lr: ScalarOrSchedule) -> GradientTransformation:
    """Multiply by ``-lr`` (a number or a schedule): the descent direction.

    >>> fm.optim.scale_by_learning_rate(0.1).update((2.0,), fm.optim.EmptyState())[0]
    (-0.2,)
    """
    if callable(lr):
        if isinstance(lr, _BUILT_IN) and not (lowest := lr.lowest()) >= 0.0:  # (NaN too)
            raise ValueError(f"optimizer: the learning-rate schedule {lr!r} goes down to "
                             f"{lowest!r}; a learning rate must be >= 0")
        return scale_by_schedule(lr, -1.0)
    if isinstance(lr, bool) or not isinstance(lr, (numbers.Real, Expr)):
        raise TypeError(f"learning rate must be a number or a schedule (step -> number), "
                        f"got {type(lr).__name__} {lr!r}")
    lr = check_number("optimizer", "lr", lr, 0.0)  # the step is -lr * update
    return scale(-lr)  # an Expr learning rate makes the step differentiable in it


# momentum ---------------------------------------------------------------------

class TraceState(NamedTuple):
    """The running sum of past updates (momentum buffer)."""

    trace: Any


def _trace_init(params: Any) -> TraceState:
    return TraceState(zeros_like(params))


def _trace_update(grads: Any, state: TraceState, params: Any = None, *,
                  decay: float, nesterov: bool) -> tuple:
    _expect(state, TraceState, "trace.update (momentum)")

    def step(g: Any, t: Any) -> tuple:
        t = g + decay * t
        return (g + decay * t if nesterov else t), t

    td, (out, new) = leafwise(step, 2, grads, state.trace, who="trace.update",
                                lanes=True)
    return tree.unflatten(td, out), TraceState(tree.unflatten(tree.persistent(td), new))


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: ``t = g + decay * t``, update ``t`` (or ``g + decay * t``
    with ``nesterov``), as ``torch.optim.SGD``.

    >>> opt = fm.optim.trace(0.5)
    >>> u, s = opt.update((1.0,), opt.init((0.0,)))
    >>> opt.update((1.0,), s)[0]
    (1.5,)
    """
    decay = check_number("optimizer", "momentum", decay, 0.0)
    if isinstance(nesterov, str) or nesterov not in (True, False):  # ("no" turned it on;
        raise TypeError(f"trace: nesterov must be True or False, got {nesterov!r}")  # 1 and
    return GradientTransformation(  # numpy's bools are taken, as fit's flags)
        _trace_init, functools.partial(_trace_update, decay=decay, nesterov=bool(nesterov)))


# adaptive scalings ------------------------------------------------------------

class ScaleByAdamState(NamedTuple):
    """Adam's step count and first and second moment estimates."""

    count: int  # type: ignore[assignment]  # shadows tuple.count, as optax's field
    mu: Any
    nu: Any


def _adam_init(params: Any) -> ScaleByAdamState:
    return ScaleByAdamState(0, zeros_like(params), zeros_like(params))


def _adam_update(grads: Any, state: ScaleByAdamState, params: Any = None, *,
                 b1: float, b2: float, eps: float) -> tuple:
    _expect(state, ScaleByAdamState, "adam.update")
    count = state.count + 1
    c1, c2 = 1.0 - b1 ** count, 1.0 - b2 ** count

    root_c2 = c2 ** 0.5

    def step(g: Any, m: Any, v: Any) -> tuple:
        # in torch's order: (1 - b2) * g * g and sqrt(v) / sqrt(c2) stay finite for
        # gradients up to ~1e155, where g * g and v / c2 overflow
        m = (1.0 - b1) * g + b1 * m
        v = (1.0 - b2) * g * g + b2 * v
        return F.div(m / c1, F.sqrt(v) / root_c2 + eps), m, v

    td, (out, mu, nu) = leafwise(step, 3, grads, state.mu, state.nu, who="adam.update",
                                     lanes=True)
    ptd = tree.persistent(td)
    return tree.unflatten(td, out), ScaleByAdamState(count, tree.unflatten(ptd, mu),
                                                     tree.unflatten(ptd, nu))


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    """Adam's bias-corrected ``m / (sqrt(v) + eps)``.

    >>> opt = fm.optim.scale_by_adam()
    >>> opt.update((3.0,), opt.init((0.0,)))[0]
    (0.9999999966666667,)
    """
    b1 = check_number("adam", "b1", b1, 0.0, 1.0)
    b2 = check_number("adam", "b2", b2, 0.0, 1.0)
    eps = check_number("adam", "eps", eps, 0.0)
    return GradientTransformation(_adam_init,
                                  functools.partial(_adam_update, b1=b1, b2=b2, eps=eps))


class ScaleByRmsState(NamedTuple):
    """The running mean of squared gradients."""

    nu: Any


def _rms_init(params: Any) -> ScaleByRmsState:
    return ScaleByRmsState(zeros_like(params))


def _rms_update(grads: Any, state: ScaleByRmsState, params: Any = None, *,
                decay: float, eps: float) -> tuple:
    _expect(state, ScaleByRmsState, "rmsprop.update")

    def step(g: Any, v: Any) -> tuple:
        v = (1.0 - decay) * g * g + decay * v
        return F.div(g, F.sqrt(v) + eps), v

    td, (out, nu) = leafwise(step, 2, grads, state.nu, who="rmsprop.update",
                               lanes=True)
    return tree.unflatten(td, out), ScaleByRmsState(tree.unflatten(tree.persistent(td), nu))


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8) -> GradientTransformation:
    """``g / (sqrt(v) + eps)`` with ``v`` the running mean of ``g * g``, as
    ``torch.optim.RMSprop(alpha=decay)`` (eps outside the root; it is
    ``optax.scale_by_rms(decay, eps, eps_in_sqrt=False)``, optax's default
    puts eps inside).

    >>> opt = fm.optim.scale_by_rms(decay=0.75)
    >>> round(opt.update((1.0,), opt.init((0.0,)))[0][0], 6)  # 1 / sqrt(0.25)
    2.0
    """
    decay = check_number("rmsprop", "decay", decay, 0.0, 1.0)  # 1: the mean never moves from 0
    eps = check_number("rmsprop", "eps", eps, 0.0)
    return GradientTransformation(_rms_init,
                                  functools.partial(_rms_update, decay=decay, eps=eps))


# weight decay and clipping ----------------------------------------------------

def _decay_update(grads: Any, state: EmptyState, params: Any = None, *,
                  weight_decay: float) -> tuple:
    if params is None:
        raise ValueError("add_decayed_weights (adamw's weight decay) needs the parameters: "
                         "call opt.update(grads, state, params)")
    return _map(lambda g, p: g + weight_decay * p, grads, params,
                who="add_decayed_weights.update"), state


def add_decayed_weights(weight_decay: float) -> GradientTransformation:
    """Add ``weight_decay * params`` to the updates (decoupled weight decay).

    >>> fm.optim.add_decayed_weights(0.1).update((1.0,), fm.optim.EmptyState(), (2.0,))[0]
    (1.2,)
    """
    weight_decay = check_number("add_decayed_weights", "weight_decay", weight_decay, 0.0)
    return _stateless(_decay_update, weight_decay=weight_decay)


def _clip_update(grads: Any, state: EmptyState, params: Any = None, *,
                 max_norm: float) -> tuple:
    # max_norm / max(norm, max_norm) is exactly 1.0 below the threshold: no branch on values
    try:
        norm = global_norm(grads)
    except TypeError:  # (Python's own "can't multiply sequence": the leaf named)
        _name_a_leaf("clip_by_global_norm.update", ("the gradient tree",), (grads,))
        raise
    factor = F.div(max_norm, F.maximum(norm, max_norm))
    return _map(lambda g: g * factor, grads, who="clip_by_global_norm.update"), state


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale updates down so that their global norm is at most ``max_norm``.

    >>> fm.optim.clip_by_global_norm(1.0).update((3.0, 4.0), fm.optim.EmptyState())[0]
    (0.6000000000000001, 0.8)
    """
    if isinstance(max_norm, Expr):  # being differentiated (or traced): not checked, as
        return _stateless(_clip_update, max_norm=max_norm)  # check_number leaves a node
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"clip_by_global_norm: max_norm must be a number, got "
                        f"{type(max_norm).__name__} {max_norm!r}")
    if not max_norm > 0:
        raise ValueError(f"clip_by_global_norm: max_norm must be > 0, got {max_norm!r}")
    if max_norm == math.inf:  # no clipping (inf / max(norm, inf) would be NaN; optax's is)
        return _stateless(_identity_update)
    try:
        max_norm = float(max_norm)
    except OverflowError:  # (an int beyond float64: Python's bare OverflowError)
        raise ValueError("clip_by_global_norm: max_norm is an int beyond float64; "
                         "pass math.inf for no clipping") from None
    return _stateless(_clip_update, max_norm=max_norm)
