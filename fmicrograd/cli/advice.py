"""``fm.train.diagnose`` for the command line: advice that leaves out what
the run uses already (``--optimizer adam``, the default SGD schedule,
``--on-instability rollback``) and names the flag to change, and the one
line that ``--on-instability raise`` ends a run with.

>>> import argparse
>>> args = argparse.Namespace(optimizer="adam", lr=None, on_instability="warn",
...                           activation="relu")
>>> history = {"loss": [1.0], "events": [{"epoch": 0, "kind": "oscillation", "message": "m"}]}
>>> diagnose(args, history).findings[0]["advice"]
'lower the learning rate 10x (--lr 0.005)'
"""

from __future__ import annotations

import argparse
from typing import Any

import fmicrograd as fm
from fmicrograd.cli.runs import ADAM_LR

__all__ = ["diagnose", "unstable"]


def diagnose(args: argparse.Namespace, history: Any) -> fm.train.Diagnosis:
    """``fm.train.diagnose`` for this command line: its advice leaves out what
    the run uses already and names the flags to change."""
    default_schedule = args.optimizer == "sgd" and args.lr is None
    using = {"adam"} if args.optimizer == "adam" else {"schedule"} if default_schedule else set()
    if args.on_instability == "rollback":
        using.add("rollback")
    return fm.train.diagnose(history, using=using, say=_words(args, history))


def _words(args: argparse.Namespace, history: Any) -> dict[str, str | None]:
    """The remedies of ``fm.train.diagnose`` as flags of ``train``; ``None``
    for those it has no flag for, or that do not apply to its losses (all
    means, with no log or division to make a NaN)."""
    lr = args.lr if args.lr is not None else ADAM_LR if args.optimizer == "adam" else 1.0
    constant = ", a constant rate in place of the default schedule" if args.lr is None \
        and args.optimizer == "sgd" else ""
    scales = [e["lr_scale"] for e in history["events"] if e.get("action") == "rollback"]
    return {"lower_lr": f"lower the learning rate 10x (--lr {lr / 10:g}{constant})",
            "raise_lr": f"raise the learning rate (--lr above {lr:g})",
            "rollback": "use --on-instability rollback, which lowers it for you",
            "adam": "use --optimizer adam",
            "schedule": "leave out --lr: sgd's default schedule decays it from 1.0 to 0.1"
            if args.optimizer == "sgd" else None,
            "units": f"try another --activation (now {args.activation}) or --hidden sizes",
            "rollback_lr": f"start the next run with --lr {lr * scales[-1]:g}, where the "
            "rollbacks ended" if scales else None,
            "clipping": None, "init": None, "mean_loss": None, "nan_source": None,
            "connectivity": None}


def unstable(args: argparse.Namespace, e: Any) -> str:
    """The one line for a run that ``--on-instability raise`` ended."""
    first = next(ev for ev in e.events if ev["kind"] in fm.train.INSTABILITIES)
    advice = next(f["advice"] for f in diagnose(args, e.history).findings
                  if f["kind"] == first["kind"])
    return (f"fmicrograd: error: {first['kind']} at epoch {first['epoch'] + 1}: "
            f"{first['message']}; training stopped (--on-instability raise); advice: {advice}")
