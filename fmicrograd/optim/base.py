"""The optimizer interface: a pure ``(init, update)`` pair, as in optax.

``init(params) -> state`` and ``update(grads, state, params=None) ->
(updates, new_state)``; updates are what you ADD to the parameters
(``apply_updates``). States are NamedTuples of persistent trees, and nothing
is ever changed in place, so any state can be kept, replayed or compared.
Hyperparameters are bound with ``functools.partial`` so they stay visible
(``opt.update.keywords``).

>>> opt = chain(identity(), identity())
>>> updates, state = opt.update({"w": 1.0}, opt.init({"w": 0.0}))
>>> apply_updates({"w": 0.0}, updates)
{'w': 1.0}
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

from ..core import functions as F
from ..core import pytree as tree
from ..core.control import RUNNING, TRACE_MAPS, _vmap_depth
from ..core.expr import Expr, stored_value
from ..core.placeholder import is_scalar
from ..transforms.autodiff import CHECK_VALUES

__all__ = ["GradientTransformation", "EmptyState", "apply_updates", "chain", "identity",
           "global_norm", "zeros_like", "leafwise", "MIN_LANES"]


class GradientTransformation(NamedTuple):
    """An optimizer (or one stage of one): ``init`` and ``update`` functions."""

    init: Callable[[Any], Any]
    update: Callable[..., tuple[Any, Any]]


class EmptyState(NamedTuple):
    """The state of a stateless transformation."""


def apply_updates(params: Any, updates: Any) -> Any:
    """``params + updates`` leaf by leaf, in ``params``' types (a dict stays a
    dict when the updates come as a ``PMap``).

    >>> from pyrsistent import pmap, pvector
    >>> fm.optim.apply_updates({"w": 1.0, "b": [2.0]}, pmap({"w": 0.5, "b": pvector([1.0])}))
    {'b': [3.0], 'w': 1.5}
    >>> fm.optim.apply_updates((1.0, 2.0), (0.5,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: apply_updates: tree structures differ at <root>: ...
    """
    try:
        td, (new,) = leafwise(_sum, 1, params, updates, who="apply_updates",
                              names=("the parameter tree", "the update tree"))
    except _NotANumber as e:  # (named by its path: found again, off the hot path)
        _name_a_leaf("apply_updates", ("params", "updates"), (params, updates), _number)
        raise TypeError(f"apply_updates: {e}") from None
    return tree.unflatten(td, new)


class _NotANumber(Exception):
    pass


def _number(x: Any) -> bool:
    if x.__class__ is float or isinstance(x, Expr):
        return True
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind is not None:  # a numpy array or number
        return kind in "fiu"
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _sum(p: Any, u: Any) -> tuple:
    if not (_number(p) and _number(u)):  # ("x" + "y" was "xy")
        raise _NotANumber(f"{p!r:.40} + {u!r:.40}")
    return (_wide(p) + _wide(u),)


def _wide(p: Any) -> Any:
    """A parameter in float64 (or int64): a numpy float32 or float16 one
    stayed one through ``p + u``, its small steps rounded away (as ``jit``
    and ``fit`` do not), and an int8 one wrapped around.

    >>> import numpy as np
    >>> _wide(np.float32(0.5)).__class__.__name__, _wide(2.0)
    ('float', 2.0)
    """
    if p.__class__ is float or type(p).__module__ != "numpy":
        return p
    kind = getattr(getattr(p, "dtype", None), "kind", "")
    if kind not in ("f", "i", "u") or p.dtype.itemsize >= 8:
        return p  # (an int64 step counter or index array stays one)
    if kind == "f":
        return p.astype("float64") if getattr(p, "ndim", 0) else float(p)
    return p.astype("int64") if getattr(p, "ndim", 0) else int(p)  # (int8 wrapped)


def leafwise(f: Callable[..., tuple], n_out: int, first: Any, *rest: Any,
             who: str = "update", lanes: bool = False,
             names: tuple[str, str] = ("the gradient tree", "the optimizer state (as opt.init "
                                       "made it from the parameters)")
             ) -> tuple[tree.TreeDef, list[list]]:
    """Run ``f`` on matching leaves of ``first`` and ``rest`` (same structure,
    dict ~ PMap and list ~ PVector) where ``f`` returns ``n_out`` values.
    Returns ``first``'s treedef and ``n_out`` lists of leaves.

    ``lanes``: ``f`` is arithmetic on numbers, the same for every leaf (no
    branch on a value); while ``fm.jit`` traces a function that maps with
    ``fm.vmap`` (a loss over a batch), on a tree of ``MIN_LANES`` number
    leaves or more, ``f`` then runs once over all of them, under ``fm.vmap``
    (see ``_lanes``).

    >>> td, (a, b) = leafwise(lambda x, y: (x + y, x * y), 2, (1.0, 2.0), (3.0, 4.0))
    >>> a, b
    ([4.0, 6.0], [3.0, 8.0])
    """
    xs, td = tree.flatten(first, True)  # (a vmap result: example by example, as the loop)
    columns = [xs]
    for r in rest:
        ys, rd = tree.flatten(r, True)
        if not tree.equal(rd, td):  # (in C, else without recursion: a tree 500 deep)
            tree.check_same(td, rd, who, names)
        columns.append(ys)
    if lanes and len(xs) >= MIN_LANES and _traced_numbers(columns):
        return td, _lanes(f, n_out, columns)
    try:
        outs = [f(*args) for args in zip(*columns)]
    except TypeError:  # (Python's "can't multiply sequence by non-int": the leaf named)
        _name_a_leaf(who, (names[0],) + (names[1],) * len(rest), (first, *rest))
        raise
    return td, [list(col) for col in zip(*outs)] if outs else [[] for _ in range(n_out)]


def _name_a_leaf(who: str, names: tuple, trees: tuple,
                 number: Callable[[Any], bool] | None = None) -> None:
    """Raise a ``TypeError`` naming the first leaf of ``trees`` (called
    ``names``) that is no ``number`` (by default: a number, a bool or
    anything with a dtype), if any."""
    for name, t in zip(names, trees):
        leaves, paths, _ = tree.flatten_with_paths(t, True)
        for x, path in zip(leaves, paths):
            if not (number(x) if number is not None else _number(x) or isinstance(x, bool)
                    or getattr(x, "dtype", None) is not None):
                raise TypeError(f"{who}: the leaf of {name} at {tree.keystr(path)} is "
                                f"{type(x).__name__} {x!r:.60}; it takes numbers") from None


# While ``fm.jit`` traces, an optimizer's update of a tree of at least this many number
# leaves runs its step once under ``fm.vmap``: Adam's step is a dozen operations a
# leaf, which the trace, the lowering and the compile passes met as a dozen nodes a
# parameter (21 with the gradient's); under ``vmap`` they are a dozen nodes in all and
# one per leaf and output takes its number out. ``fit(jit=True)``'s first Adam step
# of an 18,817-parameter MLP: 1.75 -> 1.06 s.
MIN_LANES = 64


def _traced_numbers(columns: list) -> bool:
    """Whether ``fm.jit`` is tracing here (not under ``vmap``), in a trace
    that has mapped with ``fm.vmap`` already (else its program is float code,
    operation by operation as eager's, which array code would give up), not under
    ``fm.debug_nans`` (whose error names the output a NaN reaches: one leaf's,
    not the whole vector's), and every leaf is a number: a float, or a node
    whose value is one."""
    mapped = TRACE_MAPS.get()
    if not mapped or not mapped[0] or _vmap_depth() or CHECK_VALUES.get() is not None or \
            not any(who == "fm.jit" for _, who, _ in RUNNING.get()):
        return False
    for col in columns:
        for x in col:
            if x.__class__ is not float and (not isinstance(x, Expr) or
                                             not is_scalar(stored_value(x))):
                return False
    return True


def _lanes(f: Callable[..., tuple], n_out: int, columns: list) -> list[list]:
    """``f`` over the leaves of ``columns`` at once: ``fm.vmap(f)`` over them,
    each output taken apart into one node per leaf. The same operations on
    the same numbers as ``f`` leaf by leaf, so the same values."""
    from ..batching.vectorize import Batched, vmap  # (batching imports what imports this)

    out = vmap(lambda *a: tuple(f(*a)))(*map(tuple, columns))
    if isinstance(out, Batched) and out.treedef.num_leaves == n_out and len(out.leaves) == n_out \
            and out.treedef.kind is tuple:
        return out.unstacked()
    return [list(col) for col in zip(*(tree.leaves(o) for o in out))]


def zeros_like(params: Any) -> Any:
    """A persistent tree of ``0.0`` shaped like ``params``.

    >>> zeros_like({"w": [1.0, 2.0]})
    pmap({'w': pvector([0.0, 0.0])})
    """
    td = tree.persistent(tree.structure(params, True))
    return tree.unflatten(td, [0.0] * td.num_leaves)


def global_norm(updates: Any) -> Any:
    """The Euclidean norm of all leaves together (a ``vmap`` result in the tree
    example by example, as the Python loop's tuple).

    >>> fm.optim.global_norm({"a": 3.0, "b": (4.0,)})
    5.0
    """
    xs = tree.example_leaves(updates)
    return F.sqrt(F.dot(xs, xs))


def _identity_init(params: Any) -> EmptyState:
    return EmptyState()


def _identity_update(grads: Any, state: EmptyState, params: Any = None) -> tuple:
    return grads, state


def identity() -> GradientTransformation:
    """Leaves updates unchanged.

    >>> fm.optim.identity().update((1.0,), fm.optim.EmptyState())
    ((1.0,), EmptyState())
    """
    return GradientTransformation(_identity_init, _identity_update)


# ``opt.update(grads)`` (as torch's ``opt.step()``) names the call to make, not the
# internal function that ``functools.partial`` binds and its missing argument
UPDATE_WITHOUT_STATE = (
    "opt.update(grads) without the optimizer state: optimizers are pure and keep no state of "
    "their own, so pass it and keep the new one: state = opt.init(params) once, then each "
    "step updates, state = opt.update(grads, state, params) (params may be omitted except "
    "for adamw's weight decay) and params = fm.optim.apply_updates(params, updates)")


def _chain_init(transforms: tuple, params: Any) -> tuple:
    return tuple(t.init(params) for t in transforms)


def _chain_update(transforms: tuple, grads: Any, state: tuple | None = None,
                  params: Any = None) -> tuple[Any, tuple]:
    if state is None:
        raise TypeError(UPDATE_WITHOUT_STATE)
    if not isinstance(state, tuple) or len(state) != len(transforms):
        raise ValueError(f"chain.update: expected the state of {len(transforms)} "
                         f"transformations (from this chain's init), got {state!r}")
    new_states, updates = [], grads
    for t, s in zip(transforms, state):
        updates, s = t.update(updates, s, params)
        new_states.append(s)
    return updates, tuple(new_states)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transformations in order; the state is a tuple of their states.

    >>> opt = fm.optim.chain(fm.optim.clip_by_global_norm(1.0), fm.optim.sgd(0.1))
    >>> opt.update((3.0, 4.0), opt.init((0.0, 0.0)))[0]
    (-0.06000000000000001, -0.08000000000000002)
    """
    for i, t in enumerate(transforms):
        if not isinstance(t, GradientTransformation):
            raise TypeError(f"chain: argument {i} is {type(t).__name__}, expected a "
                            "GradientTransformation (e.g. fm.optim.sgd(0.1))")
    return GradientTransformation(functools.partial(_chain_init, transforms),
                                  functools.partial(_chain_update, transforms))
