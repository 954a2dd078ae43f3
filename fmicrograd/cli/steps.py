"""How ``fmicrograd train`` runs its steps, and the loss and metric for each
path: compiled with ``fm.jit`` (SGD by default, Adam with ``--jit``; the loss
over ``fm.vmap``, which compiles in a fraction of a second, or the scalar
graph) or eager (``--eager``, and Adam by default: see ``compiled``).

>>> import argparse
>>> args = argparse.Namespace(engine=None, optimizer="sgd", loss="hinge", l2=0.0)
>>> compiled(args), float(loss(args)(lambda x: x[0], (((0.5,), (2.0,)), (1.0, -1.0))))
(True, 1.75)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import numpy as np

import fmicrograd as fm

__all__ = ["accuracy", "loss", "compiled", "batched", "accuracy_metric", "SCALAR_GRAPH_LIMIT"]


def accuracy(model: Any, batch: tuple) -> float:
    """Fraction of points whose score has the sign of their -1 / 1 label.

    >>> fm.cli.accuracy(lambda x: x[0], (((1.0,), (-2.0,), (3.0,)), (1.0, 1.0, 1.0)))
    0.6666666666666666
    """
    xs, ys = batch
    return sum((float(model(x)) > 0) == (y > 0) for x, y in zip(xs, ys)) / len(ys)


def loss(args: argparse.Namespace, batched: bool = False) -> Callable[[Any, tuple], Any]:
    """The training loss ``loss_fn(model, (xs, ys))``: a mean of per-point terms
    (a list of scalar graphs, or with ``batched`` one ``fm.vmap`` over the
    points, which ``fm.jit`` compiles many times faster) plus the L2 term."""
    l2 = args.l2
    term = {"hinge": fm.losses.hinge, "mse": fm.losses.mse,
            "logistic": fm.losses.binary_cross_entropy_with_logits}[args.loss]
    target = (lambda y: (y + 1) / 2) if args.loss == "logistic" else (lambda y: y)

    def point(model: Any, x: Any, y: Any) -> Any:
        return term(model(x), target(y))

    def loss_fn(model: Any, batch: tuple) -> Any:
        xs, ys = batch
        if batched:
            mean = fm.mean(fm.vmap(point, in_axes=(None, 0, 0))(model, *_columns(batch)))
        else:
            mean = term([model(x) for x in xs], [target(y) for y in ys])
        return mean + l2 * fm.losses.l2(model) if l2 else mean

    return loss_fn


def compiled(args: argparse.Namespace) -> bool:
    """Whether ``fit`` compiles the steps: as ``--jit`` / ``--eager`` say, else
    for SGD, whose compiled trajectory stays within ~1e-12 of the eager one
    (see ``--eager``'s help for why Adam's does not).

    >>> [compiled(argparse.Namespace(engine=engine, optimizer=optimizer)) for engine, optimizer
    ...  in ((None, "sgd"), (None, "adam"), ("jit", "adam"), ("eager", "sgd"))]
    [True, False, True, False]
    """
    if args.engine is not None:
        return bool(args.engine == "jit")
    return bool(args.optimizer == "sgd")


# Compiled Adam takes the scalar graph itself up to this many point-parameters (30 points x
# 105 parameters compile in well under a second); beyond, the loss over vmap, whose compile
# time does not grow with the points (500 x 4,417 took 325 s to compile as a scalar graph).
SCALAR_GRAPH_LIMIT = 10_000


def batched(args: argparse.Namespace, points: int, params: int) -> bool:
    """Whether the compiled step takes the loss over ``fm.vmap`` (compiles in a
    fraction of a second): for SGD, and for Adam (``--jit``) beyond
    ``SCALAR_GRAPH_LIMIT``. Below it, compiled Adam takes the scalar graph, as
    eager builds it: the same operations, though the compiler may regroup a
    sum (a gradient that cancels to 0.0 eager can come out as 1e-18, which
    Adam's ``g / (|g| + eps)`` turns into a full step), so its trajectory can
    part from eager's, as ``--eager``'s help says.

    >>> args = argparse.Namespace(engine="jit", optimizer="adam")
    >>> batched(args, 30, 105), batched(args, 100, 337)
    (False, True)
    """
    return compiled(args) and (args.optimizer == "sgd" or points * params > SCALAR_GRAPH_LIMIT)


def _columns(batch: tuple) -> tuple[Any, Any]:
    """``(xs, ys)`` as arrays for ``fm.vmap``: floats, or while ``fm.jit``
    traces, objects (its traced variables)."""
    kind = float if all(type(v) is float for v in fm.tree.leaves(batch)) else object
    return np.array(batch[0], dtype=kind), np.array(batch[1], dtype=kind)


def accuracy_metric(batched: bool) -> Callable[[Any, tuple], float]:
    """``accuracy``, or with ``batched`` the same count from scores computed by
    one compiled ``fm.vmap`` of the model over the points."""
    if not batched:
        return accuracy
    scores = fm.jit(fm.vmap(lambda model, x: model(x), in_axes=(None, 0)))

    def batched_accuracy(model: Any, batch: tuple) -> float:
        xs, ys = _columns(batch)
        return float(np.mean((np.array(scores(model, xs)) > 0) == (ys > 0)))

    return batched_accuracy
