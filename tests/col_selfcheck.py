"""A pytest plugin that checks every trace with placeholders (a large
array's columns as ``col`` nodes, ``compiler/unread.py``) against a trace of
the same call with a variable per entry (its columns as ``stack`` nodes of
input nodes): the two programs' first runs must give the same bits.

Not part of the suite (its second trace changes how often a function runs,
which some tests count). Run the suite with it, every array argument traced
with placeholders::

    PYTHONPATH=tests python -m pytest -p col_selfcheck --deselect tests/test_package.py

At the end it prints how many traces were compared and names each test whose
outputs differ, and each second trace that failed.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import fmicrograd as fm
from fmicrograd.compiler import compile as jit_compile
from fmicrograd.compiler import unread

unread.MOST = int(os.environ.get("FM_MOST", "1"))  # (placeholders for every array argument)

_RESULTS: dict = {"equal": 0, "differ": [], "failed": []}
_compile_and_run = jit_compile.Jitted._compile_and_run


def _bits(out: Any) -> list:
    leaves = []
    for v in fm.tree.leaves(out):
        a = np.asarray(v)
        leaves.append(repr(a) if a.dtype == object else (a.dtype.str, a.shape, a.tobytes()))
    return leaves


def _checked(self: Any, entry: Any, scalars: list, arrays: list, args: tuple, kwargs: dict,
             placeholders: bool = False, shaped: bool = False) -> Any:
    result = _compile_and_run(self, entry, scalars, arrays, args, kwargs, placeholders, shaped)
    if not placeholders or entry.inline:
        return result
    test = os.environ.get("PYTEST_CURRENT_TEST", "?")
    before = len(entry.variants)
    try:
        again = _compile_and_run(self, entry, scalars, arrays, args, kwargs)
        same = _bits(again) == _bits(result)
    except BaseException as e:  # noqa: BLE001 -- recorded
        _RESULTS["failed"].append(f"{test}: {type(e).__name__}: {e}")
        return result
    if len(entry.variants) > before:  # (the variables' variant: not kept)
        entry.variants.pop(0)
    if same:
        _RESULTS["equal"] += 1
    else:
        _RESULTS["differ"].append(test)
    return result


jit_compile.Jitted._compile_and_run = _checked  # type: ignore[method-assign]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many traces were compared, and where they differed."""
    write = terminalreporter.write_line
    write(f"col_selfcheck: {_RESULTS['equal']} traces with placeholders gave the bits of a "
          f"variable per entry; {len(_RESULTS['differ'])} differed")
    for test in _RESULTS["differ"]:
        write(f"  differs: {test}")
    for text in _RESULTS["failed"]:
        write(f"  the trace with variables failed after one with placeholders: {text}")
