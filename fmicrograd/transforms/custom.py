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
from typing import Any

import numpy as np

from ..core import pytree as tr
from ..core.batch_axes import DEPTH
from ..core.control import (
    RUNNING,
    check_callable,
    dependent,
    reaches_user_variable,
    reaches_variable,
)
from ..core.expr import Const, Expr, lift, prim
from ..core.functions import undifferentiated
from ..core.numeric import rounded_int
from .closures import holds_traced
from .custom_rule import CustomRule, _as_value, _batched, _is_number, _path_of, _spread

__all__ = ["custom_vjp", "bound", "positions"]


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


def _bad_argument(leaf: Any) -> bool:
    if leaf.__class__ is float:
        return False
    return not isinstance(leaf, Expr) and (isinstance(leaf, bool) or not _is_number(leaf))


def _huge_int(leaf: Any) -> bool:
    """An int (or numpy int) that a float64 cannot hold exactly."""
    return isinstance(leaf, numbers.Integral) and not isinstance(leaf, bool) and \
        rounded_int(leaf)


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

