"""``linearize``: a function's value and its linear map (JVP) at a point.

The graph of ``f`` is built once; each call of the linear map is one forward
sweep over it with new tangents, so linearizing once and pushing many
tangents through costs one trace of ``f`` instead of one per tangent.

>>> out, f_jvp = linearize(lambda x, y: x * y, 2.0, 3.0)
>>> out, f_jvp(1.0, 0.0), f_jvp(0.0, 1.0)
(6.0, 3.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core import pytree as tr
from ..core import sweep
from ..core.batch_axes import DEPTH
from ..core.control import check_callable
from .autodiff import (
    _checked,
    call_on_inputs,
    lower,
    lower_aux,
    per_example,
    refuse_deeper,
    refuse_node_arrays,
    shaped_like,
    widened_leaves,
)

__all__ = ["linearize"]


def linearize(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``(f(*primals), f_jvp)`` where ``f_jvp(*tangents)`` is the Jacobian of
    ``f`` at ``primals`` applied to ``tangents`` (one per primal, each shaped
    like it), as ``jvp(f, primals, tangents)[1]``. With ``has_aux``, ``f``
    returns ``(output, aux)`` and the result is ``(output, f_jvp, aux)``.

    >>> out, f_jvp = fm.linearize(lambda p: fm.sin(p["w"]) * p["b"], {"w": 0.0, "b": 2.0})
    >>> out, f_jvp({"w": 1.0, "b": 0.0})
    (0.0, 2.0)
    >>> out, f_jvp, aux = fm.linearize(lambda x: (x * x, "seen"), 3.0, has_aux=True)
    >>> out, f_jvp(1.0), aux
    (9.0, 6.0, 'seen')
    """
    check_callable(f, "linearize")
    out, aux, _, groups = call_on_inputs(f, primals, {}, tuple(range(len(primals))), has_aux,
                                         "linearize")
    out = per_example(_checked(out))
    outs, out_def = tr.flatten(out)
    refuse_node_arrays(outs, out, "linearize")
    inputs = [x for xs in groups for x in xs]
    plan = sweep.order(outs, inputs)
    primal_def = tr.structure(tuple(primals))
    depth = DEPTH.get()

    def f_jvp(*tangents: Any) -> Any:
        refuse_deeper(depth, plan[0], outs, "linearize's f_jvp",
                      "fm.vmap(lambda t: fm.jvp(f, primals, (t,))[1])")
        tr.check_same(primal_def, tr.structure(tuple(tangents)),
                      "linearize: f_jvp's tangents must match the primals")
        shaped_like(primals, tangents, "linearize's f_jvp")
        tans, _ = sweep.forward(outs, inputs, widened_leaves(tangents, "linearize"), plan)
        return tr.unflatten(out_def, tans)

    if has_aux:
        return lower(out, plan[2]), f_jvp, lower_aux(aux, plan[2], inputs)
    return lower(out, plan[2]), f_jvp
