"""Ctrl-C on the command line: exit 130 quietly, at any moment.

``fmicrograd/__init__.py`` imports this module first. When the process is the
command line (``python -m fmicrograd ...`` or the ``fmicrograd`` script), it
installs a SIGINT handler that exits at once with status 130 and one line on
stderr, so an interrupt while the package is still importing shows no
traceback. ``cli.main`` then calls ``raise_on_interrupt()``: from there on the
first Ctrl-C raises ``KeyboardInterrupt`` (so temporary files are cleaned up
and ``main`` returns 130) and a second one exits at once. In any other
process (a library user, the test suite) nothing is installed.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

__all__ = ["raise_on_interrupt"]


def _run_as_command() -> bool:
    if not sys.argv:
        return False
    if sys.argv[0] == "-m":  # python -m <name>: packages are imported while <name> is found
        orig = getattr(sys, "orig_argv", [])
        at = len(orig) - len(sys.argv)  # where "<name>" (or "-m<name>") stands
        target = orig[at] if 0 < at < len(orig) else ""
        return (target[2:] if target.startswith("-m") else target) == "fmicrograd"
    return os.path.basename(sys.argv[0]) in ("fmicrograd", "fmicrograd.exe")


def _exit_now(signum: int, frame: FrameType | None) -> None:
    try:
        os.write(2, b"\nfmicrograd: interrupted\n")
    finally:
        os._exit(130)


def _raise_once(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGINT, _exit_now)  # a second Ctrl-C while cleaning up exits at once
    raise KeyboardInterrupt


def raise_on_interrupt() -> None:
    """In the command-line process, let the next Ctrl-C raise
    ``KeyboardInterrupt`` (and a second one exit at once); elsewhere do nothing.

    >>> before = signal.getsignal(signal.SIGINT)
    >>> raise_on_interrupt()  # in a library user's process: no change
    >>> signal.getsignal(signal.SIGINT) is before
    True
    """
    if signal.getsignal(signal.SIGINT) in (_exit_now, _raise_once):
        signal.signal(signal.SIGINT, _raise_once)


if _run_as_command() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _exit_now)
