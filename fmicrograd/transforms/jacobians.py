"""Jacobians and Hessians: ``jacrev``, ``jacfwd``, ``jacobian`` and ``hessian``.

Each call traces ``f`` once and orders its graph once (``sweep.order``); every
row (reverse mode, one per output leaf) or column (forward mode, one per input
leaf) is then one sweep over that same plan. Inside another transform the
sweeps build graphs, so Jacobians nest and differentiate like everything else.

Layout mirrors JAX: the output's structure outside, the input's inside. For a
tuple of n floats in and m floats out, a Jacobian is a tuple of m tuples of n
floats; a scalar output gives the input's structure (a gradient); a tuple
``argnums`` puts a tuple over the arguments at each output leaf. Containers
come back persistent, as from ``grad`` (dicts as ``PMap``, lists as
``PVector``).

>>> jacrev(lambda x, y: (x * y, x + y), argnums=(0, 1))(2.0, 3.0)
((3.0, 2.0), (1.0, 1.0))
>>> hessian(lambda p: p[0] ** 2 * p[1])((1.0, 3.0))
((6.0, 2.0), (2.0, 0.0))
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

from .. import tree as tr
from ..core import sweep
from ..core.expr import Expr
from .autodiff import _argnums, _rebuild, call_on_inputs, lower, per_example

__all__ = ["jacrev", "jacfwd", "jacobian", "hessian"]


class _Traced(NamedTuple):
    """``f`` traced once at the call's arguments, with its sweep plan."""

    outs: list          # output leaves (Exprs, or numbers that depend on nothing)
    out_def: tr.TreeDef
    inputs: list        # the fresh variables of the differentiated arguments, flat
    defs: list          # one TreeDef per differentiated argument
    groups: list        # the variables of each differentiated argument
    single: bool        # argnums was an int
    plan: tuple         # sweep.order(outs, inputs)
    aux: Any


def _trace(f: Callable, args: tuple, kwargs: dict, argnums: Any, has_aux: bool,
           who: str) -> _Traced:
    nums, single = _argnums(argnums, len(args), who)
    out, aux, defs, groups = call_on_inputs(f, args, kwargs, nums, has_aux, who)
    outs, paths, out_def = tr.flatten_with_paths(per_example(out))
    for leaf, path in zip(outs, paths):
        if not (isinstance(leaf, Expr)
                or (isinstance(leaf, numbers.Real) and not isinstance(leaf, bool))):
            raise TypeError(f"{who}: the function's output has a leaf at {tr.keystr(path)} "
                            f"that is {type(leaf).__name__} {leaf!r}; every output leaf must "
                            "be a float or an fm.Expr")
    inputs = [x for xs in groups for x in xs]
    plan = sweep.order(outs, inputs)
    return _Traced(outs, out_def, inputs, defs, groups, single, plan, aux)


def _assemble(t: _Traced, rows: list) -> Any:
    """One row (a flat list over the inputs) per output leaf -> the nested Jacobian."""
    per_output = []
    for row in rows:
        grads = _rebuild(t.defs, t.groups, row, t.plan[2])
        per_output.append(grads[0] if t.single else tuple(grads))
    return tr.unflatten(tr.persistent(t.out_def), per_output)


def _with_aux(t: _Traced, jac: Any, has_aux: bool) -> Any:
    if has_aux:
        return jac, lower(t.aux, t.plan[2])
    return jac


def jacrev(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Jacobian of ``f`` by reverse mode: one reverse sweep per output leaf.

    With ``has_aux`` ``f`` returns ``(output, aux)`` and the result is
    ``(jacobian, aux)``.

    >>> jacrev(lambda x: (x[0] * x[1], x[0] + x[1], x[1] ** 2))((2.0, 3.0))
    ((3.0, 2.0), (1.0, 1.0), (0.0, 6.0))
    """

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t = _trace(f, args, kwargs, argnums, has_aux, "jacrev")
        rows = [sweep.reverse([o], [1.0], t.inputs, t.plan)[0] for o in t.outs]
        return _with_aux(t, _assemble(t, rows), has_aux)

    return wrapped


jacobian = jacrev


def jacfwd(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Jacobian of ``f`` by forward mode: one forward sweep per input leaf.

    Same layout as ``jacrev``; cheaper when there are fewer inputs than outputs.

    >>> jac = jacfwd(lambda x: {"s": x[0] + x[1], "p": x[0] * x[1]})((2.0, 3.0))
    >>> jac["p"], jac["s"]
    ((3.0, 2.0), (1.0, 1.0))
    """

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t = _trace(f, args, kwargs, argnums, has_aux, "jacfwd")
        cols = [sweep.forward(t.outs, [x], [1.0], t.plan)[0] for x in t.inputs]
        rows = [[col[k] for col in cols] for k in range(len(t.outs))]
        return _with_aux(t, _assemble(t, rows), has_aux)

    return wrapped


def hessian(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Hessian of a scalar ``f``: ``jacrev(jacrev(f))``, reverse over reverse.

    Reverse over reverse measured fastest here (``benchmarks/hessian.py``):
    a row of the Hessian is one reverse sweep over the gradient's graph and
    touches only the part of it that the row's gradient entry depends on,
    whereas a forward column visits every node downstream of its input.
    The layout is the input's structure of input structures (a tuple of n
    tuples for n floats); with a tuple ``argnums`` each level holds a tuple
    over the arguments, nested exactly as ``jax.hessian`` nests it.

    >>> hessian(lambda x, y: x * x * y, argnums=(0, 1))(1.0, 2.0)
    ((4.0, 2.0), (2.0, 0.0))
    """
    inner = jacrev(f, argnums, has_aux)
    outer = jacrev(inner, argnums, has_aux)
    return functools.wraps(f)(outer)
