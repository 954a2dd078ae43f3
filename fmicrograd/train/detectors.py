"""Detectors: pure functions of the history that say when training goes wrong.

Each detector looks at the history up to the current epoch (lists of floats
by metric name) and returns the numbers that triggered it, or None. The
thresholds are the fields of ``Thresholds``; override any of them with
``fit(..., thresholds=Thresholds(plateau_window=50))``.

========================  ==================================================
kind                      fires when (defaults)
========================  ==================================================
``"nan"``                 the loss, a gradient entry or a parameter is nan
                          or infinite (a norm that overflowed with every
                          entry finite is not)
``"explosion"``           the loss is above ``explosion_factor`` (5) times
                          the best loss so far and above the first epoch's,
                          or it rose in each of the last
                          ``explosion_window`` (5) epochs, by
                          ``explosion_growth`` (2) times in all, while
                          above ``plateau_above`` (0.1) times the first
                          epoch's (lower, the run has converged, and that
                          is minibatch noise)
``"exploding_grad"``      the gradient norm is above ``exploding_factor``
                          (100) times the median of the previous
                          ``window`` (10) epochs' norms, or the first
                          epoch's norm if larger; or it overflowed to inf
                          while every entry is finite
``"oscillation"``         over the last ``oscillation_window`` (10) epochs
                          the loss changed direction at least
                          ``oscillation_flips`` (0.8) of the time, by
                          ``oscillation_rtol`` (25%) of its mean on average,
                          without progress (the second half's lowest loss
                          is not 1% below the first half's), while its
                          mean is above ``plateau_above`` (0.1) times the
                          first epoch's loss
``"plateau"``             the best loss of the last ``plateau_window`` (25)
                          epochs is within ``plateau_rtol`` (1e-4) of the
                          best before them, while it is still above
                          ``plateau_above`` (0.1) times the first epoch's
                          (lower, the run has converged rather than stalled)
``"vanishing_grad"``      the gradient norm is below ``vanishing_grad_norm``
                          (1e-8) while the loss is above ``converged_loss``
                          (1e-8), or a layer's gradient norm stayed below
                          ``vanishing_layer_ratio`` (1e-4) times the largest
                          layer's for ``vanishing_window`` (5) epochs
========================  ==================================================

``"nan"``, ``"explosion"``, ``"exploding_grad"`` and ``"oscillation"`` are
instabilities (``INSTABILITIES``): ``fit``'s ``on_instability`` policy acts
on them. ``"plateau"`` and ``"vanishing_grad"`` are recorded and reported.
``fit`` records an event when its problem starts: a kind that fires epoch
after epoch (a loss that stays NaN) is one event, recorded again only after
an epoch without it or a rollback.

>>> h = {"loss": [1.0, 0.5, 80.0], "grad_norm": [1.0, 1.0, 1.0]}
>>> [(e["kind"], e["loss"]) for e in detect(h, 2, Thresholds())]
[('explosion', 80.0)]
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pyrsistent import PMap, PVector, pmap, pvector

__all__ = ["Thresholds", "detect", "running_min", "DETECTORS", "INSTABILITIES", "KINDS"]

INSTABILITIES = ("nan", "explosion", "exploding_grad", "oscillation")
KINDS = ("nan", "explosion", "exploding_grad", "oscillation", "plateau", "vanishing_grad")


@dataclass(frozen=True)
class Thresholds:
    """The detectors' thresholds (see the module docstring for each one).

    >>> fm.train.Thresholds(plateau_window=50).plateau_window
    50
    """

    explosion_factor: float = 5.0
    explosion_window: int = 5
    explosion_growth: float = 2.0
    exploding_factor: float = 100.0
    window: int = 10
    oscillation_window: int = 10
    oscillation_flips: float = 0.8
    oscillation_rtol: float = 0.25
    plateau_window: int = 25
    plateau_rtol: float = 1e-4
    plateau_above: float = 0.1
    converged_loss: float = 1e-8
    vanishing_grad_norm: float = 1e-8
    vanishing_layer_ratio: float = 1e-4
    vanishing_window: int = 5

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or (
                    f.type == "int" and not isinstance(v, int)):
                raise ValueError(f"Thresholds: {f.name} must be a positive {f.type}, got {v!r}")


History = Mapping[str, Sequence[float]]
Found = dict[str, Any] | None


def _finite(xs: Sequence[float]) -> list[float]:
    return list(filter(math.isfinite, xs))


def _nan(h: History, e: int, t: Thresholds) -> Found:
    values = {k: h[k][e] for k in ("loss", "grad_norm", "param_norm", "nonfinite_grads",
                                   "nonfinite_params") if k in h}
    counted = {"grad_norm": "nonfinite_grads", "param_norm": "nonfinite_params"}
    # a norm that overflowed (entries above about 1e154) while every entry is finite
    # is not a nan (exploding_grad reports a gradient's)
    bad: list[str] = [k for k in ("loss", "grad_norm", "param_norm") if k in values
                      and not math.isfinite(values[k])
                      and not (k in counted and values.get(counted[k]) == 0
                               and values[k] == math.inf)]
    bad += [k for k in ("nonfinite_grads", "nonfinite_params") if values.get(k)]
    if not bad:
        return None
    return {**values, "message": f"not finite: {', '.join(dict.fromkeys(bad))}"}


def _best(h: History, k: int) -> float:
    """The lowest finite loss of epochs ``0..k`` (inf if none): from the running
    minima ``fit`` passes (``detect``'s ``best``), else computed."""
    mins = h.get(_BEST)
    if mins is not None:
        return mins[k]
    return min(_finite(h["loss"][:k + 1]), default=math.inf)


def _converged(loss: float, first: float, t: Thresholds) -> bool:
    """Whether ``loss`` is at most ``plateau_above`` times the first epoch's
    (finite and above 0): the run has converged, and the rises and swings of
    its minibatch noise (0.009 to 0.027) are no instability."""
    return math.isfinite(first) and first > 0 and loss <= t.plateau_above * first


def _explosion(h: History, e: int, t: Thresholds) -> Found:
    loss = h["loss"][e]
    best = _best(h, e - 1) if e else math.inf
    if best == math.inf or not math.isfinite(loss):
        return None
    first = h["loss"][0]
    if loss > t.explosion_factor * best and loss > first and best >= 0:
        return {"loss": loss, "best": best, "factor": t.explosion_factor,
                "message": f"loss {loss:.4g} is over {t.explosion_factor:g}x the best "
                           f"{best:.4g} and above the first epoch's {first:.4g}"}
    w = t.explosion_window
    recent = h["loss"][e - w:e + 1] if e >= w and not _converged(loss, first, t) else []
    if (recent and all(math.isfinite(x) and x > 0 for x in recent)
            and all(b > a for a, b in zip(recent, recent[1:]))
            and recent[-1] > t.explosion_growth * recent[0]):
        return {"loss": loss, "start": recent[0], "window": w,
                "message": f"loss rose in each of the last {w} epochs, from {recent[0]:.4g} "
                           f"to {loss:.4g}"}
    return None


def _exploding_grad(h: History, e: int, t: Thresholds) -> Found:
    g = h["grad_norm"][e]
    before = _finite(h["grad_norm"][max(0, e - t.window):e])
    if g == math.inf and "nonfinite_grads" in h and h["nonfinite_grads"][e] == 0:
        return {"grad_norm": g, "message": "the gradient norm overflowed to inf while every "
                                           "entry is finite (entries above about 1e154)"}
    if not before or not math.isfinite(g):
        return None
    # against the first epoch's norm too: a converged hinge loss has gradients near zero,
    # and one point crossing its margin is no explosion
    first = h["grad_norm"][0]
    reference = max(statistics.median(before), first if math.isfinite(first) else 0.0)
    if g > t.exploding_factor * reference:
        return {"grad_norm": g, "reference": reference, "factor": t.exploding_factor,
                "message": f"gradient norm {g:.4g} is over {t.exploding_factor:g}x "
                           f"{reference:.4g} (the median of the previous epochs' norms, or "
                           "the first epoch's if larger)"}
    return None


def _oscillation(h: History, e: int, t: Thresholds) -> Found:
    w = t.oscillation_window
    if e + 1 < w:
        return None
    recent = h["loss"][e + 1 - w:e + 1]
    if not all(map(math.isfinite, recent)):
        return None
    diffs = [b - a for a, b in zip(recent, recent[1:])]
    flips = sum(a * b < 0 for a, b in zip(diffs, diffs[1:]))
    mean = sum(map(abs, recent)) / w
    if _converged(mean, h["loss"][0], t):  # a converged run's minibatch noise
        return None
    size = sum(map(abs, diffs)) / len(diffs)
    half = w // 2
    stuck = min(recent[half:]) >= 0.99 * min(recent[:half])  # no new best by 1%
    if stuck and flips >= t.oscillation_flips * (len(diffs) - 1) \
            and size > t.oscillation_rtol * mean:
        return {"loss": recent[-1], "flips": flips, "amplitude": size,
                "message": f"the loss changed direction {flips} times in {w} epochs, by "
                           f"{size:.3g} on average ({100 * size / mean:.1f}% of its mean)"}
    return None


def _plateau(h: History, e: int, t: Thresholds) -> Found:
    w = t.plateau_window
    if e < w:
        return None
    old, recent = _best(h, e - w), _finite(h["loss"][e + 1 - w:e + 1])
    if old == math.inf or len(recent) < w:
        return None
    new = min(recent)
    first = h["loss"][0]
    high = not math.isfinite(first) or new > t.plateau_above * first  # else: converged
    # within plateau_rtol of the earlier best either way: a loss far above it has
    # diverged (an explosion's business), not stalled
    if high and new > t.converged_loss and abs(old - new) <= t.plateau_rtol * abs(old):
        return {"loss": h["loss"][e], "best": old, "window": w,
                "message": f"no improvement over {w} epochs: best loss {new:.6g} against "
                           f"{old:.6g} before"}
    return None


def _vanishing_grad(h: History, e: int, t: Thresholds) -> Found:
    g, loss = h["grad_norm"][e], h["loss"][e]
    if not (math.isfinite(g) and math.isfinite(loss)):
        return None
    if g < t.vanishing_grad_norm and loss > t.converged_loss:
        what = "every gradient is zero" if g == 0 else f"the gradient norm is {g:.3g}"
        return {"grad_norm": g, "loss": loss,
                "message": f"{what} while the loss is {loss:.4g}"}
    names = sorted(k for k in h if k[:10] == "grad_norm.")
    w = t.vanishing_window
    if len(names) < 2 or e + 1 < w:
        return None
    rows = list(zip(*(h[k][e + 1 - w:e + 1] for k in names)))  # the window, epoch by epoch
    tops = [max(row) for row in rows]
    if not all(math.isfinite(top) and top > 0 for top in tops):
        return None
    for j, name in enumerate(names):  # a layer far below the largest one all the window
        if all(row[j] < t.vanishing_layer_ratio * top for row, top in zip(rows, tops)):
            layer = name[len("grad_norm."):]
            return {"grad_norm": g, "layer": layer, "layer_norm": h[name][e],
                    "message": f"the gradient of {layer} stayed below "
                               f"{t.vanishing_layer_ratio:g}x the largest layer's for {w} epochs "
                               f"(now {h[name][e]:.3g})"}
    return None


DETECTORS: dict[str, Callable[[History, int, Thresholds], Found]] = {
    "nan": _nan, "explosion": _explosion, "exploding_grad": _exploding_grad,
    "oscillation": _oscillation, "plateau": _plateau, "vanishing_grad": _vanishing_grad,
}


_BEST = "\0best"  # detect's running minima of the loss, beside the history's lists
_NONE: PVector = pvector()


class _Tail(Sequence):
    """``v[offset:]`` without copying it (a history from ``since`` on)."""

    def __init__(self, v: Sequence[float], offset: int) -> None:
        self.v, self.offset = v, offset

    def __len__(self) -> int:
        return len(self.v) - self.offset

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            return self.v[self.offset + start:self.offset + stop:step]
        return self.v[self.offset + (i if i >= 0 else i + len(self))]


def running_min(losses: Sequence[float], mins: PVector = _NONE, start: int = 0) -> PVector:
    """``mins`` extended to ``losses[start:]``: entry ``k`` is the lowest finite
    loss of ``losses[start:start + k + 1]`` (inf while there is none). ``fit``
    keeps it from epoch to epoch and passes it to ``detect``, so that the
    detectors that compare with the best loss so far cost the same at every
    epoch.

    >>> list(running_min([3.0, float("nan"), 1.0, 2.0]))
    [3.0, 3.0, 1.0, 1.0]
    """
    grown = mins.evolver()
    m = mins[-1] if len(mins) else math.inf
    for x in losses[start + len(mins):]:
        if x < m and math.isfinite(x):  # the first of equal values, as min() keeps
            m = x
        grown.append(m)
    return grown.persistent()


def detect(history: History, epoch: int, thresholds: Thresholds,
           since: int = 0, best: Sequence[float] | None = None) -> tuple[PMap, ...]:
    """The events at ``epoch`` (an index into the history's lists): one ``PMap``
    per detector that fires, with ``epoch``, ``kind``, ``message`` and the
    numbers that triggered it. A nan silences the other detectors. The
    detectors see the history from epoch ``since`` on (after a rollback, the
    epochs before it belong to a trajectory that was abandoned). ``best``, if
    given, is ``running_min`` of the losses from ``since`` on, up to ``epoch``
    at least: without it, the lowest loss so far is found again by a pass
    over the whole history.

    >>> h = {"loss": [1.0, float("nan")], "grad_norm": [1.0, 2.0]}
    >>> [sorted(e.items()) for e in detect(h, 1, Thresholds())]  # doctest: +NORMALIZE_WHITESPACE
    [[('epoch', 1), ('grad_norm', 2.0), ('kind', 'nan'), ('loss', nan),
      ('message', 'not finite: loss')]]
    """
    # a dict: a persistent map's lookups cost a microsecond each (its vectors index fast)
    history = {k: _Tail(v, since) if since else v for k, v in history.items()}
    if best is not None:
        history[_BEST] = best
    events = []
    for kind, detector in DETECTORS.items():
        found = detector(history, epoch - since, thresholds)
        if found is not None:
            events.append(pmap({"epoch": epoch, "kind": kind, **found}))
            if kind == "nan":
                break
    return tuple(events)
