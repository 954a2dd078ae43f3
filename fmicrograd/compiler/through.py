"""``jit`` seen through by the other transforms: ``grad(jit(f))`` runs compiled.

Called inside ``grad``, ``jvp``, ``hessian``... a jitted function's number
leaves are graph nodes. Running ``f`` on them would rebuild and sweep its
whole graph at every call. Instead the call becomes a ``custom_vjp`` node, as
in JAX a jitted call is one primitive: its forward value comes from the
compiled program at the nodes' values, and its rule is the compiled VJP of
``f`` (``jit`` of ``vjp``), traced once per structure like any jitted
function. At higher order the rule is called with nodes, so the compiled VJP
is itself seen through the same way: ``hessian(jit(f))`` runs compiled code
at every order.

Calls this cannot take run ``f`` itself, as before: arguments that are not
all numbers (arrays, strings, keyword arguments), values with batch axes
(under ``vmap``), and functions that use an enclosing transform's variables.

>>> calls = []
>>> def f(x, y):
...     calls.append(1)
...     return fm.sin(x) * y
>>> g = fm.grad(fm.jit(f), argnums=(0, 1))
>>> g(0.0, 2.0), g(0.0, 3.0), len(calls)
((2.0, 0.0), (3.0, 0.0), 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import tree as tr
from ..core.expr import Expr
from ..transforms.autodiff import vjp
from ..transforms.custom import custom_vjp

__all__ = ["seen_through", "NotThrough"]


class NotThrough(Exception):
    """This call cannot become a compiled node; run the function itself."""


def seen_through(jitted: Any, static: tuple, nargs: int) -> Callable:
    """The ``custom_vjp`` that stands for ``jitted`` called with ``nargs``
    positional arguments, those at positions ``static`` static.

    >>> h = seen_through(fm.jit(lambda x: x * x), (), 1)
    >>> fm.grad(h)(3.0)
    6.0
    """
    f = jitted.f
    diff_pos = tuple(i for i in range(nargs) if i not in static)

    def merge(static_values: tuple, diff: tuple) -> tuple:
        args: list = [None] * nargs
        for i, v in zip(static, static_values):
            args[i] = v
        for i, v in zip(diff_pos, diff):
            args[i] = v
        return tuple(args)

    def back(*rest: Any) -> tuple:
        """The cotangents of the differentiable arguments (static ones first,
        then the primals and the output cotangent)."""
        static_values, primals, ct = rest[:len(static)], rest[-2], rest[-1]
        _, vjp_fn = vjp(lambda *diff: f(*merge(static_values, diff)), *primals)
        return vjp_fn(ct)

    compiled_back = type(jitted)(back, tuple(range(len(static))))

    def plain(*args: Any) -> Any:
        out = jitted(*args)
        if not any(isinstance(x, Expr) for x in tr.leaves(args)) and not all(
                x.__class__ is float for x in tr.leaves(out)):
            raise NotThrough  # not compiled (f used an enclosing transform's variable),
            # or an output that is not a number
        return out

    def fwd(*args: Any) -> tuple:
        return plain(*args), tuple(args[i] for i in diff_pos)

    def bwd(*rest: Any) -> tuple:
        return compiled_back(*rest)

    node = custom_vjp(plain, nondiff_argnums=static)
    node.defvjp(fwd, bwd)
    return node


def can_see_through(leaves: list, kinds: list, expr_kind: Any, scalar_kind: Any) -> bool:
    """Whether a call with these argument leaves (and their ``classify``
    kinds) can be one compiled node: number leaves only, and every graph
    node holding a plain float (no batch axes).

    >>> can_see_through([1.0, fm.Var(2.0)], ["scalar", "expr"], "expr", "scalar")
    True
    """
    for leaf, kind in zip(leaves, kinds):
        if kind == expr_kind:
            if leaf.value.__class__ is not float:
                return False
        elif kind != scalar_kind:
            return False
    return True
