"""micrograd's prebuilt graph through ``fm.jit``.

A micrograd user writes ``c = a * b`` and then ``fm.grad(lambda a: c)(a)``:
``c`` was built before the call, so it does not depend on the function's
parameter, and its derivative would be 0. ``grad`` sees it (its variable
stands on ``a``, and ``c``'s graph holds ``a``: a ``ValueError`` naming the
fix). Under ``fm.jit(fm.grad(lambda a: c))(a)`` it did not: ``jit`` traces
with inputs of its own, standing for the values of the call's arguments, so
``grad``'s variable stood on jit's input, not on ``a``, and the compiled
program gave 0.0; a call with a float first compiled that 0.0, which a later
call with ``a`` reused.

While ``jit`` traces, ``Record`` (``control.PREBUILT``) lets such a check
note which of jit's inputs its variables stood for and the user's ``fm.Var``
leaves the output held; the entry keeps the notes, and a call that passes
one of those nodes at that input (``ARGUMENTS``, set where ``jit`` is called
with nodes) raises ``grad``'s error, from the trace or from compiled code. At
the top level, as ``grad`` alone, a computed node the output holds is that
error too.

>>> import fmicrograd as fm
>>> a = fm.Var(2.0)
>>> c = a * a
>>> f = fm.jit(fm.grad(lambda a: c))
>>> f(3.0)  # a float: c is a constant, as in JAX
0.0
>>> try:
...     f(a)
... except ValueError as e:
...     print(str(e)[:60])
fm.grad: the function's output was built before the call fro
"""

from __future__ import annotations

import functools
import operator
from contextvars import ContextVar
from typing import Any

from ..core import pytree as tr
from ..core.control import reaches
from ..core.expr import Expr
from ..transforms.autodiff import prebuilt_error

__all__ = ["Record", "ARGUMENTS", "check", "calling"]

# While a jitted function is called with nodes (``Jitted._under_transform``):
# ``(the Jitted, its positional arguments, keyword arguments, the levels of the
# transforms running around the call, whether it is at the top level: no transform
# and no vmap)``; None otherwise.
ARGUMENTS: ContextVar = ContextVar("fmicrograd_jit_arguments", default=None)


class Record:
    """One trace's notes (the trace at ``level``): ``found`` holds ``(leaf
    index, {id: user Var}, itself, output roots or None, who)`` for each
    transform inside whose output used none of its variables while its
    variable stood for jit's input at that index of ``tr.leaves((args,
    kwargs))``: the user's ``fm.Var`` nodes the output holds, whether it holds
    that input itself, and (a small output) the output, for a computed node."""

    def __init__(self, args: tuple, kwargs: dict, level: int) -> None:
        self._tree = (args, kwargs)
        self.level = level
        self._index: dict | None = None
        self.found: list = []

    def note(self, standing: list, users: dict, itself: bool, roots: list | None,
             who: str) -> None:
        """Called by ``autodiff``'s prebuilt check: ``standing`` are jit's
        input nodes its variables stood for, ``users`` the Var nodes (by id)
        its output ``roots`` hold."""
        if self._index is None:  # (built on the first note only: rare)
            self._index = {id(x): i for i, x in enumerate(tr.leaves(self._tree))}
        for n in standing:
            i = self._index.get(id(n))
            if i is not None:
                self.found.append((i, users, itself, None if roots is None else tuple(roots),
                                   who))


def calling(jitted: Any) -> bool:
    """Whether the user's call of ``jitted`` with nodes is running now."""
    call = ARGUMENTS.get()
    return call is not None and call[0] is jitted


def check(jitted: Any, notes: list) -> None:
    """Raise the prebuilt-graph error when the call now running ``jitted``
    with nodes (``ARGUMENTS``) passes, at a noted input, what ``grad``
    itself refuses: a noted Var (also through the variables of enclosing
    transforms that stand on it), a user's node the output holds as jit's
    input itself, or at the top level (no transform running: ``grad`` alone
    takes any node so) a computed node the noted output holds. (Read the
    levels of the call's own time: a custom rule's forward runs with none.)"""
    call = ARGUMENTS.get()
    if call is None or call[0] is not jitted:
        return
    _, args, kwargs, levels, top = call
    leaves = tr.leaves((args, kwargs))
    for i, users, itself, roots, who in notes:
        leaf = leaves[i] if i < len(leaves) else None
        if not isinstance(leaf, Expr):
            continue
        n = leaf
        while n.op == "var" and n.children and getattr(n, "level", None) in levels:
            n = n.children[0]  # an enclosing transform's variable: the node it stands on
        if users.get(id(n)) is n:
            raise prebuilt_error(who)
        if getattr(leaf, "level", None) in levels:
            continue  # a transform's variable held as it is: a nested derivative's closure
        if itself and (leaf.op == "var" or top):
            raise prebuilt_error(who)
        if roots is not None and top and leaf.op != "var" and any(
                reaches(r, functools.partial(operator.is_, leaf)) for r in roots):
            raise prebuilt_error(who)
