"""The training step and the statistics it reports, cheap enough to be on
by default.

``make_step(loss_fn, optimizer, groups)`` is one pure step ``(params,
opt_state, batch) -> (params, opt_state, stats)``: the gradient, the
optimizer update and, in ``stats``, the loss, the squared gradient norm of
each parameter group (an ``fm.nn.MLP``'s layers, else the whole tree) and
the squared norms of the update and of the new parameters (computed in the
step, where ``jit`` fuses them, rather than by walking the tree in Python).
It is what ``fit(jit=True)`` compiles whole, so the monitoring costs a few
fused operations in the compiled program.
``Epoch`` adds the steps' statistics up; ``row`` turns them into one
history row: ``loss``, ``grad_norm`` and ``update_norm`` (means over the
steps), ``param_norm`` (at the end), ``grad_norm.layers[i]`` (means) and the
counts ``nonfinite_grads`` (gradient entries, over the steps) and
``nonfinite_params``.

>>> step = make_step(lambda p, b: (p[0] - b) ** 2, fm.optim.sgd(0.25), 1)
>>> step((3.0,), fm.optim.sgd(0.25).init((3.0,)), 1.0)
((2.0,), (EmptyState(), EmptyState()), (4.0, (16.0,), 1.0, 4.0))
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from ..core import functions as F
from ..core import pytree as tree
from ..nn import MLP
from ..optim import GradientTransformation, apply_updates
from ..transforms.autodiff import value_and_grad

__all__ = ["make_step", "groups_of", "Epoch", "count_nonfinite"]


def groups_of(params: Any) -> tuple[str, ...]:
    """Names of the parameter groups whose gradient norms are reported: the
    layers of an ``fm.nn.MLP``, else none (only the global norm).

    >>> groups_of(fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0)))
    ('layers[0]', 'layers[1]')
    >>> groups_of({"w": 1.0})
    ()
    """
    if isinstance(params, MLP):
        return tuple(f"layers[{i}]" for i in range(len(params.layers)))
    return ()


def _squares(grads: Any, split: bool) -> tuple:
    parts = grads.layers if split else (grads,)
    out = []
    for part in parts:
        xs = tree.leaves(part)
        out.append(F.dot(xs, xs))
    return tuple(out)


def make_step(loss_fn: Callable[[Any, Any], Any], optimizer: GradientTransformation,
              n_groups: int, vg: Callable[[Any, Any], tuple] | None = None
              ) -> Callable[[Any, Any, Any], tuple]:
    """One training step; ``n_groups`` > 1 splits the gradient norm by layer
    (see the module docstring). ``vg(params, batch) -> (loss, grads)``
    replaces ``value_and_grad(loss_fn)`` (e.g. one that shards the batch)."""
    vg = value_and_grad(loss_fn) if vg is None else vg
    split = n_groups > 1

    def step(params: Any, opt_state: Any, batch: Any) -> tuple:
        loss, grads = vg(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        new = apply_updates(params, updates)
        us, ps = tree.leaves(updates), tree.leaves(new)
        return new, opt_state, (loss, _squares(grads, split), F.dot(us, us), F.dot(ps, ps))

    return step


def count_nonfinite(t: Any) -> int:
    """How many leaves of ``t`` are nan or infinite.

    >>> count_nonfinite({"a": float("nan"), "b": (1.0, float("-inf"))})
    2
    """
    return sum(not math.isfinite(x) for x in tree.leaves(t))


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else math.nan  # nan stays nan, inf stays inf


class Epoch(NamedTuple):
    """Running sums of the step statistics over an epoch."""

    steps: int = 0
    loss: float = 0.0
    grad_norm: float = 0.0
    update_norm: float = 0.0
    layers: tuple = ()
    nonfinite_grads: int = 0
    param_sq: float = 0.0   # of the last step's parameters

    def add(self, stats: tuple, recount: Callable[[], int]) -> Epoch:
        """These sums with one step's ``stats`` added; ``recount()`` counts the
        non-finite gradient entries, called only when the norm is not finite."""
        loss, squares, update_sq, param_sq = stats
        total = math.fsum(squares) if all(map(math.isfinite, squares)) else sum(squares)
        layers = tuple(map(_sqrt, squares))  # (row() names them for an MLP only)
        return Epoch(self.steps + 1, self.loss + float(loss), self.grad_norm + _sqrt(total),
                     self.update_norm + _sqrt(update_sq),
                     tuple(a + b for a, b in zip(self.layers, layers)) if self.layers
                     else layers,
                     self.nonfinite_grads + (0 if math.isfinite(total) else recount()),
                     float(param_sq))

    def row(self, params: Any, names: tuple[str, ...], monitor: bool,
            read: Callable[[Any], Any] = lambda x: x) -> dict[str, Any]:
        """The history row: means over the steps, norms and counts at the end
        (``read(params)`` is the parameters' pytree, needed only when their
        norm is not finite)."""
        n = self.steps
        row: dict[str, Any] = {"loss": self.loss / n, "grad_norm": self.grad_norm / n}
        if not monitor:
            return row
        param_norm = _sqrt(self.param_sq)
        row["update_norm"] = self.update_norm / n
        row["param_norm"] = param_norm
        row.update((f"grad_norm.{name}", v / n) for name, v in zip(names, self.layers))
        row["nonfinite_grads"] = self.nonfinite_grads
        row["nonfinite_params"] = 0 if math.isfinite(param_norm) else count_nonfinite(read(params))
        return row
