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

With ``FM_CHECK=bits`` it checks instead every trace with placeholders (a
large array's columns as ``col`` nodes, no input node per entry) against a
trace of the same call with a variable per entry (its columns as ``stack``
nodes of input nodes): the two programs' first runs must give the same bits::

    FM_CHECK=bits PYTHONPATH=tests python -m pytest -p shaped_selfcheck \
        --deselect tests/test_package.py
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import fmicrograd as fm
from fmicrograd.compiler import compile as jit_compile
from fmicrograd.compiler import ir, unread

unread.MOST = int(os.environ.get("FM_MOST", "1"))  # (placeholders for every array argument)

_BITS = os.environ.get("FM_CHECK", "programs") == "bits"
_PROGRAMS: list = []
_RESULTS: dict = {"equal": 0, "differ": [], "failed": []}


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


if not _BITS:
    ir.lower = jit_compile.ir.lower = _recorded_lower  # type: ignore[assignment]
_compile_and_run = jit_compile.Jitted._compile_and_run


def _bits(out: Any) -> list:
    leaves = []
    for v in fm.tree.leaves(out):
        a = np.asarray(v)
        leaves.append(repr(a) if a.dtype == object else (a.dtype.str, a.shape, a.tobytes()))
    return leaves


def _against_variables(self: Any, entry: Any, scalars: list, arrays: list, args: tuple,
                       kwargs: dict, placeholders: bool = False, shaped: bool = False) -> Any:
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
        _RESULTS["failed"].append(f"{test}: {type(e).__name__}: {e}")
        return result
    if _PROGRAMS[-1] == without:
        _RESULTS["equal"] += 1
    else:
        _RESULTS["differ"].append(test)
    return result


jit_compile.Jitted._compile_and_run = (  # type: ignore[method-assign]
    _against_variables if _BITS else _checked)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many traces were compared, and where they differed."""
    write = terminalreporter.write_line
    if _BITS:
        write(f"shaped_selfcheck: {_RESULTS['equal']} traces with placeholders gave the bits "
              f"of a variable per entry; {len(_RESULTS['differ'])} differed")
    else:
        write(f"shaped_selfcheck: {_RESULTS['equal']} traces without numbers gave the program "
              f"traced with the values; {len(_RESULTS['differ'])} differed")
    for test in _RESULTS["differ"]:
        write(f"  differs: {test}")
    for text in _RESULTS["failed"]:
        write(f"  the second trace failed after the first: {text}")
