"""``diagnose(history)``: what went wrong in a run and what to change.

Each finding is a ``PMap`` with ``kind`` (a detector's, or ``"recovered"``
/ ``"loss_scale"``), ``epochs`` (where it was seen: history indices, as the
events' ``"epoch"``, 0 for the first epoch; ``str`` counts from 1 as the
progress lines and ``fit``'s messages do), ``message`` (the first event's) and
``advice``; ``str(diagnosis)`` prints them for people.

The advice is a list of remedies (``REMEDIES``), each named by the change it
makes (``"adam"``, ``"schedule"``, ``"rollback"``, ``"lower_lr"`` ...): the
changes a run already made (``using=``, and rollbacks, read from the events)
are left out, and ``say=`` words a change for another audience (the command
line names its flags) or, with ``None``, leaves it out.

>>> history = {"loss": [1.0, float("nan")], "events": [{"epoch": 1, "kind": "nan",
...            "message": "not finite: loss", "action": "stop"}]}
>>> print(diagnose(history))  # doctest: +ELLIPSIS
1 problem found:
- nan (epoch 2): not finite: loss
  advice: lower the learning rate 10x; ...
>>> osc = {"loss": [1.0], "events": [{"epoch": 0, "kind": "oscillation", "message": "m"}]}
>>> diagnose(osc, using={"adam"}).findings[0]["advice"]
'lower the learning rate 2-10x; use a decaying schedule (fm.optim.cosine_decay_schedule)'
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyrsistent import PMap, pmap

__all__ = ["diagnose", "Diagnosis", "ADVICE", "REMEDIES", "Remedy"]


class Remedy(NamedTuple):
    """One thing to change: ``change`` names it (what ``using=`` and ``say=``
    of ``diagnose`` refer to), ``text`` says it to a Python user."""

    change: str
    text: str


R = Remedy
REMEDIES: dict[str, tuple[Remedy, ...]] = {
    "nan": (R("lower_lr", "lower the learning rate 10x"),
            R("clipping", "add gradient clipping "
              "(fm.optim.chain(fm.optim.clip_by_global_norm(1.0), opt))"),
            R("nan_source", "if it happens at once, look for log(0), sqrt of a negative or a "
              "division by zero in the loss (fm.debug_nans(loss_fn) names the first operation "
              "that makes a NaN)")),
    "explosion": (R("lower_lr", "lower the learning rate 10x"),
                  R("rollback", "use on_instability='rollback', which does it for you"),
                  R("clipping", "add gradient clipping with fm.optim.clip_by_global_norm")),
    "exploding_grad": (R("clipping", "add gradient clipping (fm.optim.clip_by_global_norm(1.0))"),
                       R("lower_lr", "lower the learning rate 10x"),
                       R("init", "check the initialization scale (init='xavier' or 'he' in "
                         "fm.nn.MLP.init)"),
                       R("mean_loss", "check that the loss is a mean, not a sum")),
    "oscillation": (R("lower_lr", "lower the learning rate 2-10x"),
                    R("schedule", "use a decaying schedule (fm.optim.cosine_decay_schedule)"),
                    R("adam", "use adam")),
    "plateau": (R("raise_lr", "raise the learning rate"), R("adam", "switch to adam"),
                R("units", "if the loss is stuck high, check for saturated or dead units with "
                  "fm.train.inspect(model, loss_fn, batch) and try another initialization or "
                  "activation")),
    "vanishing_grad": (R("connectivity", "if every gradient is zero, check the graph's "
                         "connectivity: does the loss use the parameters (no fm.stop_gradient, "
                         "float() or constant in the way)?"),
                       R("units", "look for saturated tanh/sigmoid or dead ReLU units with "
                         "fm.train.inspect and try init='he' (ReLU) or 'xavier' (tanh)"),
                       R("lower_lr", "try a smaller learning rate, which kills fewer units")),
    "recovered": (R("rollback_lr", "start the next run with the learning rate the rollbacks "
                    "ended at"),),
    "loss_scale": (R("mean_loss", "normalize the loss by the number of samples (fm.mean, not "
                     "fm.sum): a summed loss makes the gradient grow with the data set and the "
                     "right learning rate shrink with it"),),
}
del R
ADVICE = {kind: "; ".join(r.text for r in remedies) for kind, remedies in REMEDIES.items()}


@dataclass(frozen=True)
class Diagnosis:
    """The findings of ``diagnose``: a tuple of ``PMap`` (``kind``, ``epochs``,
    ``message``, ``advice``). True when something was found."""

    findings: tuple
    monitored: bool = True  # False: the history has no events (fit(monitor=False))

    def __bool__(self) -> bool:
        return bool(self.findings)

    def __str__(self) -> str:
        if not self.findings and not self.monitored:
            return ("nothing was checked: the run had monitoring off (fit(monitor=False)), so "
                    "its history has no events; run with monitor=True to have the detectors")
        if not self.findings:
            return "no problems found: no detector fired"
        n = len(self.findings)
        lines = [f"{n} problem{'s' if n > 1 else ''} found:"]
        for f in self.findings:
            epochs = f["epochs"]
            where = (f" (epoch{'s' if len(epochs) > 1 else ''} "
                     f"{', '.join(str(e + 1) for e in epochs)})" if epochs else "")
            lines.append(f"- {f['kind']}{where}: {f['message']}")
            if f["advice"]:  # empty when every remedy was in use or left out
                lines.append(f"  advice: {f['advice']}")
        return "\n".join(lines)


def _advice(kind: str, using: Collection[str], say: Mapping[str, str | None]) -> str:
    texts = (say.get(r.change, r.text) for r in REMEDIES[kind] if r.change not in using)
    return "; ".join(t for t in texts if t)


def diagnose(history: Mapping[str, Any], *, using: Collection[str] = (),
             say: Mapping[str, str | None] | None = None) -> Diagnosis:
    """The problems recorded in ``fit``'s ``history`` (its events), each with
    advice, in the order they first happened. ``using`` names the changes
    the run made already (``"adam"``, ``"schedule"`` for a decaying learning
    rate, ``"rollback"``, ``"clipping"``: see ``REMEDIES``), which the advice
    leaves out (rollbacks are read from the events too); ``say`` maps a
    change to other words for it, or to ``None`` to leave it out.

    >>> fm.train.diagnose({"loss": [1.0, 0.5], "events": []}).findings
    ()
    """
    if not isinstance(history, Mapping) or "loss" not in history:
        raise TypeError(f"diagnose: expected the history fm.train.fit returns (a mapping with "
                        f"'loss'), got {type(history).__name__}")
    events = list(history.get("events", ()))
    rollbacks = [e for e in events if e.get("action") == "rollback"]
    using = {*using, *(("rollback",) if rollbacks else ())}
    say = {} if say is None else say

    def finding(kind: str, epochs: Sequence[int], message: str) -> PMap:
        return pmap({"kind": kind, "epochs": tuple(epochs), "message": message,
                     "advice": _advice(kind, using, say)})

    findings = []
    seen: dict[str, list] = {}
    for ev in events:
        seen.setdefault(ev["kind"], []).append(ev)
    for kind, evs in seen.items():
        findings.append(finding(kind, [e["epoch"] for e in evs], evs[0]["message"]))
    if rollbacks:  # one per epoch, however many detectors asked for it that epoch
        scale = rollbacks[-1].get("lr_scale")
        end = f"; the learning rate ended at {scale:.3g}x the first" if scale else ""
        epochs = sorted({e["epoch"] for e in rollbacks})
        stopped = [e["epoch"] for e in events if e.get("action") in ("stop", "raise")
                   and e["epoch"] > epochs[-1]]
        then = (f"; then no rollback was left and the run stopped at epoch {stopped[0] + 1}"
                if stopped else "")
        findings.append(finding("recovered", epochs, f"{len(epochs)} rollback(s), each "
                                f"lowering the learning rate{end}{then}"))
    # the first epoch with a finite gradient norm, named as that epoch (not always the first)
    first = next(((k, g) for k, g in enumerate(history.get("grad_norm", ())) if math.isfinite(g)),
                 None)
    blew_up = {"nan", "explosion", "exploding_grad"} & set(seen)
    if blew_up and first is not None and first[1] > 100.0:
        k, g = first
        which = "the first epoch's" if k == 0 else f"epoch {k + 1}'s (the first finite)"
        findings.append(finding("loss_scale", [k], f"{which} gradient norm is {g:.3g}"))
    return Diagnosis(tuple(findings), "events" in history)
