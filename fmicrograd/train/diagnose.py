"""``diagnose(history)``: what went wrong in a run and what to change.

Each finding is a ``PMap`` with ``kind`` (a detector's, or ``"recovered"``
/ ``"loss_scale"``), ``epochs`` (where it was seen: history indices, 0 for the first epoch;
``str`` counts from 1 as the progress lines do), ``message`` (the first
event's) and ``advice``; ``str(diagnosis)`` prints them for people.

>>> history = {"loss": [1.0, float("nan")], "events": [{"epoch": 1, "kind": "nan",
...            "message": "not finite: loss", "action": "stop"}]}
>>> print(diagnose(history))  # doctest: +ELLIPSIS
1 problem found:
- nan (epoch 2): not finite: loss
  advice: lower the learning rate 10x...
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyrsistent import PMap, pmap

__all__ = ["diagnose", "Diagnosis", "ADVICE"]

ADVICE = {
    "nan": "lower the learning rate 10x; add gradient clipping "
           "(fm.optim.chain(fm.optim.clip_by_global_norm(1.0), opt)); if it happens at once, "
           "look for log(0), sqrt of a negative or a division by zero in the loss "
           "(fm.debug_nans(loss_fn) names the first operation that makes a NaN)",
    "explosion": "lower the learning rate 10x (or use on_instability='rollback', which does it "
                 "for you), or add gradient clipping with fm.optim.clip_by_global_norm",
    "exploding_grad": "add gradient clipping (fm.optim.clip_by_global_norm(1.0)) and lower the "
                      "learning rate; check the initialization scale (init='xavier' or 'he' in "
                      "fm.nn.MLP.init) and that the loss is a mean, not a sum",
    "oscillation": "lower the learning rate 2-10x, or use a decaying schedule "
                   "(fm.optim.cosine_decay_schedule) or adam",
    "plateau": "raise the learning rate or switch to adam; if the loss is stuck high, check for "
               "saturated or dead units with fm.train.inspect(model, loss_fn, batch) and try "
               "another initialization or activation",
    "vanishing_grad": "if every gradient is zero, check the graph's connectivity: does the loss "
                      "use the parameters (no fm.stop_gradient, float() or constant in the "
                      "way)?; otherwise look for saturated tanh/sigmoid or dead ReLU units with "
                      "fm.train.inspect and try init='he' (ReLU) or 'xavier' (tanh), or a "
                      "smaller learning rate that does not kill units",
    "recovered": "start the next run with the learning rate the rollbacks ended at",
    "loss_scale": "normalize the loss by the number of samples (fm.mean, not fm.sum): a "
                  "summed loss makes the gradient grow with the data set and the right "
                  "learning rate shrink with it",
}


@dataclass(frozen=True)
class Diagnosis:
    """The findings of ``diagnose``: a tuple of ``PMap`` (``kind``, ``epochs``,
    ``message``, ``advice``). True when something was found."""

    findings: tuple

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __str__(self) -> str:
        if not self.findings:
            return "no problems found: no detector fired"
        n = len(self.findings)
        lines = [f"{n} problem{'s' if n > 1 else ''} found:"]
        for f in self.findings:
            epochs = f["epochs"]
            where = (f" (epoch{'s' if len(epochs) > 1 else ''} "
                     f"{', '.join(str(e + 1) for e in epochs)})" if epochs else "")
            lines.append(f"- {f['kind']}{where}: {f['message']}")
            lines.append(f"  advice: {f['advice']}")
        return "\n".join(lines)


def _finding(kind: str, epochs: Sequence[int], message: str) -> PMap:
    return pmap({"kind": kind, "epochs": tuple(epochs), "message": message,
                 "advice": ADVICE[kind]})


def diagnose(history: Mapping[str, Any]) -> Diagnosis:
    """The problems recorded in ``fit``'s ``history`` (its events), each with
    advice, in the order they first happened.

    >>> diagnose({"loss": [1.0, 0.5], "events": []}).findings
    ()
    """
    if not isinstance(history, Mapping) or "loss" not in history:
        raise TypeError(f"diagnose: expected the history fm.train.fit returns (a mapping with "
                        f"'loss'), got {type(history).__name__}")
    events = list(history.get("events", ()))
    findings = []
    seen: dict[str, list] = {}
    for ev in events:
        seen.setdefault(ev["kind"], []).append(ev)
    for kind, evs in seen.items():
        findings.append(_finding(kind, [e["epoch"] for e in evs], evs[0]["message"]))
    rollbacks = [e for e in events if e.get("action") == "rollback"]
    if rollbacks:
        findings.append(_finding("recovered", [e["epoch"] for e in rollbacks],
                                 f"{len(rollbacks)} rollback(s), each lowering the learning "
                                 "rate"))
    grads = [g for g in history.get("grad_norm", ()) if math.isfinite(g)]
    blew_up = {"nan", "explosion", "exploding_grad"} & set(seen)
    if blew_up and grads and grads[0] > 100.0:
        findings.append(_finding("loss_scale", [0], f"the first epoch's gradient norm is "
                                 f"{grads[0]:.3g}"))
    return Diagnosis(tuple(findings))
