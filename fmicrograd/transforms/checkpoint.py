"""``checkpoint`` (alias ``remat``): trade compute for memory in reverse mode.

Called with graph nodes, a checkpointed ``f`` computes its outputs from the
argument values without building its graph: the enclosing graph holds one
node per output leaf instead of every inner node of ``f``. When a sweep
reaches such a node it runs ``f`` again on fresh variables, sweeps that
short-lived graph and drops it. Values and derivatives are those of ``f``, at
every order (inside another transform the recomputation runs on nodes, so it
is differentiable again); the price is a second forward pass of ``f`` per
reverse sweep. ``benchmarks/checkpoint.py`` measures the memory saved.

>>> def block(x):
...     for _ in range(50):
...         x = fm.tanh(x) * 1.1
...     return x
>>> f = lambda x: checkpoint(block)(checkpoint(block)(x))
>>> fm.grad(f)(0.1) == fm.grad(lambda x: block(block(x)))(0.1)
True

As with ``custom_vjp``, the values ``f`` is differentiated with respect to
must be its arguments (a closure over one is an error that says so); other
arguments (ints, strings, flags) are listed in ``static_argnums``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import pytree as tr
from ..core.batch_axes import DEPTH
from ..core.control import check_callable, dependent
from ..core.expr import Expr
from ..core.presence import traced_reach
from .autodiff import jvp
from .custom import custom_vjp, positions
from .custom_jvp import as_primal, on_values, vjp_over_variables
from .custom_rule import only_leaf
from .pushed import as_laid_out, own_tangent, rerun
from .rerun_check import assigned_again, closure_of, unchanged

__all__ = ["checkpoint", "remat"]


def checkpoint(f: Callable, static_argnums: int | tuple[int, ...] = ()) -> Callable:
    """``f`` with the same values and derivatives, whose inner nodes the
    reverse sweep recomputes instead of keeping.

    >>> g = fm.checkpoint(lambda x, y: fm.sin(x) * y)
    >>> fm.grad(g, argnums=(0, 1))(0.0, 3.0)
    (3.0, 0.0)
    >>> abs(fm.hessian(g)(0.5, 3.0) - -3.0 * fm.sin(0.5)) < 1e-15
    True
    """
    check_callable(f, "checkpoint")
    static_argnums = positions(static_argnums, "checkpoint", "static_argnums")  # an int too

    def fwd(*args: Any) -> tuple:
        diff = tuple(a for i, a in enumerate(args) if i not in static_argnums)
        return on_values(f, args), diff

    def bwd(*rest: Any, seeded: int | None = None, fields: int | None = None,
            lanes: Any = None, constants: tuple = (), cells: tuple = ()) -> tuple:
        *static, diff, ct = rest

        def rerun(*xs: Any) -> Any:
            unchanged(cells)
            it, st = iter(xs), iter(static)
            n = len(xs) + len(static)
            out = f(*[next(st) if i in static_argnums else next(it) for i in range(n)])
            unchanged(assigned_again(cells))  # (a name f advances again: W = W * 0.5, a count)
            return only_leaf(out, seeded, ct, fields, lanes)  # f's own sweep reaches that
            # output only (on the lanes the sweep reaches it on)

        def backward(*diff_and_ct: Any) -> tuple:
            *primals, cotangent = diff_and_ct
            # (numpy data: the rerun gets it as it is)
            held = as_primal if DEPTH.get() else None  # (under vmap an array is the examples)
            _, back = vjp_over_variables(rerun, primals, constants, lambda a: a,
                                         lambda p: tr.map(as_primal, p), held)
            return back(cotangent)

        if any(isinstance(leaf, Expr) and dependent(leaf, differentiating=True)
               for leaf in tr.leaves((diff, ct))):
            # inside another transform the cotangents are a graph that the enclosing
            # sweep differentiates: checkpoint it too, or it would keep every
            # recomputed inner node (a Hessian would save nothing)
            inner = checkpoint(backward)
            inner.checks_data = False  # type: ignore[attr-defined]  # (arrays: examples)
            return inner(*diff, ct)
        return backward(*diff, ct)

    def reach(*rest: Any) -> list[int] | None:
        """For forward mode, the argument leaves each output's graph reaches
        (``CustomRule.reaches``): ``f`` rerun on fresh variables."""
        *static, diff = rest

        def rerun(*xs: Any) -> Any:
            it, st = iter(xs), iter(static)
            n = len(xs) + len(static)
            return f(*[next(st) if i in static_argnums else next(it) for i in range(n)])

        return traced_reach(rerun, tuple(diff), lambda a: a, lambda p: tr.map(as_primal, p))

    node = custom_vjp(f, nondiff_argnums=static_argnums)
    node.who = "checkpoint"
    node.takes_seeded = node.takes_fields = node.takes_constants = True
    node.cells = lambda args, before=None: closure_of(f, args, before)
    node.reach = reach
    node.reach_on_nodes = True  # type: ignore[attr-defined]  # (see CustomRule.reaches)

    def pushed(rule: Any, leaves: list, live: tuple, tangents: list) -> tuple:
        """``f``'s own forward mode (see ``pushed.own_tangent``)."""
        if rule.depth:  # (inside vmap, arrays are one value per example: nodes)
            leaves = [as_primal(x) for x in leaves]
        run = rerun(f, lambda diff: rule.fn._merge(rule.args, diff), rule.arg_def, leaves, live,
                    lambda out: as_laid_out(out, rule.out_def), rule.shared.get("constants", ()))
        cells = rule.shared.get("cells", ())
        unchanged(cells)
        tangent = jvp(run, tuple(leaves[i] for i in live), tuple(tangents))[1]
        unchanged(assigned_again(cells))  # (a name f advances again in the rerun)
        return tangent

    pushed.at_depth = True  # type: ignore[attr-defined]
    node.own_tangent = lambda rule, kids, tangents, on_graph: own_tangent(  # type: ignore
        rule, kids, tangents, on_graph, pushed)
    node.defvjp(fwd, bwd)
    return node


remat = checkpoint
