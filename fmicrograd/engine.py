"""micrograd's ``micrograd.engine`` module, for readers porting code: its one
name, ``Value``, raises an error naming fmicrograd's way (``fm.Var`` leaves,
``fm.grad`` instead of ``.backward()``); nothing else lives here.

>>> from fmicrograd import engine
>>> hasattr(engine, "Value")
False
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__: list[str] = []

if not TYPE_CHECKING:
    def __getattr__(name: str) -> Any:
        import sys

        import fmicrograd

        if name in fmicrograd._MICROGRAD:
            if fmicrograd._importing_from(sys._getframe(1)):
                raise ImportError(f"cannot import name {name!r} from 'fmicrograd.engine': "
                                  f"{fmicrograd._MICROGRAD[name]}", name=__name__,
                                  path=__file__)
            raise AttributeError(fmicrograd._MICROGRAD[name])
        raise AttributeError(f"module 'fmicrograd.engine' has no attribute {name!r}")
