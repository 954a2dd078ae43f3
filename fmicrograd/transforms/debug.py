"""``debug_nans``: find the first operation that produced a NaN.

No hook sits in the hot path, so there is no cost unless the wrapper is used.
The wrapper runs ``f`` with every float of its arguments replaced by a fresh
variable. Every transform inside ``f`` then meets a variable of an enclosing
transform and runs in graph mode: its derivative computation becomes graph
nodes too, next to the forward ones. The wrapper walks the output graph,
children before parents, and raises on the first node whose value is NaN while
none of its inputs is.

A transform applied outside the wrapper (``fm.grad(debug_nans(f))``) sweeps
``f``'s graph after the wrapper has returned. So while a transform that
differentiates (``grad``, ``value_and_grad``, ``vjp``, ``jacrev``,
``hessian``; in forward mode ``jvp``, ``jacfwd``, ``linearize``) runs around
the call, every output node that depends
on the wrapper's variables is handed back behind a ``"custom"`` node of the
same value (``_Watch``, a rule as ``custom_vjp``'s). Its children are the
boundary of ``f``'s part of the graph: the enclosing nodes the wrapper's
variables stand for, and the nodes ``f`` closed over. Its rule runs the
reverse sweep through that part itself, the sweep the enclosing transform
would have run there, on the same nodes in the same order (the same numbers),
and when a NaN comes out it rebuilds that sweep as a graph and walks it as
above: the error names the op and says the NaN reached the derivative. Where
the enclosing sweep builds a graph (at higher order, inside ``jit``) the rule
checks the derivative it builds and hands it back behind such nodes in turn,
for the next order. Under ``vmap`` the sweep tells the rule the examples it
reaches the node on (``sweep.REACHED``), and the rule's sweep goes on with
them, so an example whose ``where`` does not take ``f`` is not blamed, as in
a loop. In forward mode the node's ``push`` runs the tangent sweep through
that part in the same way, and checks the tangent it gives (a tangent built
as a graph is not watched again: a reverse sweep through one region per
tangent would add its terms in another order than the enclosing sweep, so
``grad`` of a ``jvp`` is checked at the first order only). Outside
``debug_nans`` nothing of this runs.

>>> debug_nans(lambda x: fm.log(x) * 2)(1.0)
0.0
>>> debug_nans(lambda x: fm.log(x) * 2)(-1.0)
Traceback (most recent call last):
    ...
FloatingPointError: debug_nans: 'log' produced nan from inputs (-1.0,): log(args[0]) = nan; \
it reaches the output at <root>
>>> fm.grad(debug_nans(lambda x: fm.sqrt(x) * 0.0))(0.0)
Traceback (most recent call last):
    ...
FloatingPointError: debug_nans: '/' produced nan from inputs (0.0, 0.0): \
0.0 / (2.0 * sqrt(args[0])) = nan; it reaches the derivative of the output at <root>

Limits, from walking the output graph: only computations that depend on
``f``'s arguments are seen (a transform applied to constants alone runs on
floats), and only nodes that reach an output or the function value of a transform
inside ``f`` (so a forward NaN that ``grad`` drops is still reported: under
``grad(log)`` at -1 the derivative ``1/x`` is a clean -1.0, but ``log(-1)``
is not). A NaN argument is not an operation and is
not reported. Under ``vmap`` a node counts when it has a NaN and none of its
inputs has one anywhere in the batch. A value ``f`` computes from
closed-over values alone lies outside its part of the graph, so its
derivative is not checked; and when ``f`` closes over a differentiated value
that is also used outside it, the terms of that value's derivative can be
added in another order than without the wrapper (the last bit can differ).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any

from ..core import pytree as tr
from ..core.control import (
    GUARDS,
    UNCOMPILED,
    check_callable,
    dependent,
    reaches_user_variable,
)
from ..core.expr import Expr, const, next_level, variable
from .autodiff import CHECK_VALUES, lower
from .debug_backward import _derivative_levels, _watch_output
from .debug_check import _check

__all__ = ["debug_nans"]



def debug_nans(f: Callable) -> Callable:
    """Wrap ``f`` (transformed or not) so that the first operation producing a
    NaN, forward or in a derivative (one taken inside ``f``, or by a
    transform applied to the wrapper, in reverse or forward mode), raises
    ``FloatingPointError`` naming the op and its inputs. Otherwise returns
    what ``f`` returns.

    >>> g = fm.debug_nans(fm.grad(lambda x: fm.sqrt(x) * 0.0))
    >>> g(4.0)
    0.0
    >>> g(0.0)
    Traceback (most recent call last):
        ...
    FloatingPointError: debug_nans: '/' produced nan from inputs (0.0, 0.0): \
0.0 / (2.0 * sqrt(args[0])) = nan; it reaches the output at <root>
    """
    check_callable(f, "debug_nans")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        log = GUARDS.get()
        if log is not None:  # inside jit's trace: the check runs at every call, so the
            log.append(UNCOMPILED)  # jitted function runs uncompiled, not once at its trace
        level = next_level()
        inputs: dict = {}  # (an ordered set)
        # with an enclosing transform's node among the arguments the output stays a
        # graph; the other arguments' variables then stand for their values as
        # constants, so the enclosing transform does not take them for a
        # transform's inputs (``vmap`` with ``in_axes=None``, a closed-over float)
        outer = any(isinstance(x, Expr) for x in tr.leaves((args, kwargs)))

        def watched(arg: Any, where: str) -> Any:
            leaves, paths, treedef = tr.flatten_with_paths(arg)
            new = []
            for leaf, path in zip(leaves, paths):
                name = where + tr.keystr(path).replace("<root>", "")
                if isinstance(leaf, Expr):
                    leaf = variable(leaf.value, level, source=leaf, name=name)
                    inputs[leaf] = None
                elif isinstance(leaf, float) or (isinstance(leaf, numbers.Real) and not
                                                 isinstance(leaf, (bool, numbers.Integral))):
                    # (ints stay ints: code may count, index or format with them)
                    leaf = _variable(float(leaf), level, name, outer)
                    inputs[leaf] = None
                elif _numeric_array(leaf):  # an array of examples (vmap) or inputs (jit)
                    leaf = _array_of_variables(leaf, level, name, inputs, outer)
                new.append(leaf)
            return tr.unflatten(treedef, new)

        new_args = [watched(arg, f"args[{i}]") for i, arg in enumerate(args)]
        new_kwargs = {k: watched(v, f"kwargs[{k!r}]") for k, v in kwargs.items()}
        inner = "the function value of an inner transform"
        old = CHECK_VALUES.get()  # (set again at the end: see ``control.running``)
        try:
            CHECK_VALUES.set(functools.partial(_check, inputs=inputs, where=inner))
            out = f(*new_args, **new_kwargs)
        finally:
            CHECK_VALUES.set(old)
        _check(out, inputs)
        leaves, paths, treedef = tr.flatten_with_paths(out)
        nodes = [x for x in leaves if isinstance(x, Expr)]
        if not outer and not any(dependent(x, differentiating=True) for x in nodes) and \
                not reaches_user_variable(nodes, level):
            return lower(out, False)  # (closing over a differentiated value keeps the graph)
        if not _derivative_levels():
            return out
        # an enclosing transform differentiates the output, after this call: its
        # sweep through f's graph goes through nodes that check it
        watched_out = _watch_output(leaves, paths, inputs)
        return out if watched_out is None else tr.unflatten(treedef, watched_out)

    return wrapped


def _numeric_array(x: Any) -> bool:  # (float arrays: ints stay as they are, as int leaves)
    return type(x).__name__ == "ndarray" and getattr(x, "dtype", None) is not None \
        and x.dtype.kind == "f"


def _variable(value: float, level: int, name: str, outer: bool) -> Any:
    """The wrapper's variable for an argument's float; standing for a constant
    when the output is handed to an enclosing transform (``outer``)."""
    return variable(value, level, source=const(value) if outer else None, name=name)


def _array_of_variables(a: Any, level: int, name: str, inputs: dict, outer: bool) -> Any:
    """An object array shaped like ``a`` holding one named variable per entry
    (``vmap`` and ``jit`` take it as they take nested tuples)."""
    import numpy as np

    out = np.empty(a.shape, dtype=object)
    for index in np.ndindex(a.shape):
        v = _variable(float(a[index]), level, name + "".join(f"[{i}]" for i in index), outer)
        inputs[v] = None
        out[index] = v
    return out
