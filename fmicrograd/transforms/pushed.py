"""Forward mode through ``checkpoint`` and a jitted call: the function's own JVP.

A rule's node (``custom_vjp``) takes its tangent from partials read off its
VJP, reverse mode. Where fm's forward and reverse modes give different
numbers (both follow torch: ``where`` on a node condition hands the branch
not taken a 0.0 cotangent, times ``sqrt``'s infinite slope at 0 that is NaN,
while forward mode gives that branch no tangent at all), ``jvp`` through
such a node gave reverse mode's number. ``checkpoint`` and a jitted call
seen through stand for their function, so their node runs that function's
forward mode instead (``own_tangent``), as JAX's remat and jit primitives
have a JVP rule of their own (a jitted call's is switched off:
``compiler/through.py`` ``PUSHED``), under ``vmap`` too (where only some examples
have a tangent, the others keep none: ``forward_sweep._own_on_lanes``). A
call of a ``vmap`` result still reads partials.

>>> f = lambda x: fm.where(fm.greater(x, 0.0), fm.sqrt(x), 0.0)
>>> fm.jvp(f, (0.0,), (1.0,)), fm.jvp(fm.checkpoint(f), (0.0,), (1.0,))
((0.0, 0.0), (0.0, 0.0))
>>> fm.grad(f)(0.0)  # reverse mode: torch's number
nan
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core import pytree as tr
from ..core.expr import Const, Expr, const
from ..core.forward_sweep import UNSET_TANGENT as UNSET

__all__ = ["own_tangent", "rerun", "as_laid_out", "given", "FLOATS", "UNSET"]


def own_tangent(rule: Any, kids: Sequence[Any], tangents: Sequence[Any], on_graph: bool,
                jvp_of: Callable) -> Any:
    """The tangent of output ``rule.index`` of a rule's call (``rule``, a
    ``CustomRule``), from its argument leaves ``kids`` and their tangents
    (None where there is none): ``jvp_of(rule, leaves, live, tangents)``,
    the function's JVP in the directions of the leaves ``live`` (their
    tangents in order), one tangent per output leaf; computed once per sweep
    for every output of the call. None where the output's own graph reaches
    no argument leaf with a tangent (no tangent, not a 0.0). ``UNSET`` for a
    call of a ``vmap`` result, or inside ``vmap`` unless ``jvp_of.at_depth``
    (it runs at the call's ``vmap`` depth): the caller reads partials.

    >>> w = fm.checkpoint(lambda a, b: (a * a, b))
    >>> out = fm.trace(w)(3.0, 4.0)[1]
    >>> fm.jvp(lambda a: w(a, 4.0)[1], (3.0,), (1.0,))
    (4.0, 0.0)
    """
    from .custom_rule import _holds_batch

    if _holds_batch(rule.arg_def) or _holds_batch(rule.out_def) or \
            rule.depth and not getattr(jvp_of, "at_depth", False):
        return UNSET
    live = tuple(i for i, t in enumerate(tangents) if t is not None)
    if not live:
        return None
    reach = rule.reaches(kids)
    if reach is not None and not any(reach[i] for i in live):
        return None
    key = (on_graph, live) + tuple(map(id, kids)) + tuple(id(tangents[i]) for i in live)
    box = rule.shared.get("pushed")
    if box is None or box[0] != key:  # (box keeps what the ids name alive)
        leaves = [_data(k) if on_graph else _value(k) for k in kids]
        with rule._at_call_depth():
            outs = tuple(jvp_of(rule, leaves, live, [tangents[i] for i in live]))
        if len(outs) != rule.n_outputs:  # (laid out otherwise than the rule's outputs)
            return UNSET
        box = (key, tuple(kids), tuple(tangents), outs)
        rule.shared["pushed"] = box
    return box[3][rule.index]


def as_laid_out(out: Any, out_def: tr.TreeDef) -> Any:
    """``out`` laid out as a rule's outputs ``out_def``: a ``vmap`` result
    example by example where the call had it so (see ``CustomRule._forward``).

    >>> as_laid_out((1.0, 2.0), fm.tree.structure((0.0, 0.0)))
    (1.0, 2.0)
    """
    td = tr.structure(out)
    if not tr.equal(td, out_def) and _holds(td):
        return tr.per_example(out)
    return out


def _holds(td: tr.TreeDef) -> bool:
    from .custom_rule import _holds_batch

    return _holds_batch(td)


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Expr) else x


def _data(x: Any) -> Any:
    """A leaf as the call had it: a numpy array outside ``vmap`` is data."""
    return x.value if x.__class__ is Const and x.value.__class__ is np.ndarray else x


# a float, and numpy's float64 scalar (a value taken out of an array), whose own
# arithmetic is C's: ``np.float64(-inf) ** 0.5`` is ``inf`` where fm gives NaN
FLOATS = frozenset((float, np.float64))


def rerun(f: Callable, merge: Callable, diff_def: tr.TreeDef, leaves: Sequence[Any],
          live: tuple, flat: Callable = lambda out: out, constants: tuple = ()) -> Callable:
    """``f`` as a function of the leaves ``live`` of its differentiable
    arguments (the others fixed at ``leaves``, a float as a constant node, so
    that ``f`` computes as under any transform), giving the leaves of
    ``flat(output)``; ``merge(diff)`` puts the differentiable arguments back
    among the others. A leaf flagged in ``constants`` (a float the call was
    given, see ``custom.constant_leaves``) is fixed as that float, as the
    function has it without the rule (a branch on it is taken there).

    >>> g = rerun(lambda x, y: (x * y, y), lambda d: d, fm.tree.structure((1.0, 2.0)),
    ...           [3.0, 4.0], (1,))
    >>> [float(v) for v in g(5.0)]  # (the fixed leaves as constant nodes)
    [15.0, 5.0]
    """
    if len(constants) != len(leaves):
        constants = (False,) * len(leaves)
    fixed = [given(x) if c else const(float(x)) if x.__class__ in FLOATS else x
             for x, c in zip(leaves, constants)]  # (as nodes: f's own numbers under a
    # transform, 1.0 / 0.0 inf, not Python's ZeroDivisionError)

    def run(*xs: Any) -> tuple:
        full = list(fixed)
        for i, x in zip(live, xs):
            full[i] = x
        return tuple(tr.leaves(flat(f(*merge(tr.unflatten(diff_def, full))))))

    return run


def given(x: Any) -> Any:
    """A constant leaf as the call was given it: a float stays one.

    >>> given(const(2.0)), given(np.float64(1.5)), given(const(np.ones(2))).op
    (2.0, 1.5, 'const')
    """
    value = x.value if x.__class__ is Const else x  # (an array stays a node: under
    return float(value) if value.__class__ in FLOATS else x  # vmap, its examples)
