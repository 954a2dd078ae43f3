"""``inspect(model, loss_fn, batch)``: how each layer of an ``fm.nn.MLP``
behaves on one batch, the report to read when training stalls.

For every layer: its activation, the statistics of its outputs over the
batch (``mean``, ``std``), the fraction of outputs in the activation's flat
region (``saturated``: ReLU at or below 0, tanh beyond +-0.99, sigmoid below
0.01 or above 0.99), the fraction of units flat on every example
(``dead``), and the norm of the loss's gradient with respect to the layer's
parameters (``grad_norm``). ``fm.plot.layer_stats`` draws it.

>>> model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
>>> xs, ys = fm.datasets.xor()
>>> loss = lambda m, b: fm.losses.mse([m(x) for x in b[0]], b[1])
>>> report = inspect(model, loss, (xs, ys))
>>> [row["name"] for row in report.layers], report.layers[0]["activation"]
(['layers[0]', 'layers[1]'], 'relu')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyrsistent import PMap, pmap

from ..core import functions as F
from ..core import pytree as tree
from ..nn import MLP
from ..transforms.autodiff import value_and_grad

__all__ = ["inspect", "Inspection", "FLAT"]

# activation -> is this output in the flat (zero-gradient) region?
FLAT: dict[str, Callable[[float], bool]] = {
    "relu": lambda a: a <= 0.0,
    "tanh": lambda a: abs(a) > 0.99,
    "sigmoid": lambda a: a < 0.01 or a > 0.99,
    "linear": lambda a: False,
}


@dataclass(frozen=True)
class Inspection:
    """``inspect``'s report: ``loss`` on the batch and one ``PMap`` per layer
    (``name``, ``activation``, ``units``, ``mean``, ``std``, ``saturated``,
    ``dead``, ``grad_norm``); ``str`` prints a table and warnings."""

    loss: float
    layers: tuple

    def __str__(self) -> str:
        lines = [f"loss {self.loss:.6g}",
                 f"{'layer':<10} {'act':<8} {'units':>5} {'mean':>9} {'std':>9} "
                 f"{'saturated':>9} {'dead':>6} {'grad_norm':>10}"]
        notes = []
        for r in self.layers:
            lines.append(f"{r['name']:<10} {r['activation']:<8} {r['units']:>5} "
                         f"{r['mean']:>9.3g} {r['std']:>9.3g} {r['saturated']:>9.0%} "
                         f"{r['dead']:>6.0%} {r['grad_norm']:>10.3g}")
            if r["dead"] > 0:
                notes.append(f"{r['name']}: {r['dead']:.0%} of its units are flat on every "
                             "example (dead ReLUs or saturated units pass no gradient)")
            if r["grad_norm"] == 0:
                notes.append(f"{r['name']}: zero gradient")
        return "\n".join(lines + notes)


def _stats(name: str, activation: str, outputs: Sequence[Sequence[float]],
           grad_norm: float) -> PMap:
    flat = FLAT[activation]
    values = [a for row in outputs for a in row]
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((a - mean) ** 2 for a in values) / len(values))
    units = len(outputs[0])
    dead = sum(all(flat(row[j]) for row in outputs) for j in range(units))
    return pmap({"name": name, "activation": activation, "units": units, "mean": mean,
                 "std": std, "saturated": sum(map(flat, values)) / len(values),
                 "dead": dead / units, "grad_norm": grad_norm})


def inspect(model: MLP, loss_fn: Callable[[MLP, Any], Any], batch: Any) -> Inspection:
    """Per-layer activation statistics and gradient norms of ``model`` on
    ``batch``, whose first item holds the inputs (as in ``(xs, ys)``).

    >>> xs, ys = fm.datasets.xor()
    >>> model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(1), activation="tanh")
    >>> loss = lambda m, b: fm.losses.mse([m(x) for x in b[0]], b[1])
    >>> r = fm.train.inspect(model, loss, (xs, ys))
    >>> r.layers[0]["units"], 0.0 <= r.layers[0]["saturated"] <= 1.0, r.layers[1]["grad_norm"] > 0
    (4, True, True)
    """
    if not isinstance(model, MLP):
        raise TypeError(f"inspect: expected an fm.nn.MLP, got {type(model).__name__}; it "
                        "reports per layer")
    try:
        xs = batch[0]
        if not len(xs):
            raise ValueError
    except (TypeError, IndexError, KeyError, ValueError):
        raise ValueError("inspect: batch must hold the inputs first, as (xs, ys) does, with at "
                         "least one example") from None
    loss, grads = value_and_grad(loss_fn)(model, batch)
    rows = []
    outputs = [tuple(map(float, x)) for x in xs]
    for i, (layer, g) in enumerate(zip(model.layers, grads.layers)):
        outputs = [tuple(n(x) for n in layer.neurons) for x in outputs]
        gs = tree.leaves(g)
        acts = {n.activation for n in layer.neurons}
        activation = acts.pop() if len(acts) == 1 else "linear"
        rows.append(_stats(f"layers[{i}]", activation, outputs, math.sqrt(F.dot(gs, gs))))
    return Inspection(float(loss), tuple(rows))
