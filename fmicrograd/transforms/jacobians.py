"""Jacobians and Hessians: ``jacrev``, ``jacfwd``, ``jacobian`` and ``hessian``.

Each call traces ``f`` once and orders its graph once (``sweep.order``); every
row (reverse mode, one per output leaf) or column (forward mode, one per input
leaf) is then one sweep over that same plan. Inside another transform the
sweeps build graphs, so Jacobians nest and differentiate like everything else.

Layout mirrors JAX: the output's structure outside, the input's inside. For a
tuple of n floats in and m floats out, a Jacobian is a tuple of m tuples of n
floats; a scalar output gives the input's structure (a gradient); a tuple
``argnums`` puts a tuple over the arguments at each output leaf. Containers
come back persistent, as from ``grad`` (dicts as ``PMap``, lists as
``PVector``).

An output leaf that is a node holding a numpy array (``w * arr`` outside
``vmap``) has one row per entry, as in JAX: its Jacobian leaf for an input
leaf is an array of the output's shape (followed by the input's), the same
from ``jacrev`` (one reverse sweep per entry, seeded with a one-hot array)
as from ``jacfwd``. Never a sum over the entries. Inside ``vmap`` a node's
array holds one value per example, so an output with more axes than the
enclosing ``vmap`` calls (an array per example) is a ``TypeError``, as for
``grad``.

>>> jacrev(lambda x, y: (x * y, x + y), argnums=(0, 1))(2.0, 3.0)
((3.0, 2.0), (1.0, 1.0))
>>> hessian(lambda p: p[0] ** 2 * p[1])((1.0, 3.0))
((6.0, 2.0), (2.0, 0.0))
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

from ..core import pytree as tr
from ..core import sweep
from ..core.batch_axes import DEPTH, batch_valued
from ..core.control import check_callable
from ..core.expr import Expr, const
from ..core.numeric import _np  # (numpy, imported when first needed)
from .autodiff import _argnums, _rebuild, call_on_inputs, lower_aux, per_example

__all__ = ["jacrev", "jacfwd", "jacobian", "hessian"]


class _Traced(NamedTuple):
    """``f`` traced once at the call's arguments, with its sweep plan."""

    outs: list          # output leaves (Exprs, or numbers that depend on nothing)
    out_def: tr.TreeDef
    inputs: list        # the fresh variables of the differentiated arguments, flat
    defs: list          # one TreeDef per differentiated argument
    groups: list        # the variables of each differentiated argument
    single: bool        # argnums was an int
    plan: tuple         # sweep.order(outs, inputs)
    aux: Any
    shapes: list        # per output leaf: None (a scalar) or the shape of its array


def _out_shape(leaf: Any, path: tuple, who: str) -> tuple | None:
    """None for a scalar output leaf, the array's shape for a node holding an
    array (``w * arr``); under ``vmap``, where a node's array holds one value
    per example (one leading axis per enclosing ``vmap``, as ``grad``'s
    scalar check reads it), an array per example is a ``TypeError``.

    >>> _out_shape(3.0, (), "jacrev") is None
    True
    """
    if not isinstance(leaf, Expr):
        return None
    ndim = getattr(leaf.value, "ndim", 0)
    depth = DEPTH.get()
    if ndim <= depth:
        return None
    shape = tuple(leaf.value.shape)
    if depth:
        raise TypeError(
            f"{who}: under fm.vmap the function must return scalars per example, but its "
            f"output at {tr.keystr(path)} is an fm.Expr holding an array of shape {shape}, "
            f"more axes than the {depth} of the enclosing vmap (a numpy array entered the "
            "computation, e.g. x * arr); fmicrograd is scalar-valued: return a tuple of "
            "scalar nodes, tuple(x * a for a in arr.tolist()), or take the Jacobian of "
            "the array output outside fm.vmap")
    return shape


def _trace(f: Callable, args: tuple, kwargs: dict, argnums: Any, has_aux: bool,
           who: str) -> _Traced:
    nums, single = _argnums(argnums, len(args), who)
    out, aux, defs, groups = call_on_inputs(f, args, kwargs, nums, has_aux, who)
    outs, paths, out_def = tr.flatten_with_paths(per_example(out))
    for k, (leaf, path) in enumerate(zip(outs, paths)):
        if batch_valued(leaf):
            outs[k] = const(leaf)  # under vmap, one value per example reaching no variable
            continue
        if getattr(leaf, "shape", None) == () and \
                getattr(getattr(leaf, "dtype", None), "kind", "") == "O":
            leaf = outs[k] = leaf.item()  # (np.where of a node: the node, as grad takes it)
        if not (isinstance(leaf, Expr)
                or (isinstance(leaf, numbers.Real) and not isinstance(leaf, bool))):
            nodes = getattr(getattr(leaf, "dtype", None), "kind", "") == "O"
            raise TypeError(f"{who}: the function's output has a leaf at {tr.keystr(path)} "
                            f"that is {type(leaf).__name__} {leaf!r}; every output leaf must "
                            "be a float or an fm.Expr" + (
                                " (a numpy array of fm nodes: return tuple(arr.tolist()))"
                                if nodes else ""))
    shapes = [_out_shape(leaf, path, who) for leaf, path in zip(outs, paths)]
    inputs = [x for xs in groups for x in xs]
    plan = sweep.order(outs, inputs)
    return _Traced(outs, out_def, inputs, defs, groups, single, plan, aux, shapes)


def _one_hot(shape: tuple, k: int) -> Any:
    """The array of ``shape`` with a 1.0 at flat position ``k``, zeros elsewhere.

    >>> _one_hot((2, 2), 1).tolist()
    [[0.0, 1.0], [0.0, 0.0]]
    """
    e = _np().zeros(shape)
    e.flat[k] = 1.0
    return e


def _fill(entry: Any, shape: tuple) -> Any:
    """``entry`` (a float, array or node) broadcast to ``shape``: a derivative
    that did not reach an array output is a plain ``0.0``, but its Jacobian
    entry is an array of zeros of the output's shape, as in JAX.

    >>> _fill(0.0, (2,)).tolist(), _fill(_np().ones(2), (2,)).tolist()
    ([0.0, 0.0], [1.0, 1.0])
    """
    np = _np()
    if isinstance(entry, Expr):
        if tuple(np.shape(entry.value)) == shape:
            return entry
        return entry + np.zeros(shape)
    return np.broadcast_to(np.asarray(entry, dtype=float), shape) + 0.0


def _stack(entries: list, shape: tuple, like: Any) -> Any:
    """The entries of one input's Jacobian for an array output of ``shape``,
    one per array entry (flat order), as one array of ``shape`` + the input's
    shape; a node holding it when an entry is a node (inside another
    transform), built from products with one-hot arrays so that every
    transform (``jit`` included) differentiates and compiles it.

    >>> _stack([1.0, 2.0, 3.0, 4.0], (2, 2), 0.0).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    np = _np()
    inner = tuple(np.shape(like))
    full = shape + inner
    consts = np.zeros(full)
    flat_consts = consts.reshape((-1,) + inner)
    total = None
    for k, e in enumerate(entries):
        if isinstance(e, Expr):
            basis = _one_hot(shape, k).reshape(shape + (1,) * len(inner))
            term = e * basis
            total = term if total is None else total + term
        else:
            flat_consts[k] = e
    if total is None:
        return consts
    if np.any(consts != 0.0):  # (a NaN entry counts too)
        total = total + consts
    return _fill(total, full)


def _assemble(t: _Traced, rows: list) -> Any:
    """One row (a flat list over the inputs) per output leaf -> the nested Jacobian."""
    per_output = []
    for row in rows:
        grads = _rebuild(t.defs, t.groups, row, t.plan[2])
        per_output.append(grads[0] if t.single else tuple(grads))
    return tr.unflatten(tr.persistent(t.out_def), per_output)


def _with_aux(t: _Traced, jac: Any, has_aux: bool) -> Any:
    if has_aux:
        return jac, lower_aux(t.aux, t.plan[2], [x for xs in t.groups for x in xs])
    return jac


def jacrev(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Jacobian of ``f`` by reverse mode: one reverse sweep per output leaf
    (per entry of an output node holding a numpy array).

    With ``has_aux`` ``f`` returns ``(output, aux)`` and the result is
    ``(jacobian, aux)``. An output node holding an array (``w * arr``) gives
    one row per entry, the array's shape leading, as ``jacfwd`` and JAX.

    >>> fm.jacrev(lambda x: (x[0] * x[1], x[0] + x[1], x[1] ** 2))((2.0, 3.0))
    ((3.0, 2.0), (1.0, 1.0), (0.0, 6.0))
    >>> import numpy as np
    >>> fm.jacrev(lambda w: w * np.array([1.0, 2.0, 3.0]))(2.0).tolist()
    [1.0, 2.0, 3.0]
    """
    check_callable(f, "jacrev")
    return _jacrev(f, argnums, has_aux, "jacrev")


def _jacrev(f: Callable, argnums: Any, has_aux: bool, who: str) -> Callable:
    """``jacrev``, with errors labelled ``who`` (the function the user called)."""

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t = _trace(f, args, kwargs, argnums, has_aux, who)
        return _with_aux(t, _assemble(t, [_reverse_row(t, k) for k in range(len(t.outs))]),
                         has_aux)

    return wrapped


def _reverse_row(t: _Traced, k: int) -> list:
    """Output leaf ``k``'s row (one entry per input) by reverse sweeps: one
    seeded with 1.0 for a scalar, one per entry (a one-hot seed) for an array."""
    o, shape = t.outs[k], t.shapes[k]
    if shape is None:
        return sweep.reverse([o], [1.0], t.inputs, t.plan)[0]
    size = int(_np().prod(shape, dtype=int))
    per_entry = [sweep.reverse([o], [_one_hot(shape, j)], t.inputs, t.plan)[0]
                 for j in range(size)]
    return [_stack([r[i] for r in per_entry], shape, x.value) for i, x in enumerate(t.inputs)]


def _array_input(x: Any) -> bool:
    """An input variable holding a numpy array outside ``vmap`` (an enclosing
    transform's array node passed in): seeding it with 1.0 would sum over its
    entries, so ``jacfwd`` takes its entries from reverse sweeps."""
    return not DEPTH.get() and getattr(x.value, "ndim", 0) > 0


jacobian = jacrev


def jacfwd(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Jacobian of ``f`` by forward mode: one forward sweep per input leaf.

    Same layout as ``jacrev``; cheaper when there are fewer inputs than outputs.
    An output node holding a numpy array gives an array of its shape per input
    leaf (zeros where the input does not reach it), as ``jacrev`` and JAX. An
    input that holds an array (an enclosing transform's ``w * arr`` passed in)
    takes its entries from reverse sweeps, one per output entry: a forward
    sweep seeded with 1.0 would add up its columns.

    >>> import numpy as np
    >>> fm.jacfwd(lambda w: w * np.array([1.0, 2.0, 3.0]))(2.0).tolist()
    [1.0, 2.0, 3.0]

    >>> jac = fm.jacfwd(lambda x: {"s": x[0] + x[1], "p": x[0] * x[1]})((2.0, 3.0))
    >>> jac["p"], jac["s"]
    ((3.0, 2.0), (1.0, 1.0))
    """
    check_callable(f, "jacfwd")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        t = _trace(f, args, kwargs, argnums, has_aux, "jacfwd")
        depth = DEPTH.get()
        if depth and any(getattr(x.value, "ndim", 0) > depth for x in t.inputs):
            raise TypeError("jacfwd: an argument is a vmap result inside another vmap (each "
                            "leaf holds its examples besides the enclosing vmap's), whose "
                            "columns jacfwd cannot take apart yet; pass tuple(r) (one entry per "
                            "example, as the loop), or use jacrev")
        arrays = [_array_input(x) for x in t.inputs]
        cols = [None if array else sweep.forward(t.outs, [x], [1.0], t.plan)[0]
                for x, array in zip(t.inputs, arrays)]
        rows = []
        some = any(arrays)
        for k, shape in enumerate(t.shapes):
            back = _reverse_row(t, k) if some else []  # (read where col is None)
            rows.append([back[i] if col is None else
                         col[k] if shape is None else
                         _fill(col[k], shape + tuple(_np().shape(x.value)))
                         for i, (col, x) in enumerate(zip(cols, t.inputs))])
        return _with_aux(t, _assemble(t, rows), has_aux)

    return wrapped


def hessian(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """Hessian of a scalar ``f``: ``jacrev(jacrev(f))``, reverse over reverse.

    Reverse over reverse measured fastest here (``benchmarks/hessian.py``):
    a row of the Hessian is one reverse sweep over the gradient's graph and
    touches only the part of it that the row's gradient entry depends on,
    whereas a forward column visits every node downstream of its input.
    The layout is the input's structure of input structures (a tuple of n
    tuples for n floats); with a tuple ``argnums`` each level holds a tuple
    over the arguments, nested exactly as ``jax.hessian`` nests it.

    >>> fm.hessian(lambda x, y: x * x * y, argnums=(0, 1))(1.0, 2.0)
    ((4.0, 2.0), (2.0, 0.0))
    """
    check_callable(f, "hessian")
    inner = _jacrev(f, argnums, has_aux, "hessian")
    outer = _jacrev(inner, argnums, has_aux, "hessian")
    return functools.wraps(f)(outer)
