"""``check_grads``: derivatives against central differences, to any order; and
``assert_trees_close``, pytrees compared leaf by leaf.

As in HIPS autograd's ``test_util``: forward mode is checked column by column
against ``(f(x + eps/2 v) - f(x - eps/2 v)) / eps``; reverse mode through the
inner-product identity ``<vjp(u), v> == <u, J v>`` with a random output
cotangent ``u``. For ``order > 1`` the same checks run on the derivative
functions themselves, ``(x, v) -> jvp(f, x, v)`` and ``(x, u) -> vjp(f, x)(u)``,
so finite differences are only ever taken of exact derivatives one level
down, and every mix of modes up to ``order`` is exercised. A mismatch at the
fixed step ``eps`` is re-estimated before it fails: a ladder of steps from a
quarter of the input's scale (at least 1) down to ~1e-13 of the smallest
input moved, Richardson-extrapolated, keeping the estimate where
neighbouring steps agree best (so a derivative at ``x = 1e-3`` or ``1e6``,
near a kink or on a large constant is not a false failure). A step with a
kink inside (its forward and backward differences apart by more than the
tolerance, a gap that does not shrink with the step) never gives the
estimate: until round 35 such steps agreed on ``x / h`` for ``|x|`` at
``x = 1e-8`` and passed a rule that gave 0.0 there.

>>> check_grads(lambda x, y: fm.sin(x) * y, (0.5, 2.0), order=2)
>>> check_grads(lambda x: x * x, (3.0,), modes=("rev",))
"""

from __future__ import annotations

import math
import numbers
import random
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from ..core import pytree as tr
from ..core.expr import Expr
from ..transforms import autodiff as T

__all__ = ["check_grads", "assert_trees_close", "EPS", "ATOL", "RTOL"]

EPS = 1e-5    # central-difference step: near the float64 optimum (3 eps_mach)^(1/3)
ATOL = 1e-6   # |got - expected| <= ATOL + RTOL * |expected|
RTOL = 1e-6
_ULP = 2.0 ** -52
_LEVELS = 22  # the re-estimate's steps: scale / 4, scale / 16, ... scale / 4**22 (~6e-14)


class _Mismatch(NamedTuple):
    key: tuple          # (fails, along a unit direction, score): the worst is the largest
    score: float        # |diff| / tolerance: above 1 fails
    where: str
    expected: float
    got: float
    tol: float


def check_grads(f: Callable, args: Sequence, order: int = 1,
                modes: Sequence[str] = ("fwd", "rev"), eps: float = EPS, atol: float = ATOL,
                rtol: float = RTOL, seed: int = 0) -> None:
    """Check ``f``'s forward (``jvp``) and reverse (``vjp``) derivatives at
    ``f(*args)`` against central differences, up to ``order``; raise
    ``AssertionError`` showing the worst mismatch (which input direction,
    which output, expected, got). ``args`` is a tuple of pytrees of floats;
    ``seed`` fixes the random directions (nothing global is touched).

    A derivative passes when ``|got - expected| <= atol + rtol * |expected|``;
    a mismatch at step ``eps`` is re-estimated with a ladder of smaller and
    larger steps before it counts. ``atol`` is absolute: derivatives much
    smaller than ``atol`` (a function of inputs near ``1e-7``, say) are hardly
    checked at all; pass a smaller ``atol`` for them.

    >>> @fm.custom_vjp
    ... def square(x):
    ...     return x * x
    >>> square.defvjp(lambda x: (x * x, x), lambda x, g: (3.0 * x * g,))  # wrong: 2x
    >>> fm.testing.check_grads(square, (1.5,), modes=("rev",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    AssertionError: check_grads: reverse mode (vjp) of square disagrees with central \
differences at order 1. Worst mismatch: <u, J v> along input args[0] with cotangent u on the \
outputs: expected -4.18..., got -6.28... (|diff| 2.09... > tolerance 5.18...e-06)
    """
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"check_grads: args must be a tuple of arguments, got "
                        f"{type(args).__name__}; for one argument write (x,)")
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"check_grads: order must be an int >= 1, got {order!r}")
    bad = [m for m in modes if m not in ("fwd", "rev")]
    if bad or not modes:
        raise ValueError(f"check_grads: modes must be a non-empty subset of ('fwd', 'rev'), "
                         f"got {tuple(modes)!r}")
    for label, v, positive in (("eps", eps, True), ("atol", atol, False), ("rtol", rtol, False)):
        real = (isinstance(v, numbers.Real) and not isinstance(v, bool)) or (getattr(
            v, "ndim", None) == 0 and getattr(getattr(v, "dtype", None), "kind", "") in "fiu")
        try:
            number = float(v) if real else math.nan
        except OverflowError:  # (10 ** 400)
            number = math.inf
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            raise ValueError(f"check_grads: {label} must be a finite number "
                             f"{'> 0' if positive else '>= 0'}, got {v!r}")
    name = getattr(f, "__name__", None) or getattr(f, "name", None) or repr(f)
    _check(f, tuple(args), order, tuple(modes), (eps, atol, rtol), random.Random(seed),
           name, "args")


def _check(f: Callable, args: tuple, order: int, modes: tuple, tols: tuple, rng: random.Random,
           name: str, labels: Any, depth: int = 1) -> None:
    eps, atol, rtol = tols
    leaves, paths, arg_def = tr.flatten_with_paths(args)
    x = [_number(leaf, name, "input", _label(labels, p)) for leaf, p in zip(leaves, paths)]
    where = [_label(labels, p) for p in paths] + ["a random direction"]
    dirs = [[1.0 if i == j else 0.0 for i in range(len(x))] for j in range(len(x))]
    # multiples of 1/64, so that _ladder's steps move every input exactly
    dirs.append([round(rng.gauss(0.0, 1.0) * 64.0) / 64.0 or 1.0 / 64.0 for _ in x])

    def call(xs: list) -> tuple[list, list, tr.TreeDef]:
        out = f(*tr.unflatten(arg_def, xs))
        ys, out_paths, out_def = tr.flatten_with_paths(out)
        return [_number(y, name, "output", tr.keystr(p)) for y, p in zip(ys, out_paths)], \
            out_paths, out_def

    y, out_paths, out_def = call(x)
    if not y:  # (f returned None: nothing compared, and the check passed)
        raise TypeError(f"check_grads: {name} returned no number (None, or an empty "
                        "pytree); it must return a float or a pytree of floats")
    odd = next((k for k, v in enumerate(y) if not math.isfinite(v)), None)
    if odd is not None:  # (NaN differences matched NaN derivatives: a check of nothing)
        raise ValueError(f"check_grads: {name} is {y[odd]!r} at output "
                         f"{tr.keystr(out_paths[odd])} for these inputs, where no derivative "
                         "can be checked against differences; check it at a point where it "
                         "is finite")

    def numeric(v: list) -> list:
        hi, _, _ = call([a + eps / 2 * b for a, b in zip(x, v)])
        lo, _, _ = call([a - eps / 2 * b for a, b in zip(x, v)])
        return [(p - m) / eps for p, m in zip(hi, lo)]

    fd = [numeric(v) for v in dirs]
    refined = [False] * len(dirs)

    def refine(j: int) -> list:
        """Direction ``j``'s differences re-estimated (once) by ``_ladder``."""
        if not refined[j]:
            fd[j], refined[j] = _ladder(lambda xs: call(xs)[0], x, dirs[j], atol, rtol), True
        return fd[j]

    tree = lambda flat: tr.unflatten(arg_def, flat)
    if "fwd" in modes:
        worst = None
        for j, (v, w) in enumerate(zip(dirs, where)):
            primal, tan = T.jvp(f, args, tree(v))
            if j == 0:  # a custom rule's own value (its fwd, its jvp) must be the function's
                _same_value(primal, y, out_paths, atol, rtol, "forward mode (jvp)", name, depth)
            got = [float(t) for t in tr.leaves(tan)]
            want = fd[j]
            if any(_score(b, a, atol, rtol)[0] > 1.0 for a, b in zip(want, got)):
                want = refine(j)
            for k, (a, b) in enumerate(zip(want, got)):
                worst = _worse(worst, a, b, atol, rtol,
                               f"d output {tr.keystr(out_paths[k])} along input {w}")
        _report(worst, "forward mode (jvp)", name, depth)
    if "rev" in modes:
        u = [rng.gauss(0.0, 1.0) for _ in out_paths]
        primal, back = T.vjp(f, *args)
        _same_value(primal, y, out_paths, atol, rtol, "reverse mode (vjp)", name, depth)
        g = [float(c) for c in tr.leaves(back(tr.unflatten(out_def, u)))]
        worst = None
        for j, (v, w) in enumerate(zip(dirs, where)):
            u_jv = math.fsum(a * b for a, b in zip(u, fd[j]))
            ut_j_v = math.fsum(a * b for a, b in zip(g, v))
            if _score(ut_j_v, u_jv, atol, rtol)[0] > 1.0:
                u_jv = math.fsum(a * b for a, b in zip(u, refine(j)))
            worst = _worse(worst, u_jv, ut_j_v, atol, rtol,
                           f"<u, J v> along input {w} with cotangent u on the outputs")
        _report(worst, "reverse mode (vjp)", name, depth)
    if order > 1:
        if "fwd" in modes:
            v = tree(dirs[-1])
            jvp_f = lambda xs, vs: T.jvp(f, xs, vs)[1]
            _check(jvp_f, (args, v), order - 1, modes, tols, rng, f"jvp({name})",
                   ("primals", "tangents"), depth + 1)
        if "rev" in modes:
            u_tree = tr.unflatten(out_def, [rng.gauss(0.0, 1.0) for _ in out_paths])
            vjp_f = lambda xs, us: T.vjp(f, *xs)[1](us)
            _check(vjp_f, (args, u_tree), order - 1, modes, tols, rng, f"vjp({name})",
                   ("primals", "cotangent"), depth + 1)


def _same_value(primal: Any, y: list, paths: list, atol: float, rtol: float, mode: str,
                name: str, order: int) -> None:
    """Raise unless the primal output a transform computed (through a custom
    rule's ``fwd`` or its ``jvp``) is the function's own value ``y``, as JAX's
    ``check_jvp`` and ``check_vjp`` compare them."""
    got = [float(p) for p in tr.leaves(primal)]
    for k, (a, b) in enumerate(zip(y, got)):
        score, tol = _score(b, a, atol, rtol)
        if score > 1.0:
            raise AssertionError(
                f"check_grads: {mode} of {name} computes the value {b!r} at output "
                f"{tr.keystr(paths[k])} where the function gives {a!r} (order {order}): a "
                f"custom rule's forward pass (custom_vjp's fwd, custom_jvp's rule) must return "
                f"the function's own value")


def _ladder(call: Callable[[list], list], x: list, v: list, atol: float, rtol: float) -> list:
    """Central differences of ``call`` at ``x`` along ``v``, one per output, for
    a direction the fixed step got wrong: steps ``h = scale / 4**k`` (``scale``
    the power of 2 at or above every ``|x_i|`` that ``v`` moves, at least 1;
    ``v``'s entries are multiples of 1/64, so ``x +- h v`` is exact), neighbours
    Richardson-extrapolated; per output, the estimate that differs least from
    the next one (in units of the tolerance, and never less than its rounding
    noise) wins. Steps where ``call`` raises (``1.0 / 0.0`` on floats) or
    gives NaN, and steps with a kink inside, never win. The steps go on below
    ``scale / 4**_LEVELS`` to ~1e-13 of the smallest nonzero ``|x_i|`` moved.

    >>> [round(d, 9) for d in _ladder(lambda xs: [1.0 + abs(xs[0])], [1e-8], [1.0], 1e-6, 1e-6)]
    [1.0]
    """
    f0 = call(x)
    n = len(f0)
    scale = 2.0 ** max([0] + [math.frexp(a)[1] for a, b in zip(x, v) if b])
    # down to ~1e-13 of the smallest nonzero input moved (log at 1e-13 has nothing but
    # NaN and straddling steps above it), at least to scale / 4**_LEVELS
    finest = min([1.0] + [abs(a) for a, b in zip(x, v) if b and a]) * 2.0 ** -44
    levels = []  # (estimates, rounding noise, one-sided gaps) per step, largest step first
    for k in range(1, 4 * _LEVELS):
        h = scale / 4.0 ** k
        if k > _LEVELS and h < finest:
            break
        try:
            fp = call([a + h * b for a, b in zip(x, v)])
            fm_ = call([a - h * b for a, b in zip(x, v)])
        except (ArithmeticError, ValueError):
            fp = fm_ = [math.nan] * n
        levels.append(([(p - m) / (2.0 * h) for p, m in zip(fp, fm_)],
                       [8.0 * _ULP * max(abs(p), abs(m)) / h for p, m in zip(fp, fm_)],
                       [abs((p - c) - (c - m)) / h for p, m, c in zip(fp, fm_, f0)]))
    # a kink within the step: the forward and backward differences part by more than
    # the tolerance and the rounding noise (a function on a large constant: review 2),
    # and the gap, less the next step's noise, does not shrink with the step, as a smooth
    # function's (h f'') does; such a step's estimate (x / h for |x| at x << h) never wins
    kinked = [[gap > atol + rtol * abs(d) + 4.0 * noise and later - 4.0 * n1 > gap / 2.0
               for d, gap, later, noise, n1 in zip(d0, g0, g1, z0, z1)]
              for (d0, z0, g0), (_, z1, g1) in zip(levels, levels[1:])] + [[False] * n]
    # (16 D(h / 4) - D(h)) / 15 cancels the h**2 term of D(h)'s error
    rich = [([(16.0 * b - a) / 15.0 for a, b in zip(d0, d1)], n1, [p or q for p, q in zip(k0, k1)])
            for (d0, _, _), (d1, n1, _), k0, k1 in zip(levels, levels[1:], kinked, kinked[1:])]
    best = [(math.inf, math.nan)] * n
    for (r0, _, k0), (r1, n1, k1) in zip(rich, rich[1:]):
        for i, (a, b, noise) in enumerate(zip(r0, r1, n1)):
            if k0[i] or k1[i]:
                continue
            err = max(abs(a - b), noise) / (atol + rtol * abs(b) + 1e-300)
            if err < best[i][0]:  # NaN never wins
                best[i] = (err, b)
    return [b for _, b in best]


def _label(labels: Any, path: tuple) -> str:
    """``args[0][1]`` at the top level; ``primals[0][1]`` or ``tangents[0]`` below."""
    if labels == "args":
        return "args" + tr.keystr(path).replace("<root>", "")
    head, rest = path[0][1], path[1:]
    return labels[head] + tr.keystr(rest).replace("<root>", "")


def _number(x: Any, name: str, what: str, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"check_grads: {name} has a non-float {what} at {where}: "
                        f"{type(x).__name__} {x!r}")
    return float(x)


def _worse(worst: _Mismatch | None, expected: float, got: float, atol: float, rtol: float,
           where: str) -> _Mismatch | None:
    score, tol = _score(got, expected, atol, rtol)
    # a failure along one input's own direction says more than one along the random mix
    key = (score > 1.0, "random" not in where, score)
    if worst is None or key > worst.key:
        return _Mismatch(key, score, where, expected, got, tol)
    return worst


def _score(got: float, expected: float, atol: float, rtol: float) -> tuple[float, float]:
    """``(|got - expected| / tolerance, tolerance)``: a score above 1 fails; NaN
    matches only NaN, and equal values (infinities too) score 0."""
    tol = atol + rtol * abs(expected)
    if math.isnan(got) or math.isnan(expected):
        return (0.0 if math.isnan(got) and math.isnan(expected) else math.inf), tol
    if got == expected:
        return 0.0, tol
    if math.isinf(got) or math.isinf(expected):  # (a tolerance of inf * rtol passed 1.0
        return math.inf, tol                      # for inf: inf / inf is NaN, not > 1)
    return (abs(got - expected) / tol if tol > 0 else math.inf), tol


def _report(worst: _Mismatch | None, mode: str, name: str, order: int) -> None:
    if worst is None or worst.score <= 1.0:
        return
    if worst.expected != worst.expected and worst.got == worst.got:
        raise AssertionError(
            f"check_grads: {mode} of {name} at order {order} gives {worst.got!r} at "
            f"{worst.where}, and no step of the central differences gave a finite estimate to "
            "check it against (the function is NaN or raises on one side of the point within "
            "every step tried, as sqrt at 1e-300): check it at a point farther from the edge "
            "of its domain")
    raise AssertionError(
        f"check_grads: {mode} of {name} disagrees with central differences at order {order}. "
        f"Worst mismatch: {worst.where}: expected {worst.expected!r}, got {worst.got!r} "
        f"(|diff| {abs(worst.got - worst.expected):.6g} > tolerance {worst.tol:.6g})")


def assert_trees_close(actual: Any, expected: Any, rtol: float = 1e-12,
                       atol: float = 0.0) -> None:
    """Assert same structure (a dict matches a ``PMap``, a list a ``PVector``)
    and ``|a - e| <= atol + rtol * |e|`` at every leaf; NaNs must match NaNs.
    ``Expr`` leaves compare by value. The error names the worst leaf's path.

    >>> fm.testing.assert_trees_close(fm.grad(lambda p: p["w"] ** 2)({"w": 3.0}), {"w": 6.0})
    """
    got, got_paths, got_def = tr.flatten_with_paths(actual)
    want, _, want_def = tr.flatten_with_paths(expected)
    tr.check_same(tr.persistent(got_def), tr.persistent(want_def), "assert_trees_close")
    worst = None
    for a, e, path in zip(got, want, got_paths):
        a, e = _float(a), _float(e)
        score, tol = _score(a, e, atol, rtol)
        if score > 1.0 and (worst is None or score > worst[0]):
            worst = (score, path, a, e, tol)
    if worst is not None:
        _, path, a, e, tol = worst
        raise AssertionError(f"trees differ at {tr.keystr(path)}: got {a!r}, expected {e!r} "
                             f"(|diff| {abs(a - e):.6g} > tolerance {tol:.6g})")


def _float(x: Any) -> float:
    return float(x.value if isinstance(x, Expr) else x)
