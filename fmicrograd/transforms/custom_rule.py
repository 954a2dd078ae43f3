"""A ``custom_vjp``'s rule in the graph: ``CustomRule`` is the ``param`` of
each ``"custom"`` node a custom function's call makes (one per output leaf).
A sweep that reaches the node calls the rule, which runs ``bwd`` on the
output's cotangent (the sibling outputs get ``0.0``) and hands the sweep one
cotangent per argument leaf; forward mode asks it for partials (``bwd`` at
``1.0`` and ``-2.0``: it checks the rule is linear); ``vmap`` and ``jit`` see
through it as they see any node (see ``custom.py`` for the user's side).

>>> sq = fm.custom_vjp(lambda x: x * x)
>>> sq.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * x * g,))
>>> fm.grad(lambda x: 3.0 * sq(x))(2.0)
12.0
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import pytree as tr
from ..core.batch_axes import DEPTH, at_depth
from ..core.control import (
    dependent,
    reaches_variable,
    traced,
)
from ..core.expr import Const, Expr, const
from ..core.functions import stop_gradient
from ..core.presence import leaf_flags
from ..core.reach import _reduce_mask, choice
from ..core.sweep import REACHED

__all__ = ["CustomRule", "found_reach", "checks_linearity", "only_leaf", "first_nonlinear"]

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

    fn: Any  # the ``custom_vjp`` called (``custom.py``, which imports this module)
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

        >>> sq = fm.custom_vjp(lambda x: x * x)
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

        >>> sq = fm.custom_vjp(lambda x: x * x)
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
                cts = self.fn.bwd(*self.static, residuals,
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
        flat = self._flat_cotangents(cts, [np.shape(_plain(x)) for x in leaves], (out, ct))
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

    def _flat_cotangents(self, cts: Any, shapes: Sequence[tuple] = (),
                         seeded: tuple = ()) -> list:
        """``bwd``'s cotangents as one per argument leaf (``shapes``: those
        leaves' shapes, where known), checked against the arguments;
        ``seeded``: the output and its cotangent, where either holds an array
        (data times a number) ``bwd`` may pass it on to a number argument
        entry by entry."""
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
            for k, leaf in enumerate(leaves):
                if leaf.__class__ not in _PLAIN and _bad_cotangent(leaf):
                    raise TypeError(f"{self.fn.who}: {name}'s bwd returned {type(leaf).__name__} "
                                    f"{leaf!r} as cotangent {i} at "
                                    f"{_path_of(ct, _bad_cotangent)}; every cotangent must be "
                                    "a number, an fm.Expr or None")
                if leaf.__class__ is np.ndarray and leaf.ndim and k < len(here) and \
                        here[k] == () and not (self.depth or DEPTH.get() or
                                               any(np.ndim(_plain(x)) for x in seeded)):
                    path = tr.keystr(tr.flatten_with_paths(ct)[1][k])
                    # (under vmap: one per example; for an output holding an array: its
                    # entries' parts, summed)
                    raise TypeError(f"{self.fn.who}: {name}'s bwd returned a numpy array of "
                                    f"shape {leaf.shape} as cotangent {i} at {path}, for an "
                                    "argument that is one number, of an output that is one "
                                    "number (outside vmap, where it was summed as if per "
                                    "example); return one number per number of the argument")
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
