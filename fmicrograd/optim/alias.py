"""Ready-made optimizers, each a ``chain`` of transformations ending in
``-lr`` (a number or a schedule), matching ``torch.optim`` step for step.

>>> opt = sgd(0.1)
>>> params = {"w": 1.0}
>>> updates, state = opt.update(fm.grad(lambda p: p["w"] ** 2)(params), opt.init(params))
>>> apply_updates(params, updates)
{'w': 0.8}
"""

from __future__ import annotations

from typing import Any

from ..core.expr import Expr
from .base import GradientTransformation, apply_updates, chain, identity
from .schedules import ScalarOrSchedule
from .transforms import (
    add_decayed_weights,
    scale_by_adam,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)

__all__ = ["sgd", "adam", "adamw", "rmsprop", "apply_updates"]


def sgd(lr: ScalarOrSchedule, momentum: float = 0.0,
        nesterov: bool = False) -> GradientTransformation:
    """Stochastic gradient descent, with optional (Nesterov) momentum, as
    ``torch.optim.SGD(lr=lr, momentum=momentum, nesterov=nesterov)``.

    >>> opt = fm.optim.sgd(0.5, momentum=0.9)
    >>> u, s = opt.update((1.0,), opt.init((0.0,)))
    >>> u, opt.update((1.0,), s)[0]
    ((-0.5,), (-0.95,))
    """
    _nesterov("sgd", momentum, nesterov)
    first = trace(momentum, nesterov) if _momentum(momentum, nesterov) else identity()
    return chain(first, scale_by_learning_rate(lr))


def adam(lr: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> GradientTransformation:
    """Adam (Kingma and Ba), as ``torch.optim.Adam(lr, betas=(b1, b2), eps=eps)``.

    >>> opt = fm.optim.adam(0.1)
    >>> round(opt.update((5.0,), opt.init((0.0,)))[0][0], 6)  # the first step is lr * -sign(g)
    -0.1
    """
    return chain(scale_by_adam(b1, b2, eps), scale_by_learning_rate(lr))


def adamw(lr: ScalarOrSchedule, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> GradientTransformation:
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` and
    ``optax.adamw``; ``update`` needs the parameters. The default
    ``weight_decay`` is optax's (1e-4); torch's is 1e-2: pass it to match
    ``torch.optim.AdamW(lr=lr)``.

    >>> opt = fm.optim.adamw(0.1, weight_decay=0.5)
    >>> round(opt.update((5.0,), opt.init((2.0,)), (2.0,))[0][0], 6)  # -0.1 * (1 + 0.5 * 2)
    -0.2
    """
    return chain(scale_by_adam(b1, b2, eps), add_decayed_weights(weight_decay),
                 scale_by_learning_rate(lr))


def rmsprop(lr: ScalarOrSchedule, decay: float = 0.9, eps: float = 1e-8,
            momentum: float = 0.0, nesterov: bool = False) -> GradientTransformation:
    """RMSprop, as ``torch.optim.RMSprop(lr, alpha=decay, eps=eps, momentum=momentum)``.
    The default ``decay`` is optax's (0.9); torch's ``alpha`` is 0.99: pass it to
    match ``torch.optim.RMSprop(lr=lr)``.

    Two of torch's conventions are followed where ``optax.rmsprop`` differs:
    ``eps`` is added outside the square root, ``g / (sqrt(v) + eps)``
    (optax's default ``eps_in_sqrt=True`` divides by ``sqrt(v + eps)``; pass
    ``eps_in_sqrt=False`` to it to match), and the momentum buffer sums the
    unscaled steps and is multiplied by the current learning rate (optax
    applies the learning rate before its ``trace``, which is the same with a
    constant learning rate but not with a schedule). ``nesterov`` (not in
    torch's RMSprop) is ``trace``'s, as in ``sgd``.

    >>> opt = fm.optim.rmsprop(0.01, decay=0.0)
    >>> round(opt.update((4.0,), opt.init((0.0,)))[0][0], 6)
    -0.01
    >>> opt = fm.optim.rmsprop(lambda k: 0.1 if k == 0 else 0.01, decay=0.0, eps=0.0, momentum=0.9)
    >>> _, state = opt.update((1.0,), opt.init((0.0,)))
    >>> round(opt.update((1.0,), state)[0][0], 12)  # -0.01 * (1 + 0.9), as torch
    -0.019
    """
    _nesterov("rmsprop", momentum, nesterov)
    last = trace(momentum, nesterov) if _momentum(momentum, nesterov) else identity()
    return chain(scale_by_rms(decay, eps), last, scale_by_learning_rate(lr))


def _momentum(momentum: Any, nesterov: bool) -> bool:
    """Whether a ``trace`` is needed: a momentum being differentiated, mapped
    or traced always has one (skipping it at a momentum of 0 would drop its
    derivative there, and branch on a per-example value under ``vmap``)."""
    return isinstance(momentum, Expr) or bool(momentum) or nesterov


def _nesterov(who: str, momentum: float, nesterov: bool) -> None:
    if not isinstance(nesterov, bool):  # ("no" would have turned it on)
        raise TypeError(f"{who}: nesterov must be True or False, got {nesterov!r}")
    if nesterov and not (isinstance(momentum, Expr) or momentum > 0):
        raise ValueError(f"{who}: nesterov=True needs a momentum > 0 (as torch.optim), got "
                         f"momentum={momentum!r}")
