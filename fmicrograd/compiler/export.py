"""``fm.to_torch``: a function prototyped here, run by torch.

``to_torch(f, in_axes)`` traces ``vmap(f, in_axes)`` once per input structure
(as ``jit`` does), optimizes the graph and generates the same batched array
code as ``jit``, bound to torch functions instead of numpy's: one tensor
operation per group of same-op nodes, reading one flat, differentiable
tensor of all inputs. The result is differentiable by torch autograd with
fmicrograd's derivative conventions (torch's: relu'(0) = 0 and so on), so a
model moves to torch's optimizers and devices unchanged.

>>> import torch
>>> f = to_torch(lambda w, x: fm.tanh(fm.dot(w, x)), in_axes=(None, 0))
>>> w = torch.tensor([0.5, -1.0], dtype=torch.float64, requires_grad=True)
>>> y = f(w, torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64))
>>> y.shape, y.sum().backward(), w.grad.shape
(torch.Size([2]), None, torch.Size([2]))
"""

from __future__ import annotations

import contextlib
import functools
from collections import OrderedDict
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..batching.vectorize import Batched, vmap
from ..core import numeric as num
from ..core import pytree as tr
from ..core.control import CHECKS, EVERY_EXAMPLE, check_callable, running
from ..core.expr import GUARDS, next_level
from ..core.torch_ops import TORCH
from . import autobatch, codegen, guards, ir
from .jit_io import variables

__all__ = ["to_torch"]

_MAX_STRUCTURES = 32


def to_torch(f: Callable, in_axes: Any = 0) -> Callable:
    """``f`` over torch tensors, differentiable by torch autograd.

    ``in_axes`` as in ``vmap``: 0 maps an argument over the leading axis of
    its tensors (a ``(B, 2)`` tensor is ``B`` examples of two features), None
    passes it unbatched (a parameter tensor of shape ``(n,)`` is a sequence of
    ``n`` numbers). Leaves may be tensors or floats. Outputs are tensors with
    the batch on the leading axis, in ``f``'s per-example output structure.
    Python control flow on values cannot be lowered and is an error.

    >>> import torch
    >>> g = fm.to_torch(lambda x: fm.relu(x) * 2.0)
    >>> g(torch.tensor([-1.0, 3.0], dtype=torch.float64)).tolist()
    [0.0, 6.0]
    """
    check_callable(f, "to_torch")
    cache: OrderedDict = OrderedDict()

    @functools.wraps(f)
    def lowered(*args: Any, **kwargs: Any) -> Any:
        import torch

        if kwargs:  # (without this, Python's message named f, which does take them)
            raise TypeError(f"fm.to_torch({getattr(f, '__name__', 'f')}): keyword arguments "
                            f"({', '.join(sorted(kwargs))}) are not supported; pass every "
                            "argument positionally (in_axes names how each is mapped)")

        axes = _axes(in_axes, len(args))
        flat = [tr.flatten(a) for a in args]
        size = _batch_size(flat, axes)
        if size == 0:  # as torch's own functions: an empty batch, an empty result
            return _empty(lowered, args, flat, axes)
        dtype, device = _dtype(flat, torch)
        key = (tuple((td, tuple(_leaf_key(x) for x in leaves), ax)
                     for (leaves, td), ax in zip(flat, axes)), str(dtype), str(device))
        entry = cache.get(key)
        if entry is None:
            entry = cache[key] = _compile(f, flat, axes, size, torch, dtype, device)
            if len(cache) > _MAX_STRUCTURES:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        run, out_def, labels = entry
        inputs = _inputs(torch, flat, dtype, device)
        if labels and not _labels_ok(labels, inputs):  # a bad label: the trace of this
            _compile(f, flat, axes, size, torch, dtype, device)  # call raises the loss's error
        outs = [torch.as_tensor(o, dtype=dtype, device=device)  # (an output that reads no
                if isinstance(o, (float, np.floating, np.ndarray)) else o  # input: a constant)
                for o in run(inputs)]
        return tr.unflatten(out_def, _own(torch, outs, inputs))

    return lowered


def _empty(call: Callable, args: tuple, flat: list, axes: tuple) -> Any:
    """``call``'s result on a batch of no examples: run on one example of
    ones (a label a loss checks passes as 1) and cut to none, as
    ``FmModule`` does."""
    import torch

    def one_example(x: Any) -> Any:  # (a tensor's joined to it: its empty gradient flows)
        if isinstance(x, torch.Tensor):
            return torch.cat((x, x.new_ones((1, *x.shape[1:])).detach()))
        return np.ones((1, *x.shape[1:]))

    one = [tr.unflatten(td, [one_example(x) for x in leaves]) if ax is not None else a
           for a, (leaves, td), ax in zip(args, flat, axes)]
    return tr.map(lambda o: o[:0], call(*one))


def _own(torch: Any, outs: list, inputs: Any) -> list:
    """``outs`` with a copy of each output that is a view of ``inputs``: with
    one tensor argument ``inputs`` is that tensor's own memory (a reshape), and
    an output returning an input (``lambda x: x``) let an in-place change of
    the result change the caller's tensor, and the other way round."""
    try:
        base = inputs.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # (a torch.func transform's wrapped tensor)
        return outs
    return [o.clone() if isinstance(o, torch.Tensor) and not _wrapped(torch, o)
            and o.untyped_storage().data_ptr() == base else o for o in outs]


def _inputs(torch: Any, flat: list, dtype: Any, device: Any) -> Any:
    """Every input number in one differentiable tensor (runs of 0-d tensors
    stacked at once: one autograd node each, not one per number)."""
    parts, run = [], []
    for leaves, _ in flat:
        for x in leaves:
            x = torch.as_tensor(x, dtype=dtype, device=device)
            if x.dim() == 0:
                run.append(x)
                continue
            if run:
                parts.append(torch.stack(run))
                run = []
            parts.append(x.reshape(-1))
    if run:
        parts.append(torch.stack(run))
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _axes(in_axes: Any, nargs: int) -> tuple:
    axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * nargs
    if len(axes) != nargs or any(a not in (0, None) or isinstance(a, bool) for a in axes):
        raise ValueError(f"fm.to_torch: in_axes must be 0, None or a tuple of those with one "
                         f"entry per argument ({nargs}), got {in_axes!r}")
    return axes


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
            if not getattr(x, "shape", ()):
                raise ValueError(f"fm.to_torch: argument {i} is mapped (in_axes 0) but has a "
                                 f"leaf without a leading batch axis; give it in_axes None")
            n = x.shape[0]
            if size is not None and n != size:
                raise ValueError(f"fm.to_torch: mapped arguments disagree on the batch size: "
                                 f"{where} has {size} examples but argument {i} has {n}")
            size, where = n, f"argument {i}"
    return size


def _dtype(flat: list, torch: Any) -> tuple:
    found = None
    for leaves, _ in flat:
        for x in leaves:
            if (x.is_complex() if isinstance(x, torch.Tensor) else np.iscomplexobj(x)):
                raise TypeError(f"fm.to_torch: an argument is complex ({type(x).__name__} of "
                                f"shape {tuple(np.shape(x))}); fm computes with real numbers: "
                                "pass x.real (or torch.view_as_real(x) for both parts)")
            if found is None and isinstance(x, torch.Tensor) and x.is_floating_point():
                found = x.dtype, x.device
    return found if found is not None else (torch.float64, torch.device("cpu"))


def _values(x: Any) -> Any:
    if hasattr(x, "detach"):
        import torch

        if _wrapped(torch, x):
            raise TypeError(
                "fm.to_torch: the first call for these shapes runs under a torch.func transform "
                "(torch.func.grad, vmap, jacrev...), whose tensors hold no numbers to trace "
                "with: call the exported function once on plain tensors of the same shapes "
                "and dtype first; later calls under torch.func reuse that trace")
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _wrapped(torch: Any, x: Any) -> bool:
    """Whether tensor ``x`` is a ``torch.func`` transform's (it has no storage
    of its own to read)."""
    functorch = getattr(torch._C, "_functorch", None)
    return functorch is not None and functorch.is_functorch_wrapped_tensor(x)


def _tuples(x: Any) -> Any:
    return tuple(_tuples(r) for r in x) if isinstance(x, np.ndarray) else x


def _compile(f: Callable, flat: list, axes: tuple, size: int | None, torch: Any, dtype: Any,
             device: Any) -> tuple:
    level = next_level()
    inputs: list = []
    args = []
    for (leaves, td), ax in zip(flat, axes):
        objs = [variables(_values(x), level, inputs) for x in leaves]
        if ax is None:
            args.append(tr.unflatten(td, [_tuples(o) if o.ndim else o.item() for o in objs]))
        else:  # the sequence of examples vmap maps over
            args.append([tr.unflatten(td, [_tuples(o[i]) for o in objs])
                         for i in range(size)])  # type: ignore[arg-type]  # one axis is mapped
    log: list = []
    checks: list = []  # the labels fm.losses checked: those that are inputs, at every call
    olds = GUARDS.get(), EVERY_EXAMPLE.get(), CHECKS.get()  # (set again at the end)

    def g(*a: Any) -> Any:  # a vmap result f returns: the tuple of its examples (fm.tree's
        return tr.per_example(f(*a))  # view), each then a tensor over to_torch's batch

    try:  # (as jit traces: x.value and text made of a traced value would freeze the trace's)
        GUARDS.set(log)
        EVERY_EXAMPLE.set(True)
        CHECKS.set(checks)
        with running(level, "fm.to_torch", traces=True):
            out = vmap(g, in_axes=axes)(*args) if size is not None else g(*args)
    except TypeError as e:  # (Python's own, from f: say what f was handed)
        held = [i for i, ((leaves, _), ax) in enumerate(zip(flat, axes))
                if any(len(getattr(x, "shape", ())) > (ax is not None) for x in leaves)]
        if held and ("sequence" in str(e) or "tuple" in str(e)):
            raise TypeError(f"{e} (fm.to_torch handed f argument {held[0]} as tuples of "
                            "numbers: a tensor of shape (B, n) under in_axes 0 is B examples, "
                            "each a tuple of n numbers (fm computes with scalars), and one of "
                            "shape (n,) under in_axes None is a tuple of n numbers; index them "
                            "(x[0]) or reduce them with fm functions (fm.dot, fm.sum))") from e
        raise
    finally:
        for var, old in zip((GUARDS, EVERY_EXAMPLE, CHECKS), olds):
            var.set(old)
    if isinstance(out, Batched):
        outs, out_def = list(out.leaves), out.treedef
    elif size is not None:  # nothing traced: the same constants for every example
        outs, out_def = tr.flatten(out[0])
        outs = [np.stack([np.asarray(tr.leaves(o)[k], float) for o in out])
                for k in range(len(outs))]
    else:
        outs, out_def = tr.flatten(out)
    branch = ValueError("fm.to_torch: the function branches on a traced value (a comparison "
                        "in Python control flow, or x > y given to fm.where: where the batch's "
                        "examples agree it is one bool); a torch graph cannot follow "
                        "per-example branches: select with fm.where(fm.greater(x, y), a, b) (or "
                        "fm.maximum, fm.minimum, fm.relu, fm.clip) instead")
    try:
        program = ir.lower(outs, inputs, log, level, detach=True,  # torch differentiates it
                           checks=checks)
    except ir.NotCompilable as e:
        if str(e) == ir.PER_EXAMPLE_GUARD:
            raise branch from None
        raise NotImplementedError(f"fm.to_torch cannot lower this function: {e}") from None
    if program.guards:
        raise branch
    constant = functools.partial(_constant, torch, dtype, device)
    labels: list = guards.value_checks(program)
    derived = guards.derived_labels(program)
    if derived is not None:  # labels computed from the inputs: numpy code computes them
        from .compile import _compile as numpy_program  # (again at every call, as jit's)

        labels.append((numpy_program(ir.optimize(derived[0]))[0], derived[1]))
    run = autobatch.batched_program(_own_pow(_cut(ir.optimize(program))), _namespace(torch, dtype),
                                    constant, views=False, in_place=False)
    return run, out_def, labels


def _labels_ok(labels: list, inputs: Any) -> bool:
    """Whether every label input passes its loss's check (``guards.value_checks``),
    reading those entries only (the features may be most of the tensor)."""
    import torch

    if _wrapped(torch, inputs):  # a torch.func transform's tensor holds no numbers to
        return True  # read: the call that traced checked the labels (as until round 45)
    values = inputs.detach()
    for where, ok in labels:
        if callable(where):  # (computed from the inputs: ``guards.derived_labels``)
            found = where(values.cpu().numpy().astype(float))
            if not all(np.all(o(np.asarray(v, dtype=float))) for v, o in zip(found, ok)):
                return False
        elif not ok(values[torch.from_numpy(where)].cpu().numpy().astype(float)).all():
            return False
    return True


def _differentiated(op: str, args: tuple) -> tuple:
    """The arguments of an ``op`` node that torch's autograd differentiates
    (not a comparison's, a ``where``'s or ``select``'s condition, a rule
    factor's or what ``stop_gradient`` reads)."""
    if op in ("stop_gradient", "greater", "greater_equal", "factor"):
        return ()
    if op == "where":
        return args[1:]
    if op == "select":
        return args[-2:]
    return args


def _own_pow(p: ir.Program) -> ir.Program:
    """``p`` with every ``**`` whose exponent is a constant as an op of its own
    (``**c``, the same code): in one tensor operation with a traced exponent's
    ``**``, its rows would take that one's rule, whose ``d/db`` at a negative
    base is NaN; torch's double backward multiplies that row by its zero
    cotangent and passes the NaN to the base (``x ** 3.0 + 2.0 ** x`` had a NaN
    second derivative at ``x = -2.5``)."""
    ops, args = p.ops, p.args
    for i, op in enumerate(ops):
        if op == "**" and ops[args[i][1]] == "const":
            ops[i] = "**c"
    return p


def _cut(p: ir.Program) -> ir.Program:
    """``p`` with the arguments of every node no output's derivative needs
    (one read only by ``stop_gradient``, a comparison or a condition) detached.

    The code computes same-op nodes in one tensor operation, so such a node
    can share one with a differentiated node; its row then gets a zero
    cotangent, which its own partials turn into NaN where they are infinite
    (``0 * inf`` in ``sqrt``'s backward at 0) and pass back to its arguments.
    fmicrograd never differentiates that node: its derivatives stay finite.
    """
    ops, args, shapes = p.ops, p.args, p.shapes
    needed = [False] * p.size
    for o in p.outputs:
        needed[o] = True
    for i in range(p.size - 1, -1, -1):  # consumers come after what they use
        if needed[i]:
            for a in _differentiated(ops[i], args[i]):
                needed[a] = True

    def cut(i: int) -> bool:  # a computed node no derivative needs
        return not needed[i] and ops[i] not in ("in", "const", "stop_gradient")

    def attached(a: int) -> bool:  # a value torch differentiates, read by a cut node
        return not cut(a) and ops[a] not in ("const", "stop_gradient")

    if not any(cut(i) and any(map(attached, args[i])) for i in range(p.size)):
        return p
    q = p.blank()
    new: list = [0] * p.size
    detached: dict = {}  # node -> its detached copy in q

    def put(op: str, a: tuple, param: Any, shape: tuple) -> int:
        q.ops.append(op)
        q.args.append(a)
        q.params.append(param)
        q.shapes.append(shape)
        return q.size - 1

    merged: dict = {}  # (op, arguments, parameter) -> node in q: the array code takes
    # two same-op nodes to differ, and a cut node reading a detached copy can become
    # one that exists (tanh(x) read by a condition, tanh(stop_gradient(x)) by a branch)
    for i in range(p.size):
        kids = args[i]
        if cut(i):
            for a in kids:
                if a not in detached and attached(a):
                    detached[a] = put("stop_gradient", (new[a],), None, shapes[a])
                    merged[("stop_gradient", (new[a],), None)] = detached[a]
            kids = tuple(detached[a] if a in detached else new[a] for a in kids)
        else:
            kids = tuple(new[a] for a in kids)
        key = None if ops[i] in ("in", "const") else (ops[i], kids, p.params[i])
        try:
            found = merged.get(key) if key is not None else None
        except TypeError:  # a parameter without a hash: kept as it is
            found = key = None
        if found is not None:
            new[i] = found
            continue
        new[i] = put(ops[i], kids, p.params[i], shapes[i])
        if key is not None:
            merged[key] = new[i]
        if ops[i] == "stop_gradient":
            detached.setdefault(args[i][0], new[i])
    q.outputs = [new[o] for o in p.outputs]
    q.guards = [(op, new[a], new[b], e) for op, a, b, e in p.guards]
    return q


def _constant(torch: Any, dtype: Any, device: Any, value: np.ndarray) -> Any:
    kind = torch.long if value.dtype.kind in "iu" else dtype
    return torch.as_tensor(value, dtype=kind, device=device)


def _namespace(torch: Any, dtype: Any) -> dict:
    """The names generated array code calls (see ``autobatch.NUMPY``), on torch."""
    def t(x: Any) -> Any:
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=dtype)

    def share(a: Any, b: Any) -> Any:
        return torch.where(a > b, 1.0, torch.where(a == b, 0.5, 0.0)).to(dtype)

    factors = {num.step: lambda x: (x > 0).to(dtype), num.sign: torch.sign, num.share: share}
    def power(a: Any, b: Any) -> Any:  # a constant exponent as a number: torch.pow then
        # computes ** 0.5 as sqrt, as eager fm and numpy do (a tensor one takes C's pow)
        if isinstance(b, torch.Tensor) and b.requires_grad:  # a traced exponent
            return _pow(torch)(t(a), b)
        if isinstance(b, torch.Tensor) and b.numel() == 1 and not _wrapped(torch, b):
            b = b.item()
        if isinstance(b, torch.Tensor):  # ** 0.5 as sqrt in the rows that have it (as
            return _half_as_sqrt(torch, a, b, torch.pow(a, b))  # numeric.power_array)
        if b == -0.5:  # as a number torch takes rsqrt: -inf at -0.0 and NaN at -inf, where
            return torch.pow(a, torch.tensor(b, dtype=dtype))  # C's pow (fm's) gives inf, 0
        return torch.pow(a, b)

    shim = SimpleNamespace(
        power=power, abs=torch.abs, exp=torch.exp, log=torch.log, sqrt=torch.sqrt,
        tanh=torch.tanh, sin=torch.sin, cos=torch.cos, sign=torch.sign, matmul=torch.matmul,
        einsum=torch.einsum, where=torch.where,
        broadcast_to=lambda a, shape: torch.broadcast_to(t(a), shape),
        # (the array code calls numpy's ``maximum(b, a)``, which gives its second argument
        # at a tie of 0.0 and -0.0: fm's ``maximum(a, b)``, which gives its first)
        maximum=lambda b, a: TORCH["maximum"](torch, t(a), t(b)),
        minimum=lambda b, a: TORCH["minimum"](torch, t(a), t(b)))

    def call(fn: Callable, *args: Any) -> Any:
        if fn not in factors:
            raise NotImplementedError(f"fm.to_torch: no torch form for rule factor {fn!r}")
        return factors[fn](*args)

    return {"_np": shim, "_cat": torch.cat, "_stack": lambda xs: torch.stack([t(x) for x in xs]),
            "_errstate": lambda **_: contextlib.nullcontext(),
            "_sigmoid": lambda a: TORCH["sigmoid"](torch, a),
            "_relu": lambda a: TORCH["relu"](torch, a), "_share": share,
            "_tofloat": lambda b: b.to(dtype),
            "_tolist": lambda a: list(a.unbind(0)), "_out": lambda a: list(a.unbind(0)),
            "_copy": lambda a: a,
            "_rev": lambda a: torch.flip(a, (0,)),
            "_detach": lambda a: a.detach() if isinstance(a, torch.Tensor) else a,
            "_adds": codegen.adds,
            "_fwd": functools.partial(_forward, torch), "_call": call,
            **{f"_op_{op}": _torch_op(TORCH[op], torch, t) for op in autobatch.CALLED_OPS}}


_POW: dict = {}  # torch module -> the autograd Function of ``_pow``


def _pow(torch: Any) -> Callable:
    """``a ** b`` for a traced exponent, differentiated by fmicrograd's rule
    for ``**`` (``core.rules._pow``) at every order, backward and forward.

    torch's ``pow`` backward masks ``d/da`` wherever ``b == 0``, so its
    derivative in ``b`` there is 0, not ``1 / a``: ``(x * x + 0.5) **
    tanh(y)`` had an asymmetric Hessian at ``y = 0``, wrong in one corner.
    The backward is written in torch operations (this function's own among
    them), so torch differentiates it again.
    """
    if torch not in _POW:
        class Pow(torch.autograd.Function):
            generate_vmap_rule = True  # so torch.func transforms accept it

            @staticmethod
            def forward(a: Any, b: Any) -> Any:
                return _half_as_sqrt(torch, a, b, torch.pow(a, b))

            @staticmethod
            def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
                ctx.save_for_backward(*inputs)
                ctx.save_for_forward(*inputs)

            @staticmethod
            def backward(ctx: Any, g: Any) -> Any:
                a, b = ctx.saved_tensors
                return _pow_slopes(torch, a, b, g)

            @staticmethod
            def jvp(ctx: Any, da: Any, db: Any) -> Any:  # forward mode (torch.func.jvp)
                a, b = ctx.saved_tensors
                one = torch.ones_like(torch.pow(a, b))
                sa, sb = _pow_slopes(torch, a, b, one)
                terms = [d * s for d, s in ((da, sa), (db, sb)) if d is not None]
                return terms[0] if len(terms) == 1 else terms[0] + terms[1]

        _POW.setdefault(torch, Pow.apply)
    return _POW[torch]


def _half_as_sqrt(torch: Any, a: Any, b: Any, out: Any) -> Any:
    """``out`` (``a ** b``) with ``sqrt(a)`` where ``b`` is 0.5, as eager fm
    computes it (C's pow gives ``inf`` at ``-inf`` and ``0.0`` at ``-0.0``);
    each branch reads safe values where it is not taken, so that neither's
    derivative is NaN there."""
    if not isinstance(b, torch.Tensor):
        return out
    half = b == 0.5
    root = torch.sqrt(torch.where(half, a, 1.0))
    other = torch.pow(torch.where(half, 1.0, a), b) if out.requires_grad else out
    return torch.where(half, root, other)


def _pow_slopes(torch: Any, a: Any, b: Any, g: Any) -> tuple:
    """``(d/da, d/db)`` of ``a ** b`` times ``g``, as ``core.rules._pow`` on nodes."""
    out = _pow(torch)(a, b)
    zero_b, zero_base = b == 0, (a == 0) & (b >= 0)
    a1 = torch.where(zero_b, 1.0, a)  # safe values where a branch is masked
    a2 = torch.where(zero_base, 1.0, a)
    a3 = torch.where((a == 0) | (a != a), 1.0, a)
    b0 = torch.where(zero_b, b, 0.0)
    out0 = torch.where(zero_b, out, 1.0)
    g0 = torch.where(g.abs() < float("inf"), g, 0.0)
    general = g * (b * _pow(torch)(a1, b - 1.0))
    da = torch.where((a == 0) & zero_b, 0.0,
                     torch.where(zero_b, g0 * (b0 / a3 * out0), general))
    db = torch.where(zero_base, 0.0, g * (out * torch.log(a2)))
    return da.sum_to_size(a.shape), db.sum_to_size(b.shape)


def _forward(torch: Any, param: Any, *args: Any) -> Any:
    """A node with its own rule, run by torch: an op of ``vmap`` (its ``torch``
    form); a ``custom_vjp``, ``custom_jvp``, ``checkpoint`` or inner ``jit``
    has none."""
    method = getattr(param, "torch", None)
    if method is None:
        fn = getattr(param, "fn", None)
        name = "jit" if hasattr(fn, "source") else getattr(fn, "who", type(param).__name__)
        raise NotImplementedError(f"fm.to_torch cannot export a {name} inside the function "
                                  "(its rule is Python code that torch's autograd cannot "
                                  "follow); export the function without it, or call fm.grad "
                                  "yourself")
    return method(torch, *args)


def _torch_op(fn: Callable, torch: Any, t: Callable) -> Callable:
    """``TORCH`` entry ``fn`` on tensors, plain constants converted first."""
    return lambda *args: fn(torch, *[t(a) for a in args])
