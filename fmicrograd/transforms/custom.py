"""``custom_vjp``: functions that bring their own derivative rule, as in JAX.

>>> @custom_vjp
... def f(x, y):
...     return fm.sin(x) * y
>>> def f_fwd(x, y):
...     return f(x, y), (fm.cos(x), fm.sin(x), y)
>>> def f_bwd(res, g):
...     cos_x, sin_x, y = res
...     return (cos_x * g * y, sin_x * g)
>>> f.defvjp(f_fwd, f_bwd)
>>> fm.grad(f, argnums=(0, 1))(0.0, 2.0)
(2.0, 0.0)

How it works: called with graph nodes, ``f`` runs ``fwd`` on their values and
becomes one ``"custom"`` node per output leaf, whose children are the
argument leaves and whose ``param`` is a ``CustomRule``. A sweep that reaches
the node calls the rule, which calls ``bwd`` with the output's cotangent (the
other output leaves get ``0.0``: a VJP is linear in its cotangent). With plain
numbers ``f`` is just called. Because every output leaf is its own node, the
forward sweep gets true partials from the rule, so ``jvp`` and ``jacfwd`` work
on custom functions too (JAX refuses them), as long as ``bwd`` is linear in the
cotangent, as a VJP is: forward mode checks that (``bwd`` at -2.0 must give -2
times its result at 1.0) and refuses a rule that is not (a clipped gradient),
which only reverse mode gives a meaning to.

Higher order: when the sweep itself builds a graph (inside another
transform), the rule reruns ``fwd`` on the argument nodes so the residuals
are nodes too, and ``bwd`` written with fmicrograd operations is then
differentiable again. ``bwd`` written with ``math`` works at first order only.

Supported: any pytree of float arguments and of float outputs; arguments in
``nondiff_argnums`` are passed through untouched (any Python value) and come
first in ``bwd(*nondiff_args, residuals, ct)``; ``bwd`` returns one cotangent
per other argument, shaped like it, or ``None`` for zero. ``f`` may close over
values that an enclosing ``vmap`` maps or ``jit`` traces, but not over values
being differentiated (the rule gives no derivative for them; pass them as
arguments): that is an error, as in JAX.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import operator
import types
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import pytree as tr
from ..core.batch_axes import DEPTH, at_depth
from ..core.control import (
    RUNNING,
    check_callable,
    dependent,
    reaches_user_variable,
    reaches_variable,
    traced,
)
from ..core.expr import Const, Expr, const, lift, prim
from ..core.functions import stop_gradient, undifferentiated
from ..core.numeric import rounded_int
from ..core.presence import leaf_flags
from ..core.reach import _reduce_mask, choice
from ..core.sweep import REACHED
from .closures import holds_traced

__all__ = ["custom_vjp", "CustomRule", "bound", "found_reach"]

# While a rule's ``bwd`` runs (``CustomRule.__call__``), a list that takes the
# reach of every output if ``bwd`` finds it on its way (``found_reach``).
_FOUND: ContextVar = ContextVar("fmicrograd_found_reach", default=None)
# While a rule's ``bwd`` runs, a list that takes, each time ``within`` cuts an output
# to the lanes the sweep reaches it on, whether it could
_CUT: ContextVar = ContextVar("fmicrograd_cut_to_lanes", default=None)


def found_reach(masks: list[int] | None) -> None:
    """Called by a ``bwd`` that traced its function anyway (a compiled VJP,
    ``compiler.through``): for each output leaf, the bit mask of the
    argument leaves its graph reaches, as ``fn.reach`` would give it; the
    rule keeps it for ``CustomRule.reaches``, which then traces nothing.

    >>> found_reach([1, 2])  # (outside a bwd: nothing to do)
    """
    box = _FOUND.get()
    if box is not None and masks is not None:
        box.append(masks)


def positions(argnums: Any, who: str, name: str) -> tuple[int, ...]:
    """``argnums`` (an int or a sequence of them, numpy's too) as a tuple of
    argument positions; a negative one, counted from the end of a call whose
    length the rule does not know yet, is a ValueError naming the fix.

    >>> positions(1, "checkpoint", "static_argnums"), positions((0, 2), "x", "y")
    ((1,), (0, 2))
    """
    items = (argnums,) if hasattr(argnums, "__index__") else tuple(argnums)
    out = []
    for a in items:
        if isinstance(a, bool) or not hasattr(a, "__index__"):
            raise TypeError(f"{who}: {name} must be ints (argument positions), got {a!r}")
        if operator.index(a) < 0:
            raise ValueError(f"{who}: {name} holds {a}, counted from the end; pass the "
                             "argument's position from the start (0 is the first)")
        out.append(operator.index(a))
    return tuple(out)


def bound(self: Any, obj: Any, objtype: Any = None) -> Any:
    """``__get__`` for the callables the transforms return (``jit``,
    ``custom_vjp``, ``custom_jvp``): on a class they are methods, ``obj.f(x)``
    calling them with ``(obj, x)``, as a function defined there (and JAX's
    ``jit``) would."""
    return self if obj is None else types.MethodType(self, obj)


class custom_vjp:  # noqa: N801 -- a decorator, named as in JAX
    """Give ``fun`` a hand-written derivative: ``fun.defvjp(fwd, bwd)`` with
    ``fwd(*args) -> (output, residuals)`` and ``bwd(residuals, ct) -> one
    cotangent per argument``. The rule is set once; the result composes with
    every transform.

    >>> @fm.custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None),
    ...                      lambda res, g: (fm.minimum(fm.maximum(g, -1.0), 1.0),))
    >>> fm.grad(lambda x: 5.0 * clip_gradient(x))(2.0)
    1.0
    """

    who = "custom_vjp"  # the decorator the user wrote, for errors (see custom_jvp, checkpoint)
    sets_depth = False  # True: fwd and bwd set the vmap depth themselves (compiler.through)
    # True: bwd also takes ``seeded=i``, the one output whose cotangent is not a 0.0
    # stand-in (compiler.through: a jitted call matches f's own sweep, which never
    # reaches the outputs the sweep did not reach, where 0.0 * nan would be nan)
    takes_seeded = False
    # True: bwd also takes ``seeded=i, fields=n`` where the outputs are the ``n``
    # fields of a vmap result (``only_leaf``)
    takes_fields = False
    # True: bwd also takes ``constants``, for each leaf of the differentiable arguments
    # whether it was a constant at the call (a float, a ``Const``): nothing
    # differentiates it, so a rerun (``checkpoint``) keeps it a constant
    takes_constants = False
    # ``checkpoint``'s: ``cells(args, before)`` -> what its function closes over at the
    # call and its argument arrays, which bwd (``cells=``) and forward mode
    # (``shared["cells"]``) check again at the rerun
    cells: Callable[..., tuple] | None = None
    # For forward mode: ``reach(*nondiff_args, residuals)`` -> for each output leaf, a bit
    # mask of the argument leaves its own graph reaches (``presence.reached``), or None.
    # A user's custom_vjp has none: its bwd's zeros are its own (checkpoint, custom_jvp
    # and a jitted call seen through set one, see ``CustomRule.reaches``).
    reach: Callable | None = None
    # Whether a numpy array among the differentiable arguments under ``vmap`` is an
    # error (a user's call: data; fmicrograd's own calls pass the examples so)
    checks_data: bool = True

    def __init__(self, fun: Callable, nondiff_argnums: tuple[int, ...] = ()) -> None:
        check_callable(fun, type(self).__name__)
        # (its name and doc, not its __dict__: wrapping a checkpoint, another rule's
        # settings would come along)
        functools.update_wrapper(self, fun, updated=())
        self.fun = fun
        self.nondiff_argnums = positions(nondiff_argnums, "custom_vjp", "nondiff_argnums")
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self._signature = inspect.signature(fun)
        # the positional parameters (whose defaults ``_positional`` fills)
        params = self._signature.parameters.values()
        self._positionals = [q for q in params
                             if q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)]
        self._varargs = any(q.kind == q.VAR_POSITIONAL for q in params)
        self._static = max(self.nondiff_argnums, default=-1)  # (see ``_positional``)
        if self._static >= len(self._positionals) and not self._varargs:
            raise ValueError(f"{type(self).__name__}: {getattr(fun, '__name__', 'the function')} "
                             f"has {len(self._positionals)} positional parameters, but "
                             f"nondiff_argnums (checkpoint's static_argnums) names position "
                             f"{self._static}")

    @property
    def name(self) -> str:
        """The wrapped function's name (shown by ``debug_nans`` and errors).

        >>> fm.custom_vjp(fm.tanh).name
        'tanh'
        """
        return getattr(self.fun, "__name__", repr(self.fun))

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        """Set the rule: ``fwd(*args) -> (out, residuals)``, ``bwd(*nondiff,
        residuals, ct) -> cotangents``. Allowed once per function.

        >>> double = fm.custom_vjp(lambda x: 2.0 * x)
        >>> double.defvjp(lambda x: (2.0 * x, None), lambda res, g: (2.0 * g,))
        >>> fm.grad(double)(5.0)
        2.0
        """
        if self.fwd is not None:
            raise ValueError(f"{self.who}: {self.name} already has a rule; to use another, "
                             f"wrap the function again with fm.custom_vjp")
        if not (callable(fwd) and callable(bwd)):
            raise TypeError("custom_vjp.defvjp(fwd, bwd): both must be functions")
        self.fwd, self.bwd = fwd, bwd

    __get__ = bound  # on a class, a method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fwd is None:
            raise TypeError(f"{self.who}: {self.name} has no rule yet; call "
                            f"{self.name}.defvjp(fwd, bwd) before using it")
        args = self._positional(args, kwargs)
        diff = tuple(a for i, a in enumerate(args) if i not in self.nondiff_argnums)
        leaves, arg_def = tr.flatten(diff)
        values, nodes_in, bad = [], False, None
        for leaf in leaves:  # one pass: the values fwd sees, graph nodes, a bad leaf
            if isinstance(leaf, Expr):
                # constants (what vmap hands a function, and fwd: fwd may call the
                # function itself, as in JAX) need no rule: nothing differentiates them
                nodes_in = nodes_in or leaf.__class__ is not Const
                values.append(_batched(leaf.value))
            else:
                if bad is None and leaf.__class__ is not float and _bad_argument(leaf):
                    bad = leaf
                values.append(leaf)
        if not nodes_in:
            return self.fun(*args)
        if bad is not None:
            raise TypeError(f"{self.who}: {self.name}'s differentiable arguments have a "
                            f"leaf at {_path_of(diff, _bad_argument)} that is "
                            f"{type(bad).__name__} {bad!r}; list non-float arguments in "
                            "nondiff_argnums")
        huge = next((x for x in leaves if _huge_int(x)), None)
        if huge is not None:  # (lifted to a float node: n - 2**60 was 0, not 1)
            where = "static_argnums" if self.who == "checkpoint" else "nondiff_argnums"
            raise TypeError(f"{self.who}: {self.name}'s differentiable arguments have a "
                            f"leaf at {_path_of(diff, _huge_int)} that is the int {int(huge)}, "
                            "beyond 2**53: a float64 would round it; list that argument in "
                            f"{where} to keep it exact")
        if self.checks_data and DEPTH.get() and any(x.__class__ is np.ndarray for x in leaves):
            raise TypeError(self._data_under_vmap(args, diff))
        self._check_nondiff(args)
        before = self.cells(args) if self.cells is not None else None  # (see closure_of)
        out, residuals = self._run_fwd(self._merge(args, tr.unflatten(arg_def, values)))
        outs, out_def = tr.flatten(out)
        odd = next((k for k, v in enumerate(outs) if _not_a_number(v, self.who)), None)
        if odd is not None:
            # a flag, a label, a count made a rule node: ``r[1] == "tag"`` was then False
            # under every transform and f's caller took its other branch (600.0 for 6.0)
            if self.who == "checkpoint":
                return self.fun(*args)  # checkpoint(f) is f: its outputs as f gives them
            where = tr.keystr(tr.flatten_with_paths(out)[1][odd])
            raise TypeError(f"{self.who}: {self.name} returned {type(outs[odd]).__name__} "
                            f"{outs[odd]!r} at {where}; the outputs of a function with a "
                            "custom rule are numbers (floats or fm nodes): compute other "
                            "values outside it")
        if self.who == "checkpoint" and _reaches_user(outs):
            # f reads a user's fm.Var: its rerun would hide that Var behind a rule node
            # (a derivative through it lost: 12.0 for 24.0). checkpoint(f) is f, so f runs
            # as it is, keeping its whole graph (no memory saved, the numbers right)
            return self.fun(*args)
        try:
            closes = self._closed_over(outs, residuals) or holds_traced(self.fwd)
        except ClosesOver:
            if self.who == "checkpoint" and not any(
                    isinstance(x, Expr) and dependent(x, differentiating=True) for x in leaves):
                # no argument is differentiated (jit's traced values, vmap's examples):
                # checkpoint(f) is f, run as it is, as eager grad runs it on floats
                return self.fun(*args)
            raise
        kids = tuple(lift(leaf) for leaf in leaves)
        static = tuple(args[i] for i in self.nondiff_argnums)
        depth = DEPTH.get()
        out_values = [_as_value(v.value if isinstance(v, Expr) else v) for v in outs]
        if any(v.__class__ is complex for v in out_values):
            raise self._complex()
        if depth:
            out_values = _spread(out_values, values, depth)
        shared: dict = {}  # the call's, for every output's rule (``CustomRule.reaches``)
        if self.takes_constants:
            shared["constants"] = constant_leaves(kids)
        if self.cells is not None:  # (checkpoint: its rerun must read the same closure)
            shared["cells"] = self.cells(args, before)
        nodes = [prim("custom", v, kids,
                      CustomRule(self, k, len(outs), out_def, arg_def, args, residuals, static,
                                 replayable=not closes, depth=depth, shared=shared))
                 for k, v in enumerate(out_values)]
        return tr.unflatten(out_def, nodes)

    def _complex(self) -> TypeError:
        """The error for a value that came out complex from Python's float
        arithmetic on the argument values (the call's, or a compiled replay's)."""
        return TypeError(f"{self.who}: {self.name} gave a complex number from the argument "
                         "values (Python's float arithmetic: (-1.0) ** 0.5 is complex); "
                         "compute with fm functions, e.g. fm.power(x, y), which give NaN "
                         "as on nodes")

    def _data_under_vmap(self, args: tuple, diff: tuple) -> str:
        """The error for a numpy array among the differentiable arguments
        under ``vmap``: there an array is the examples of a batch, so the
        rule could not tell data from them."""
        def is_array(x: Any) -> bool:
            return x.__class__ is np.ndarray

        where = f"{_path_of(diff, is_array)}"
        shape = next(x.shape for x in tr.leaves(diff) if is_array(x))
        names = "static_argnums" if self.who == "checkpoint" else "nondiff_argnums"
        return (f"{self.who}: {self.name}'s differentiable arguments have a numpy array at "
                f"{where} (shape {shape}) under vmap, where fmicrograd reads an array as the "
                f"examples of a batch, so the rule cannot tell data from them; list that "
                f"argument in {names}, or close over the array")

    def _check_nondiff(self, args: tuple) -> None:
        """A ``nondiff_argnums`` argument that a running transform
        differentiates is an error that says so (it was reported as a
        closure): the rule gives no derivative for those arguments."""
        for i in self.nondiff_argnums:
            if i >= len(args):
                continue
            for leaf in tr.leaves(args[i]) if isinstance(args[i], (tuple, list, dict)) \
                    else [args[i]]:
                who = dependent(leaf, differentiating=True) if isinstance(leaf, Expr) else None
                if who is not None:
                    names = "static_argnums" if self.who == "checkpoint" else "nondiff_argnums"
                    raise TypeError(f"{self.who}: {self.name}'s argument {i} is in {names}, "
                                    f"but {who} differentiates it: the rule gives no derivative "
                                    f"for those arguments; take it out of {names} (the rule "
                                    "then gives its derivative), or pass fm.stop_gradient of it")

    def _closed_over(self, outs: list, residuals: Any) -> bool:
        """Whether ``fwd``, run on plain values, still returned graph nodes: it
        closes over values of an enclosing transform. Values that ``vmap`` maps
        or ``jit`` traces are fine (``jit`` then runs the function uncompiled,
        since replaying ``fwd`` would reuse the traced value); values being
        differentiated are an error, as in JAX: the rule gives no derivative
        for them."""
        closed = [x for x in outs + tr.leaves(residuals) if isinstance(x, Expr)]
        running = [traces for _, name, traces in RUNNING.get() if name != "fm.trace"]
        # a user's Var behind the rule: at the top level its derivative (fm.viz.node_grads)
        # would miss it, and under a differentiating transform too (a checkpoint runs as
        # its function then, see ``__call__``); under jit alone the function then runs as
        # Python, where the call's arguments are numbers (no rule node)
        users = not running or not all(running)
        for x in closed:
            who = dependent(x, differentiating=True)
            if who is not None:
                raise ClosesOver(f"{self.who}: {self.name} closes over a value that {who} "
                                 "differentiates, but its rule only gives derivatives for its "
                                 "arguments; pass that value as an argument instead")
        if users and reaches_user_variable(closed):
            raise ClosesOver(f"{self.who}: {self.name} closes over an fm.Var made outside it (a "
                             "node of your graph), but its rule only gives derivatives for its "
                             "arguments: fm.viz.node_grads would get none for that Var through "
                             "it; pass it as an argument instead")
        return any(reaches_variable(x) for x in closed)

    def _positional(self, args: tuple, kwargs: dict) -> tuple:
        """The call's arguments, all positional. With keywords, the rules of
        ``custom_vjp`` and ``custom_jvp`` see every positional parameter,
        defaults filled in (as before; without keywords, what was passed); a
        ``checkpoint`` gets what was passed, defaults filled only before a
        passed keyword (a default left out is ``f``'s own Python value, not an
        argument to differentiate: ``n=3`` of ``f(x, y=2.0, n=3)`` called as
        ``f(x, y=1.5)`` was). Either way a ``nondiff_argnums`` (static)
        position left out is filled with its default (it was an
        ``IndexError``); keyword-only defaults not passed stay ``f``'s own."""
        static = self._static
        if not kwargs and (len(args) > static or self._varargs):
            return args
        bound = self._signature.bind(*args, **kwargs)
        params = self._positionals
        if kwargs and self.who != "checkpoint":
            last = len(params) - 1  # (every positional default, as before)
        else:  # (the defaults before the last parameter passed, or a static one)
            last = max([k for k, q in enumerate(params) if q.name in bound.arguments] +
                       [static])
        filled = {q.name: bound.arguments[q.name] if q.name in bound.arguments
                  else q.default for q in params[:last + 1]}
        bound.arguments = {**filled, **{k: v for k, v in bound.arguments.items()
                                        if k not in filled}}
        passed = sorted(k for k in bound.kwargs if k in kwargs)
        if passed:
            raise TypeError(f"{self.who}: {self.name} takes keyword-only arguments "
                            f"{passed}; make them positional")
        return bound.args

    def _merge(self, args: tuple, diff: tuple) -> tuple:
        """``args`` with the differentiable ones replaced by ``diff`` (in order)."""
        it = iter(diff)
        return tuple(a if i in self.nondiff_argnums else next(it) for i, a in enumerate(args))

    def _run_fwd(self, args: tuple) -> tuple:
        result = self.fwd(*args)  # type: ignore[misc]  # defvjp was checked
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"{self.who}: {self.name}'s fwd must return a pair "
                            f"(output, residuals), got {type(result).__name__}")
        residuals = result[1]
        if self.who == "custom_vjp" and any(_narrow(x) for x in tr.leaves(residuals)):
            # (a user's bwd computing ``g * res`` kept float32; checkpoint's and
            # custom_jvp's residuals are their arguments)
            result = result[0], tr.map(lambda x: _widened(x) if _narrow(x) else x, residuals)
        return result

    def __repr__(self) -> str:
        return f"custom_vjp({self.name})"


def _reaches_user(outs: list) -> bool:
    """Whether the output leaves of a rule's ``fwd`` (run on values) reach a
    variable the user made (``control.reaches_user_variable``)."""
    return reaches_user_variable([x for x in outs if isinstance(x, Expr)])


class ClosesOver(TypeError):
    """A rule's function closes over a value being differentiated (the
    rule gives derivatives for its arguments only). ``jit`` seen through by
    a transform catches it and runs its function as it is instead."""


def constant_leaves(kids: Sequence[Any]) -> tuple[bool, ...]:
    """For each argument leaf of a call (the node's children ``kids``),
    whether it is a constant: a float or array the call was given (lifted), a
    ``Const``, or under ``jit`` or ``vmap`` a node that reaches no variable
    but ``jit``'s (``functions.undifferentiated``: a value that would be a
    float without them). No transform differentiates those.

    >>> constant_leaves([fm.Var(1.0), lift(2.0)])
    (False, True)
    """
    return tuple(k.__class__ is Const or undifferentiated(k) for k in kids)


def first_nonlinear(one: Sequence[Any], at: Callable[[float], Sequence[Any]]) -> tuple | None:
    """``(leaf, value at 1, value at -2)`` of the first leaf of a rule's map
    that is not linear, or None: ``one`` its leaves at ``s``, ``at(scale)``
    at ``scale * s``. Linear means -2 times at ``-2 s`` (a power of two:
    exact, whatever the rule's rounding; a clip at 1 fails it); where ``-2 s``
    overflows and ``s`` does not, at ``-s / 2`` instead (a rule with slopes
    near 1e308, whose terms at ``-2 s`` were inf and NaN).

    >>> first_nonlinear([3.0], lambda k: [3.0 * k]) is None
    True
    >>> first_nonlinear([1.0], lambda k: [max(min(k, 1.0), -1.0)])
    (0, 1.0, -1.0)
    """
    two: Sequence[Any] = at(-2.0)
    half: Sequence[Any] | None = None
    for i, (p, q) in enumerate(zip(one, two)):
        with np.errstate(all="ignore"):  # (subnormal results round differently)
            p_, q_ = np.asarray(p), np.asarray(q)
            same = np.isclose(q_, -2.0 * p_, rtol=1e-12, atol=1e-300, equal_nan=True)
            over = ~np.isfinite(q_) & np.isfinite(p_)
            if np.any(over & ~same):
                half = at(-0.5) if half is None else half
                same = same | over & np.isclose(np.asarray(half[i]), -0.5 * p_, rtol=1e-12,
                                                atol=1e-300, equal_nan=True)
        if not np.all(same):
            return i, p, q
    return None


def only_leaf(out: Any, index: int | None, ct: Any, fields: int | None = None,
              lanes: Any = None) -> Any:
    """``out`` with every leaf but leaf ``index`` cut from the graph
    (``stop_gradient``), for a ``bwd`` told ``seeded=index``: a VJP of it at
    the sweep's cotangents ``ct`` (0.0 stand-ins for the outputs it did not
    reach) then never multiplies a stand-in by an infinite or NaN partial, as
    the function's own sweep, which never reaches those outputs, does not.
    Under ``vmap`` the cut is the same for every example (each leaf holds one
    output of every example). A ``vmap`` result in ``out`` is taken example
    by example where ``ct`` is (the rule's leaves are then its examples), or
    field by field when the rule's leaves are its ``fields`` (a count: an
    enclosing ``vmap`` made them nodes); then leaf ``index`` is cut too on
    the lanes the sweep does not reach it on (``lanes``, see ``told_lanes``):
    a field holds every example, and the sweep may reach one of them only.
    ``out`` as it is where it is not shaped like ``ct``.

    >>> only_leaf((fm.Var(1.0), fm.Var(2.0)), 1, (0.0, 1.0))[0].op
    'stop_gradient'
    """
    if index is None:
        return out
    leaves, td = tr.flatten(out)
    if fields is not None:  # the rule's leaves are a vmap result's fields: so are out's,
        if not _holds_batch(td) or len(leaves) != fields:  # or its examples', field by field
            sizes = {c.num_leaves for c in td.children}
            if not tr.equal(td, tr.structure(ct)) or td.kind is not tuple or len(sizes) != 1 or \
                    sizes.pop() % fields:  # (an example may be a vmap result's too)
                return out
            lanes = by_example(lanes, len(leaves) // fields)
            return tr.unflatten(td, [_reached_part(x, k % fields == index, lanes, k // fields)
                                     for k, x in enumerate(leaves)])
        return tr.unflatten(td, [_reached_part(x, k == index, lanes) for k, x in enumerate(leaves)])
    want = tr.structure(ct)
    if not tr.equal(td, want) and _holds_batch(td):  # a vmap result's: example by example,
        # as ``ct``
        leaves, td = tr.flatten(tr.per_example(out))
        if any(isinstance(x, Expr) and x.value.__class__ is not float for x in leaves):
            return out  # (its examples hold an enclosing vmap's lanes: left as it was)
    if not tr.equal(td, want):
        return out
    return tr.unflatten(td, [x if k == index or not isinstance(x, Expr)
                             else stop_gradient(x) for k, x in enumerate(leaves)])


def _reached_part(x: Any, seeded: bool, lanes: Any, example: int | None = None) -> Any:
    """Leaf ``x`` of a rule's output as ``only_leaf`` cuts it: all of it when
    it is not the ``seeded`` one, else its lanes outside ``lanes`` (of a
    field: of its ``example``-th example, where given).

    >>> _reached_part(fm.Var(1.0), False, None).op, _reached_part(2.0, False, None)
    ('stop_gradient', 2.0)
    """
    if not isinstance(x, Expr):
        return x
    if not seeded:
        return stop_gradient(x)
    if lanes is None:
        return x
    if example is not None:
        lanes = lanes[example] if example < len(lanes) else None
    return within(x, lanes)


def by_example(lanes: Any, count: int) -> Any:
    """A field's ``lanes`` (its examples' axes first: more than one for a
    ``vmap`` result of ``vmap`` results) with one leading axis of ``count``
    examples, in the order ``tr.per_example`` lists them; None where the
    axes do not make ``count``.

    >>> import numpy as np
    >>> by_example(np.ones((2, 3, 4), dtype=bool), 6).shape, by_example(np.ones(5), 6)
    ((6, 4), None)
    """
    if lanes is None:
        return None
    shape, size = np.shape(lanes), 1
    for axis, n in enumerate(shape):
        if size == count:
            return np.reshape(lanes, (count,) + shape[axis:])
        size *= n
    return np.reshape(lanes, (count,)) if size == count else None


def within(x: Expr, lanes: Any) -> Expr:
    """``x`` with its derivative on the lanes ``lanes`` only (a boolean
    array; a lane of ``x`` that broadcasts to several counts if one of them
    does): elsewhere it is ``x`` behind ``stop_gradient``, which a sweep
    does not go through (a ``Choice``, as ``fm.where`` under ``vmap``, whose
    value is ``x``'s). ``x`` itself where ``lanes`` does not line up with it.
    A rule's call (``CustomRule.kept_to_reach``) is told whether it did.

    >>> import numpy as np
    >>> y = within(fm.Var(1.0) * np.ones(2), np.array([True, False]))
    >>> y.op, y.value.tolist()
    ('where', [1.0, 1.0])
    """
    shape = np.shape(x.value)
    mask = None if lanes is None else _reduce_mask(lanes, shape)
    box = _CUT.get()
    if box is not None:
        box.append(mask is not None)
    if mask is None:
        return x
    return choice(const(mask.astype(float)), x, stop_gradient(x))


def told_lanes() -> Any:
    """The lanes on which the sweep calling a rule reaches the rule's output
    (``sweep.REACHED``, set for a ``reach_aware`` rule): a boolean array, or
    None for every lane (nothing told, or lanes only known when a compiled
    graph runs).

    >>> told_lanes() is None
    True
    """
    told = REACHED.get()
    if told is None:
        return None
    reach, lanes = told
    if not isinstance(lanes, type):  # a sweep that builds a graph: its formula, if fixed
        reach = lanes.known(reach)
    return reach if isinstance(reach, np.ndarray) else None


@dataclass(frozen=True, eq=False)
class CustomRule:
    """The ``param`` of a ``"custom"`` node: output leaf ``index`` of ``fn``.

    Called by the sweeps as ``rule(ct, out, *args)`` (see ``rules.PARAM_VJP``)
    with the argument leaves as numbers (first order: the residuals of the
    call are reused) or as nodes (higher order: ``fwd`` reruns on them).
    ``forward(*leaves)`` recomputes the node's value from argument values,
    for tools that replay graphs.
    """

    fn: custom_vjp
    index: int
    n_outputs: int
    out_def: tr.TreeDef
    arg_def: tr.TreeDef
    args: tuple          # the call's arguments (nondiff ones used as they were)
    residuals: Any       # fwd's residuals at the call's values
    static: tuple        # the nondiff arguments, bwd's leading arguments
    replayable: bool = True  # False when fwd closes over traced values (see _closed_over)
    depth: int = 0       # the vmap depth of the call (see _at_call_depth)
    # what the call's rules share: the reach of every output (see ``reaches``)
    shared: dict = field(default_factory=dict, compare=False, repr=False)
    # a sweep that reaches the output on some lanes only says which (``told_lanes``)
    reach_aware = True

    @property
    def name(self) -> str:
        """The custom function's name."""
        return self.fn.name

    @property
    def kept_to_reach(self) -> bool:
        """Whether the rule's last call cut its output to the lanes the sweep
        reaches it on (``told_lanes``, ``within``): its cotangents, summed
        over the examples of a ``vmap`` result, then hold nothing from the
        examples the sweep does not reach (``reach.Lanes.mask`` trusts them).

        >>> sq = custom_vjp(lambda x: x * x)
        >>> sq.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))
        >>> fm.trace(sq)(3.0).param.kept_to_reach
        False
        """
        return self.shared.get("kept_to_reach", False)

    @property
    def forward(self) -> Callable:
        """The node's value for argument leaves ``leaves``, as
        ``rule.forward(*leaves)``; absent (an ``AttributeError``, so tools
        that replay graphs fall back) when ``fwd`` closes over traced values.

        >>> sq = custom_vjp(lambda x: x * x)
        >>> sq.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))
        >>> fm.trace(sq)(3.0).param.forward(4.0)
        16.0
        """
        if not self.replayable:
            raise AttributeError(f"custom_vjp {self.name} closes over traced values and "
                                 "cannot be replayed")
        return self._forward

    def _forward(self, *leaves: Any) -> Any:
        # (an array outside vmap is data: as it was passed, unless it stands for a field
        # of a vmap result, as a node: a Batched of bare arrays flattens per example)
        ins = [_batched(x) for x in leaves] if self.depth or _holds_batch(self.arg_def) \
            else list(leaves)
        with self._at_call_depth():
            out, _ = self.fn._run_fwd(self.fn._merge(self.args, tr.unflatten(self.arg_def, ins)))
        flat, got = tr.flatten(out)
        if not tr.equal(got, self.out_def) and _holds_batch(got):  # a vmap result the call
            flat, got = tr.flatten(tr.per_example(out))  # had example by example (a cotangent,
        if not tr.equal(got, self.out_def):              # given back as a vmap result now)
            tr.check_same(self.out_def, got, f"{self.fn.who}: {self.name} replayed gives "
                                             "another output structure than its call")
        if any(isinstance(x, Expr) and x.__class__ is not Const and reaches_variable(x)
               for x in flat):  # a value the function holds, not one of the leaves given
            raise TypeError(f"{self.fn.who}: {self.name}, replayed on new argument values "
                            "(fm.jit's compiled call), returned a node it reaches outside its "
                            "arguments: it holds a value of the trace, which would be stale. "
                            "Pass that value as an argument")
        values = [_as_value(_plain(x)) for x in flat]
        if any(v.__class__ is complex for v in values):  # (a compiled call's replay: the
            raise self.fn._complex()                      # trace's values were real)
        if self.depth:
            values = _spread(values, ins, self.depth)
        return values[self.index]

    def __call__(self, ct: Any, out: Any, *leaves: Any) -> list:
        seeds = [0.0] * self.n_outputs
        seeds[self.index] = ct
        on_graph = any(isinstance(leaf, Expr) for leaf in leaves)
        with self._at_call_depth():
            if on_graph:
                if not self.depth:  # a numpy array outside vmap is data: as it was passed
                    leaves = tuple(x.value if x.__class__ is Const and
                                   x.value.__class__ is np.ndarray else x for x in leaves)
                diff = tr.unflatten(self.arg_def, leaves)
                _, residuals = self.fn._run_fwd(self.fn._merge(self.args, diff))
            else:
                residuals = self.residuals
            # (not for a vmap result's field: its one leaf holds every example, and the
            # rule's view of the output, example by example, has other leaves; a vmap
            # result of bare arrays is the rule's examples: ``only_leaf`` takes it so)
            seeded: dict = {}
            if self.fn.takes_seeded and not _holds_batch(self.out_def):
                seeded = {"seeded": self.index}
            elif self.fn.takes_fields:  # (checkpoint, custom_jvp: ``only_leaf``)
                seeded = {"seeded": self.index, "fields": self.n_outputs,
                          "lanes": told_lanes()}
            if "constants" in self.shared:
                seeded["constants"] = self.shared["constants"]
            if self.fn.cells is not None:
                seeded["cells"] = self.shared.get("cells", ())
            box: list | None = [] if "reach" not in self.shared and \
                self.fn.reach is not None else None
            cut: list = []
            olds = _FOUND.get(), _CUT.get(), REACHED.get()  # (set again at the end)
            try:
                _FOUND.set(box)
                _CUT.set(cut)
                REACHED.set(None)  # (told_lanes: not for bwd's sweep)
                cts = self.fn.bwd(*self.static, residuals,  # type: ignore[misc]
                                  tr.unflatten(self.out_def, seeds), **seeded)
            finally:  # (one per level: an interrupt between two still runs the rest)
                try:
                    _FOUND.set(olds[0])
                finally:
                    try:
                        _CUT.set(olds[1])
                    finally:
                        REACHED.set(olds[2])
            self.shared["kept_to_reach"] = bool(cut) and all(cut)
        if box:
            self.shared["reach"] = self._laid_out(box[-1], len(leaves))
        flat = self._flat_cotangents(cts, [np.shape(_plain(x)) for x in leaves])
        if on_graph:
            return flat
        return [_settled(x) if isinstance(x, Expr) else x for x in flat]

    def reaches(self, kids: Sequence[Any]) -> tuple[bool, ...] | None:
        """For forward mode: for each argument leaf (``kids``, the node's
        children), whether the function's own graph reaches it from this
        output, so that its tangent reaches the output (None: every one, as
        the rule's partials say). The rule's VJP gives an argument the output
        does not depend on a partial of 0.0, where the function's own forward
        sweep gives the output no tangent at all: ``0.0 * t`` would be a
        tangent of 0.0, and NaN times an infinite partial further on. Asked
        of a ``checkpoint``, ``custom_jvp`` or jitted call (``fn.reach``),
        once per call (every output's rule shares the answer); a user's
        ``custom_vjp``'s zeros are its rule's.

        >>> w = fm.checkpoint(lambda a, b: (a * a, fm.sqrt(b)))
        >>> out = fm.trace(w)(3.0, 4.0)
        >>> out[0].param.reaches(out[0].children), out[1].param.reaches(out[1].children)
        ((True, False), (False, True))
        """
        hook = self.fn.reach
        if hook is None or self.residuals is None:  # (a compiled copy: see ``ir``)
            return None
        shared = self.shared
        masks = shared.get("reach", False)
        if masks is False:
            residuals = self.residuals
            if getattr(self.fn, "reach_on_nodes", False) and not self.depth and \
                    any(isinstance(k, Expr) and traced(k) for k in kids):
                # under ``jit`` the reach is asked of the traced nodes, not their
                # values: a branch it depends on is a guard of the compiled code
                residuals = tr.unflatten(self.arg_def, [_data_leaf(k) for k in kids])
            with self._at_call_depth():
                masks = self._laid_out(hook(*self.static, residuals), len(kids))
            shared["reach"] = masks
        if masks is None:
            return None
        return leaf_flags(masks[self.index], len(kids))

    def _laid_out(self, masks: list[int] | None, count: int) -> list[int] | None:
        """``masks`` (one per output leaf, over ``count`` argument leaves), or
        None where they are laid out otherwise than the rule's outputs (then
        the rule's partials stand)."""
        if masks is not None and (len(masks) != self.n_outputs or
                                  any(m >> count for m in masks)):
            return None
        return masks

    def check_linear(self, partials: Sequence[Any],
                     again: Callable[[float], Sequence[Any]]) -> None:
        """For forward mode, which reads the partials from ``bwd`` at a unit
        cotangent (``partials``): a TypeError unless ``bwd`` at -2.0
        (``again(-2.0)``) gives -2 times them, as a VJP does (see
        ``first_nonlinear``). A rule clipping
        its cotangent would give one number under ``jvp`` and another under
        ``jit`` or ``grad`` (JAX refuses forward mode through ``custom_vjp``).
        A compiled call seen through (``jvp(jit(f))``) is checked when ``f``
        called a ``custom_vjp`` while it was traced."""
        if not checks_linearity(self.fn):
            return  # checkpoint, and compiled calls whose functions call no custom_vjp
        found = first_nonlinear([_plain(p) for p in partials],
                                lambda scale: [_plain(q) for q in again(scale)])
        if found is not None:
            i, p, q = found
            source = getattr(self.fn, "source", None)
            what = f"custom_vjp {self.name}" if source is None else (
                f"fm.jit({getattr(source.f, '__name__', 'f')}), which calls a custom_vjp,")
            raise TypeError(
                f"{what}: forward mode (jvp, jacfwd, linearize) reads its "
                f"derivative from bwd at a cotangent of 1.0, which needs bwd linear in the "
                f"cotangent; here cotangent 1.0 gives {p!r} for argument leaf {i} and -2.0 "
                f"gives {q!r}, not -2 times it (a clipped or normalized gradient). Use "
                "fm.grad / fm.jacrev, which call bwd with the true cotangent, or define the "
                "derivative with fm.custom_jvp")

    def _at_call_depth(self) -> at_depth:
        """Run ``fwd`` and ``bwd`` at the ``vmap`` depth of the call, not at
        the (lower) depth of the sweep that reaches the node (``grad`` of a
        ``vmap``) or of the compiled code that replays it (``jit`` of a
        ``vmap``): the call's batch axes stay per-example for them, so the
        transforms they use inside see one example as ``fun`` did. A sweep
        deeper than the call (``vmap`` of a VJP function) keeps its own depth:
        its cotangents carry its batch axes."""
        depth = self.depth
        if self.fn.sets_depth or depth <= DEPTH.get():
            return at_depth(None)
        return at_depth(depth)

    def _flat_cotangents(self, cts: Any, shapes: Sequence[tuple] = ()) -> list:
        """``bwd``'s cotangents as one per argument leaf (``shapes``: those
        leaves' shapes, where known), checked against the arguments."""
        name, wanted = self.name, self.arg_def.children
        start = 0  # the first leaf of argument i
        got: Any  # what bwd gave: described in words, then a structure
        if not isinstance(cts, (tuple, list)) or len(cts) != len(wanted):
            got = f"{type(cts).__name__} of {len(cts)}" if isinstance(cts, (tuple, list)) \
                else type(cts).__name__
            raise TypeError(f"{self.fn.who}: {name}'s bwd must return a tuple with one cotangent "
                            f"per differentiable argument ({len(wanted)}), got {got}; for one "
                            "argument write `return (g,)`")
        flat: list = []
        for i, (ct, want) in enumerate(zip(cts, wanted)):
            start, here = start + want.num_leaves, shapes[start:start + want.num_leaves]
            if ct is None:
                flat.extend([0.0] * want.num_leaves)
                continue
            if _holds_batch(want) and isinstance(ct, (tuple, list)):
                stacked = _examples_restacked(ct, want, here)  # a vmap result's, example
                # by example (in a tuple or list too)
                if stacked is not None:
                    flat.extend(stacked)
                    continue
            leaves, got = tr.flatten(ct)
            if not tr.equal(got, want):  # (not got != want: that recurses in C)
                tr.check_same(tr.persistent(want), tr.persistent(got),
                              f"{self.fn.who}: {name}'s bwd cotangent {i} must match argument "
                              f"{i}")
            for leaf in leaves:
                if leaf.__class__ not in _PLAIN and _bad_cotangent(leaf):
                    raise TypeError(f"{self.fn.who}: {name}'s bwd returned {type(leaf).__name__} "
                                    f"{leaf!r} as cotangent {i} at "
                                    f"{_path_of(ct, _bad_cotangent)}; every cotangent must be "
                                    "a number, an fm.Expr or None")
            flat.extend(map(_as_value, leaves))  # (in float64: a float32 residual's)
        return flat


def _examples_restacked(ct: Any, want: tr.TreeDef, shapes: Sequence[tuple]) -> list | None:
    """The leaves of cotangent ``ct`` laid out as ``want``, a structure that
    holds a ``vmap`` result, where ``ct`` gives that result example by
    example (``_restacked``), in a tuple or list as ``want`` has it; None
    where it does not fit.

    >>> _examples_restacked((3.0, 4.0), fm.tree.structure((1.0, 2.0)), ())
    [3.0, 4.0]
    """
    if getattr(want.kind, "__fm_examples__", False):
        return _restacked(ct, want, shapes) if isinstance(ct, (tuple, list)) else None
    if not _holds_batch(want):
        leaves, got = tr.flatten(ct)
        return leaves if got == want else None
    if want.kind not in (tuple, list) or not isinstance(ct, (tuple, list)) or \
            len(ct) != len(want.children):
        return None
    flat: list = []
    start = 0
    for item, child in zip(ct, want.children):
        part = _examples_restacked(item, child, shapes[start:start + child.num_leaves])
        if part is None:
            return None
        flat.extend(part)
        start += child.num_leaves
    return flat


def _restacked(ct: Any, want: tr.TreeDef, shapes: Sequence[tuple] = ()) -> list | None:
    """The leaves of a cotangent given as one pytree of numbers per example
    (what a function that iterates over a ``vmap`` result gives back) laid out
    as that result's (``want``, a ``Batched``'s structure): each the stack of
    the examples' values (a ``Stack`` node at higher order). None where it
    does not fit (the caller says why). ``shapes`` are those of the result's
    leaves (examples first, an enclosing ``vmap``'s axes last), where known:
    a field whose every example's cotangent is a number (a zero for a field
    the seeded output does not read) is one per lane of those axes too
    (``tests/test_vmap_result_rules.py``).
    """
    from ..batching.vmap_ops import Stack, apply

    example, size = want.meta
    if len(ct) != size:
        return None
    rows = []
    inner = [tuple(x[1:]) for x in shapes]  # (one example's)
    for item in ct:
        leaves = _example_leaves(item, example, inner)
        if leaves is None:
            return None
        rows.append(leaves)
    columns = [[x.value if x.__class__ is Const else x for x in (r[k] for r in rows)]
               for k in range(example.num_leaves)]
    lanes = []  # each field's shape in one example: an enclosing vmap's axes
    for k, column in enumerate(columns):
        found = {np.shape(x.value if isinstance(x, Expr) else x) for x in column} - {()}
        if len(found) > 1:
            return None  # (examples of different shapes: not laid out here)
        lanes.append(found.pop() if found else
                     tuple(shapes[k][1:]) if len(shapes) == len(columns) else ())
    if not any(isinstance(x, Expr) for column in columns for x in column):
        return [np.stack([np.broadcast_to(np.asarray(x, dtype=float), shape) for x in column])
                for column, shape in zip(columns, lanes)]
    return [apply(Stack(0), *[x if np.shape(x.value if isinstance(x, Expr) else x) == shape
                              else x + np.zeros(shape) for x in column])
            for column, shape in zip(columns, lanes)]


def _example_leaves(item: Any, example: tr.TreeDef, shapes: Sequence[tuple] = ()) -> list | None:
    """The leaves of one example's cotangent ``item`` laid out as ``example``
    (the structure of one example of a ``vmap`` result; ``shapes``: its
    leaves' shapes in one example, where known). An example that is itself a
    ``vmap`` result (a ``vmap`` of a ``vmap`` result), given back example by
    example, is restacked as one (``_restacked``). None where it does not fit.

    >>> _example_leaves((1.0, 2.0), fm.tree.structure((0.0, 0.0)))
    [1.0, 2.0]
    """
    leaves, got = tr.flatten(item)
    if got == example:
        return leaves
    if getattr(example.kind, "__fm_examples__", False) and isinstance(item, (tuple, list)):
        return _restacked(item, example, shapes)
    return None


def checks_linearity(fn: Any) -> bool:
    """Whether forward mode checks the rule of ``fn`` (a ``custom_vjp``, or
    None) for linearity: a user's, or a compiled call (``jit`` seen through)
    whose function calls one (see ``CustomRule.check_linear``)."""
    if fn is None or fn.who != "custom_vjp":
        return False
    return not fn.sets_depth or getattr(getattr(fn, "source", None), "calls_rules", False)


def _holds_batch(td: tr.TreeDef) -> bool:
    """Whether a structure holds a ``vmap`` result (its fields are leaves)."""
    stack = [td]  # (iteratively: a recursion failed at about 330 levels under grad)
    while stack:
        td = stack.pop()
        if getattr(td.kind, "__fm_examples__", False):
            return True
        stack.extend(td.children)
    return False


def _data_leaf(x: Any) -> Any:
    """An argument node as the call had it: a numpy array (data) unwrapped."""
    return x.value if x.__class__ is Const and x.value.__class__ is np.ndarray else x


def _plain(x: Any) -> Any:
    return x.value if isinstance(x, Expr) else x


def _settled(x: Expr) -> Any:
    """A cotangent node that ``bwd`` returned to a sweep running on numbers
    (first order): it came from a closure (``bwd``, or ``fwd``'s residuals,
    closing over graph values, or ``checkpoint`` rerunning a function that
    does). Nothing running depends on it (a value behind ``stop_gradient``, a
    finished transform's variable: that of the very sweep that asks, whose
    derivative is being taken now): its value, as the sweep expects. Else it
    stays a node, for the enclosing transform that differentiates or traces
    it.

    >>> _settled(fm.stop_gradient(fm.Var(2.0)) * 3.0)
    6.0
    """
    return x if dependent(x) else x.value


def _bad_argument(leaf: Any) -> bool:
    if leaf.__class__ is float:
        return False
    return not isinstance(leaf, Expr) and (isinstance(leaf, bool) or not _is_number(leaf))


def _huge_int(leaf: Any) -> bool:
    """An int (or numpy int) that a float64 cannot hold exactly."""
    return isinstance(leaf, numbers.Integral) and not isinstance(leaf, bool) and \
        rounded_int(leaf)


def _bad_cotangent(leaf: Any) -> bool:
    if leaf.__class__ is float:
        return False
    return isinstance(leaf, bool) or not (isinstance(leaf, Expr) or _is_number(leaf))


def _path_of(tree: Any, bad: Callable) -> str:
    """The path of ``tree``'s first ``bad`` leaf, for an error message (the
    common call never walks the paths)."""
    leaves, paths, _ = tr.flatten_with_paths(tree)
    return next(tr.keystr(p) for leaf, p in zip(leaves, paths) if bad(leaf))


# Leaf classes that are always valid cotangents (checked by class, without the
# slower ``numbers.Real`` test): floats, and numpy's values under vmap.
_PLAIN = frozenset({float, np.float64, np.ndarray})


def _batched(value: Any) -> Any:
    """A batch of values (under ``vmap``) as the constant node ``vmap`` would
    hand a function, so ``fwd`` sees what ``fun`` sees; numbers as they are."""
    return const(value) if getattr(value, "ndim", 0) else value



def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) or hasattr(x, "__array__")


def _spread(outs: list, ins: list, depth: int) -> list:
    """Under ``vmap`` (``depth`` of them), the outputs of a custom call with the
    batch shape of the whole call: an output that reads only unmapped values
    is broadcast, so its cotangent stays one per example. ``bwd`` gets it next
    to per-example residuals, and a cotangent already summed over the batch
    would be counted once per example there (``g[0] + u * g[1]`` with ``u`` per
    example). The batch axes are each input's last ``depth``: an inner
    ``vmap`` result passed in holds its own examples' axis before them.

    >>> [np.shape(v) for v in _spread([2.0, np.ones(3)], [np.ones(3), 1.0], 1)]
    [(3,), (3,)]
    >>> [np.shape(v) for v in _spread([np.ones(2)], [np.ones((3, 2))], 1)]
    [(2,)]
    >>> [np.shape(v) for v in _spread([np.ones(2), np.ones((3, 2)), 1.0], [np.ones(2)], 1)]
    [(2,), (3, 2), (2,)]
    """
    # an output with more axes than ``depth`` is an inner vmap result: its examples'
    # axis first, the batch axes last (those count: an input may hold unit axes there)
    batch = np.broadcast_shapes(*(np.shape(_plain(x))[-depth:] for x in ins),
                                *(np.shape(_plain(x))[-depth:] for x in outs))
    if not batch:
        return outs
    spread = []
    for v in outs:
        shape = np.shape(v)
        inner = shape[:-len(batch)] if len(shape) > len(batch) else ()
        spread.append(v if shape == inner + batch else np.broadcast_to(v, inner + batch).copy())
    return spread


def _not_a_number(v: Any, who: str) -> bool:
    """Whether output leaf ``v`` (of a function run on values) is no number a
    rule node can stand for: a bool, text, None, an object with no float; for
    ``checkpoint``, an int too (a count: ``[x] * n`` needs it as it is).
    Arrays (``vmap``'s, ``jit``'s of nodes) and other libraries' numbers are
    numbers.

    >>> _not_a_number(True, "custom_vjp"), _not_a_number(3, "custom_vjp")
    (True, False)
    >>> _not_a_number(3, "checkpoint")
    True
    """
    if v.__class__ is float or isinstance(v, (Expr, complex)):  # (complex: its own error)
        return False
    if isinstance(v, (bool, str, bytes, np.bool_)) or v is None:
        return True
    if isinstance(v, np.ndarray):
        return v.dtype.kind == "b" or (who == "checkpoint" and v.dtype.kind in "iu")
    if isinstance(v, numbers.Integral):
        return who == "checkpoint"
    return not (isinstance(v, numbers.Real) or hasattr(v, "__float__") or
                hasattr(v, "__array__"))


def _narrow(x: Any) -> bool:
    """A numpy float16 or float32, or int8 to int32, number (a residual
    ``bwd`` would compute in: numpy keeps ``g * np.float32(r)`` float32, and
    ``r + r`` of ``np.int8(100)`` wraps around). Arrays stay as ``fwd`` gave
    them: a float32 table widened at every call cost its size eightfold
    until the sweep, and ``bwd`` may test which array it holds."""
    return isinstance(x, (np.floating, np.integer)) and x.dtype.itemsize < 8


def _widened(x: Any) -> Any:
    """A narrow residual (``_narrow``) as a numpy float64 or int64 (its numpy
    methods kept: ``r.item()``, ``r.dtype``)."""
    return np.float64(x) if isinstance(x, np.floating) else np.int64(x)


def _as_value(v: Any) -> Any:
    """A rule's number (an output of ``fwd``, a cotangent of ``bwd``) in
    float64, as every value of a graph is: a numpy float32 or int8 kept its
    type, and the rest of the sweep computed in it (``np.float32`` gave
    1e8 for 100000001.0; two ``np.int8(100)`` summed to -56).

    >>> _as_value(np.float32(0.5)), _as_value(np.int8(100)) + _as_value(np.int8(100))
    (0.5, 200.0)
    >>> _as_value(np.array([1, 2], dtype=np.uint8)).dtype
    dtype('float64')
    """
    if v.__class__ is float or isinstance(v, Expr):
        return v
    if v.__class__ is np.float64:  # (a float, as the sweep's own numbers are)
        return float(v)
    if isinstance(v, np.ndarray):
        return v.astype(np.float64) if v.dtype.kind in "iufb" and v.dtype != np.float64 else v
    if isinstance(v, numbers.Real) and not isinstance(v, float):
        return float(v)
    if hasattr(v, "__array__") and not isinstance(v, float):  # (a torch tensor)
        a = np.asarray(v, dtype=np.float64)
        return float(a) if a.ndim == 0 else a
    return v
