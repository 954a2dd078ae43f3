"""Checks of ``fmicrograd train``'s arguments that argparse's types cannot
make alone: sizes that would never finish or fit in memory, and output paths
that could not be written. They run after parsing and before any training,
so a bad run fails in a second with one line and exit code 2.
"""

from __future__ import annotations

import argparse
import os

import fmicrograd as fm
from fmicrograd.files import check_directory, image_format

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
    targets: dict[str, str] = {}
    for flag in OUTPUTS:
        path = getattr(args, flag)
        if path is None:
            continue
        option = f"--{flag.replace('_', '-')}"
        try:
            if not path:
                raise ValueError("the path is empty")
            real = os.path.realpath(fm.io.check_writable(path))
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
    return e.strerror.lower() if isinstance(e, OSError) and e.strerror else str(e)
