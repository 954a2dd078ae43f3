"""``custom_jvp``: functions that bring their own forward-mode rule, as in JAX.

>>> @custom_jvp
... def f(x):
...     return fm.sin(x)
>>> @f.defjvp
... def f_jvp(primals, tangents):
...     (x,), (t,) = primals, tangents
...     return f(x), 2.0 * fm.cos(x) * t
>>> fm.jvp(f, (0.0,), (1.0,)), fm.grad(f)(0.0)
((0.0, 2.0), 2.0)

How it works: a call with graph nodes becomes a ``custom_vjp`` node (one per
output leaf) whose value is ``f`` at the argument values. Its derivative is
the rule's linear part, obtained by running the rule on the primals with
tangent variables. Forward mode (``jvp``, ``jacfwd``, ``linearize``) runs
that linear map forward from the tangents it has (since round 22: an input
without a tangent adds no term, and a tangent the rule gives as 0.0 stays
0.0); reverse mode (``grad``) transposes it (one reverse sweep over the
tangent graph), as do the rare forward sweeps that read partials (a rule
of a ``vmap`` result). When the primals are graph nodes the rule runs on them, so a rule
written with fmicrograd operations is differentiable again (``hessian``,
``grad`` of ``grad``). The node composes with ``jit``, ``vmap`` and
``custom_vjp`` like any ``custom_vjp`` node.

As in JAX, ``tangent_out`` must be linear in ``tangents`` (reverse mode checks
it and raises a TypeError for ``t * t``, which gave 0.0); ``f`` must not
close over values being differentiated (pass them as arguments), and
arguments listed in ``nondiff_argnums`` come first in the rule:
``rule(*nondiff_args, primals, tangents)``.
"""

from __future__ import annotations

import functools
import math  # noqa: F401 -- the doctests use it
from collections.abc import Callable, Sequence
from typing import Any

from ..core import pytree as tr
from ..core.batch_axes import BATCHES, DEPTH, batch_valued
from ..core.control import COMPARED, check_callable, reaches, reaches_variable
from ..core.expr import Expr, const, stored_value
from ..core.numeric import _np  # (numpy, imported when first needed)
from ..core.presence import traced_reach
from .autodiff import NO_TANGENT, jvp, vjp
from .custom import bound, custom_vjp
from .custom_rule import first_nonlinear, only_leaf
from .pushed import FLOATS, as_laid_out, given, own_tangent


def zeros_like(x: Any) -> Any:
    """A zero shaped like ``x``'s value: a float, or under ``vmap`` a constant
    node holding an array (so a transform's variables keep the batch axis).

    >>> import numpy as np
    >>> zeros_like(fm.Var(2.0)), zeros_like(np.ones(2)).value.tolist()
    (0.0, [0.0, 0.0])
    """
    value = x.value if isinstance(x, Expr) else x
    if getattr(value, "ndim", 0):
        return const(value * 0.0)
    return 0.0


def vjp_over_values(fn: Callable, args: tuple, fills: Callable[[Any], Any],
                    start: Callable[[Any], Any]) -> tuple[Any, Callable]:
    """``vjp(fn, ...)`` over the arguments that are values, each started from
    ``start(arg)``; numpy arrays outside ``vmap`` (data: nothing differentiates
    them, and an array cannot be one value per example there) are not made
    variables holding the whole array: ``fn`` gets ``fills(array)`` in their
    place, and the VJP gives None for them. A rerun (``checkpoint``) fills
    the array itself, a rule's transpose (``custom_jvp``) its zero tangent.

    >>> import numpy as np
    >>> out, back = vjp_over_values(lambda x, a: x * float(a.sum()), (2.0, np.ones(3)),
    ...                             lambda a: a, lambda x: x)
    >>> out, back(1.0)
    (6.0, (3.0, None))
    """
    data = [False] * len(args) if DEPTH.get() else \
        [a.__class__ is _np().ndarray for a in args]
    if not any(data):
        return vjp(fn, *map(start, args))

    def with_data(*xs: Any) -> Any:
        it = iter(xs)
        return fn(*[fills(a) if d else next(it) for a, d in zip(args, data)])

    out, back = vjp(with_data, *[start(a) for a, d in zip(args, data) if not d])

    def scattered(ct: Any) -> tuple:
        cts = iter(back(ct))
        return tuple(None if d else next(cts) for d in data)

    return out, scattered


def on_values(f: Callable, args: tuple) -> Any:
    """``f(*args)`` on the argument values, as a ``checkpoint`` or ``custom_jvp``
    computes its output, with the numbers ``f`` gives on nodes: Python's float
    arithmetic departs from fm's (``1.0 / 0.0`` raises, ``(-1.0) ** 0.5`` is
    complex, ``(-inf) ** 0.5`` is ``inf`` where fm's power gives NaN), so
    float arguments are passed as constant nodes, as the function sees nodes
    under every transform. (Arrays, ``vmap``'s examples, compute as numpy
    does, as nodes holding them do.)

    >>> on_values(lambda x: 1.0 / x, (0.0,)), on_values(lambda x: x ** 0.5, (-math.inf,))
    (inf, nan)
    >>> import numpy as np
    >>> on_values(lambda x: x ** 0.5, (np.float64(-math.inf),))
    nan
    """
    if any(leaf.__class__ in FLOATS for leaf in tr.leaves(args)):
        return _on_constants(f, args)
    return f(*args)


def _on_constants(f: Callable, args: tuple) -> Any:
    out = f(*tr.map(lambda a: const(float(a)) if a.__class__ in FLOATS else a, args))
    # a value of constants only as its number; a node that reaches a variable (``f``
    # closes over one) as it is, for the caller's check (``custom_vjp._closed_over``)
    return tr.map(lambda x: x.value if isinstance(x, Expr) and not reaches_variable(x) else x,
                  out)


def no_tangent(x: Any) -> Any:
    """The tangent of a constant leaf ``x`` in a rule: ``NO_TANGENT`` for a
    number (under ``vmap``, one per example), so that ``fm.jvp`` keeps it as
    it is; a numpy data array's zeros, which a rule may take apart, as JAX
    instantiates a symbolic zero.

    >>> import numpy as np
    >>> no_tangent(2.0) is NO_TANGENT, no_tangent(np.ones(2)).tolist()
    (True, [0.0, 0.0])
    """
    value = x.value if isinstance(x, Expr) else x
    if getattr(value, "ndim", 0) and not DEPTH.get():
        return value * 0.0
    return NO_TANGENT


def as_given(primals: Sequence, constants: tuple) -> tuple:
    """``primals`` with each leaf flagged in ``constants`` as the call was
    given it (``pushed.given``: a constant node of a float, a float), as the
    function has it without the rule.

    >>> as_given((const(2.0), 3.0), (True, False))
    (2.0, 3.0)
    """
    leaves, td = tr.flatten(tuple(primals))
    if len(constants) != len(leaves) or not any(constants):
        return tuple(primals)
    return tuple(tr.unflatten(td, [given(x) if c else x for x, c in zip(leaves, constants)]))


def vjp_over_variables(fn: Callable, primals: Sequence, constants: tuple,
                       fills: Callable[[Any], Any], start: Callable[[Any], Any],
                       held: Callable[[Any], Any] | None = None) -> tuple[Any, Callable]:
    """``vjp_over_values(fn, primals, fills, start)`` over the argument leaves
    that were not constants at the call (``constants``, one flag per leaf, see
    ``custom.constant_leaves``): each constant leaf reaches ``fn`` as
    ``held(leaf)`` (as it is by default) and gets a zero cotangent (an
    argument of constants only, None). A branch on such a leaf
    (``fm.where(fm.greater(p, 0.0), ...)``) is then taken as without the
    rule, where a variable would make it a differentiated condition (torch's
    ``where``: NaN from the branch not taken).

    >>> f = lambda p, t: fm.where(fm.greater(p, 0.0), t / p, 0.0 * t)
    >>> out, back = vjp_over_variables(f, [0.0, 1.0], (True, False), lambda a: a, lambda p: p)
    >>> out, back(1.0)
    (0.0, (None, 0.0))
    """
    parts = _split_constants(primals, constants, held)
    if parts is None:
        return vjp_over_values(fn, tuple(primals), fills, start)
    live, rebuild, cotangent_of = parts
    out, back = vjp_over_values(lambda *xs: fn(*rebuild(xs)), tuple(live), fills, start)
    return out, lambda ct: cotangent_of(back(ct))


def _split_constants(primals: Sequence, constants: tuple,
                     held: Callable[[Any], Any] | None = None) -> tuple | None:
    """``(live, rebuild, cotangent_of)`` for a VJP over the argument leaves
    of ``primals`` not flagged in ``constants`` (one flag per leaf, see
    ``custom.constant_leaves``): the arguments to differentiate (an argument
    of variables as it is, the variables of an argument that mixes them with
    constants as a tuple), ``rebuild(live)`` giving every argument back with
    each constant leaf as ``held(leaf)`` (as it is by default), and
    ``cotangent_of(cts)`` each argument's cotangent from the live ones' (None
    for an argument of constants, a zero for a constant leaf). None where
    every leaf is a variable (or the flags do not match the leaves).

    >>> live, rebuild, cotangent_of = _split_constants([(1.0, 2.0), 3.0], (True, False, True))
    >>> live, rebuild(((5.0,),)), cotangent_of(((7.0,),))
    ([(2.0,)], [(1.0, 5.0), 3.0], ((0.0, 7.0), None))
    """
    depth = DEPTH.get()
    hold = held or (lambda x: x)
    groups, start = [], 0
    for p in primals:
        leaves, td = tr.flatten(p)
        flags = constants[start:start + len(leaves)]
        start += len(leaves)
        groups.append((leaves, td, flags))
    if start != len(constants) or not any(constants):
        return None
    # (numpy data outside vmap: as it is, as ``vjp_over_values`` has it; an argument
    # mixing it with constants stays whole)
    kinds = []  # per argument: "live", "fixed" or "mixed"
    for leaves, _, flags in groups:
        if all(flags):
            kinds.append("fixed")
        elif not any(flags) or not depth and any(x.__class__ is _np().ndarray for x in leaves):
            kinds.append("live")
        else:
            kinds.append("mixed")
    if all(k == "live" for k in kinds):
        return None

    live = []
    for p, kind, (leaves, _, flags) in zip(primals, kinds, groups):
        if kind == "live":
            live.append(p)
        elif kind == "mixed":
            live.append(tuple(x for x, c in zip(leaves, flags) if not c))

    def rebuild(xs: tuple) -> list:
        it, args = iter(xs), []
        for p, kind, (leaves, td, flags) in zip(primals, kinds, groups):
            if kind == "live":
                args.append(next(it))
            elif kind == "fixed":
                args.append(tr.map(hold, p))
            else:
                mine = iter(next(it))
                args.append(tr.unflatten(td, [hold(x) if c else next(mine)
                                              for x, c in zip(leaves, flags)]))
        return args

    def cotangent_of(cts: tuple) -> tuple:
        it, out = iter(cts), []
        for kind, (leaves, td, flags) in zip(kinds, groups):
            if kind == "live":
                out.append(next(it))
            elif kind == "fixed":
                out.append(None)
            else:
                mine = iter(next(it))
                out.append(tr.unflatten(td, [zeros_like(x) if c else next(mine)
                                             for x, c in zip(leaves, flags)]))
        return tuple(out)

    return live, rebuild, cotangent_of


def _values(x: Any) -> Any:
    """A leaf's number or array (a node's value)."""
    return stored_value(x) if isinstance(x, Expr) else x


def _from_examples(x: Any) -> bool:
    """Whether node ``x`` is computed from a running ``vmap``'s examples (its
    mapped input leaves, ``BATCHES``)."""
    mapped = {id(v) for call in BATCHES.get() for v in call}
    return isinstance(x, Expr) and bool(mapped) and reaches(x, lambda n: id(n) in mapped)


def _total(x: Any) -> float:
    """The sum of a number's or an array's entries, as a float."""
    return float(_np().sum(x)) if getattr(x, "ndim", 0) else float(x)


def as_primal(x: Any) -> Any:
    """``x`` as a transform accepts it: arrays (``vmap``'s values) as constant nodes.

    >>> import numpy as np
    >>> as_primal(1.0), as_primal(np.ones(2)).op
    (1.0, 'const')
    """
    if getattr(x, "ndim", 0) and not isinstance(x, Expr):
        return const(x)
    return x

__all__ = ["custom_jvp", "zeros_like", "as_primal", "on_values"]


class custom_jvp:  # noqa: N801 -- a decorator, named as in JAX
    """Give ``fun`` a hand-written JVP rule: ``fun.defjvp(rule)`` with
    ``rule(primals, tangents) -> (primal_out, tangent_out)``, ``primals`` and
    ``tangents`` tuples of the arguments and their tangents. The result
    composes with every transform, reverse mode and higher order included.

    >>> @fm.custom_jvp
    ... def log1pexp(x):
    ...     return fm.log(1.0 + fm.exp(x))
    >>> @log1pexp.defjvp
    ... def _(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return log1pexp(x), t * (1.0 - 1.0 / (1.0 + fm.exp(x)))
    >>> fm.grad(log1pexp)(100.0), fm.grad(fm.grad(log1pexp))(0.0)
    (1.0, 0.25)
    """

    def __init__(self, fun: Callable, nondiff_argnums: tuple[int, ...] = ()) -> None:
        check_callable(fun, type(self).__name__)
        functools.update_wrapper(self, fun, updated=())  # (not another rule's settings)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp_rule: Callable | None = None
        self._node = custom_vjp(fun, nondiff_argnums=self.nondiff_argnums)
        self._node.takes_seeded = self._node.takes_fields = self._node.takes_constants = True
        self._node.who = "custom_jvp"

    @property
    def name(self) -> str:
        """The wrapped function's name.

        >>> fm.custom_jvp(fm.tanh).name
        'tanh'
        """
        return getattr(self.fun, "__name__", repr(self.fun))

    def defjvp(self, rule: Callable) -> Callable:
        """Set the rule (once); returns it, so it can decorate the rule.

        >>> double = fm.custom_jvp(lambda x: 2.0 * x)
        >>> _ = double.defjvp(lambda primals, tangents: (double(*primals), 2.0 * tangents[0]))
        >>> fm.grad(double)(5.0)
        2.0
        """
        if self.jvp_rule is not None:
            raise ValueError(f"custom_jvp: {self.name} already has a rule; to use another, "
                             f"wrap the function again with fm.custom_jvp")
        if not callable(rule):
            raise TypeError(f"custom_jvp.defjvp(rule): the rule must be a function, got "
                            f"{type(rule).__name__}")
        self.jvp_rule = rule
        self._node.reach = self._reach
        self._node.reach_on_nodes = True  # type: ignore[attr-defined]  # (CustomRule.reaches)
        self._node.own_tangent = self._own_tangent  # type: ignore[attr-defined]
        self._node.defvjp(self._fwd, self._bwd)
        return rule

    __get__ = bound  # on a class, a method

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.jvp_rule is None:
            raise TypeError(f"custom_jvp: {self.name} has no rule yet; call "
                            f"{self.name}.defjvp(rule) before using it")
        return self._node(*args, **kwargs)

    def _split(self, args: tuple) -> tuple[tuple, tuple]:
        static = tuple(args[i] for i in self.nondiff_argnums)
        primals = tuple(a for i, a in enumerate(args) if i not in self.nondiff_argnums)
        return static, primals

    def _fwd(self, *args: Any) -> tuple:
        return on_values(self.fun, args), self._split(args)[1]

    def _bwd(self, *rest: Any, seeded: int | None = None, fields: int | None = None,
             lanes: Any = None, constants: tuple = ()) -> tuple:
        """The transpose of the rule's tangent map at the primals, applied to
        ``ct``; of output ``seeded``'s tangent alone, when it is given and
        the tangent is shaped like ``ct`` (the other outputs' cotangents are
        0.0 stand-ins, and 0.0 times an infinite slope would be NaN). An
        argument leaf that was a constant at the call (``constants``) gets
        ``NO_TANGENT``, JAX's symbolic zero: no variable, so a rule that is
        ``fm.jvp`` of the function branches on it as the function does."""
        *static, primals, ct = rest
        rule = self.jvp_rule
        assert rule is not None  # defjvp set it before defvjp made this the bwd
        primals = as_given(primals, constants)

        def whole(*tangents: Any) -> Any:
            compared: list = []
            old = COMPARED.get()  # (set again at the end: see ``control.running``)
            try:
                COMPARED.set(compared)
                result = rule(*static, primals, tangents)
            finally:
                COMPARED.set(old)
            if compared:
                self._check_no_tangent_branch(compared, tangents)
            return self._numbers(self._tangent_of(result), (primals, tangents), result)

        def tangent_out(*tangents: Any) -> Any:
            return only_leaf(whole(*tangents), seeded, ct, fields, lanes)

        # (a numpy data argument's tangent: a zero array, not a variable)
        t_out, transpose = vjp_over_variables(tangent_out, primals, constants, lambda a: a * 0.0,
                                              lambda p: tr.map(zeros_like, p), no_tangent)
        got, want = tr.structure(ct), tr.structure(t_out)
        if not tr.equal(got, want):  # a vmap result's: example by example, as the rule's jvp
            # gives it
            ct = tr.per_example(ct)
            got = tr.structure(ct)
        tr.check_same(got, want,
                      f"custom_jvp: {self.name}'s rule must return a tangent_out shaped like "
                      f"{self.name}'s output (first tree: the output, other: tangent_out)")
        self._check_linear(whole, primals, constants)
        return transpose(ct)

    def _check_linear(self, tangent_out: Callable, primals: Sequence, constants: tuple) -> None:
        """Reverse mode transposes the rule at tangents of 0.0, which is its
        derivative only if the rule is linear in the tangents: ``t * t`` gave
        a gradient of 0.0 (JAX refuses to transpose it). A TypeError unless
        the rule at tangents ``-2 s`` gives ``-2`` times its tangent at ``s``
        (``s`` distinct powers-of-two fractions, so the scaling is exact for
        a linear rule; an affine, absolute-value or max rule fails; see
        ``custom_rule.first_nonlinear``)."""
        made: list = []  # the tangents ``s`` at scale 1
        kept: list = []  # and the rule's output and transpose there

        def at(scale: float) -> list:
            step = iter(range(1 << 30))

            def start(p: Any) -> Any:
                def one(x: Any) -> Any:
                    s = zeros_like(x) + scale * (1.0 + next(step) % 16 / 16.0)
                    if scale == 1.0:
                        made.append(s)
                    return s
                return tr.map(one, p)

            out, back = vjp_over_variables(tangent_out, primals, constants, lambda a: a * 0.0,
                                           start, no_tangent)
            values = [x.value if isinstance(x, Expr) else x for x in tr.leaves(out)]
            if scale == 1.0:
                kept.append((out, back))
            return values

        self._refuse_nonlinear(first_nonlinear(at(1.0), at), "and reverse mode (grad, vjp, "
                               "jacrev) transposes it as a linear map, as JAX does")
        out, back = kept[0]  # (the transposed map must be the map's: a dot-product test)
        ones = tr.map(lambda x: _values(x) * 0.0 + 1.0, out)
        back_leaves = tr.leaves(back(ones))
        if len(back_leaves) == len(made):
            np = _np()
            with np.errstate(all="ignore"):
                self._refuse_unseen([_values(x) for x in tr.leaves(out)],
                                    [_values(u) * _values(v) for u, v in zip(back_leaves, made)],
                                    "reverse mode (grad, vjp, jacrev)")

    def _check_no_tangent_branch(self, compared: list, tangents: tuple) -> None:
        """Reverse mode transposes the rule from tangents of 0.0: a Python
        branch on a tangent's value (``if t == 0.0``) would be answered for
        0.0, whatever the tangent. Raise, naming the fix, where a comparison
        the rule made reads a tangent."""
        mine = {id(x) for x in tr.leaves(tangents) if isinstance(x, Expr)}
        for op, a, b in compared:
            for x in (a, b):
                if isinstance(x, Expr) and reaches(x, lambda n: id(n) in mine):
                    raise TypeError(
                        f"custom_jvp: {self.name}'s rule compares a tangent (`{op}`): a rule "
                        "must be linear in the tangents, without branches on their values "
                        "(reverse mode transposes it from tangents of 0.0); branch on the "
                        "primals, or drop the branch (0.0 * t is a zero tangent)")

    def _own_tangent(self, rule: Any, kids: Any, tangents: list, on_graph: bool) -> Any:
        """Forward mode: the rule itself (``pushed.own_tangent``, ``_pushed``)."""
        return own_tangent(rule, kids, tangents, on_graph, self._pushed)

    def _pushed(self, rule: Any, leaves: list, live: tuple, tangents: list) -> tuple:
        """The rule's ``tangent_out`` at the argument leaves ``leaves`` (of a
        call, ``rule``) in the directions of the leaves ``live``, laid out as
        the call's outputs: the forward sweep of the rule's linear map from
        those tangents, so a leaf without one adds no term (a zero in its
        place could meet an infinite factor: ``0.0 * inf``), and a tangent the
        rule gives as 0.0 stays 0.0 (read off the transposed rule, as before
        round 22, it could come out as NaN)."""
        jvp_rule = self.jvp_rule
        assert jvp_rule is not None  # (defjvp set this with the rule)
        if rule.depth:  # (inside vmap, arrays are one value per example: nodes)
            leaves = [as_primal(x) for x in leaves]
        zeros = [x * 0.0 if x.__class__ is _np().ndarray else zeros_like(x) for x in leaves]
        constants = rule.shared.get("constants", ())
        if len(constants) == len(leaves):  # a constant at the call: as given, no tangent
            zeros = [no_tangent(x) if c and i not in live else z
                     for i, (x, z, c) in enumerate(zip(leaves, zeros, constants))]
            leaves = [given(x) if c and i not in live else x
                      for i, (x, c) in enumerate(zip(leaves, constants))]
        primals = tr.unflatten(rule.arg_def, leaves)

        def tangent_out(*live_tangents: Any) -> tuple:
            full = list(zeros)
            for i, t in zip(live, live_tangents):
                full[i] = t
            result = jvp_rule(*rule.static, primals, tr.unflatten(rule.arg_def, full))
            out = as_laid_out(self._numbers(self._tangent_of(result), (primals, full),
                                            result),
                              rule.out_def)
            tr.check_same(tr.structure(out), rule.out_def,
                          f"custom_jvp: {self.name}'s rule must return a tangent_out shaped "
                          f"like {self.name}'s output (first tree: tangent_out, other: the "
                          "output)")
            return tuple(tr.leaves(out))

        # (the map is linear: taken at the tangents themselves, a rule that tests a
        # tangent's value, ``if t == 0.0``, sees the tangent it is given)
        self._check_pushed(tangent_out, tangents)
        return jvp(tangent_out, tuple(map(as_primal, tangents)), tuple(tangents))[1]

    def _check_pushed(self, tangent_out: Callable, tangents: Sequence) -> None:
        """Forward mode pushes the tangents through the rule's map ``L`` as
        its derivative, ``L'(t) t``: the rule's ``L(t)`` only if ``L`` is
        linear (``t * t`` gave 18.0 for 9.0, a constant 1.5 gave 0.0). A
        TypeError, as reverse mode's ``_check_linear``, unless ``L(-2 s)`` is
        ``-2 L(s)`` at tangents ``s`` of distinct powers-of-two fractions (exact
        for a linear rule, whatever its rounding; and the same at every call:
        it reads no tangent of the user's, which ``jit`` would not guard)."""
        np = _np()

        def at(scale: float) -> list:
            step = iter(range(1 << 30))
            made = [zeros_like(t) + np.float64(scale * (1.0 + next(step) % 16 / 16.0))
                    for t in tangents]  # (numpy's: t / 0.0 is inf, as on the nodes, not an error)
            with np.errstate(all="ignore"):
                return [stored_value(x) if isinstance(x, Expr) else x
                        for x in tangent_out(*map(as_primal, made))]

        self._refuse_nonlinear(first_nonlinear(at(1.0), at), "and forward mode (jvp, "
                               "jacfwd, linearize) pushes tangents through it as a linear map")
        probe = [zeros_like(t) + np.float64(1.0 + k % 16 / 16.0) for k, t in enumerate(tangents)]
        with np.errstate(all="ignore"):
            values, slopes = jvp(tangent_out, tuple(map(as_primal, probe)), tuple(probe))
            for k, (v, d) in enumerate(zip(values, slopes)):
                self._refuse_unseen([_values(v)], [_values(d)],
                                    f"forward mode (jvp, jacfwd, linearize), tangent_out leaf {k}")

    def _refuse_unseen(self, values: list, slopes: list, mode: str) -> None:
        """A TypeError where the rule's tangent map, as ``mode`` differentiates
        it, is not the map its values give: the sums of ``values`` and of
        ``slopes`` (numbers or arrays) are the same number, to rounding, for a
        rule written with fm operations on the tangents (the tolerance scales
        with the sums of their entries' sizes: a softmax's tangents cancel);
        a ``stop_gradient`` on a tangent made the tangent 0.0 (JAX's ``jvp``
        reads the rule's value there; its ``grad`` raises)."""
        np = _np()
        try:  # under vmap, per lane: a leaf the same on every lane (a tangent that vmap does
            # not map) counts once per lane (it counted once: 1.5 against 4.5 for three);
            # not where an axis is a vmap result's examples (a rule of it: there one
            # number for all of them is their sum)
            shape = np.broadcast_shapes(*(np.shape(x) for x in (*values, *slopes)))
            if 0 < len(shape) <= DEPTH.get():
                values = [np.broadcast_to(x, shape) for x in values]
                slopes = [np.broadcast_to(x, shape) for x in slopes]
        except ValueError:  # (shapes that do not broadcast: taken as they are)
            pass
        with np.errstate(all="ignore"):
            value, slope = sum(map(_total, values)), sum(map(_total, slopes))
            size = sum(_total(np.abs(x)) for x in values) + sum(_total(np.abs(x)) for x in slopes)
        if not (math.isfinite(value) and math.isfinite(slope) and math.isfinite(size)):
            return
        if abs(value - slope) <= 1e-9 * size + 1e-300:
            return
        raise TypeError(
            f"custom_jvp: {self.name}'s rule gives a tangent_out whose derivative in the "
            f"tangents is not the rule itself ({slope!r} where its value is {value!r}) in "
            f"{mode}: fm differentiates tangent_out in the tangents, so a stop_gradient (or a "
            "float()) on a tangent drops it; write tangent_out with fm operations on the "
            "tangents, and stop gradients on the primals' coefficients instead")

    def _refuse_nonlinear(self, found: tuple | None, mode: str) -> None:
        """The TypeError for ``first_nonlinear``'s finding, if any; ``mode``
        says which mode needs the rule linear."""
        if found is not None:
            i, one, two = found
            raise TypeError(
                f"custom_jvp: {self.name}'s rule is not linear in the tangents (tangent_out "
                f"leaf {i} is {one!r} at tangents s and {two!r} at -2 s, not -2 times it), "
                f"{mode}: write tangent_out as a linear function of the tangents (no t * t, "
                "abs(t), t + c), with the primals' derivatives as its coefficients")

    def _numbers(self, tangent_out: Any, given: Any, result: Any) -> Any:
        """``tangent_out``, after checking that its leaves are numbers, nodes
        or numeric arrays (a str gave a tangent of 0.0 in forward mode and
        numpy's ``UFuncTypeError`` in reverse mode), and, where every primal
        and tangent the rule was ``given`` is one number or ``vmap`` is not
        running (no batch of tangents), that no leaf is an array (reverse mode summed it:
        ``(sin(x), np.array([1.0, 2.0]) * t * cos(x))`` gave 2.87 for 0.96)."""
        leaves = tr.leaves(tangent_out)
        for i, leaf in enumerate(leaves):
            if not (isinstance(leaf, (Expr, float, int)) or
                    getattr(getattr(leaf, "dtype", None), "kind", "?") in tuple("fiub")):
                raise TypeError(f"custom_jvp: {self.name}'s rule returned a tangent_out whose "
                                f"leaf {i} is {type(leaf).__name__} {leaf!r}; tangents are "
                                "floats (or fm nodes, or numpy numbers)")
        if any(_ndim(x) for x in leaves) and (
                not DEPTH.get() or not any(_ndim(x) for x in tr.leaves(given))):  # (outside
            # vmap an array primal is data, not examples: round 36's known sum, refused now)
            outs = tr.leaves(result[0])
            for i, leaf in enumerate(leaves):
                if _ndim(leaf) and (i >= len(outs) or not _ndim(outs[i])) and not (
                        batch_valued(_values(leaf)) and _from_examples(leaf)):  # (one per
                    # example: a rule closing over a value vmap maps, as the loop's rule
                    # reads that example's; not a constant array of the batch's length)
                    raise TypeError(
                        f"custom_jvp: {self.name}'s rule returned a tangent_out whose leaf {i} "
                        f"is an array of shape {_np().shape(_values(leaf))} for an output that "
                        "is one number; the tangent of a number is one number: sum or index "
                        "the array in the rule if that is what you mean")
        return tangent_out

    _pushed.at_depth = True  # type: ignore[attr-defined]  # (it runs at the call's vmap depth)

    def _tangent_of(self, result: Any) -> Any:
        """The rule's ``tangent_out``: a rule must return the pair
        ``(primal_out, tangent_out)`` (a rule returning the tangent alone is
        a ``TypeError`` saying so, in forward mode too)."""
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(f"custom_jvp: {self.name}'s rule must return a pair "
                            f"(primal_out, tangent_out), got {type(result).__name__}")
        return result[1]

    def _reach(self, *rest: Any) -> list[int] | None:
        """For forward mode, the tangents each output's tangent reaches in the
        rule (``CustomRule.reaches``): the rule run on fresh tangent variables.
        An output whose tangent reaches none (the rule returns a constant,
        ``0.0``) keeps the rule's tangent, a zero for every input, as JAX
        instantiates a rule's zero: only the zeros the transposition makes
        (an input that output's tangent does not read) are dropped."""
        *static, primals = rest
        rule = self.jvp_rule
        assert rule is not None  # (defjvp set the reach with the rule)

        def tangent_out(*tangents: Any) -> Any:
            return self._tangent_of(rule(*static, primals, tangents))

        masks = traced_reach(tangent_out, tuple(primals), lambda a: a * 0.0,
                             lambda p: tr.map(zeros_like, p))
        if masks is None:
            return None
        every = (1 << len(tr.leaves(primals))) - 1
        return [m or every for m in masks]

    def __repr__(self) -> str:
        return f"custom_jvp({self.name})"


def _ndim(x: Any) -> int:
    """How many axes a leaf's value has (a number's: 0)."""
    return getattr(_values(x), "ndim", 0)
