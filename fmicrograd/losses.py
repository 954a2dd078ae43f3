"""Loss functions on floats and graph nodes alike (written with ``fm`` functions).

Each takes a prediction and a target (a scalar each, or equal-length
sequences) and, for sequences, reduces the per-example losses with
``reduction``: ``"mean"`` (the default, as torch), ``"sum"`` or ``"none"``
(a tuple). The cross-entropies use the log-sum-exp trick with a
``stop_gradient`` shift, so values and gradients stay finite and exact at
logits of +-1000, including at 0 where a ``max``-based shift would have a kink.

>>> fm.losses.mse([1.0, 2.0], [1.0, 4.0])
2.0
>>> fm.losses.hinge([2.0, -0.5], [1.0, 1.0])
0.75
>>> round(fm.losses.binary_cross_entropy_with_logits(0.0, 1.0), 6)
0.693147
"""

from __future__ import annotations

import functools
import math
import numbers
import sys
from collections.abc import Callable, KeysView, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from .core import functions as F
from .core import pytree as tree
from .core.control import CHECKS
from .core.expr import Expr, lift, prim, stored_value
from .core.placeholder import NoNumbers, ValuesRead
from .core.softmax import log_softmax, logsumexp

__all__ = ["mse", "hinge", "binary_cross_entropy_with_logits", "softmax_cross_entropy",
           "l2", "log_sum_exp"]

_REDUCTIONS: dict[str, Callable[[list], Any]] = {"mean": F.mean, "sum": F.sum, "none": tuple}


def _is_seq(x: Any) -> bool:
    if isinstance(x, Mapping) or isinstance(x, Set) and not isinstance(x, KeysView):
        # (mse of a dict compared its keys: 0.0 for 30.5; a keys view keeps its order)
        raise TypeError(f"fm.losses: got a {type(x).__name__}, whose order is not the "
                        "examples' (a dict is read key by key, a set in any order); pass a "
                        "list or tuple, e.g. list(d.values())")
    return (not isinstance(x, (Expr, numbers.Number, str)) and hasattr(x, "__len__")
            and getattr(x, "ndim", 1) != 0)  # (a 0-d array is one number)


def _elementwise(f: Callable[[Any, Any], Any], preds: Any, targets: Any, reduction: str,
                 who: str, numbers_in: bool = True) -> Any:
    """``f`` on one pair, or on each pair of two sequences then reduced. With
    ``numbers_in`` (a prediction and a target, not softmax cross-entropy's
    logits and class index) plain numbers go in as Python floats: a float32's
    ``p - t`` would round in float32."""
    def pair(p: Any, t: Any, i: int | None = None) -> Any:
        if not numbers_in:
            return f(p, t)
        for name, v in (("prediction", p), ("target", t)):
            if isinstance(v, (list, tuple)) or getattr(v, "ndim", None):
                # (a (B, K) array's rows would give a per-column array, not one loss)
                at = "" if i is None else f" {i}"
                what = (f"an array of shape {v.shape}" if hasattr(v, "shape") else
                        f"a {type(v).__name__} of length {len(v)}")
                raise ValueError(
                    f"{who}: {name}{at} is {what}, not one number; "
                    "each prediction and target is one number (for several outputs per "
                    "example, pass them flattened into one sequence, or add up a loss per "
                    "output)")
        return f(F._float(p, who), F._float(t, who))

    if reduction not in _REDUCTIONS:
        raise ValueError(f"{who}: reduction must be one of {sorted(_REDUCTIONS)}, "
                         f"got {reduction!r}")
    if not _is_seq(preds):
        if _is_seq(targets):
            raise ValueError(f"{who}: one prediction but {len(targets)} targets")
        return pair(preds, targets)
    if not _is_seq(targets) or len(preds) != len(targets):
        got = len(targets) if _is_seq(targets) else "a single"
        raise ValueError(f"{who}: {len(preds)} predictions but {got} targets; "
                         "pass equal-length sequences")
    if not len(preds):
        raise ValueError(f"{who}: no predictions")
    return _REDUCTIONS[reduction]([pair(p, t, i) for i, (p, t) in enumerate(zip(preds, targets))])


def _rejected(y: Any, ok: Callable[[Any], Any]) -> tuple[str, Any] | None:
    """``("", y)`` if ``ok`` rejects the number ``y``; for a numpy array of
    numbers (``ok`` runs elementwise) the first rejected entry's place and
    value; else None. Nested vmap puts the innermost batch axis first: the
    place is given outermost first, as the user's data is indexed.

    >>> _rejected(0.5, lambda y: y > 1), _rejected(2.0, lambda y: y > 1)
    (('', 0.5), None)
    """
    if isinstance(y, numbers.Real):  # a numpy scalar shown as its Python number
        return None if ok(y) else ("", getattr(y, "item", lambda: y)())
    if getattr(getattr(y, "dtype", None), "kind", None) not in ("b", "i", "u", "f"):
        return None  # not a number: the loss's own arithmetic says what is wrong
    bad = ~ok(y).T
    if not bad.any():
        return None
    at = tuple(int(ix[0]) for ix in bad.nonzero()) if bad.ndim else ()
    return (f" at batch index {at[0] if len(at) == 1 else at}" if at else ""), y.T[at].item()


def _check_labels(labels: Any, ok: Callable[[Any], Any], who: str, convention: str,
                  path: str = "labels") -> None:
    """Raise a ValueError naming the first label that ``ok`` rejects. Numbers,
    numpy arrays and nodes (by their values: vmap passes a batch of labels as
    a node holding an array) are checked. Under ``jit`` a label is a node of
    the trace, checked here with the values of the call that traces; where
    it is an input of the compiled program (an argument, or a column of one
    that ``vmap`` maps), the program checks ``ok`` on it at every call, and
    a call it rejects traces again, so that this raises (``CHECKS``). A
    label computed from the inputs (``2 * y - 1``) is computed again and
    checked at every call (``guards.derived_labels``), under ``fm.to_torch``
    too.

    >>> _check_labels([1.0, 0.0], lambda y: (y == 1) | (y == -1), "hinge", "-1 or +1")
    Traceback (most recent call last):
    ...
    ValueError: hinge: labels[1] is 0.0, but hinge expects labels -1 or +1
    """
    seq = _is_seq(labels)
    for i, label in enumerate(labels if seq else (labels,)):
        if label.__class__ is float and ok(label):  # the common case, without the calls below
            continue
        if isinstance(label, Expr):
            log = CHECKS.get()
            if log is not None:  # a node of jit's trace: checked at every compiled call too
                log.append((label, ok))
            node, label = label, label.value
            if isinstance(label, NoNumbers):  # a large batch's trace (``core/shaped.py``)
                if log is not None and _is_column(node):
                    continue  # the program checks it at every call, the first one too
                raise ValuesRead  # (a label computed from the inputs: checked with numbers)
        found = _rejected(label, ok)
        if found is not None:
            where = (f"{path}[{i}]" if seq else "the label") + found[0]
            raise ValueError(f"{who}: {where} is {found[1]!r}, but {who} expects labels "
                             f"{convention}")


def _is_column(node: Expr) -> bool:
    """Whether ``node`` is a column of an array argument of the running
    ``jit`` trace (``batching/traced_arrays.py``), an input of its program."""
    from .batching.traced_arrays import TRACED  # (only with values without numbers)

    traced = TRACED.get()
    return traced is not None and node in traced.lowered


def _squared_error(p: Any, t: Any) -> Any:
    d = p - t
    return d * d


def mse(preds: Any, targets: Any, reduction: str = "mean") -> Any:
    """Mean squared error, as ``torch.nn.functional.mse_loss``.

    >>> fm.losses.mse(3.0, 1.0), fm.losses.mse([0.0, 1.0], [1.0, 1.0], reduction="none")
    (4.0, (1.0, 0.0))
    """
    return _elementwise(_squared_error, preds, targets, reduction, "mse")


def _margin(score: Any, label: Any) -> Any:
    return F.relu(1.0 - label * score)


def _plus_minus_one(y: Any) -> Any:
    return (y == 1) | (y == -1)


def hinge(scores: Any, labels: Any, reduction: str = "mean") -> Any:
    """micrograd's max-margin loss ``relu(1 - label * score)``, labels -1 / 1
    (map 0 / 1 labels with ``2*y - 1``; other labels are a ValueError).

    >>> fm.losses.hinge(0.25, -1.0)
    1.25
    """
    _check_labels(labels, _plus_minus_one, "hinge",
                  "-1 or +1 (micrograd's max-margin); map 0/1 labels with 2*y - 1, "
                  "e.g. hinge(scores, [2*y - 1 for y in ys])")
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
    # (a label that jit traces takes this path too)
    y0 = F.stop_gradient(y)
    return (-(y0 * F.log_sigmoid(z)) - (1.0 - y0) * F.log_sigmoid(-z)
            + _label_slope(y - y0, z))


@dataclass(frozen=True)
class LabelSlope:
    """The term ``d * -z`` of a label's offset ``d = y - stop_gradient(y)`` (0
    in value) and a logit ``z``: a ``"custom"`` node (see ``rules.PARAM_VJP``)
    with the product's derivatives, ``-z`` in ``d`` (-inf at ``z = inf``, as
    torch's ``-z``), ``-d`` in ``z`` and ``-1`` across, at every order. A
    ``*`` node could not be 0 at an infinite logit (0 * inf is nan), and with
    ``z`` clipped to the finite floats the slope was -1.8e308 there and the
    mixed second derivative 0.

    The node's first input is its value, ``stop_gradient(d * -clip(z))``:
    ``fm.jit`` computes it with those plain ops (``passes_value``), as fast as
    any; ``torch`` is that form on tensors (``fm.to_torch``, whose autograd
    differentiates the clipped form).

    >>> LabelSlope()(1.0, 0.0, 0.0, 0.0, math.inf)
    (0.0, -inf, -0.0)
    """

    passes_value = True  # its value is its first input's (``compiler.ir``)

    def forward(self, value: Any, d: Any, z: Any) -> Any:
        return value

    def __call__(self, ct: Any, out: Any, value: Any, d: Any, z: Any) -> tuple:
        return 0.0, ct * -z, -(ct * d)

    def torch(self, t: Any, value: Any, d: Any, z: Any) -> Any:
        return d * -t.clamp(z, -sys.float_info.max, sys.float_info.max)


_LABEL_SLOPE = LabelSlope()


def _label_slope(d: Expr, z: Any) -> Expr:
    z = lift(z)
    value = F.stop_gradient(d * -F.clip(z, -sys.float_info.max, sys.float_info.max))
    return prim("custom", stored_value(value), (value, d, z), _LABEL_SLOPE)


def _zero_to_one(y: Any) -> Any:
    return (0 <= y) & (y <= 1)  # not 0 <= y <= 1: numpy arrays have no chained comparison


def binary_cross_entropy_with_logits(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """``-y log(sigmoid(z)) - (1 - y) log(1 - sigmoid(z))`` for labels in
    [0, 1] (map -1 / 1 labels with ``(y + 1) / 2``; other labels are a
    ValueError), as torch's function of the same name.

    >>> fm.losses.binary_cross_entropy_with_logits([1000.0, -1000.0], [1.0, 0.0])
    0.0
    """
    _check_labels(labels, _zero_to_one, "binary_cross_entropy_with_logits",
                  "in [0, 1] (as torch); map -1/+1 labels with (y + 1) / 2, e.g. "
                  "binary_cross_entropy_with_logits(logits, [(y + 1) / 2 for y in ys])")
    return _elementwise(_bce, logits, labels, reduction, "binary_cross_entropy_with_logits")


def log_sum_exp(xs: Sequence) -> Any:
    """``log(sum(exp(x)))`` without overflow; its gradient is ``softmax(xs)``.

    >>> round(fm.losses.log_sum_exp([1000.0, 1000.0]), 6)
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
        n = len(zs)  # checked by its value (under jit: at every compiled call)
        _check_labels(label, _class_index(n), "softmax_cross_entropy",
                      f"that are class indices 0 .. {n - 1}")
        return _picked(log_softmax(zs), label)
    if not _is_seq(label) or len(label) != len(zs):
        raise ValueError("softmax_cross_entropy: a label must be a class index (int) or "
                         f"{len(zs)} class probabilities, got {label!r}")
    return F.dot(tuple(label), tuple(0.0 - z for z in log_softmax(zs)))


@functools.lru_cache(maxsize=64)
def _class_index(n: int) -> Callable[[Any], Any]:
    """The test of a class index among ``n`` classes, one function per ``n``
    (so that the compiled checks of a batch's labels are one, see ``guards``)."""
    return lambda y: (y >= 0) & (y < n) & (y % 1 == 0)


def _picked(log_probs: tuple, label: Expr) -> Any:
    """``0 - log_probs[label]`` for a class index only known as a node's value,
    and NaN (not an error: the value may only be known when a compiled
    program runs) unless it is one of ``0 .. len(log_probs) - 1``."""
    hits = [F.greater_equal(label, float(k)) * F.less_equal(label, float(k))
            for k in range(len(log_probs))]
    picked = F.sum([F.where(h, z, 0.0) for h, z in zip(hits, log_probs)])
    return F.where(F.sum(hits), 0.0 - picked, math.nan)


_PROBABILITIES = ("that are class indices (ints) or class probabilities in [0, 1]; for a -1/+1 "
                  "one-hot row pass its class index (row.index(1)) or [(y + 1) / 2 for y in row]")


def softmax_cross_entropy(logits: Sequence, labels: Any, reduction: str = "mean") -> Any:
    """Cross-entropy of ``softmax(logits)`` against a class index or a vector
    of class probabilities, as ``torch.nn.functional.cross_entropy``. A class
    index that ``jit`` traces (a node) is selected by comparisons and checked
    (a ValueError, naming the example under ``vmap``) at the call that traces
    and, where it is an input of the compiled program, at every later call;
    one computed inside the function gives NaN at a later call where it is
    not an index in range. A class probability outside [0, 1] is a ValueError.
    ``logits`` is one example's K scores, or a sequence of such examples with
    one label each.

    >>> round(fm.losses.softmax_cross_entropy([0.0, 0.0], 1), 6)
    0.693147
    >>> fm.losses.softmax_cross_entropy([[1000.0, -1000.0], [0.0, 0.0]], [0, [0.5, 0.5]], "none")
    (0.0, 0.6931471805599453)
    """
    if not _is_seq(logits) or not len(logits):
        raise ValueError("softmax_cross_entropy: logits must be a non-empty sequence of scores")
    if reduction not in _REDUCTIONS:  # (one example's path returned before the check)
        raise ValueError(f"softmax_cross_entropy: reduction must be one of "
                         f"{sorted(_REDUCTIONS)}, got {reduction!r}")
    if not _is_seq(logits[0]):
        if _is_seq(labels):
            _check_labels(labels, _zero_to_one, "softmax_cross_entropy", _PROBABILITIES)
        return _softmax_ce(logits, labels)
    for i, label in enumerate(labels if _is_seq(labels) else ()):
        if _is_seq(label):
            _check_labels(label, _zero_to_one, "softmax_cross_entropy", _PROBABILITIES,
                          f"labels[{i}]")
    return _elementwise(_softmax_ce, logits, labels, reduction, "softmax_cross_entropy",
                        numbers_in=False)


def l2(params: Any) -> Any:
    """Sum of squares of a pytree's leaves (micrograd's regularizer); a ``vmap``
    result in it counts example by example, as the Python loop's tuple.

    >>> fm.losses.l2({"w": (1.0, 2.0), "b": 3.0})
    14.0
    """
    xs = tree.example_leaves(params)
    return F.dot(xs, xs)
