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

Arguments without graph nodes (data arrays, static values) are passed
through untouched. Calls this cannot take run ``f`` itself, as before:
keyword arguments, an argument mixing graph nodes with non-numbers, values
with batch axes (under ``vmap``), and functions that use an enclosing
transform's variables.

>>> calls = []
>>> def f(x, y):
...     calls.append(1)
...     return fm.sin(x) * y
>>> g = fm.grad(fm.jit(f), argnums=(0, 1))
>>> g(0.0, 2.0), g(0.0, 3.0), len(calls)
((2.0, 0.0), (3.0, 0.0), 2)
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np  # noqa: F401 -- doctests use it

from .. import tree as tr
from ..batching.vmap_ops import Stack, apply
from ..core.expr import Expr
from ..transforms.autodiff import vjp
from ..transforms.custom import custom_vjp

__all__ = ["seen_through", "plan", "NotThrough"]


class NotThrough(Exception):
    """This call cannot become a compiled node; run the function itself."""


def _spread(outs: tuple, cts: list) -> tuple:
    """The cotangents ``cts`` of the compiled output (whose arrays are spread
    into numbers) regrouped, one per graph output leaf ``outs`` (an array for
    a ``vmap`` result)."""
    parts, start = [], 0
    for x in outs:
        shape = np.shape(getattr(x, "value", x))
        n = int(np.prod(shape, dtype=int))
        parts.append(_stacked(cts[start:start + n], shape) if shape else cts[start])
        start += n
    return tuple(parts)


def _stacked(items: list, shape: tuple) -> Any:
    """``items`` (numbers or nodes, row-major) as one array of ``shape``."""
    if len(shape) == 1:
        return apply(Stack(0), *items)
    step = len(items) // shape[0]
    return apply(Stack(0), *[_stacked(items[k:k + step], shape[1:])
                             for k in range(0, len(items), step)])


def _registered(td: tr.TreeDef) -> bool:
    return td.kind in tr._registry or any(_registered(c) for c in td.children)


def plan(args: tuple, static: tuple) -> tuple | None:
    """The positions a compiled node does not differentiate (the static
    ones and those holding no graph node, such as data arrays), or None when
    the call cannot be one compiled node: no argument holds a graph node, an
    argument mixes graph nodes with leaves that are not numbers, or a node
    holds an array (a ``vmap`` value).

    >>> plan((fm.Var(1.0), np.zeros(3), "relu"), (2,))
    (1, 2)
    >>> plan(((fm.Var(1.0), np.zeros(3)),), ()) is None
    True
    """
    nondiff = []
    for i, a in enumerate(args):
        if i in static:
            nondiff.append(i)
            continue
        leaves = tr.leaves(a)
        if any(isinstance(x, np.ndarray) and x.dtype == object for x in leaves):
            return None  # graph nodes inside an array: f runs on them
        if not any(isinstance(x, Expr) for x in leaves):
            nondiff.append(i)
            continue
        for x in leaves:
            if isinstance(x, Expr):
                if x.value.__class__ is not float:
                    return None
            elif not isinstance(x, numbers.Real) or isinstance(x, bool):
                return None
    return tuple(nondiff) if len(nondiff) < len(args) else None


def seen_through(jitted: Any, static: tuple, nondiff: tuple, nargs: int) -> Callable:
    """The ``custom_vjp`` that stands for ``jitted`` called with ``nargs``
    positional arguments, differentiable except at ``nondiff`` (which holds
    the static positions ``static``).

    >>> h = seen_through(fm.jit(lambda x, y: x * y), (), (1,), 2)
    >>> fm.grad(h)(3.0, 4.0)
    4.0
    """
    f = jitted.f
    diff_pos = tuple(i for i in range(nargs) if i not in nondiff)

    def merge(kept: tuple, diff: tuple) -> tuple:
        args: list = [None] * nargs
        for i, v in zip(nondiff, kept):
            args[i] = v
        for i, v in zip(diff_pos, diff):
            args[i] = v
        return tuple(args)

    def back(*rest: Any) -> tuple:
        """The cotangents of the differentiable arguments (the others first,
        then the primals and the output cotangent)."""
        kept, primals, ct = rest[:len(nondiff)], rest[-2], rest[-1]
        def run(*diff: Any) -> tuple:  # the output's leaves: a vmap result is one array
            return tuple(tr.leaves(f(*merge(kept, diff))))

        out, vjp_fn = vjp(run, *primals)
        return vjp_fn(_spread(out, tr.leaves(ct)))

    compiled_back = type(jitted)(back, tuple(k for k, i in enumerate(nondiff) if i in static))

    def plain(*args: Any) -> Any:
        out = jitted(*args)
        if out.__class__ is not float and not any(isinstance(x, Expr) for x in tr.leaves(args)):
            leaves, out_def = tr.flatten(out)
            if not all(x.__class__ is float for x in leaves) or _registered(out_def):
                raise NotThrough  # not compiled (f used an enclosing transform's variable),
                # an output that is not a number, or a container (a vmap result) whose
                # leaves are not the graph's
        return out

    def fwd(*args: Any) -> tuple:
        return plain(*args), tuple(args[i] for i in diff_pos)

    def bwd(*rest: Any) -> tuple:
        return compiled_back(*rest)

    node = custom_vjp(plain, nondiff_argnums=nondiff)
    node.defvjp(fwd, bwd)
    return node
