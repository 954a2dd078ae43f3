"""Checks of ``fmicrograd train``'s arguments that argparse's types cannot
make alone: sizes that would never finish or fit in memory, and output paths
that could not be written. They run after parsing and before any training,
so a bad run fails in a second with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os

import fmicrograd as fm
from fmicrograd.cli.runs import RUN_FILE, run_file
from fmicrograd.files import check_directory, image_format
from fmicrograd.train.checkpoint import _NAME as _CHECKPOINT

__all__ = ["validate", "LIMITS"]

# Upper bounds: sizes far beyond what scalar autodiff trains in a day, and
# small enough that a typo (--hidden 100000000000, --lr 1e300) fails now, not later.
LIMITS = {"n": 1_000_000, "steps": 10_000_000, "batch_size": 1_000_000, "params": 1_000_000,
          "lr": 1e6, "l2": 1e6, "noise": 1e6}
OUTPUTS = ("save", "plot", "loss_plot")



def validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, before any training, what cannot work: absurd sizes and output
    paths that cannot be written (``parser.error``: one line, exit code 2).
    Finite, in-range single values are checked by the parser's types already.

    >>> from fmicrograd.cli import build_parser
    >>> parser = build_parser()
    >>> validate(parser, parser.parse_args(["train", "--hidden", "8,8"]))  # fine: returns
    >>> validate(parser, parser.parse_args(["train", "--hidden", "100000000000"]))
    Traceback (most recent call last):
    SystemExit: 2
    """
    for name in ("n", "steps", "batch_size", "lr", "l2", "noise"):
        value = getattr(args, name)
        if value is not None and value > LIMITS[name]:
            parser.error(f"argument --{name.replace('_', '-')}: {_show(value)} is too large "
                         f"(at most {_show(LIMITS[name])})")
    sizes = (2, *args.hidden, 1)
    params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    if params > LIMITS["params"]:
        parser.error(f"argument --hidden: an MLP {'-'.join(map(str, sizes))} has {params:.3g} "
                     f"parameters, at most {LIMITS['params']:,} train here")
    _check_checkpoint_options(parser, args)
    targets: dict[str, str] = {}
    for flag in OUTPUTS:
        path = getattr(args, flag)
        if path is None:
            continue
        option = f"--{flag.replace('_', '-')}"
        try:
            if not path:
                raise ValueError("the path is empty")
            real = os.path.realpath(path if _in_new_checkpoint_dir(args, path) else
                                    fm.io.check_writable(path))
        except (OSError, ValueError) as e:
            parser.error(f"argument {option}: cannot write {path!r}: {_reason(e, path)}")
        if flag != "save":
            try:
                image_format(path)
            except ValueError as e:
                parser.error(f"argument {option}: {str(e).removeprefix('fm.plot: ')}")
            except ImportError:  # said when the picture is drawn, after training
                pass
        if real in targets:
            parser.error(f"argument {option}: {path!r} is also the {targets[real]} file; give "
                         f"each output its own path")
        targets[real] = option
    _check_checkpoint_dir(parser, args)


def _check_checkpoint_options(parser: argparse.ArgumentParser, args: argparse.Namespace
                              ) -> None:
    path = getattr(args, "checkpoint_dir", None)
    if path is None:
        for flag in ("checkpoint_every", "checkpoint_keep"):
            if getattr(args, flag, None) is not None:
                parser.error(f"argument --{flag.replace('_', '-')}: it needs --checkpoint-dir "
                             f"(where the checkpoints go); without it nothing is checkpointed")
        return
    for flag in OUTPUTS:  # an output among the checkpoints would replace one, or the run file
        out = getattr(args, flag, None)
        if out and _beside(out, path) and (os.path.basename(out) == RUN_FILE or
                                           _CHECKPOINT.fullmatch(os.path.basename(out))):
            parser.error(f"argument --{flag.replace('_', '-')}: {out!r} is a file of the "
                         f"--checkpoint-dir (a checkpoint, or {RUN_FILE} that --resume reads); "
                         f"write it elsewhere")


def _beside(out: str, folder: str) -> bool:
    """Whether the file ``out`` would be written in directory ``folder``."""
    return os.path.realpath(os.path.dirname(os.path.abspath(out))) == \
        os.path.realpath(os.path.abspath(folder))


def _in_new_checkpoint_dir(args: argparse.Namespace, out: str) -> bool:
    """An output in a --checkpoint-dir that does not exist yet: training makes
    it first (whether it can is checked as the directory's own)."""
    folder = getattr(args, "checkpoint_dir", None)
    return folder is not None and bool(folder) and not os.path.exists(folder) and \
        _beside(out, folder)


def _check_checkpoint_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    path = getattr(args, "checkpoint_dir", None)
    if path is None:
        return
    try:
        if not path:
            raise ValueError("the path is empty")
        check_directory(path)
    except (OSError, ValueError) as e:
        parser.error(f"argument --checkpoint-dir: cannot write checkpoints to {path!r}: "
                     f"{_reason(e, path)}")
    target = run_file(args)
    if target is None or not os.path.lexists(target):
        return
    try:  # the run's options go there: a directory, FIFO or device of that name is refused
        fm.io.check_writable(target)
    except (OSError, ValueError) as e:
        parser.error(f"argument --checkpoint-dir: cannot write {str(target)!r}, the run's "
                     f"options that --resume reads: {_reason(e, str(target))}")


def _show(x: float) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _reason(e: Exception, path: str) -> str:
    if isinstance(e, FileNotFoundError) and not os.path.isdir(os.path.dirname(path) or "."):
        return "no such directory"
    if isinstance(e, IsADirectoryError):
        return "it is a directory"
    if isinstance(e, NotADirectoryError):
        whole = os.path.exists(path) and not os.path.isdir(path)
        return "it is not a directory" if whole else "a part of the path is not a directory"
    if not (isinstance(e, OSError) and e.strerror):
        return str(e)
    text = e.strerror  # the OS's ("Permission denied") or fmicrograd's, which names paths
    if text.startswith("cannot write ") and ": " in text:  # (said once, by the caller)
        text = text.split(": ", 1)[1]
    return text[:1].lower() + text[1:]
