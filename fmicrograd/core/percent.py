"""Whether a node's ``float()`` (``int()``, index) is asked for by a ``%``
operation, ``"loss %.4f" % x``: for the error's message only.

Inside a transform that conversion is the escape it always is (the number
would lose its derivative, or freeze under ``jit``), whoever asks for it; a
reader of the bytecode cannot prove that the number only becomes text (C code
that runs during the ``%``, such as a ``defaultdict``'s factory, could keep
it). What changes is the message: it names the f-string, which formats a node
under every transform.

>>> import sys
>>> class Probe:  # records what percent_op says of its caller
...     def __float__(self):
...         seen.append(percent_op(sys._getframe(1)))
...         return 1.0
>>> seen = []
>>> "%.1f" % Probe(), float(Probe()) % 2.0
('1.0', 1.0)
>>> seen
[True, False]
"""

from __future__ import annotations

import dis
import sys
from types import FrameType

__all__ = ["percent_op"]

# ``%`` and ``%=``: BINARY_OP with NB_REMAINDER (6) or NB_INPLACE_REMAINDER (19)
# from 3.11 on, opcodes of their own before
_REMAINDER = ({(dis.opmap["BINARY_OP"], 6), (dis.opmap["BINARY_OP"], 19)}
              if sys.version_info >= (3, 11) else
              {(dis.opmap["BINARY_MODULO"], 0), (dis.opmap["INPLACE_MODULO"], 0)})


def percent_op(frame: FrameType | None) -> bool:
    """Whether ``frame`` is running a ``%`` (or ``%=``) operation."""
    if frame is None:
        return False
    raw, at = frame.f_code.co_code, frame.f_lasti
    if sys.version_info < (3, 11):
        return 0 <= at < len(raw) and (raw[at], 0) in _REMAINDER
    return 0 <= at < len(raw) - 1 and (raw[at], raw[at + 1]) in _REMAINDER
