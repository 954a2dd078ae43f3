"""``"loss %.4f" % x``: whether a node's ``float()`` (``int()``, index) is
asked for by ``%``-formatting, which turns the number into text as
``f"{x:.4f}"`` does, rather than by code that computes with the number.

str's ``%`` converts its arguments in C, which has no frame of its own: the
frame that asks is the one running the ``%`` operation. That alone would also
let through a ``%`` whose left operand is not text but an object whose C
``__mod__`` turns the node into a number (a class with ``__mod__ = float``:
no library does it, but an escape that drops a derivative must never pass
silently), so the left operand must be seen to be text as well: a string
literal, an f-string, or a variable bound to a str, bytes or bytearray whose
``%`` is the built-in one. Anything else (``self.fmt % x``, ``%`` applied to
a conditional expression) is not recognised, and the conversion is the
escape it always was.

>>> import sys
>>> class Probe:  # records what percent_formats says of its caller
...     def __float__(self):
...         seen.append(percent_formats(sys._getframe(1)))
...         return 1.0
>>> seen = []
>>> "%.1f" % Probe(), float(Probe()) % 2.0
('1.0', 1.0)
>>> seen  # the %-formatting, then a float() whose number is computed with
[True, False]
"""

from __future__ import annotations

import dis
import functools
import sys
from types import CodeType, FrameType
from typing import Any

__all__ = ["percent_formats"]

_TEXT = (str, bytes, bytearray)
_BUILT_IN_MOD = frozenset(t.__mod__ for t in _TEXT)
_PY311, _PY312 = sys.version_info >= (3, 11), sys.version_info >= (3, 12)
# the instructions of ``%`` and ``%=``: BINARY_OP with NB_REMAINDER (6) or
# NB_INPLACE_REMAINDER (19) from 3.11 on, opcodes of their own before
_REMAINDER = ({(dis.opmap["BINARY_OP"], 6), (dis.opmap["BINARY_OP"], 19)} if _PY311 else
              {(dis.opmap["BINARY_MODULO"], 0), (dis.opmap["INPLACE_MODULO"], 0)})

# (pops, pushes) of the instructions met between a ``%``'s operands; any other
# instruction ends the search (the left operand is then not recognised)
_FIXED = {
    **dict.fromkeys(("LOAD_CONST", "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_NAME", "LOAD_DEREF",
                     "LOAD_CLASSDEREF", "PUSH_NULL"), (0, 1)),
    **dict.fromkeys(("NOP", "RESUME", "PRECALL", "KW_NAMES", "EXTENDED_ARG"), (0, 0)),
    **dict.fromkeys(("UNARY_NEGATIVE", "UNARY_POSITIVE", "UNARY_INVERT", "UNARY_NOT",
                     "FORMAT_SIMPLE", "CONVERT_VALUE", "TO_BOOL"), (1, 1)),
    **dict.fromkeys(("BINARY_OP", "BINARY_SUBSCR", "COMPARE_OP", "IS_OP", "CONTAINS_OP",
                     "FORMAT_WITH_SPEC"), (2, 1)),
    "LOAD_METHOD": (1, 2), "LOAD_FAST_LOAD_FAST": (0, 2),
}
_BY_ARG = {
    "LOAD_GLOBAL": lambda a: (0, 2 if _PY311 and a & 1 else 1),  # (3.11: NULL first)
    "LOAD_ATTR": lambda a: (1, 2 if _PY312 and a & 1 else 1),  # (3.12: a method)
    **dict.fromkeys(("BUILD_TUPLE", "BUILD_LIST", "BUILD_SET", "BUILD_STRING"),
                    lambda a: (a, 1)),
    "BUILD_MAP": lambda a: (2 * a, 1),
    "BUILD_CONST_KEY_MAP": lambda a: (a + 1, 1),
    "FORMAT_VALUE": lambda a: (2 if a & 4 else 1, 1),
    "CALL": lambda a: (a + 2, 1),
    "CALL_KW": lambda a: (a + 3, 1),
    "CALL_FUNCTION": lambda a: (a + 1, 1),
    "CALL_METHOD": lambda a: (a + 2, 1),
    "CALL_FUNCTION_KW": lambda a: (a + 2, 1),
}
_MISSING = object()


def percent_formats(frame: FrameType | None) -> bool:
    """Whether ``frame`` is running a ``%`` (or ``%=``) whose left operand is
    text: a conversion asked for by that frame is then %-formatting's.
    (Example in the module's docstring.)"""
    if frame is None:
        return False
    code, at = frame.f_code, frame.f_lasti
    raw = code.co_code
    if not 0 <= at < len(raw) - 1 or (raw[at], raw[at + 1]) not in _REMAINDER:
        return False
    left = _left_operand(code, at)
    if left is None:
        return False
    kind, name = left
    if kind == "text":
        return True
    value: Any = frame.f_locals.get(name, _MISSING) if kind != "global" else _MISSING
    if value is _MISSING and kind != "local":
        value = frame.f_globals.get(name, frame.f_builtins.get(name, _MISSING))
    cls = type(value)
    return (isinstance(value, _TEXT) and getattr(cls, "__mod__", None) in _BUILT_IN_MOD
            and not hasattr(cls, "__imod__"))


@functools.lru_cache(maxsize=512)
def _left_operand(code: CodeType, at: int) -> tuple | None:
    """What put the left operand of the ``%`` at byte offset ``at`` on the
    stack: ``("text", None)`` for a str or bytes literal or an f-string,
    ``("local" | "global" | "name", name)`` for a variable, None for anything
    else or where it cannot be told (another path joins between it and the
    ``%``, or an instruction not in the tables). A pure function of the code
    object, so cached: formatting in a loop reads the bytecode once."""
    instructions = list(dis.get_instructions(code))
    handlers = {e.target for e in getattr(dis.Bytecode(code), "exception_entries", ())}
    index = next((i for i, ins in enumerate(instructions) if ins.offset == at), None)
    if index is None:
        return None
    above = 1  # stack entries above the left operand once the instruction looked at ran
    for i in range(index, 0, -1):
        ins, before = instructions[i], instructions[i - 1]
        if ins.is_jump_target or ins.offset in handlers:
            return None  # reached from elsewhere too: what lies below is not known
        name, arg = before.opname, before.arg or 0
        effect = _FIXED.get(name) or (_BY_ARG[name](arg) if name in _BY_ARG else None)
        if effect is None:
            return None
        pops, pushes = effect
        if above < pushes:
            return _source(before, pushes - 1 - above)
        above += pops - pushes
    return None


def _source(ins: dis.Instruction, which: int) -> tuple | None:
    """The kind of value the ``which``-th entry (0 the first) pushed by
    ``ins`` is, as ``_left_operand`` reports it."""
    name, value = ins.opname, ins.argval
    if name == "LOAD_FAST_LOAD_FAST" and isinstance(value, tuple) and len(value) == 2:
        return "local", value[which]
    if which or name == "LOAD_GLOBAL" and _PY311 and (ins.arg or 0) & 1:
        return None  # (a global with a NULL beside it is a function about to be called)
    if name == "LOAD_GLOBAL":
        return "global", value
    if name == "LOAD_CONST":
        return ("text", None) if type(value) in (str, bytes) else None
    if name in ("BUILD_STRING", "FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC"):
        return "text", None  # an f-string
    if name in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_DEREF", "LOAD_CLASSDEREF"):
        return "local", value
    if name == "LOAD_NAME":
        return "name", value
    return None
