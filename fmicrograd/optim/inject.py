"""An injectable learning rate: the step size as a leaf of the optimizer
state, as optax's ``inject_hyperparams`` does, so a running fold can lower
it (``fm.train.fit``'s rollback) without rebuilding the optimizer.

``inject_lr_scale(opt)`` multiplies ``opt``'s updates by ``state.lr_scale``.
Every ``fm.optim`` optimizer ends with its learning rate (a number or a
schedule), so scaling its updates is scaling its learning rate, schedules
included. The scale is a plain number leaf: under ``fm.jit`` it is an input
of the compiled step, and changing it compiles nothing new.

>>> opt = inject_lr_scale(fm.optim.sgd(0.5))
>>> state = opt.init((0.0,))
>>> opt.update((1.0,), state)[0], opt.update((1.0,), scale_lr(state, 0.1))[0]
((-0.5,), (-0.05,))
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

from .base import UPDATE_WITHOUT_STATE, GradientTransformation
from .transforms import _map

__all__ = ["InjectLrScaleState", "inject_lr_scale", "scale_lr"]


class InjectLrScaleState(NamedTuple):
    """The factor applied to the inner optimizer's updates, and its state."""

    lr_scale: Any
    inner: Any


def _inject_init(params: Any, *, inner: GradientTransformation, lr_scale: float) -> Any:
    return InjectLrScaleState(lr_scale, inner.init(params))


def _inject_update(grads: Any, state: InjectLrScaleState | None = None, params: Any = None,
                   *, inner: GradientTransformation) -> tuple:
    if state is None:
        raise TypeError(UPDATE_WITHOUT_STATE)
    if not isinstance(state, InjectLrScaleState):
        raise TypeError(f"inject_lr_scale: expected the state its init made "
                        f"(InjectLrScaleState), got {type(state).__name__}")
    out, inner_state = inner.update(grads, state.inner, params)
    s = state.lr_scale
    return _map(lambda u: u * s, out), InjectLrScaleState(s, inner_state)


def inject_lr_scale(optimizer: GradientTransformation,
                    lr_scale: float = 1.0) -> GradientTransformation:
    """``optimizer`` with its updates multiplied by ``state.lr_scale`` (start:
    ``lr_scale``); change it between steps with ``scale_lr``. With the scale
    at 1.0 the updates are bit for bit ``optimizer``'s.

    >>> opt = fm.optim.inject_lr_scale(fm.optim.adam(0.1), 0.5)
    >>> round(opt.update((3.0,), opt.init((0.0,)))[0][0], 6)
    -0.05
    """
    if not isinstance(optimizer, GradientTransformation):
        raise TypeError(f"inject_lr_scale: expected a GradientTransformation (e.g. "
                        f"fm.optim.sgd(0.1)), got {type(optimizer).__name__}")
    _check_factor(lr_scale, "inject_lr_scale: lr_scale")
    return GradientTransformation(
        functools.partial(_inject_init, inner=optimizer, lr_scale=float(lr_scale)),
        functools.partial(_inject_update, inner=optimizer))


def scale_lr(state: InjectLrScaleState, factor: float) -> InjectLrScaleState:
    """A new state whose learning rate is ``factor`` times ``state``'s.

    >>> fm.optim.scale_lr(fm.optim.InjectLrScaleState(1.0, ()), 0.1)
    InjectLrScaleState(lr_scale=0.1, inner=())
    """
    if not isinstance(state, InjectLrScaleState):
        raise TypeError(f"scale_lr: expected the state of an inject_lr_scale optimizer, got "
                        f"{type(state).__name__}; wrap the optimizer with "
                        "fm.optim.inject_lr_scale(opt)")
    scaled = state.lr_scale * _check_factor(factor, "scale_lr: factor")
    if scaled.__class__ is float and not 0.0 < scaled < math.inf:  # (each factor was
        raise ValueError(f"scale_lr: the learning-rate scale {state.lr_scale!r} times "  # checked,
                         f"{factor!r} is {scaled!r}: the product must stay a finite number > 0")
    return state._replace(lr_scale=scaled)  # not their product: an inf scale made -inf steps


def _check_factor(x: Any, what: str) -> float:
    # (numpy's numbers too: np.float32(0.5) is a finite number > 0, which this said it was not)
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {x!r}")
    return float(x)
