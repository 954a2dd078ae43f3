"""What ``fmicrograd train`` records of a run beside its checkpoints, and
checks before ``--resume`` continues one: the options that fix the run's
numbers (``run_options``, written to ``cli-run.json``), and whether a
``--checkpoint-dir`` or ``--resume`` would mix two runs (``checkpoint_problem``,
one line naming the options that really differ, defaults said in words).

>>> old = {"optimizer": "sgd", "lr": None, "steps": 20, "dataset": "xor", "n": 100}
>>> differences(old, {"optimizer": "sgd", "lr": 0.5, "dataset": "xor", "n": 4})
["--lr not given (sgd's default schedule 1.0 - 0.9*k/steps with --steps 20), now 0.5"]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fmicrograd.cli.steps import compiled
from fmicrograd.files import atomic_write
from fmicrograd.train import checkpoint
from fmicrograd.train.resume import foreign_checkpoint

__all__ = ["RUN_FILE", "DEFAULT_NOISE", "ADAM_LR", "run_options", "checkpoint_problem",
           "differences", "run_file", "write_run_file", "resume_path"]

DEFAULT_NOISE = {"moons": 0.1, "circles": 0.05, "blobs": 1.0}
ADAM_LR = 0.05  # --optimizer adam without --lr


def checkpoint_problem(args: argparse.Namespace) -> str | None:
    """Why --resume cannot work, or why --checkpoint-dir would mix two runs
    (it holds another run's checkpoints), found before training (an
    unwritable --checkpoint-dir is refused by ``validation.validate``)."""
    if args.resume is True and args.checkpoint_dir is None:
        return "argument --resume: give a PATH, or a --checkpoint-dir to resume from"
    if args.resume not in (None, True) and not Path(args.resume).exists():
        return f"argument --resume: {args.resume!r} does not exist"
    resume = resume_path(args)
    found = foreign_checkpoint(args.checkpoint_dir, resume)
    if found is not None and resume is None:
        return (f"argument --checkpoint-dir: {args.checkpoint_dir!r} already holds the "
                f"checkpoints of an earlier run (the latest is {found.name}); add --resume to "
                "continue it, or give a new or empty directory (or delete the old "
                "checkpoints) to start afresh")
    if found is not None:
        return (f"argument --checkpoint-dir: {args.checkpoint_dir!r} holds the checkpoints of "
                f"another run (the latest is {found.name}) than --resume {resume!r}; give a "
                "new or empty --checkpoint-dir for the resumed run")
    return _run_file_problem(args)


RUN_FILE = "cli-run.json"  # beside the checkpoints: the options that fix the run's numbers


def run_options(args: argparse.Namespace) -> dict:
    """The options that decide a run's numbers, as ``--resume`` must repeat
    them: the data, model, loss, optimizer, engine, batching and policy
    (``--steps`` too where the default SGD schedule reads it)."""
    names = ("dataset", "n", "noise", "seed", "hidden", "activation", "loss", "l2", "optimizer",
             "lr", "batch_size", "data_parallel", "on_instability")
    options = {name: getattr(args, name) for name in names}
    options["hidden"] = list(options["hidden"])
    options["jit"] = compiled(args)
    if args.optimizer == "sgd" and args.lr is None:
        options["steps"] = args.steps
    return options


def _checkpoint_file(path: Path) -> bool:
    """Whether ``path`` holds a JSON object marked as a training checkpoint
    (what ``checkpoint.load`` checks first); a file that cannot be read as
    JSON counts as one (``checkpoint.load`` names what is wrong with it)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return True
    # (fm.io's document: the state is its "tree", a pmap of [key, value] items; round 44
    # looked for the mark at the top, so that every checkpoint file skipped the check)
    tree = doc.get("tree") if isinstance(doc, dict) else None
    items = tree.get("items") if isinstance(tree, dict) and tree.get("type") == "pmap" else None
    return isinstance(items, list) and any(
        isinstance(item, list) and item == ["checkpoint", checkpoint.FORMAT] for item in items)


def _run_file_problem(args: argparse.Namespace) -> str | None:
    """Why ``--resume`` would not continue the same run: its checkpoints'
    ``cli-run.json`` names other options, or is missing, so that they cannot
    be checked (None when they agree, or when there is no checkpoint to resume)."""
    resume = resume_path(args)
    if resume is None or checkpoint.latest(resume) is None:
        return None  # the run starts afresh (or fit says why it cannot)
    if Path(resume).is_file() and not _checkpoint_file(Path(resume)):
        return None  # (a saved model, say: fit's own error says it is not a checkpoint,
        # where this one said that its folder had no cli-run.json)
    folder = Path(resume) if Path(resume).is_dir() else Path(resume).parent
    path = folder / RUN_FILE
    foreign = (f"argument --resume: {str(path)!r} is not the options file this command writes "
               "beside its checkpoints ({}); restore it, or start a new run in a new "
               "--checkpoint-dir")
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:  # checkpoints of fm.train.fit, or the file was deleted
        return (f"argument --resume: the options of the run in {str(folder)!r} cannot be "
                f"checked: it has no {RUN_FILE} (the file this command writes beside its "
                "checkpoints; fm.train.fit writes none), so a resume with other data or "
                "hyperparameters would go on unnoticed. Start a new run in another "
                "--checkpoint-dir, or resume it with fm.train.fit(..., resume=...) in Python")
    except (OSError, ValueError) as e:  # (a truncated file was taken as no file)
        return foreign.format(f"{type(e).__name__}: {e}")
    if not isinstance(saved, dict):
        return foreign.format(f"it holds {type(saved).__name__}, not the options")
    unknown = sorted(map(str, set(saved) - set(run_options(args)) - {"steps"}))
    if unknown:  # (another program's file: its keys are no options of a run)
        return foreign.format(f"it holds {', '.join(map(repr, unknown[:4]))}"
                              f"{', ...' if len(unknown) > 4 else ''}, which are no options of "
                              "fmicrograd train")
    try:
        said = differences(saved, run_options(args))
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        return foreign.format(f"{type(e).__name__}: {e}")
    if not said:
        return None
    return (f"argument --resume: the checkpoints in {str(folder)!r} are of a run with other "
            f"options: {'; '.join(said)}. Resume with the same options (the result is then the "
            "uninterrupted run's, bit for bit), or start a new run in a new --checkpoint-dir")


def differences(saved: dict, now: dict) -> list[str]:
    """The options that really differ between two ``run_options``, for people
    (``--lr 0.5, now not given (sgd's default schedule ...)``): an option left out
    and its default value are the same; xor ignores ``--n`` and ``--noise``,
    and ``--steps`` counts only where both runs take the default SGD schedule
    (where one does not, their ``--lr`` differs)."""
    a, b = _effective(saved), _effective(now)
    names = [k for k in sorted(set(a) | set(b)) if a.get(k, _UNSET) != b.get(k, _UNSET)
             and (k != "steps" or k in a and k in b)]
    return [f"{_label(k)}{_shown(k, saved)}, now {_shown(k, now)}" for k in names]


_UNSET = object()  # an option an older cli-run.json did not record


def _effective(options: dict) -> dict:
    """``options`` with the defaults filled in, and without what the dataset ignores."""
    effective = dict(options)
    if effective.get("optimizer") == "adam" and effective.get("lr") is None:
        effective["lr"] = ADAM_LR
    if effective.get("noise") is None:
        effective["noise"] = DEFAULT_NOISE.get(effective.get("dataset", ""), 0.0)
    if effective.get("dataset") == "xor":  # always its 4 points, no noise
        effective.pop("n", None)
        effective.pop("noise")
    return effective


def _label(name: str) -> str:
    return "" if name == "jit" else f"--{name.replace('_', '-')} "


def _shown(name: str, options: dict) -> str:
    """The value of option ``name`` in ``options``, as a user would say it."""
    if name not in options:
        return "not recorded"
    value = options[name]
    if name == "jit":
        return "compiled steps (--jit)" if value else "eager steps (--eager)"
    if name == "data_parallel":
        return "on" if value else "off"
    if name == "hidden":
        return ",".join(map(str, value))
    if value is None:
        return f"not given ({_default(name, options)})"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _default(name: str, options: dict) -> str:
    if name == "lr" and options.get("optimizer") == "adam":
        return f"adam's default {ADAM_LR:g}"
    if name == "lr":
        steps = f" with --steps {options['steps']}" if "steps" in options else ""
        return f"sgd's default schedule 1.0 - 0.9*k/steps{steps}"
    if name == "noise":
        dataset = str(options.get("dataset"))
        return f"{dataset}'s default {DEFAULT_NOISE.get(dataset, 0.0):g}"
    if name == "batch_size":
        return "the whole dataset"
    return "the default"


def run_file(args: argparse.Namespace) -> Path | None:
    """The ``cli-run.json`` that ``write_run_file`` writes for this run; None
    without a --checkpoint-dir, or for a run resumed in its own directory
    (its file holds the same options, checked)."""
    if args.checkpoint_dir is None:
        return None
    folder = Path(args.checkpoint_dir)
    target = folder / RUN_FILE
    if target.exists() and checkpoint.latest(folder) is not None:
        return None
    # (a file without checkpoints is a failed command's: this run's options replace it)
    return target


def write_run_file(args: argparse.Namespace) -> None:
    """Write ``run_options`` to the run's ``cli-run.json`` (``run_file``) as
    ``fm.io`` writes its files (``files.atomic_write``: synced, moved into
    place in one step, never onto a FIFO or device); a file that cannot be
    written is a ``ValueError`` saying which and why."""
    target = run_file(args)
    if target is None:
        return
    text = json.dumps(run_options(args), indent=1, sort_keys=True) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda f: f.write(text.encode("utf-8")))
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ValueError(f"argument --checkpoint-dir: cannot write {str(target)!r}, the run's "
                         f"options that --resume reads ({why}); remove or rename it, or give "
                         "another --checkpoint-dir") from None


def resume_path(args: argparse.Namespace) -> str | None:
    """What fit resumes from: --resume's PATH, or the --checkpoint-dir for a bare --resume."""
    return args.checkpoint_dir if args.resume is True else args.resume
