"""A pytest plugin that checks every trace with values without numbers
(``core/shaped.py``) against a trace of the same call with the values.

Not part of the suite (its second trace changes how often a function runs,
which some tests count). Run the suite with it, every array argument traced
with placeholders, to see that the first tier gives the programs the values
give::

    PYTHONPATH=tests python -m pytest -p shaped_selfcheck --deselect tests/test_package.py

At the end it prints how many traces were compared and names each test whose
two lowered programs differ (operations, arguments, shapes, constants' bits,
guards, checks, inputs). Tests that count traces or lowerings fail under it;
the comparison is what it is for.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from fmicrograd.compiler import compile as jit_compile
from fmicrograd.compiler import ir, unread

unread.MOST = int(os.environ.get("FM_MOST", "1"))  # (placeholders for every array argument)

_PROGRAMS: list = []
_RESULTS: dict = {"equal": 0, "differ": [], "values failed": []}


def _canon(v: Any) -> Any:
    if isinstance(v, float):
        return ("f", v.hex())
    if isinstance(v, np.ndarray):
        return ("a", v.dtype.str, v.shape, v.tobytes() if v.dtype != object else repr(v))
    if isinstance(v, (tuple, list)):
        return tuple(map(_canon, v))
    if callable(v):
        return ("fn", getattr(v, "__qualname__", repr(type(v))))
    try:
        return ("r", repr(v))
    except BaseException as e:  # noqa: BLE001 -- a param's repr failing is itself recorded
        return ("bad", type(e).__name__)


def _program(p: ir.Program) -> tuple:
    return (tuple(p.ops), tuple(p.args), tuple(map(_canon, p.shapes)), tuple(p.outputs),
            _canon(p.guards), _canon(p.checks), p.n_inputs, p.extra,
            tuple(map(_canon, p.params)))


_lower = ir.lower


def _recorded_lower(*args: Any, **kwargs: Any) -> ir.Program:
    p = _lower(*args, **kwargs)
    _PROGRAMS.append(_program(p))
    return p


ir.lower = jit_compile.ir.lower = _recorded_lower  # type: ignore[assignment]
_compile_and_run = jit_compile.Jitted._compile_and_run


def _checked(self: Any, entry: Any, scalars: list, arrays: list, args: tuple, kwargs: dict,
             placeholders: bool = False, shaped: bool = False) -> Any:
    if not shaped:
        return _compile_and_run(self, entry, scalars, arrays, args, kwargs, placeholders)
    before = len(_PROGRAMS)
    result = _compile_and_run(self, entry, scalars, arrays, args, kwargs, placeholders, True)
    if len(_PROGRAMS) == before:
        return result
    without = _PROGRAMS[-1]
    test = os.environ.get("PYTEST_CURRENT_TEST", "?")
    try:
        _compile_and_run(self, entry, scalars, arrays, args, kwargs, True, False)
    except BaseException as e:  # noqa: BLE001 -- recorded
        _RESULTS["values failed"].append(f"{test}: {type(e).__name__}: {e}")
        return result
    if _PROGRAMS[-1] == without:
        _RESULTS["equal"] += 1
    else:
        _RESULTS["differ"].append(test)
    return result


jit_compile.Jitted._compile_and_run = _checked  # type: ignore[method-assign]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many traces were compared, and where they differed."""
    write = terminalreporter.write_line
    write(f"shaped_selfcheck: {_RESULTS['equal']} traces without numbers gave the program "
          f"traced with the values; {len(_RESULTS['differ'])} differed")
    for test in _RESULTS["differ"]:
        write(f"  differs: {test}")
    for text in _RESULTS["values failed"]:
        write(f"  the trace with values failed after one without: {text}")
