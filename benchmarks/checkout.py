"""Python run in a checkout of fmicrograd, so that two versions can be timed
alternately in fresh processes (``compile_time.py``, ``step_ab.py``,
``heap.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # this checkout


def run_in(root: Path, code: str, *args: str, env: dict | None = None) -> str:
    """The standard output of ``python -c code *args`` in checkout ``root``,
    with that checkout's ``fmicrograd`` and ``benchmarks/`` on the path (and
    the environment variables ``env`` set; one whose value is None unset)."""
    environ = dict(os.environ)
    for k, v in (env or {}).items():
        if v is None:
            environ.pop(k, None)
        else:
            environ[k] = v
    environ["PYTHONPATH"] = str(root)
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=root, check=True,
                         capture_output=True, text=True, env=environ)
    return out.stdout


def last_floats(root: Path, code: str, *args: str, env: dict | None = None) -> list[float]:
    """The numbers on the last line ``code`` prints in checkout ``root``."""
    return [float(x) for x in run_in(root, code, *args, env=env).splitlines()[-1].split()]
