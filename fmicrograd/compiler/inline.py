"""The generated code's helpers as numpy's own calls, where the program's
shapes, known when it is built, leave a helper nothing to decide.

A helper call costs a Python frame, about 0.3 us: a tenth of micrograd's demo
step goes to ``_relu``, ``_tofloat`` and ``ndarray.sum``'s Python wrapper.
``_relu(g4)`` looks up an array of zeros of ``g4``'s shape on every call
(see ``autobatch._relu``); here that array is a constant of the program.
``_tofloat(g4 > 0)`` checks the comparison's dimensions; ``g4.sum(axis=(1,))``
goes through numpy's Python ``_sum`` to ``add.reduce``. The same numpy
operations on the same arrays: the same bits.

>>> lines = ["    g1 = _relu(g0)", "    g2 = _tofloat(g0 > 0)", "    g3 = g2.sum(axis=(1,))"]
>>> inline(lines, [(2, 3), (2, 3), (2, 3), (2,)], lambda a: "c0")
['    g1 = _np.maximum(g0, c0)', '    g2 = (g0 > 0).view(_np.uint8).astype(float)', \
'    g3 = _reduce(g2, (1,))']
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

__all__ = ["inline"]

_RELU = re.compile(r"\b_relu\((g(\d+))\)")
_STEP = re.compile(r"\b_tofloat\((g(\d+)) > 0\)")
_SUM = re.compile(r"(?<![\w.)\]])(g(\d+))\.sum\(axis=(\([\d, ]*\))\)")
MOST_ZEROS = 1 << 16  # entries: a larger ReLU calls ``_relu`` (its frame is nothing beside
# its work; the zeros a program bakes in stay as long as it does)


def inline(lines: list, shapes: list, zeros: Callable[[tuple], str]) -> list:
    """``lines`` with the helper calls on group arrays ``g<j>`` (of shape
    ``shapes[j]``, float64) rewritten; ``zeros(shape)`` names a constant of
    zeros of that shape (``autobatch.zeros``, as ``_relu`` reads)."""

    def relu(m: re.Match) -> str:
        shape = shapes[int(m.group(2))]
        if not shape or math.prod(shape) > MOST_ZEROS:
            return m.group(0)
        return f"_np.maximum({m.group(1)}, {zeros(shape)})"

    def step(m: re.Match) -> str:
        if not shapes[int(m.group(2))]:
            return m.group(0)  # (a 0-d comparison is a numpy bool: no ``view``)
        return f"({m.group(1)} > 0).view(_np.uint8).astype(float)"

    def total(m: re.Match) -> str:
        return f"_reduce({m.group(1)}, {m.group(3)})"

    return [_SUM.sub(total, _STEP.sub(step, _RELU.sub(relu, line))) for line in lines]

