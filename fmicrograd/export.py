"""``fm.to_torch``: a function prototyped here, run by torch.

``to_torch(f, in_axes)`` traces ``f`` once per input structure (as ``jit``
does), lowers the graph to a flat program and replays it with the torch op
table (``torch_ops.TORCH``) on tensors: mapped arguments (``in_axes`` 0, the
default) carry a batch of examples on their leading axis, as with ``vmap``,
and every node becomes one tensor operation over the whole batch. The result
is differentiable by torch autograd, with fmicrograd's derivative conventions
(torch's: relu'(0) = 0 and so on), so a model moves to torch's devices,
optimizers and distributed training unchanged.

>>> import torch
>>> f = to_torch(lambda w, x: fm.tanh(fm.dot(w, x)), in_axes=(None, 0))
>>> w = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
>>> y = f(w, torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
>>> y.shape, y.sum().backward(), w.grad.shape
(torch.Size([2]), None, torch.Size([2]))
"""

from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import ir
from . import numeric as num
from . import tree as tr
from .expr import GUARDS, next_level, variable
from .torch_ops import TORCH

__all__ = ["to_torch"]

_MAX_STRUCTURES = 32
_FACTORS = {
    num.step: lambda t, x: (x > 0).to(x.dtype),
    num.sign: lambda t, x: t.sign(x),
    num.share: lambda t, a, b: t.where(a > b, 1.0, t.where(a == b, 0.5, 0.0)).to(a.dtype),
}


def to_torch(f: Callable, in_axes: Any = 0) -> Callable:
    """``f`` over torch tensors, differentiable by torch autograd.

    ``in_axes`` as in ``vmap``: 0 maps an argument over the leading axis of
    its tensors (a ``(B, 2)`` tensor is ``B`` examples of two features), None
    passes it unbatched (a parameter tensor of shape ``(n,)`` is a sequence of
    ``n`` numbers). Leaves may be tensors or floats. Outputs are tensors with
    the batch on the leading axis, in ``f``'s output structure. Python control
    flow on values cannot be lowered and is an error.

    >>> import torch
    >>> g = to_torch(lambda x: fm.relu(x) * 2.0)
    >>> g(torch.tensor([-1.0, 3.0], dtype=torch.float64)).tolist()
    [0.0, 6.0]
    """
    cache: OrderedDict = OrderedDict()

    @functools.wraps(f)
    def lowered(*args: Any) -> Any:
        import torch

        axes = _axes(in_axes, len(args))
        flat = [tr.flatten(a) for a in args]
        key = tuple((td, tuple(_leaf_key(x) for x in leaves), ax)
                    for (leaves, td), ax in zip(flat, axes))
        size = _batch_size(flat, axes)
        entry = cache.get(key)
        if entry is None:
            entry = _trace(f, args, axes, flat)
            cache[key] = entry
            if len(cache) > _MAX_STRUCTURES:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        program, out_def = entry
        dtype = _dtype(flat, torch)
        inputs = [x for (leaves, _), ax in zip(flat, axes) for leaf in leaves
                  for x in _elements(torch, leaf, ax, dtype)]
        values = _run(torch, program, inputs, size, dtype)
        return tr.unflatten(out_def, values)

    return lowered


def _axes(in_axes: Any, nargs: int) -> tuple:
    axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * nargs
    if len(axes) != nargs or any(a not in (0, None) or isinstance(a, bool) for a in axes):
        raise ValueError(f"fm.to_torch: in_axes must be 0, None or a tuple of those with one "
                         f"entry per argument ({nargs}), got {in_axes!r}")
    return axes


def _shape(x: Any) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else ()


def _leaf_key(x: Any) -> Any:
    if hasattr(x, "shape"):
        return tuple(x.shape)
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return "number"
    raise TypeError(f"fm.to_torch: argument leaves must be tensors or numbers, got "
                    f"{type(x).__name__}")


def _batch_size(flat: list, axes: tuple) -> int | None:
    size, where = None, None
    for i, ((leaves, _), ax) in enumerate(zip(flat, axes)):
        if ax is None:
            continue
        for x in leaves:
            n = _shape(x)[0] if _shape(x) else None
            if n is None:
                raise ValueError(f"fm.to_torch: argument {i} is mapped (in_axes 0) but has a "
                                 f"leaf without a leading batch axis; give it in_axes None")
            if size is not None and n != size:
                raise ValueError(f"fm.to_torch: mapped arguments disagree on the batch size: "
                                 f"{where} has {size} examples but argument {i} has {n}")
            size, where = n, f"argument {i}"
    return size


def _dtype(flat: list, torch: Any) -> Any:
    for leaves, _ in flat:
        for x in leaves:
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                return x.dtype
    return torch.float64


def _indices(shape: tuple) -> list:
    return list(itertools.product(*[range(n) for n in shape]))


def _elements(torch: Any, leaf: Any, axis: Any, dtype: Any) -> list:
    """One tensor per scalar a leaf holds per example (batched: shape ``(B,)``)."""
    if not hasattr(leaf, "shape"):
        return [torch.as_tensor(float(leaf), dtype=dtype)]
    t = torch.as_tensor(leaf).to(dtype)
    lead = (slice(None),) if axis == 0 else ()
    return [t[lead + idx] for idx in _indices(tuple(t.shape[len(lead):]))]


def _example(leaf: Any, axis: Any, level: int) -> Any:
    """Example 0's value of a leaf, as nested tuples of fresh variables."""
    if not hasattr(leaf, "shape"):
        return variable(float(leaf), level)
    value = leaf.detach().cpu().double().numpy() if hasattr(leaf, "detach") else leaf
    value = value[0] if axis == 0 else value

    def build(v: Any) -> Any:
        if getattr(v, "ndim", 0) == 0:
            return variable(float(v), level)
        return tuple(build(r) for r in v)

    return build(value)


def _trace(f: Callable, args: tuple, axes: tuple, flat: list) -> tuple:
    level = next_level()
    examples, inputs = [], []
    for (leaves, td), ax in zip(flat, axes):
        per = [_example(x, ax, level) for x in leaves]
        inputs += [v for p in per for v in tr.leaves(p)]
        examples.append(tr.unflatten(td, per))
    log: list = []
    token = GUARDS.set(log)
    try:
        out = f(*examples)
    finally:
        GUARDS.reset(token)
    outs, out_def = tr.flatten(out)
    try:
        program = ir.lower(outs, inputs, log, level)
    except ir.NotCompilable as e:
        raise NotImplementedError(f"fm.to_torch cannot lower this function: {e}") from None
    if program.guards:
        raise ValueError("fm.to_torch: the function branches on a traced value (a comparison "
                         "in Python control flow); a torch graph cannot follow per-example "
                         "branches: use fm.maximum, fm.minimum or fm.relu instead")
    if any(s != () for s in program.shapes):
        raise NotImplementedError("fm.to_torch: the function uses fm.vmap; lower the "
                                  "per-example function instead (to_torch already batches)")
    return program, out_def


def _run(torch: Any, p: ir.Program, inputs: list, size: int | None, dtype: Any) -> list:
    values: list = list(inputs) + [None] * (p.size - p.n_inputs)
    for i in range(p.n_inputs, p.size):
        op, param = p.ops[i], p.params[i]
        args = [values[a] for a in p.args[i]]
        if op == "const":
            values[i] = torch.as_tensor(param, dtype=dtype)
        elif op in TORCH:
            values[i] = TORCH[op](torch, *args)
        elif op == "factor" and param in _FACTORS:
            values[i] = _FACTORS[param](torch, *args)
        elif op == "select":
            values[i] = torch.where(param(*args[:-2]), args[-2], args[-1])
        elif hasattr(param, "torch"):
            values[i] = param.torch(torch, *args)
        else:
            raise NotImplementedError(f"fm.to_torch: no torch form for node op {op!r}")
    outs = [values[o] for o in p.outputs]
    shape = () if size is None else (size,)
    return [o.expand(shape) if isinstance(o, torch.Tensor) else torch.full(shape, o)
            for o in outs]
