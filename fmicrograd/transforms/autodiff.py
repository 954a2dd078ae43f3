"""The core transforms: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``trace``.

Each call gives the differentiated arguments fresh variables (one new level),
runs the user's function to build its graph, and sweeps it. Every other
transform is a thin wrapper over these.

>>> grad(lambda x: x * x + 3 * x)(2.0)
7.0
>>> value_and_grad(lambda p: p["w"] ** 2, )({"w": 3.0})
(9.0, pmap({'w': 6.0}))
"""

from __future__ import annotations

import functools
import numbers
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

from ..core import pytree as tr
from ..core import sweep
from ..core.batch_axes import DEPTH, batch_valued
from ..core.control import (
    PREBUILT,
    RUNNING,
    check_callable,
    dependent,
    out_of_ended_vmap,
    reaches_user_variable,
    running,
    thread_hint,
)
from ..core.expr import Expr, const, holds_nodes, next_level, variable
from ..core.expr import stored_value as _stored
from ..core.functions import _widened
from ..core.numeric import (
    _np,  # (numpy, imported when first needed)
    foreign_array,
    inexact_int,
)
from .closed import closed

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "trace", "lower"]


# While ``fm.debug_nans`` runs, a check applied to the function value of every
# transform inside it (which ``grad`` would otherwise drop unseen); None
# otherwise, so a transform call costs one lookup.
CHECK_VALUES: ContextVar = ContextVar("fmicrograd_check_values", default=None)


def _checked(out: Any) -> Any:
    check = CHECK_VALUES.get()
    if check is not None:
        check(out)
    return out


def refuse_node_arrays(outs: list, out: Any, who: str) -> None:
    """A numpy array of nodes among the output leaves ``outs`` (of ``out``)
    is a TypeError: the sweeps would read it as a constant, derivative 0; so
    is a leaf that is no number (a str, a bool, ``NotImplemented``).

    >>> import numpy as np
    >>> refuse_node_arrays([np.array([fm.Var(1.0)])], None, "vjp")
    Traceback (most recent call last):
        ...
    TypeError: vjp: the function's output has a leaf at <root> that is a numpy array of fm \
nodes (shape (1,)); fmicrograd is scalar-valued, and the sweeps would read the array as a \
constant (derivative 0): return tuple(arr.tolist())
    """
    for k, leaf in enumerate(outs):
        if leaf.__class__ is float or isinstance(leaf, Expr):
            continue  # (the usual leaves: neither check below applies)
        kind = getattr(getattr(leaf, "dtype", None), "kind", None)
        if isinstance(leaf, (str, bytes, bool)) or kind in ("b", "U", "S", "c", "M", "m", "V") \
                or kind is None and not isinstance(leaf, (Expr, numbers.Real)):
            # (a tangent or cotangent of 0.0 was paired with it, as if a constant number)
            where = tr.keystr(tr.flatten_with_paths(out)[1][k]) if out is not None else "<root>"
            raise TypeError(f"{who}: the function's output has a leaf at {where} that is "
                            f"{type(leaf).__name__} {leaf!r:.60}; every output leaf must be a "
                            "number or an fm.Expr (return other values as aux: has_aux=True)")
        if holds_nodes(leaf):
            where = tr.keystr(tr.flatten_with_paths(out)[1][k]) if out is not None else "<root>"
            raise TypeError(f"{who}: the function's output has a leaf at {where} that is a "
                            f"numpy array of fm nodes (shape {leaf.shape}); fmicrograd is "
                            "scalar-valued, and the sweeps would read the array as a constant "
                            "(derivative 0): return " +
                            ("arr.item()" if leaf.shape == () else "tuple(arr.tolist())"))


def _argnums(argnums: Any, nargs: int, who: str) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, numbers.Integral) and not isinstance(argnums, bool)
    nums = (argnums,) if single else argnums
    if not isinstance(nums, tuple) or not nums or not all(
            isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in nums):
        raise ValueError(f"{who}: argnums must be an int or a non-empty tuple of ints, "
                         f"got {argnums!r}")
    nums = tuple(int(i) for i in nums)  # (numpy ints too, as JAX takes them)
    for i in nums:
        if not -nargs <= i < nargs:
            raise ValueError(f"{who}: argnums {i} is out of range for a call with {nargs} "
                             f"positional argument{'s' if nargs != 1 else ''}")
    normal = tuple(i % nargs for i in nums)
    if len(set(normal)) != len(normal):
        raise ValueError(f"{who}: argnums {argnums!r} repeats an argument")
    return normal, single


def make_inputs(arg: Any, level: int, who: str, where: str) -> tuple[tr.TreeDef, list]:
    """Fresh variables for every leaf of ``arg``; a ``TypeError`` names a bad
    leaf's path. A leaf that is already an ``Expr`` (an enclosing transform's
    value) gets a variable that stands for it.

    >>> treedef, xs = make_inputs({"w": (1.0, 2.0)}, next_level(), "grad", "argument 0")
    >>> [x.value for x in xs], treedef
    ([1.0, 2.0], dict{'w': tuple(*, *)})
    """
    leaves, treedef = tr.flatten(arg)
    out = []
    for j, leaf in enumerate(leaves):
        if leaf.__class__ is float:  # the usual leaf, without the ABC checks below
            out.append(variable(leaf, level))
        elif isinstance(leaf, Expr):
            out.append(variable(_stored(leaf), level, source=leaf))
        elif _number(leaf):
            out.append(variable(float(leaf), level))
        else:  # the paths only now: building them for every leaf costs more than the rest
            path = tr.keystr(tr.flatten_with_paths(arg)[1][j])
            if isinstance(leaf, _np().ma.MaskedArray):
                raise TypeError(f"{who}: {where} has a leaf at {path} that is a numpy masked "
                                "array, whose mask fm would drop: fill it first "
                                "(x.filled(value)), or pass the numbers you mean")
            if isinstance(leaf, _np().ndarray) and leaf.ndim == 0 and leaf.dtype.kind in "biufc":
                leaf = leaf[()]  # (a 0-d array as its number, for the errors below)
            if isinstance(leaf, numbers.Integral) and not isinstance(leaf, bool):
                raise ValueError(f"{who}: {where} has a leaf at {path} that is the int "
                                 f"{leaf!r}, beyond 2**53: differentiated, it would be "
                                 "rounded to a float64. Pass it in an argument that is not "
                                 "differentiated (argnums), or as a float if rounding is meant")
            if isinstance(leaf, _np().ndarray):
                mapped = (f"fm.vmap(fm.{who}(f))(x)" if who in _ONE_ARGUMENT_FORM
                          else "fm.vmap")
                raise TypeError(f"{who}: {where} has a leaf at {path} that is "
                                f"{_array_kind(leaf)}; fmicrograd's leaves are numbers: pass "
                                "tuple(x) or x.tolist() for a derivative per entry, or map "
                                f"over the examples (rows of x) with {mapped}")
            foreign = foreign_array(leaf)
            hint = (" (a jitted function's .deferred output: pass its .get())"
                    if type(leaf).__name__ == "Deferred" else
                    f" (a {foreign}: pass float(x) for one number, x.tolist() for several, or "
                    "run f on torch tensors with fm.to_torch(f))" if foreign else "")
            raise TypeError(f"{who}: {where} has a leaf at {path} that is "
                            f"{type(leaf).__name__} {leaf!r}{hint}; expected a float or an "
                            "fm.Expr")
    return treedef, out


# transforms called as fm.<who>(f)(x), which fm.vmap can map as they are
_ONE_ARGUMENT_FORM = frozenset({"grad", "value_and_grad", "jacrev", "jacfwd", "hessian"})


def _array_kind(a: Any) -> str:
    """A numpy array as the user knows it: under ``fm.jit`` the array they
    passed is traced as an object array of variables, which they never made.

    >>> _array_kind(_np().zeros((2, 3), dtype="float32"))
    'a numpy array of shape (2, 3) and dtype float32'
    """
    if a.dtype.kind == "O" and a.size and all(isinstance(x, Expr) for x in a.flat):
        return (f"a numpy array of shape {a.shape} (fm.jit traces a numpy array argument "
                "as an array of its traced entries)")
    return f"a numpy array of shape {a.shape} and dtype {a.dtype}"


def _number(leaf: Any) -> bool:
    """Whether ``leaf`` is a real number that a float64 holds (an int up to
    2**53, not a bool), or a 0-d numpy array of one, which ``fm.jit`` reads
    as its number too.

    >>> import numpy as np
    >>> _number(2), _number(np.array(2.5)), _number(True), _number(np.zeros(2))
    (True, True, False, False)
    """
    if isinstance(leaf, _np().ndarray):
        if leaf.__class__ is not _np().ndarray or leaf.ndim or leaf.dtype.kind not in "iuf":
            return False  # (a subclass, a masked array's, carries more than its number)
        leaf = leaf[()]
    return isinstance(leaf, numbers.Real) and not isinstance(leaf, (bool, _np().bool_)) and not (
        isinstance(leaf, numbers.Integral) and inexact_int(leaf))


def widened_leaves(tree: Any, who: str) -> list:
    """The leaves of a tangent or cotangent, each number as a Python float
    and each float32 or float16 array as a float64 one, so that a sweep seeded
    with them computes in float64 (as ``jit``, which traces them as float64)
    and not in the seed's narrower type; nodes as they are.

    >>> import numpy as np
    >>> widened_leaves((np.float16(1.0), [2]), "jvp")
    [1.0, 2.0]
    """
    out = tr.leaves(tree)
    what = "cotangent" if "vjp" in who else "tangent"
    for i, leaf in enumerate(out):
        if leaf.__class__ is not float and not isinstance(leaf, Expr):
            if isinstance(leaf, _np().ndarray) and leaf.ndim == 0 and leaf.dtype.kind in "biuf":
                leaf = leaf[()]  # (a 0-d array as its number, checked and widened as one)
            if isinstance(leaf, (bool, _np().bool_)):
                path = tr.keystr(tr.flatten_with_paths(tree)[1][i])
                raise TypeError(f"{who}: the {what} at {path} is the bool {leaf!r}; {what}s "
                                f"are numbers: pass a float")
            if isinstance(leaf, numbers.Integral) and inexact_int(leaf):
                path = tr.keystr(tr.flatten_with_paths(tree)[1][i])
                raise ValueError(f"{who}: the {what} at {path} is an int beyond 2**53, which "
                                 f"a float64 may not hold exactly; pass it as a float")
            if isinstance(leaf, _np().ndarray):
                if leaf.dtype.kind == "f" and leaf.dtype.itemsize < 8:
                    out[i] = leaf.astype(float)
            else:
                out[i] = _widened(leaf, who)
                if not isinstance(out[i], (numbers.Real, _np().ndarray)):
                    path = tr.keystr(tr.flatten_with_paths(tree)[1][i])
                    raise TypeError(f"{who}: the {what} at {path} is a {type(leaf).__name__} "
                                    f"({leaf!r}); {what}s are numbers, one per number of the "
                                    f"{'output' if what == 'cotangent' else 'primals'}")
    return out


def lower(x: Any, on_graph: bool) -> Any:
    """Node leaves to their values, unless the result must stay a graph.

    >>> lower((Var(1.0), 2.0), on_graph=False)
    (1.0, 2.0)
    """
    if on_graph:
        return x
    return tr.map(escaped, x)


def lower_aux(aux: Any, on_graph: bool, inputs: Sequence) -> Any:
    """``has_aux``'s extra output as the transform returns it: as ``lower``
    with the output's ``on_graph``, but kept a graph also where the aux alone
    depends on an enclosing transform's variable (``fm.grad(lambda a:
    fm.grad(lambda p, a: (p * 2.0, a * a), has_aux=True)(1.0, a)[1])``: as its
    value it would be a constant to the outer ``grad``, and frozen by ``jit``).

    >>> from fmicrograd.core.expr import next_level, variable
    >>> x = variable(2.0, next_level())  # (the transform's own variable)
    >>> lower_aux({"n": x * 3.0}, False, [x])
    {'n': 6.0}
    """
    if not on_graph:
        nodes = [x for x in tr.leaves(aux) if isinstance(x, Expr)]
        on_graph = bool(nodes) and sweep.order(nodes, inputs)[2]
    if on_graph:
        return aux
    # a numpy array the function returned as it is stays that array (not a constant
    # node, as a node's per-example value under vmap is), so that an enclosing vmap
    # sees whose it is: an unmapped argument's, returned under nested vmap, was split
    return tr.map(lambda x: x if x.__class__ is _np().ndarray else escaped(x), aux)


def _followed(x: Expr) -> bool:
    """Whether a running transform (or a user's ``Var``) depends on ``x``."""
    return dependent(x) is not None or reaches_user_variable([x])


def escaped(leaf: Any) -> Any:
    """A result leaf as the transform returns it: a node's value; under
    ``vmap`` a value with one entry per example stays a (constant) node, so
    that numpy code on it (``np.sum(leaves)``, ``np.linalg.norm``) cannot
    reduce across the examples: it works example by example or fails.

    >>> escaped(Var(2.0)), escaped(3.0)
    (2.0, 3.0)
    """
    value = leaf.value if isinstance(leaf, Expr) else leaf
    if DEPTH.get() and value.__class__ is _np().ndarray:
        return const(value)
    return value



per_example = tr.per_example  # (Jacobians take a vmap result example by example)


def _scalar(out: Any, who: str) -> Any:
    if isinstance(out, Expr):
        # under vmap a per-example scalar holds one axis per enclosing vmap
        if getattr(out.value, "ndim", 0) <= DEPTH.get():
            return out
        raise TypeError(f"{who}: the function must return a scalar, got an fm.Expr holding an "
                        f"array of shape {out.value.shape} (a numpy array entered the "
                        "computation, e.g. x * arr); fmicrograd is scalar-valued: combine item "
                        "by item and reduce, fm.sum([x * a for a in arr.tolist()]), or map "
                        "with fm.vmap" + thread_hint())
    if isinstance(out, numbers.Real) and not isinstance(out, bool):
        return out
    if getattr(out, "shape", None) == () and \
            getattr(getattr(out, "dtype", None), "kind", "") == "O":
        return _scalar(out.item(), who)  # (np.where(x > 0, x * x, 0.0) of a node: the node)
    if batch_valued(out):
        return const(out)  # under vmap, one value per example that reaches no variable here
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (Expr, numbers.Real)):
        raise TypeError(f"{who}: the function must return a scalar, got a pair; if it "
                        f"returns (loss, extra), pass has_aux=True: fm.{who}(f, has_aux=True)")
    raise TypeError(f"{who}: the function must return a scalar (a float or an fm.Expr), "
                    f"got {type(out).__name__}; reduce it first, e.g. with fm.sum or fm.mean")


def _check_not_prebuilt(outs: list, groups: list, who: str) -> None:
    """Outputs built before the call from a node the user passed as an
    argument (micrograd's ``c = a * b`` then ``fm.grad(lambda a: c)(a)``),
    none of them using a variable of this or an enclosing transform, would
    have derivatives of 0: a ``ValueError`` naming the fix. Under other
    transforms (``fm.hessian(lambda a: c)(a)``), the node is the one the
    outermost transform's argument stands on. (A closure over an enclosing
    transform's variable is how nested derivatives are written; an output
    leaf beside others that use a variable is a constant, as in JAX.)"""
    levels = {lv for lv, _, _ in RUNNING.get()}
    record = PREBUILT.get()  # (under jit: its inputs stand for the call's arguments)
    depth = DEPTH.get()
    Stack: Any = None
    if depth:  # (only here: numpy is loaded under vmap, and ``import fmicrograd`` stays light)
        from ..batching.vmap_ops import Stack
    roots = [o for o in outs if isinstance(o, Expr)]
    mine = {id(x) for xs in groups for x in xs}
    if _uses_a_variable(roots, mine, levels, Stack):
        return  # the usual case, seen before the arguments' sources are gathered below
    sources: set = set()
    standing = []  # jit's inputs that the variables stand for (``control.PREBUILT``)
    for xs in groups:
        for x in xs:
            n = x.children[0] if x.children else None
            while n is not None and n.op == "var" and getattr(n, "level", None) in levels:
                if record is not None and not n.children:
                    standing.append(n)
                n = n.children[0] if n.children else None  # an enclosing transform's
            if depth and n is not None and n.op != "var":
                # under vmap a user's Var only (a per-example value is a node the function
                # may close over, as over a float in a loop), or the user's Vars that vmap
                # stacked into this example's value (``fm.vmap(g)((a, b))``)
                if getattr(n, "param", None).__class__ is Stack:
                    held = {id(k) for k in n.children if k.op == "var" and
                            getattr(k, "level", None) not in levels}
                    if held:  # (and that value itself, held by the output: x in x * x)
                        sources.update(held | {id(n)})
                continue
            if n is not None and (not levels or n.op == "var"):
                # (inside a transform, a user's fm.Var only: a computed node, as an unrolled
                # inner loop's iterate, has a graph the walk would cross at every call)
                sources.add(id(n))
    if not (sources or standing) or not roots:
        return
    jit_level = record.level if standing else None
    stood = {id(s) for s in standing}  # (a set: a scan per input grew as N**2)
    stack, seen, hit, users, itself, traced = list(roots), set(), False, {}, False, False
    while stack:
        n = stack.pop()
        if id(n) in mine:
            return  # the output uses a variable
        if n.op == "var" and getattr(n, "level", None) in levels:
            if getattr(n, "level", None) != jit_level:
                return  # the output uses a variable of an enclosing transform
            # one of jit's inputs, which stand for the call's values: the argument
            # itself where a variable stands on it (jit(lambda x: grad(lambda t: x)(x)))
            itself = itself or id(n) in stood
            traced = True
            continue
        hit = hit or id(n) in sources
        if standing and n.op == "var":  # a user's fm.Var (none of a running transform's)
            users[id(n)] = n
        if depth and getattr(n, "param", None).__class__ is Stack:
            continue  # (an example's values of a mapped argument: not a prebuilt graph)
        for c in n.children:
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    if hit:
        raise prebuilt_error(who)
    if standing:  # which arguments would make it this error: jit checks them at every call
        # (an output built wholly before the call is the user's graph, which the function
        # holds anyway: kept whatever its size, or its check was lost past the limit and
        # jit(grad(lambda b: c))(b) gave 0.0 for a 10,000-node c)
        kept = roots if len(seen) <= _KEPT or not traced else None
        record.note(standing, users, itself, kept, who)


_KEPT = 10_000  # nodes at most in a traced output jit keeps, to look for a computed node in
_PROBE = 10_000  # nodes at most that ``_uses_a_variable`` takes from its stack


def _uses_a_variable(roots: list, mine: set, levels: set, Stack: Any) -> bool:
    """Whether the outputs reach one of the call's variables (``mine``, their
    ids) within the first ``_PROBE`` nodes of the walk ``_check_not_prebuilt`` makes (which
    stops there too): then nothing was prebuilt. False means "look further",
    not "prebuilt"."""
    stack, seen = list(roots), set[int]()
    for _ in range(_PROBE):
        if not stack:
            break
        n = stack.pop()
        if id(n) in mine:
            return True
        if n.op == "var" and getattr(n, "level", None) in levels:
            continue  # (a running transform's variable: the walk stops on it)
        if Stack is not None and getattr(n, "param", None).__class__ is Stack:
            continue
        for c in n.children:
            if id(c) in mine:  # (an L2 term's sum has every parameter as a child)
                return True
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    return False


def prebuilt_error(who: str) -> ValueError:
    """The error for an output built before the call from the node passed
    as the argument (micrograd's prebuilt graph).

    >>> str(prebuilt_error("grad")).startswith("fm.grad: the function's output was built")
    True
    """
    return ValueError(
        f"fm.{who}: the function's output was built before the call from the node passed "
        "as its argument, so it does not depend on the function's parameter and its "
        "derivative would be 0 (micrograd's `c = a * b; c.backward()` reads as "
        "fm.grad(lambda a: a * b)(2.0)). Build the expression inside the function, or "
        "read a prebuilt graph's gradients with fm.viz.node_grads(c)")


def _prepare(f_args: Sequence, nums: tuple, who: str) -> tuple[list, list, list, int]:
    level = next_level()
    args = list(f_args)
    defs, groups = [], []
    for i in nums:
        treedef, xs = make_inputs(args[i], level, who, f"argument {i}")
        args[i] = tr.unflatten(treedef, xs)
        defs.append(treedef)
        groups.append(xs)
    return args, defs, groups, level


def call_on_inputs(f: Callable, args: Sequence, kwargs: dict, nums: tuple, has_aux: bool,
                   who: str) -> tuple[Any, Any, list, list]:
    """Call ``f`` with fresh variables for the arguments ``nums``; returns
    ``(out, aux, defs, groups)`` with ``aux`` split off when ``has_aux``.

    >>> out, aux, _, _ = call_on_inputs(lambda x: (x * 2, "aux"), (3.0,), {}, (0,), True, "grad")
    >>> out.value, aux
    (6.0, 'aux')
    """
    out_of_ended_vmap()  # (a context copied inside a vmap that has returned)
    new_args, defs, groups, level = _prepare(args, nums, who)
    with running(level, f"fm.{who}"):
        out = f(*new_args, **kwargs)
    aux = None
    if has_aux:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):  # (a list too, as JAX)
            raise TypeError(f"{who}(has_aux=True): the function must return a pair "
                            f"(output, aux), got {type(out).__name__}")
        out, aux = out
    if any(x.children for xs in groups for x in xs):
        _check_not_prebuilt(tr.leaves(out), groups, who)  # (micrograd's prebuilt graph)
    return out, aux, defs, groups


def _rebuild(defs: list, groups: list, flat: list, on_graph: bool = False) -> list:
    """One gradient pytree per differentiated argument from the flat
    cotangents. In graph mode a per-example array among them (a zero from a
    compiled call's rule, for an input it does not read) becomes a constant
    node: an outer transform differentiates the result, and takes nodes or
    floats only.

    >>> _rebuild([fm.tree.structure((1.0, 2.0))], [[None, None]], [1.0, _np().zeros(2)], True)
    [(1.0, Const(array([0., 0.])))]
    """
    if on_graph:
        nd = _np().ndarray
        flat = [const(c) if c.__class__ is nd else c for c in flat]
    out, k = [], 0
    for treedef, xs in zip(defs, groups):
        out.append(tr.unflatten(tr.persistent(treedef), flat[k:k + len(xs)]))
        k += len(xs)
    return out


def value_and_grad(f: Callable, argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable:
    """``f``'s value and gradient in one sweep.

    Returns ``(value, grads)``, or ``((value, aux), grads)`` with ``has_aux``.
    The gradient mirrors the differentiated argument (dicts as ``PMap``, lists
    as ``PVector``); a tuple ``argnums`` gives a tuple of them.

    >>> fm.value_and_grad(lambda x, y: x * y, argnums=(0, 1))(2.0, 5.0)
    (10.0, (5.0, 2.0))
    """
    return _value_and_grad(f, argnums, has_aux, "value_and_grad")


def _value_and_grad(f: Callable, argnums: Any, has_aux: bool, who: str) -> Callable:
    """``value_and_grad``, with errors naming the transform the user called."""

    check_callable(f, who)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nums, single = _argnums(argnums, len(args), who)
        out, aux, defs, groups = call_on_inputs(f, args, kwargs, nums, has_aux, who)
        out = _checked(_scalar(out, who))
        flat_inputs = [x for xs in groups for x in xs]
        cts, on_graph = sweep.reverse([out], [1.0], flat_inputs)
        if not on_graph and DEPTH.get():  # one per example under vmap: nodes (see escaped)
            # but a node a running transform follows stays itself, as outside vmap: a
            # custom_vjp's bwd closing over such a variable (its value dropped the
            # derivative through it: vmap(grad(f)) gave 1.7 for the loop's 3.4)
            cts = [c if isinstance(c, Expr) and _followed(c) else escaped(c) for c in cts]
        grads = _rebuild(defs, groups, cts, on_graph)
        value = escaped(out) if not on_graph else out
        result = grads[0] if single else tuple(grads)
        if has_aux:
            return (value, lower_aux(aux, on_graph, flat_inputs)), result
        return value, result

    return wrapped


def grad(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Gradient of a scalar-valued ``f`` with respect to argument ``argnums``.

    >>> fm.grad(lambda x: x ** 3)(2.0)
    12.0
    >>> fm.grad(fm.grad(lambda x: x ** 3))(2.0)
    12.0
    """
    vg = _value_and_grad(f, argnums, has_aux, "grad")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        value, grads = vg(*args, **kwargs)
        if has_aux:
            return grads, value[1]
        return grads

    return wrapped


def refuse_deeper(depth: int, nodes: Sequence[Any], outs: Sequence[Any], who: str,
                  fix: str) -> None:
    """A ``TypeError`` when a saved sweep (``vjp``'s, ``linearize``'s) over
    ``nodes`` and ``outs``, built at ``vmap`` depth ``depth``, is called under
    more ``vmap``s while its graph holds the examples of a ``vmap`` inside the
    function (values with more axes than the enclosing ``vmap``s give): they
    would pair with the new batch's, element by element. Read only when
    called deeper (the graph is not scanned otherwise)."""
    if DEPTH.get() > depth and (
            any(getattr(_stored(n), "ndim", 0) > depth for n in nodes) or
            any(isinstance(o, Expr) and getattr(_stored(o), "ndim", 0) > depth for o in outs)):
        raise TypeError(f"{who} called under fm.vmap, of a function that runs a vmap of its own: "
                        f"its saved values hold that vmap's examples, which would be paired "
                        f"with the new batch's. Make the whole call inside the vmap: {fix}")


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """``f(*primals)`` and a function mapping an output cotangent to one
    gradient per primal; the function can be called many times. With
    ``has_aux``, ``f`` returns ``(output, aux)`` and ``vjp`` returns
    ``(output, vjp_fn, aux)``, as JAX.

    >>> out, back = fm.vjp(lambda x, y: (x * y, x + y), 2.0, 3.0)
    >>> out, back((1.0, 0.0)), back((0.0, 1.0))
    ((6.0, 5.0), (3.0, 2.0), (1.0, 1.0))
    >>> out, back, aux = fm.vjp(lambda x: (x * x, {"x": x}), 3.0, has_aux=True)
    >>> out, back(1.0), aux
    (9.0, (6.0,), {'x': 3.0})
    """
    check_callable(f, "vjp")
    out, aux, defs, groups = call_on_inputs(f, primals, {}, tuple(range(len(primals))), has_aux,
                                            "vjp")
    out = per_example(_checked(out))
    outs, out_def = tr.flatten(out)
    refuse_node_arrays(outs, out, "vjp")
    flat_inputs = [x for xs in groups for x in xs]
    plan = sweep.order(outs, flat_inputs)
    on_graph = plan[2]
    depth = DEPTH.get()

    def vjp_fn(cotangent: Any, *, _any_depth: bool = False) -> tuple:
        if not _any_depth:
            refuse_deeper(depth, plan[0], outs, "vjp_fn",
                          "fm.vmap(lambda c: fm.vjp(f, *primals)[1](c))")
        got = tr.structure(cotangent)
        if got != out_def:  # a vmap result's: example by example, as the output (a
            cotangent = per_example(cotangent)  # rule's bwd passes one on)
            got = tr.structure(cotangent)
        tr.check_same(out_def, got, "vjp_fn: the cotangent must match the output")
        seeds = widened_leaves(cotangent, "vjp")
        if not _any_depth and not DEPTH.get():
            _refuse_array_seeds(seeds, outs, cotangent)
        graph, steps, close = on_graph, plan, False
        if not on_graph:  # a sweep on values, unless a running transform differentiates or
            # traces the cotangent (``vjp_fn`` called inside ``jvp``, ``grad``, ``jit``): then
            # it builds nodes, as the rules' derivatives must follow it (on values, a rule's
            # result became its value, a derivative of 0)
            nodes = [s for s in seeds if isinstance(s, Expr)]
            if any(dependent(s) is not None for s in nodes) or reaches_user_variable(nodes):
                graph, steps, close = True, (plan[0], plan[1], True), True
            else:  # a node nothing running depends on (vmap's constant node, or one
                # computed from vmap's examples): its value
                seeds = [s.value if isinstance(s, Expr) else s for s in seeds]
        cts, _ = sweep.reverse(outs, seeds, flat_inputs, steps)
        if close:  # the partials: numbers of this vjp's own variables, closed now
            cts = closed(cts, own)
        return tuple(_rebuild(defs, groups, cts, graph))

    own = {id(v) for v in flat_inputs if not v.children}  # (made from numbers)

    if has_aux:
        return lower(out, on_graph), vjp_fn, lower_aux(aux, on_graph, flat_inputs)
    return lower(out, on_graph), vjp_fn


def _refuse_array_seeds(seeds: list, outs: list, cotangent: Any) -> None:
    """A ``TypeError`` for an array of several entries given as the cotangent
    of a number output outside ``vmap``: the sweep read it as one cotangent per
    example and summed their slopes (``vjp_fn(np.array([1.0, 2.0]))`` of
    ``x * x`` at 3.0 gave 18.0), where JAX refuses it."""
    np = _np()
    for i, (seed, out) in enumerate(zip(seeds, outs)):
        if seed.__class__ is np.ndarray and seed.ndim and \
                not getattr(_stored(out) if isinstance(out, Expr) else out, "ndim", 0):
            # (an output holding an array, w * A of a data array A: its cotangent is one)
            path = tr.keystr(tr.flatten_with_paths(cotangent)[1][i])
            raise TypeError(f"vjp_fn: the cotangent at {path} is a numpy array of shape "
                            f"{seed.shape} for an output that is one number; pass one "
                            "number per output number (float(c) for a one-entry array), "
                            "or map over several cotangents with fm.vmap(vjp_fn)(cts)")


def jvp(f: Callable, primals: Sequence, tangents: Sequence,
        has_aux: bool = False) -> tuple:
    """Forward mode: ``(f(*primals), J @ tangents)`` in one forward sweep; with
    ``has_aux``, ``f`` returns ``(output, aux)`` and ``jvp`` returns
    ``(output, tangent_out, aux)``, as JAX.

    >>> fm.jvp(lambda x, y: x * y, (2.0, 3.0), (1.0, 0.0))
    (6.0, 3.0)
    >>> fm.jvp(lambda x: (x * x, "aux"), (3.0,), (1.0,), has_aux=True)
    (9.0, 6.0, 'aux')
    """
    check_callable(f, "jvp")
    for name, given in (("primals", primals), ("tangents", tangents)):
        if not isinstance(given, (tuple, list)):
            raise TypeError(f"jvp: {name} must be a tuple or list with one entry per argument "
                            f"of f, as in JAX (fm.jvp(f, (x,), (t,)) for one argument), got a "
                            f"{type(given).__name__}")
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    tr.check_same(tr.structure(primals), tr.structure(tangents),
                  "jvp: tangents must match primals")
    t_leaves = tr.leaves(tangents)
    shaped_like(primals, tangents, "jvp")
    if any(t is NO_TANGENT for t in t_leaves):
        return _jvp_of_the_rest(f, primals, t_leaves, has_aux)
    out, aux, _, groups = call_on_inputs(f, primals, {}, tuple(range(len(primals))), has_aux,
                                         "jvp")
    out = per_example(_checked(out))
    outs, out_def = tr.flatten(out)
    refuse_node_arrays(outs, out, "jvp")
    flat_inputs = [x for xs in groups for x in xs]
    tans, on_graph = sweep.forward(outs, flat_inputs, widened_leaves(tangents, "jvp"))
    if has_aux:
        return (lower(out, on_graph), tr.unflatten(out_def, tans),
                lower_aux(aux, on_graph, flat_inputs))
    return lower(out, on_graph), tr.unflatten(out_def, tans)


def shaped_like(primals: Any, tangents: Any, who: str) -> None:
    """A ``ValueError`` for a numpy array given (at the top level, outside
    every transform) as the tangent of a number: JAX refuses it, and fm's
    forward sweep took it as one tangent per entry where a custom rule summed
    it (``[3., 6., 9.]`` and ``18.0`` for ``x * x`` at 1.5). Under ``vmap``
    an array is the examples' tangents, as fm's own transforms pass them.

    >>> shaped_like((1.5,), (2.0,), "jvp")
    """
    if DEPTH.get() or RUNNING.get():
        return
    np = sys.modules.get("numpy")
    if np is None:
        return
    ps, ts = tr.leaves(primals), tr.leaves(tangents)
    for k, (p, t) in enumerate(zip(ps, ts)):
        if t.__class__ is np.ndarray and t.ndim and not np.ndim(_stored(p) if isinstance(
                p, Expr) else p):
            path = tr.keystr(tr.flatten_with_paths(tangents)[1][k])
            raise ValueError(
                f"{who}: the tangent at {path} is an array of shape {t.shape} for a number; "
                "a tangent has its primal's shape, as in JAX. For several tangents, map "
                "over them: fm.vmap(lambda t: fm.jvp(f, (x,), (t,))[1])(ts)")


class _NoTangent(float):
    """The type of ``NO_TANGENT``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "0.0"


# The tangent of an argument that nothing differentiates, which a ``custom_jvp``
# rule gets when reverse mode transposes it (JAX's symbolic zero): 0.0 in
# arithmetic, and ``jvp`` keeps that argument as it is, not a variable, so a
# branch on it (``fm.where(fm.greater(p, 0.0), ...)``) is taken as without the rule
NO_TANGENT = _NoTangent(0.0)


def _jvp_of_the_rest(f: Callable, primals: tuple, t_leaves: list, has_aux: bool) -> tuple:
    """``jvp`` where some tangent leaves are ``NO_TANGENT``: over the other
    leaves, those primals fixed as they are.

    >>> where = lambda p, t: fm.where(fm.greater(p, 0.0), fm.log(p) * t, fm.sqrt(-p) * t)
    >>> jvp(where, (2.0, 1.0), (NO_TANGENT, 1.0))[1] == fm.log(2.0)
    True
    """
    leaves, td = tr.flatten(primals)
    live = [i for i, t in enumerate(t_leaves) if t is not NO_TANGENT]

    def rest(*xs: Any) -> Any:
        full = list(leaves)
        for i, x in zip(live, xs):
            full[i] = x
        return f(*tr.unflatten(td, full))

    return jvp(rest, tuple(leaves[i] for i in live), tuple(t_leaves[i] for i in live), has_aux)


def trace(f: Callable) -> Callable:
    """``f``'s output graph, with every float leaf of the arguments a ``Var``
    named by its position (int leaves stay ints).

    >>> fm.trace(lambda x, y: x * y + 1)(2.0, 3.0).op
    '+'
    >>> str(fm.trace(lambda x, n: x * n)(2.0, 3))
    'args[0]*3.0'
    """
    check_callable(f, "trace")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        level = next_level()
        new_args = []
        for i, arg in enumerate(args):
            leaves, paths, treedef = tr.flatten_with_paths(arg)
            names = [f"args[{i}]" + tr.keystr(p).replace("<root>", "") for p in paths]
            named = [variable(float(x), level, name=n)  # ints stay ints (counts, indices)
                     if isinstance(x, numbers.Real) and not isinstance(x, numbers.Integral)
                     else x for x, n in zip(leaves, names)]
            new_args.append(tr.unflatten(treedef, named))
        with running(level, "fm.trace", traces=True):
            return f(*new_args, **kwargs)

    return wrapped
