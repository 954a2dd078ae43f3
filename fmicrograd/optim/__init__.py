"""Optimizers as pure ``GradientTransformation(init, update)`` pairs (optax's
design): ``update(grads, state, params=None) -> (updates, new_state)`` and
``apply_updates(params, updates)``; learning rates may be schedules.

>>> import fmicrograd as fm
>>> opt = fm.optim.adam(0.1)
>>> params = (1.0, -2.0)
>>> state = opt.init(params)
>>> grads = fm.grad(lambda p: p[0] ** 2 + p[1] ** 2)(params)
>>> updates, state = opt.update(grads, state)
>>> [round(p, 6) for p in fm.optim.apply_updates(params, updates)]
[0.9, -1.9]
"""

from .alias import adam, adamw, rmsprop, sgd
from .base import (
    EmptyState,
    GradientTransformation,
    apply_updates,
    chain,
    global_norm,
    identity,
)
from .inject import InjectLrScaleState, inject_lr_scale, scale_lr
from .schedules import (
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    linear_schedule,
    micrograd_schedule,
)
from .transforms import (
    ScaleByAdamState,
    ScaleByRmsState,
    ScaleByScheduleState,
    TraceState,
    add_decayed_weights,
    clip_by_global_norm,
    scale,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    scale_by_schedule,
    trace,
)

__all__ = [
    "GradientTransformation", "EmptyState", "apply_updates", "chain", "identity", "global_norm",
    "sgd", "adam", "adamw", "rmsprop",
    "scale", "scale_by_schedule", "scale_by_learning_rate", "trace", "scale_by_adam",
    "scale_by_rms", "add_decayed_weights", "clip_by_global_norm",
    "ScaleByScheduleState", "TraceState", "ScaleByAdamState", "ScaleByRmsState",
    "constant_schedule", "linear_schedule", "exponential_decay", "cosine_decay_schedule",
    "micrograd_schedule", "inject_lr_scale", "scale_lr", "InjectLrScaleState",
]
