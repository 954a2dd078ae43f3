"""Loss functions on floats and graph nodes alike (written with ``fm`` functions).

Each takes a prediction and a target (a scalar each, or equal-length
sequences) and, for sequences, reduces the per-example losses with
``reduction``: ``"mean"`` (the default, as torch), ``"sum"`` or ``"none"``
(a tuple). The cross-entropies use the log-sum-exp trick with a
``stop_gradient`` shift, so values and gradients stay finite and exact at
logits of +-1000, including at 0 where a ``max``-based shift would have a kink.

>>> mse([1.0, 2.0], [1.0, 4.0])
2.0
>>> hinge([2.0, -0.5], [1.0, 1.0])
0.75
>>> round(binary_cross_entropy_with_logits(0.0, 1.0), 6)
0.693147
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

from . import tree
from .core import functions as F
from .core.expr import Expr
from .core.softmax import log_softmax, logsumexp

__all__ = ["mse", "hinge", "binary_cross_entropy_with_logits", "softmax_cross_entropy",
           "l2", "log_sum_exp"]

_REDUCTIONS: dict[str, Callable[[list], Any]] = {"mean": F.mean, "sum": F.sum, "none": tuple}


def _is_seq(x: Any) -> bool:
    return not isinstance(x, (Expr, numbers.Number, str)) and hasattr(x, "__len__")


def _elementwise(f: Callable[[Any, Any], Any], preds: Any, targets: Any, reduction: str,
                 who: str) -> Any:
    """``f`` on one pair, or on each pair of two sequences then reduced."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{who}: reduction must be one of {sorted(_REDUCTIONS)}, "
                         f"got {reduction!r}")
    if not _is_seq(preds):
        if _is_seq(targets):
            raise ValueError(f"{who}: one prediction but {len(targets)} targets")
        return f(preds, targets)
    if not _is_seq(targets) or len(preds) != len(targets):
        got = len(targets) if _is_seq(targets) else "a single"
        raise ValueError(f"{who}: {len(preds)} predictions but {got} targets; "
                         "pass equal-length sequences")
    if not len(preds):
        raise ValueError(f"{who}: no predictions")
    return _REDUCTIONS[reduction]([f(p, t) for p, t in zip(preds, targets)])


def _squared_error(p: Any, t: Any) -> Any:
    d = p - t
    return d * d


def mse(preds: Any, targets: Any, reduction: str = "mean") -> Any:
    """Mean squared error, as ``torch.nn.functional.mse_loss``.

    >>> mse(3.0, 1.0), mse([0.0, 1.0], [1.0, 1.0], reduction="none")
    (4.0, (1.0, 0.0))
    """
    return _elementwise(_squared_error, preds, targets, reduction, "mse")


def _margin(score: Any, label: Any) -> Any:
    return F.relu(1.0 - label * score)


def hinge(scores: Any, labels: Any, reduction: str = "mean") -> Any:
    """micrograd's max-margin loss ``relu(1 - label * score)``, labels -1 / 1.

    >>> hinge(0.25, -1.0)
    1.25
    """
    return _elementwise(_margin, scores, labels, reduction, "hinge")


def _bce(z: Any, y: Any) -> Any:
    # -y log(sigmoid(z)) - (1 - y) log(sigmoid(-z)), each term exact in the tails
    # (``softplus(z) - z * y`` cancels to 0.0 at z = 40, y = 1, where the loss is
    # 4.2e-18; fm.softplus is torch's, linear above 20: log_sigmoid is exact)
    if not isinstance(y, Expr):
        return -(y * F.log_sigmoid(z)) - (1.0 - y) * F.log_sigmoid(-z)
    # a label being differentiated: the loss's slope in it is -z, which the form
    # above computes as log_sigmoid(-z) - log_sigmoid(z), inexactly near z = 0.
    # The value comes from that form, the slope in y from (y - y0) * -z, exact
    y0 = F.stop_gradient(y)
    return -(y0 * F.log_sigmoid(z)) - (1.0 - y0) * F.log_sigmoid(-z) + (y - y0) * -z


def binary_cross_entropy_with_logits(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """``-y log(sigmoid(z)) - (1 - y) log(1 - sigmoid(z))`` for labels in
    [0, 1] (map -1 / 1 labels with ``(y + 1) / 2``), as torch's function of
    the same name.

    >>> binary_cross_entropy_with_logits([1000.0, -1000.0], [1.0, 0.0])
    0.0
    """
    return _elementwise(_bce, logits, labels, reduction, "binary_cross_entropy_with_logits")


def log_sum_exp(xs: Sequence) -> Any:
    """``log(sum(exp(x)))`` without overflow; its gradient is ``softmax(xs)``.

    >>> round(log_sum_exp([1000.0, 1000.0]), 6)
    1000.693147
    """
    return logsumexp(xs)  # -inf for all -inf, inf with an inf: as torch


def _softmax_ce(logits: Any, label: Any) -> Any:
    # -log_softmax, as torch: each logit minus the maximum before anything else, so
    # logits far from 0 (1e6 + small differences) lose no precision; ``lse - z``
    # would round the large ``lse`` first (relative error 5e-9 at 1e6, 6e-5 at 1e10)
    zs = tuple(logits)
    if isinstance(label, numbers.Integral) and not isinstance(label, bool):
        if not 0 <= int(label) < len(zs):
            raise ValueError(f"softmax_cross_entropy: class index {label} is out of range for "
                             f"{len(zs)} logits")
        return 0.0 - log_softmax(zs)[label]  # 0.0, not -0.0, at a sure class
    if isinstance(label, Expr):  # a class index jit traces or vmap maps: selected, not indexed
        return _picked(log_softmax(zs), label)
    if not _is_seq(label) or len(label) != len(zs):
        raise ValueError("softmax_cross_entropy: a label must be a class index (int) or "
                         f"{len(zs)} class probabilities, got {label!r}")
    return F.dot(tuple(label), tuple(0.0 - z for z in log_softmax(zs)))


def _picked(log_probs: tuple, label: Expr) -> Any:
    """``0 - log_probs[label]`` for a class index only known as a node's value,
    and NaN (not an error: the value may only be known when a compiled
    program runs) unless it is one of ``0 .. len(log_probs) - 1``."""
    hits = [F.greater_equal(label, float(k)) * F.less_equal(label, float(k))
            for k in range(len(log_probs))]
    picked = F.sum([F.where(h, z, 0.0) for h, z in zip(hits, log_probs)])
    return F.where(F.sum(hits), 0.0 - picked, math.nan)


def softmax_cross_entropy(logits: Sequence, labels: Any, reduction: str = "mean") -> Any:
    """Cross-entropy of ``softmax(logits)`` against a class index or a vector
    of class probabilities, as ``torch.nn.functional.cross_entropy``. A class
    index that ``jit`` traces or ``vmap`` maps (a node) is selected by
    comparisons; one that is not an index in range gives NaN there.
    ``logits`` is one example's K scores, or a sequence of such examples with
    one label each.

    >>> round(softmax_cross_entropy([0.0, 0.0], 1), 6)
    0.693147
    >>> softmax_cross_entropy([[1000.0, -1000.0], [0.0, 0.0]], [0, [0.5, 0.5]], "none")
    (0.0, 0.6931471805599453)
    """
    if not _is_seq(logits) or not len(logits):
        raise ValueError("softmax_cross_entropy: logits must be a non-empty sequence of scores")
    if not _is_seq(logits[0]):
        return _softmax_ce(logits, labels)
    return _elementwise(_softmax_ce, logits, labels, reduction, "softmax_cross_entropy")


def l2(params: Any) -> Any:
    """Sum of squares of a pytree's leaves (micrograd's regularizer).

    >>> l2({"w": (1.0, 2.0), "b": 3.0})
    14.0
    """
    xs = tree.leaves(params)
    return F.dot(xs, xs)
