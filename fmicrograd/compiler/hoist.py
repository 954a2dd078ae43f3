"""Views of the input vector made once per program, not once per call.

A small program's lines read its input vector ``I`` through strided views:
``I[48:320].reshape((16, 17))[:, 0:16]`` is a layer's weight matrix. Each
costs 0.2-0.4 us to make, a tenth of micrograd's demo step. ``hoist`` takes
them out of the body: the program keeps one input buffer of its own and the
views of it, made when it is built; a call copies ``I`` into the buffer and
passes the views. A call made while another is running in the program (from
another thread, or from a custom rule inside it) makes its views of its own
``I``, as before. The same operations on the same numbers: the same bits.

>>> import numpy as np
>>> lines = ["    g0 = I[0:4].reshape((2, 2)) @ I[4:6]", "    return g0 + I[0:2]"]
>>> body, texts = hoist(lines, 6)
>>> body, texts
(['    g0 = V0 @ V1', '    return g0 + V2'], ['I[0:4].reshape((2, 2))', 'I[4:6]', 'I[0:2]'])
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["hoist", "held", "reshaped", "MOST"]

MOST = 1 << 13  # entries: a larger input keeps no buffer (a call that hands the program
# its vector, as ``split``'s second part, copies it: 2-3 us at 8,192 entries, as much
# as a dozen views save; the views of a larger program cost nothing beside its work)
# a slice of ``I`` with constant bounds, then at most a reshape, a constant slice and ``.T``
_VIEW = re.compile(r"(?<![\w.\]])I\[\d+:\d+(?::\d+)?\](?:\.reshape\(\([\d, ]*\)\))?"
                   r"(?:\[[\d:, ]*\])?(?:\.T)?")

_CALLS = re.compile(r"\b(?:_fwd|_call|f\d+)\(")


def hoist(lines: list, n: int) -> tuple[list, list]:
    """``lines`` with each view of ``I`` (an input vector of ``n`` entries)
    replaced by a name ``V<k>``, and the views' texts. A text that would not
    be a view (an element, a copy) stays where it is. A program that calls
    the user's code (a custom rule's ``_fwd``, a ``_call``, a function
    constant ``f<k>``) is left as it is: that code may keep an array it is
    given, and a view of the buffer would change under it at the next call."""
    if any(_CALLS.search(line) for line in lines):
        return lines, []
    probe = np.zeros(n)
    texts: dict[str, str] = {}

    def name(m: re.Match) -> str:
        text = m.group(0)
        if text not in texts:
            try:
                value = eval(text, {}, {"I": probe})  # noqa: S307 -- the compiler's own text
            except Exception:  # (not numpy's view: leave it to the line)
                return text
            if not (isinstance(value, np.ndarray) and value.base is probe):
                return text
            texts[text] = f"V{len(texts)}"
        return texts[text]

    body = [_VIEW.sub(name, line) for line in lines]
    return body, list(texts)


_RESHAPE = re.compile(r"\b(c\d+)\.reshape\((\([\d, ]*\))\)")


def reshaped(lines: list, names: dict, name: Callable) -> list:
    """``lines`` with each reshape of a baked array constant (``c1.reshape((1,
    1))``) replaced by a constant of that shape, ``name(array)``'s.

    >>> names = {"c0": np.zeros(2)}
    >>> reshaped(["    g0 = c0.reshape((1, 2)) + I[0:2]"], names, lambda a: "c1")
    ['    g0 = c1 + I[0:2]']
    """
    made: dict[str, str] = {}

    def swap(m: re.Match) -> str:
        value = names.get(m.group(1))
        if not isinstance(value, np.ndarray):
            return m.group(0)
        if m.group(0) not in made:
            made[m.group(0)] = name(value.reshape(eval(m.group(2))))  # noqa: S307 -- ints
        return made[m.group(0)]
    return [_RESHAPE.sub(swap, line) for line in lines]


def held(body: Callable, views: Callable, n: int) -> Callable:
    """``run(I)``: ``body(I, *views(I))``, with ``I`` copied into a buffer of
    the program's whose views were made once; ``run.fill(parts)`` is
    ``run(np.concatenate(parts, dtype=float))`` with the parts concatenated
    into that buffer. An output that is a view of the buffer is copied (the
    next call refills it).

    >>> run = held(lambda I, V0: V0 * 2.0, lambda I: (I[1:3],), 4)
    >>> run(np.arange(4.0)).tolist(), run.fill([np.ones(2), np.arange(2)]).tolist()
    ([2.0, 4.0], [2.0, 0.0])
    """
    buffer = np.zeros(n)
    made = views(buffer)
    lock = threading.Lock()

    def _own(out: Any) -> Any:
        if out.__class__ is np.ndarray:
            if out is buffer or out.base is buffer:  # (``return _out(I)``: the inputs
                out = out.copy()                      # themselves, in order)
        elif getattr(out, "array", None) is not None and (
                out.array is buffer or out.array.base is buffer):
            out.array = out.array.copy()  # (``compile._Floats``: its vector is kept)
        return out

    def run(inputs: Any) -> Any:
        if (inputs.__class__ is np.ndarray and inputs.shape == buffer.shape
                and inputs.dtype == buffer.dtype and lock.acquire(False)):
            try:
                buffer[...] = inputs
                return _own(body(buffer, *made))
            finally:
                lock.release()
        return body(inputs, *views(inputs))

    def fill(parts: list) -> Any:
        if lock.acquire(False):  # (else a call of this program is running: its own array)
            try:
                np.concatenate(parts, out=buffer)  # (numpy's check: the sizes add up to n)
                return _own(body(buffer, *made))
            finally:
                lock.release()
        return run(np.concatenate(parts, dtype=float))

    fill.owner = run  # type: ignore[attr-defined]  # (a wrapper that copies ``run``'s
    run.fill = fill  # type: ignore[attr-defined]  # attributes, a guard's, is not its owner)
    return run
