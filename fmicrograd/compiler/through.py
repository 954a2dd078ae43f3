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

Arguments whose nodes reach no variable (data arrays, ``vmap``'s batched
data, static values) are passed through untouched. Under ``vmap`` (argument
values with batch axes) the forward value and the VJP are the batched
compiled programs of ``batched_call``, run at the ``vmap`` depth of the call;
cotangents are then arrays over the batch, one per output leaf. Calls this
cannot take run ``f`` itself, as before: keyword arguments, an argument mixing
graph nodes with non-numbers, and functions that use an enclosing transform's
variables.

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
from contextvars import ContextVar
from typing import Any

import numpy as np  # noqa: F401 -- doctests use it

from ..batching.vectorize import Batched
from ..core import pytree as tr
from ..core.batch_axes import DEPTH
from ..core.batch_axes import at_depth as _at
from ..core.control import RUNNING, reaches_known
from ..core.expr import Expr, const
from ..core.presence import reached, traced_reach
from ..transforms.autodiff import jvp, per_example, vjp
from ..transforms.custom import custom_vjp
from ..transforms.custom_rule import found_reach
from ..transforms.pushed import own_tangent, rerun
from .jit_io import Structures

__all__ = ["seen_through", "plan", "under_trace", "NotThrough", "constant_nodes",
           "STANDING"]


# How many sets of directions a jitted function's forward mode keeps compiled.
PUSHED_STRUCTURES = 1024
# Whether forward mode through a jitted call runs the function's own compiled
# JVP (``pushed``); off, the call reads its VJP's partials (reverse mode's
# number where fm's two modes differ). It needs a rule's reach inside a trace
# to be guarded (``CustomRule.reaches`` on traced nodes, ``presence.BRANCHED_REACH``):
# without, a checkpoint inside the function keeps the reach of its first
# call's branch (seeds 210984, 270197).
PUSHED = True


class NotThrough(Exception):
    """This call cannot become a compiled node; run the function itself."""


def _registered(td: tr.TreeDef) -> bool:
    return td.kind in tr._registry or any(_registered(c) for c in td.children)


def _holds(td: tr.TreeDef, kind: type) -> bool:
    return td.kind is kind or any(_holds(c, kind) for c in td.children)


def plan(args: tuple, static: tuple) -> tuple | None:
    """``(nondiff, batched, probe)``: the positions a compiled node does not
    differentiate (the static ones and those whose nodes reach no variable,
    such as data arrays or ``vmap``'s batched data), whether a node holds a
    batch (a ``vmap`` value, see ``batched_call``), and the first node that
    reaches a variable (None if none does). None when the call cannot be
    compiled: an argument mixes differentiated nodes with leaves that are not
    numbers, a static argument holds a differentiated node, or nothing is
    differentiated nor batched.

    >>> plan((fm.Var(1.0), np.zeros(3), "relu"), (2,))[:2]
    ((1, 2), False)
    >>> plan((fm.Const(np.zeros(3)), 2.0), ())
    ((0, 1), True, None)
    >>> plan(((fm.Var(1.0), np.zeros(3)),), ()) is None
    True
    """
    nondiff = []
    batched = False
    probe = None
    for i, a in enumerate(args):
        if i in static:
            if any(isinstance(x, Expr) and has_variable(x) for x in tr.leaves(a)):
                return None  # a value a transform differentiates (``checkpoint``
                # differentiates every argument) where jit takes a static one: f runs
            nondiff.append(i)
            continue
        diff, numbers_only = False, True
        leaves, td = tr.flatten(a)
        for x in leaves:
            if isinstance(x, Expr):
                if x.value.__class__ is not float:
                    if not isinstance(x.value, np.ndarray):
                        return None
                    batched = True
                if not diff and has_variable(x):
                    diff = True
                    probe = x if probe is None else probe
            elif isinstance(x, np.ndarray) and x.dtype == object:
                return None  # graph nodes inside an array: f runs on them
            elif not isinstance(x, numbers.Real) or isinstance(x, bool):
                numbers_only = False
        if not diff:
            nondiff.append(i)
        elif not numbers_only:
            return None
        if batched and _holds(td, Batched):
            return None  # examples of an inner vmap: the examples of a node may mix
    if len(nondiff) == len(args) and not batched:
        return None
    return tuple(nondiff), batched, probe


def constant_nodes(args: tuple, static: tuple) -> bool:
    """Whether the non-static arguments are float numbers and nodes of float
    value that reach no variable (constants built as nodes, such as the
    cotangents a sweep seeds a rule with), at least one a node: the call is
    the call on their values.

    >>> constant_nodes((fm.Const(1.0) * 2.0, 3.0), ()), constant_nodes((fm.Var(1.0),), ())
    (True, False)
    """
    seen = False
    for i, a in enumerate(args):
        if i in static:
            continue
        for x in tr.leaves(a):
            if isinstance(x, Expr):
                if x.value.__class__ is not float or has_variable(x):
                    return False
                seen = True
            elif x.__class__ is not float:
                return False
    return seen


def has_variable(x: Expr) -> bool:
    """Whether the graph under ``x`` holds a variable of some transform (one
    that stands for an outer value counts too: ``vmap(grad(f))``'s).

    >>> has_variable(fm.Const(1.0) * 2.0), has_variable(fm.Var(1.0) * 2.0)
    (False, True)
    """
    return reaches_known(x, _is_var, "has_variable")


def under_trace(x: Expr) -> bool:
    """Whether node ``x`` reaches a variable of a running ``jit`` trace (as in
    ``jit(vmap(jit(f)))`` or ``jit(grad(jit(f)))``): then ``f`` is best run,
    so that the enclosing trace compiles it with the rest, as JAX inlines a
    jitted call into an enclosing one.

    >>> under_trace(fm.Var(1.0))
    False
    """
    traced = frozenset(lv for lv, _, traces in RUNNING.get() if traces)
    return bool(traced) and reaches_known(
        x, lambda n: n.op == "var" and getattr(n, "level", None) in traced,
        ("under_trace", traced))


def _is_var(n: Expr) -> bool:
    return n.op == "var"


def seen_through(jitted: Any, static: tuple, nondiff: tuple, nargs: int,
                 depth: int | None = None) -> Callable:
    """The ``custom_vjp`` that stands for ``jitted`` called with ``nargs``
    positional arguments, differentiable except at ``nondiff`` (which holds
    the static positions ``static``). ``depth`` is the ``vmap`` depth of a
    call on batched values (None for one without): the function and its VJP
    then run at that depth whenever the sweep calls them, the node's outputs
    are the leaves of the function's output (rebuilt into its structure
    around the node), and their cotangents are arrays over the batch.

    >>> h = seen_through(fm.jit(lambda x, y: x * y), (), (1,), 2)
    >>> fm.grad(h)(3.0, 4.0)
    4.0
    """
    f = jitted.f
    diff_pos = tuple(i for i in range(nargs) if i not in nondiff)
    batched = depth is not None

    def merge(kept: tuple, diff: tuple) -> tuple:
        args: list = [None] * nargs
        for i, v in zip(nondiff, kept):
            args[i] = v
        for i, v in zip(diff_pos, diff):
            args[i] = v
        return tuple(args)

    def back(sweep_depth: int | None, reduce: bool, only: int | None, *rest: Any) -> tuple:
        """The cotangents of the differentiable arguments (the others first,
        then the primals and the output cotangent), for a sweep running at
        ``vmap`` depth ``sweep_depth`` (None: not batched). Under ``vmap`` an
        unbatched argument's cotangent is summed over the batch only with
        ``reduce`` (first order) and a batched cotangent: otherwise each
        example keeps its own, so that the node that computes them at higher
        order has one output per example too (see ``plain``). With ``only``
        an output's index, the VJP of that output alone (the others' 0.0
        stand-ins are left out, as ``f``'s own sweep never reaches them)."""
        kept, primals, ct = rest[:len(nondiff)], rest[-2], rest[-1]
        cts = tuple(_unwrapped(c) for c in tr.leaves(ct))
        if batched and not (reduce and any(np.ndim(_value(c)) for c in cts)):
            primals = _per_example(primals, kept)
        flags: list = []  # the reach of every output, from the graph traced here

        def run(*diff: Any) -> tuple:  # the output's leaves, one per compiled output
            out = f(*merge(kept, diff))
            leaves = tuple(tr.leaves(out if batched else per_example(out)))
            flags.append(_reach_flags(leaves, diff, _batch_shape((diff, kept)) if batched
                                      else None))
            return leaves if only is None else (leaves[only],)

        with _at(depth):
            _, vjp_fn = vjp(run, *primals)
        with _at(sweep_depth):  # (at another depth on purpose: the cotangents' batch)
            return vjp_fn(cts if only is None else (cts[only],), _any_depth=True), flags[-1]

    compiled_back = type(jitted)(back, (0, 1, 2) + tuple(k + 3 for k, i in enumerate(nondiff)
                                                          if i in static))

    def run_back(seeded: int | None, *rest: Any) -> Any:
        """The compiled VJP for one seeded output: first the VJP of all the
        outputs, the others seeded with 0.0 (one program for every output);
        where a cotangent it gives is not finite, a 0.0 seed may have met an
        infinite or NaN partial that ``f``'s own sweep would never have
        multiplied (0.0 * nan), so the VJP of that output alone decides.
        Called with nodes (at higher order: the sweep differentiates the
        VJP), it is that output's VJP from the start: the derivatives of a
        0.0 seed's terms can be NaN where their values are finite (0.0 times
        an infinite second derivative), and the function's own sweep never
        builds them."""
        alone = seeded is not None and len(tr.leaves(rest[-1])) > 1
        if alone and _on_graph(rest[-2]):
            cts, flags = compiled_back.compiled(*rest[:2], seeded, *rest[2:])
            found_reach(_masks(flags, len(tr.leaves(rest[-2]))))
            return cts
        cts, flags = compiled_back.compiled(*rest[:2], None, *rest[2:])
        found_reach(_masks(flags, len(tr.leaves(rest[-2]))))
        if not alone or _all_finite(cts):
            return cts  # (one output: the VJP of all is the VJP of that one)
        return compiled_back.compiled(*rest[:2], seeded, *rest[2:])[0]

    def reach_of(*rest: Any) -> tuple:
        """For forward mode, the argument leaves each output's graph reaches
        (``CustomRule.reaches``), as flags (1.0 or 0.0, one per output leaf
        and argument leaf, row by row): ``f`` traced on fresh variables. It
        is compiled as ``back`` is (a program of constants, traced once per
        branch of ``f``)."""
        kept, primals = rest[:len(nondiff)], rest[-1]

        def run(*diff: Any) -> tuple:
            out = f(*merge(kept, diff))
            return tuple(tr.leaves(out if batched else per_example(out)))

        with _at(depth):
            masks = traced_reach(run, tuple(primals), lambda a: a, lambda p: p)
        count = len(tr.leaves(primals))
        return () if masks is None else tuple(
            1.0 if m >> i & 1 else 0.0 for m in masks for i in range(count))

    compiled_reach = type(jitted)(reach_of, tuple(k for k, i in enumerate(nondiff)
                                                  if i in static))

    def reach(*rest: Any) -> list[int] | None:
        primals = rest[-1][0] if batched else rest[-1]
        return _masks(compiled_reach.compiled(*rest[:-1], primals), len(tr.leaves(primals)))

    def plain(*args: Any) -> Any:
        token = STANDING.set(jitted)  # (its numbers stand for the nodes: see ``STANDING``)
        try:
            with _at(depth):
                out = jitted.compiled(*args)
        finally:
            STANDING.reset(token)
        if batched:  # the leaves (a vmap result inside stays one array per leaf)
            leaves, out_def = tr.flatten(out)
            batch = _batch_shape(args)
            if not all(isinstance(x, (Expr, float, np.ndarray)) and
                       np.shape(_value(x)) == batch and
                       not (isinstance(x, np.ndarray) and x.dtype.kind == "O") for x in leaves):
                raise NotThrough  # an output that is not a number, or not one per example
                # of the arguments' batch (a vmap inside, an unbatched output): its partials
                # would not be the VJP at 1 that forward mode takes (see _per_example)
            box = _OUT_DEF.get()
            if box is not None:
                box.append(out_def)
            return tuple(leaves)
        if out.__class__ is not float and not any(isinstance(x, Expr)
                                                    for x in tr.leaves(args)):
            leaves, out_def = tr.flatten(out)
            if not all(x.__class__ is float for x in leaves) or _registered(out_def):
                raise NotThrough  # not compiled (f used an enclosing transform's variable),
                # an output that is not a number, or a container (a vmap result) whose
                # leaves are not the graph's
        return out

    def fwd(*args: Any) -> tuple:
        diff = tuple(args[i] for i in diff_pos)
        if not batched:
            return plain(*args), diff
        # called with values (first order) or with nodes (the sweep builds a graph)
        first = not any(isinstance(x, Expr) and x.op != "const" for x in tr.leaves(diff))
        return plain(*args), (diff, first)

    def bwd(*rest: Any, seeded: int | None = None) -> tuple:
        if not batched:
            return run_back(seeded, None, True, *rest)
        (diff, first), ct = rest[-2], rest[-1]
        # the sweep hands batched cotangents over as arrays, and takes them back
        # so (compiled code returns batched values as constant nodes)
        args = (*rest[:-2], diff, tr.map(_as_node, ct))
        cts = run_back(seeded, DEPTH.get(), first, *args)
        if first and not _all_finite(cts):  # a sum over the examples that is not finite
            # cannot tell the examples the sweep reaches from the others (an fm.where's
            # other branch, an output jacrev does not seed): each example's own, which
            # the sweep keeps or drops lane by lane
            cts = run_back(seeded, DEPTH.get(), False, *args)
        return tr.map(_const_value, cts)

    node = custom_vjp(plain, nondiff_argnums=nondiff)
    node.checks_data = False  # (under vmap, its arrays are the examples)
    if PUSHED:  # (off: nothing of it is built, see ``PUSHED``)
        node.own_tangent = _own_tangent_rule(jitted, f, nondiff, static, merge,  # type: ignore
                                             batched, depth)
    node.takes_seeded = True
    node.sets_depth = True  # bwd takes the sweep's depth, back runs f at the call's
    node.source = jitted  # type: ignore[attr-defined]  # (see CustomRule.check_linear)
    node.reach = reach
    node.reach_on_nodes = not batched  # type: ignore[attr-defined]  # (CustomRule.reaches)
    node.defvjp(fwd, bwd)
    if not batched:
        return node

    def call(*args: Any) -> Any:
        box: list = []
        old = _OUT_DEF.get()  # (set again at the end: see ``control.running``)
        try:
            _OUT_DEF.set(box)
            leaves = node(*args)
        finally:
            _OUT_DEF.set(old)
        return tr.unflatten(box[-1], list(leaves))  # plain's own entry comes last

    return call


def _own_tangent_rule(jitted: Any, f: Callable, nondiff: tuple, static: tuple,
                      merge: Callable, batched: bool, depth: int | None) -> Callable:
    """A jitted call's ``own_tangent`` hook (``pushed.own_tangent``): ``f``'s
    own forward mode, one compiled program per set of directions."""
    def pushed_prog(live: tuple, *rest: Any) -> tuple:
        """``f``'s forward mode in the directions of the leaves ``live`` of
        its differentiable arguments (compiled: ``compiled_push``)."""
        kept, diff, tangents = rest[:len(nondiff)], rest[-2], rest[-1]
        leaves, diff_def = tr.flatten(diff)
        run = rerun(f, lambda d: merge(kept, d), diff_def, leaves, live,
                    (lambda out: out) if batched else per_example)  # (the outputs, as ``back``)
        return jvp(run, tuple(leaves[i] for i in live), tuple(tangents))[1]

    compiled_push = type(jitted)(pushed_prog, (0,) + tuple(k + 1 for k, i in enumerate(nondiff)
                                                            if i in static))
    # one program per set of directions: ``jacfwd`` asks for one per argument leaf,
    # more than a function's usual share of structures (they would evict each other)
    compiled_push._entries = Structures(PUSHED_STRUCTURES)

    def pushed(rule: Any, leaves: list, live: tuple, tangents: list) -> tuple:
        if batched:  # (arrays: one value per example)
            leaves = [_as_node(x) for x in leaves]
        with _at(depth):
            outs = compiled_push.compiled(live, *rule.static,
                                          tr.unflatten(rule.arg_def, leaves), tuple(tangents))
        # (batched compiled code returns arrays as constant nodes: the sweep's are arrays)
        return tuple(map(_const_value, outs)) if batched else outs

    pushed.at_depth = True  # type: ignore[attr-defined]
    return lambda rule, kids, tangents, on_graph: own_tangent(rule, kids, tangents,
                                                               on_graph, pushed)


# While a compiled call seen through runs on the numbers of the nodes it stands
# for (``seen_through``'s forward), the jitted function it calls. Where that call
# cannot run compiled code it must not run the function on those floats: a
# float is not a node (``isinstance``, a dict lookup, ``(-inf) ** 0.5`` is inf
# where fm's is nan, ``1 / 0.0`` raises), so the value would not be the one
# its derivative belongs to. It raises ``NotThrough`` instead, and the
# function runs on the nodes themselves (``Jitted._under_transform``).
STANDING: ContextVar = ContextVar("fmicrograd_through_standing", default=None)


# While a batched node is called, the output structure its function returned
# (its leaves are the node's outputs: a vmap result inside is not taken apart
# into examples, so each output's cotangent is one array).
_OUT_DEF: ContextVar = ContextVar("fmicrograd_through_out_def", default=None)


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Expr) else x


def _reach_flags(leaves: tuple, diff: tuple, batch: tuple | None = None) -> tuple:
    """For each output leaf and argument leaf (``diff``, the variables a
    compiled VJP traces ``f`` on), row by row, 1.0 where the output's graph
    reaches the argument (``presence.reached``), else 0.0: constants of the
    compiled VJP, so that a rule's ``reaches`` (``CustomRule.reaches``)
    needs no trace of its own. Empty where an argument leaf is not a
    variable (numpy data: ``reach_of`` decides). Under ``vmap`` (``batch``,
    the batch shape: a batched compiled call's outputs are one per example)
    each flag is an array of that shape.

    >>> x, y = fm.Var(1.0), fm.Var(2.0)
    >>> _reach_flags((x * x, y + 1.0), (x, y))
    (1.0, 0.0, 0.0, 1.0)
    """
    inputs = tr.leaves(diff)
    if not all(isinstance(x, Expr) and x.op == "var" for x in inputs):
        return ()
    count = len(inputs)
    flags = tuple(1.0 if m >> i & 1 else 0.0 for m in reached(list(leaves), inputs)
                  for i in range(count))
    return flags if batch is None else tuple(np.full(batch, f) for f in flags)


def _masks(flags: Any, count: int) -> list[int] | None:
    """Flags of ``_reach_flags`` (numbers, or nodes of a compiled call seen
    through) as one bit mask per output leaf; None where there are none.

    >>> _masks((1.0, 0.0, 0.0, 1.0), 2), _masks((), 2)
    ([1, 2], None)
    """
    if not flags or not count:
        return None
    return [sum(1 << i for i in range(count) if _flag(flags[k + i]))
            for k in range(0, len(flags), count)]


def _flag(x: Any) -> bool:
    """A reach flag as a bool; a node's (a compiled reach seen through inside
    ``jit``) through a comparison, a guard of the enclosing compiled code.

    >>> _flag(0.0), _flag(1.0), _flag(np.array([0.0, 1.0]))
    (False, True, True)
    """
    if x.__class__ is float:  # (the usual flag: np.any of a float cost 5 us, 40% of a
        return x != 0.0       # hessian of a rollout of jitted steps)
    if isinstance(x, Expr) and x.value.__class__ is float:
        return bool(x != 0.0)
    return bool(np.any(_value(x)))


def _on_graph(primals: Any) -> bool:
    """Whether a primal is a node a sweep may differentiate (not a constant).

    >>> _on_graph((1.0, fm.Const(2.0))), _on_graph((fm.Var(1.0),))
    (False, True)
    """
    return any(isinstance(x, Expr) and x.op != "const" for x in tr.leaves(primals))


def _all_finite(tree: Any) -> bool:
    """Whether every number in ``tree`` (nodes by their values) is finite."""
    for x in tr.leaves(tree):
        v = x.value if isinstance(x, Expr) else x
        if v.__class__ is float:
            if v - v != 0.0:  # inf - inf and nan - nan are nan
                return False
        elif v is not None and not np.isfinite(v).all():
            return False
    return True


def _unwrapped(x: Any) -> Any:
    """A cotangent as the sweeps hand it over: the value of a node that
    reaches no variable."""
    return x.value if isinstance(x, Expr) and not has_variable(x) else x


def _const_value(x: Any) -> Any:
    return x.value if isinstance(x, Expr) and x.op == "const" else x


def _as_node(x: Any) -> Any:
    return const(x) if isinstance(x, np.ndarray) else x




def _batch_shape(tree: Any) -> tuple:
    """The batch shape of the nodes in ``tree``: their shapes broadcast."""
    return np.broadcast_shapes(*[np.shape(x.value) for x in tr.leaves(tree)
                                 if isinstance(x, Expr)])


def _per_example(primals: tuple, kept: tuple) -> tuple:
    """``primals`` with every leaf broadcast to the whole batch shape: a VJP
    seeded with a number (forward mode asks a node for its partials that way)
    must give each example its own partial, not the sum over the examples
    that share an input (the node's outputs have that shape, see ``plain``)."""
    batch = _batch_shape((primals, kept))

    def widen(x: Any) -> Any:
        if np.shape(_value(x)) == batch:
            return x
        if isinstance(x, Expr) and x.op != "const":  # (-0.0: 0.0 would turn a -0.0 into
            return x + np.full(batch, -0.0)            # 0.0, and 1 / x, sqrt' from -inf to inf)
        return const(np.broadcast_to(_value(x), batch).copy())  # a value stays a value

    return tr.map(widen, primals)
