"""``fm.jit``'s static keyword arguments (``static_argnames``), as JAX's.

A static argument given by keyword travels through the jitted call wrapped in
a ``Static``: a leaf that is not a number, so it is part of the compiled
function's key (compared as ``static_key`` compares static arguments: ``1``,
``1.0`` and ``True`` apart), and the function sees the value itself. Names
and positions are read from each other through the signature, so a static
argument is static whether it is passed by position or by keyword.

>>> nums, names = static_pair(lambda x, n=2: x, (), ("n",))
>>> nums, names
((1,), ('n',))
>>> wrapped = keywords({"n": 3}, names)
>>> wrapped["n"] == keywords({"n": 3}, names)["n"], wrapped["n"] == keywords({"n": 3.0}, names)["n"]
(True, False)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from .jit_io import static_key

__all__ = ["Static", "static_pair", "keywords", "unwrapping", "named", "defaulted"]


class Static:
    """A static keyword argument's value, compared and hashed by ``static_key``."""

    __slots__ = ("value", "_key")

    def __init__(self, value: Any) -> None:
        self.value = value
        self._key = (type(value), static_key(value))

    def __eq__(self, other: object) -> bool:
        return other.__class__ is Static and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"Static({self.value!r})"


def static_pair(f: Callable, nums: tuple, names: tuple) -> tuple[tuple, tuple]:
    """``(static_argnums, static_argnames)`` completed from each other through
    ``f``'s signature (a parameter that can be passed either way is static
    both ways); unchanged where there is no signature."""
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"fm.jit: static_argnames must be a str or a tuple of str, "
                             f"got {name!r}")
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return nums, names
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    by_name = {p.name: i for i, p in enumerate(positional) if p.kind == p.POSITIONAL_OR_KEYWORD}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params)
    keyword = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for name in names:
        if name not in keyword and not takes_any:
            raise ValueError(f"fm.jit: static_argnames names {name!r}, which is not a keyword "
                             f"parameter of {getattr(f, '__name__', 'the function')} "
                             f"(its parameters: {', '.join(p.name for p in params)})")
    more_nums = tuple(by_name[n] for n in names if n in by_name and by_name[n] not in nums)
    more_names = tuple(positional[i].name for i in nums if 0 <= i < len(positional) and
                       positional[i].kind == positional[i].POSITIONAL_OR_KEYWORD and
                       positional[i].name not in names)
    return nums + more_nums, names + more_names


def keywords(kwargs: dict, names: tuple) -> dict:
    """``kwargs`` with the static ones wrapped (``Static``); raises a TypeError
    naming an unhashable one."""
    if not names or not kwargs:
        return kwargs
    out = dict(kwargs)
    for name in names:
        if name in out and out[name].__class__ is not Static:
            try:
                out[name] = Static(out[name])
                hash(out[name])
            except TypeError:
                raise TypeError(f"fm.jit: static argument {name!r} must be hashable, got "
                                f"{type(kwargs[name]).__name__}; pass a tuple instead of a "
                                f"list, or do not mark it static") from None
    return out


def unwrapping(f: Callable) -> Callable:
    """``f`` called with its ``Static`` keyword arguments' values."""

    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        return f(*args, **{k: v.value if v.__class__ is Static else v
                           for k, v in kwargs.items()})

    return call


def _positional(f: Callable) -> list | None:
    """``f``'s parameters that can be passed by position (None: no signature)."""
    try:
        return [p for p in inspect.signature(f).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None


def named(f: Callable, i: int) -> str | None:
    """The name of ``f``'s positional parameter ``i``, if it can be passed by keyword.

    >>> named(lambda x, n: x, 1), named(lambda x, /: x, 0)
    ('n', None)
    """
    params = _positional(f)
    if params is None or i >= len(params) or params[i].kind != params[i].POSITIONAL_OR_KEYWORD:
        return None
    return params[i].name


def defaulted(f: Callable, i: int, kwargs: Any) -> bool:
    """Whether positional parameter ``i`` of ``f`` has a default and the call
    left it out (not given by keyword either).

    >>> defaulted(lambda x, n=2: x, 1, {}), defaulted(lambda x, n=2: x, 1, {"n": 3})
    (True, False)
    """
    params = _positional(f)
    return params is not None and i < len(params) and \
        params[i].default is not params[i].empty and params[i].name not in kwargs
