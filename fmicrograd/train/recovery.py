"""What ``fit`` does when a detector fires: the ``on_instability`` policies.

- ``"warn"`` (default): record the event, warn (``InstabilityWarning``) and go on.
- ``"raise"``: raise ``InstabilityError`` (it carries the events and the history).
- ``"stop"``: end training and return the last parameters at which no
  instability was detected.
- ``"rollback"``: go back to those parameters and optimizer state, multiply
  the learning rate by ``rollback_lr_factor`` and go on; after
  ``max_rollbacks`` rollbacks, stop.

Policies act on instabilities (``detectors.INSTABILITIES``); plateaus and
vanishing gradients are recorded (and warned about under ``"warn"``) only.
Going back costs nothing: the fold still holds the last good state, because
nothing in it was ever changed in place.

>>> decide("rollback", ("nan",), rollbacks=3, max_rollbacks=3)
'stop'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .detectors import INSTABILITIES

__all__ = ["InstabilityError", "InstabilityWarning", "POLICIES", "decide"]

POLICIES = ("warn", "raise", "stop", "rollback")


class InstabilityError(RuntimeError):
    """Training became unstable under ``on_instability="raise"``; ``.events``
    are the events that fired, ``.history`` the history up to then."""

    def __init__(self, message: str, events: Sequence[Any] = (), history: Any = None) -> None:
        super().__init__(message)
        self.events = tuple(events)
        self.history = history


class InstabilityWarning(RuntimeWarning):
    """A detector fired during ``fit`` under ``on_instability="warn"``."""


def check_policy(policy: Any, rollback_lr_factor: Any, max_rollbacks: Any) -> None:
    """Reject bad policy arguments before training starts."""
    if policy not in POLICIES:
        raise ValueError(f"fit: on_instability must be one of {', '.join(map(repr, POLICIES))}, "
                         f"got {policy!r}")
    if isinstance(rollback_lr_factor, bool) or not isinstance(rollback_lr_factor, (int, float)) \
            or not 0 < rollback_lr_factor < 1:
        raise ValueError(f"fit: rollback_lr_factor must be a number in (0, 1), got "
                         f"{rollback_lr_factor!r}")
    if isinstance(max_rollbacks, bool) or not isinstance(max_rollbacks, int) or max_rollbacks < 0:
        raise ValueError(f"fit: max_rollbacks must be an int >= 0, got {max_rollbacks!r}")


def decide(policy: str, kinds: Sequence[str], *, rollbacks: int, max_rollbacks: int) -> str:
    """The action for an epoch whose new events are of ``kinds``: ``"go on"``,
    ``"warn"``, ``"raise"``, ``"stop"`` or ``"rollback"``.

    >>> decide("rollback", ("plateau",), rollbacks=0, max_rollbacks=3)
    'go on'
    >>> decide("warn", ("plateau",), rollbacks=0, max_rollbacks=3)
    'warn'
    """
    if not kinds:
        return "go on"
    if policy == "warn":
        return "warn"
    if not any(k in INSTABILITIES for k in kinds):
        return "go on"
    if policy == "rollback" and rollbacks >= max_rollbacks:
        return "stop"
    return policy
