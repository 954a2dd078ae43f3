"""Array code for a program: one numpy operation per group of nodes.

Group ``j`` of ``k`` nodes with shape ``s`` is computed as one array
``g{j}`` of shape ``(k, *s)``: row ``r`` is one node's value. An argument is
gathered from where its nodes live (the input vector ``I``, a group, baked
constants) by a view when the rows are contiguous, else by one fancy index.
A group of ``dot`` (or batch ``bdot``) nodes whose operand lists form a grid,
as the neurons of a layer do (each weight row with the same inputs), is one
matrix product. Guards are checked as soon as their operands exist.

>>> from fmicrograd.core.expr import variable, next_level
>>> from fmicrograd.compiler.ir import lower, optimize
>>> import numpy as np
>>> lv = next_level()
>>> w = [variable(float(i), lv) for i in range(6)]
>>> h = [fm.relu(fm.dot(w[2 * j: 2 * j + 2], (1.0, -1.0))) for j in range(3)]
>>> run = batched_program(optimize(lower(h, w, [], lv)))
>>> run(np.array([0.0, 1.0, 5.0, 2.0, 4.0, 4.0]))
[0.0, 3.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..core import numeric as num
from . import hoist, layers
from .codegen import Source, adds, sum_text
from .contract import contract, contract_rows
from .gather import Rows
from .inline import inline
from .ir import Program, lower  # noqa: F401 -- doctests use lower
from .reuse import UFUNCS, plain, reuse
from .schedule import batched_cost, groups, merge_later, scalar_cost

__all__ = ["batched_program", "worth_it", "NUMPY", "CALLED_OPS"]

_NP = {
    "+": "{0} + {1}", "-": "{0} - {1}", "*": "{0} * {1}", "/": "{0} / {1}",
    "**": "_np.power({0}, {1})", "neg": "-{0}", "abs": "_np.abs({0})", "exp": "_np.exp({0})",
    "**c": "_np.power({0}, {1})",  # (to_torch's ``**`` of a constant exponent: export._own_pow)
    "stop_gradient": "_detach({0})",  # (kept by to_torch's program only: see ir.lower)
    "log": "_np.log({0})", "sqrt": "_np.sqrt({0})", "tanh": "_np.tanh({0})",
    "sigmoid": "_sigmoid({0})", "relu": "_relu({0})", "sin": "_np.sin({0})",
    "cos": "_np.cos({0})", "maximum": "_np.maximum({1}, {0})",  # (the first argument
    "minimum": "_np.minimum({1}, {0})",  # at a tie of 0.0 and -0.0, as eager: numpy's ufunc
    # gives its second)
    # each a call of its array function, ``_op_<name>`` (numeric's here, torch's in export)
    "tan": "_op_tan({0})", "sinh": "_op_sinh({0})", "cosh": "_op_cosh({0})",
    "asin": "_op_asin({0})", "acos": "_op_acos({0})", "atan": "_op_atan({0})",
    "atan2": "_op_atan2({0}, {1})", "asinh": "_op_asinh({0})", "acosh": "_op_acosh({0})",
    "atanh": "_op_atanh({0})", "erf": "_op_erf({0})", "erfc": "_op_erfc({0})",
    "log1p": "_op_log1p({0})", "expm1": "_op_expm1({0})", "log2": "_op_log2({0})",
    "log10": "_op_log10({0})", "softplus": "_op_softplus({0})",
    "log_sigmoid": "_op_log_sigmoid({0})", "sign": "_op_sign({0})",
    "hypot": "_op_hypot({0}, {1})", "clip": "_op_clip({0}, {1}, {2})",
    "where": "_op_where({0}, {1}, {2})", "greater": "_op_greater({0}, {1})",
    "greater_equal": "_op_greater_equal({0}, {1})",
}
# ops whose groups compute row by row from same-shape arguments (their rows in any order)
_ROWWISE = frozenset(_NP) | {"sum", "select", "factor"}
# the ops ``_NP`` calls as ``_op_<name>``
CALLED_OPS = tuple(op for op, text in _NP.items() if text.startswith("_op_"))
# row-wise ops as numpy's calls writing into a given array ``{o}`` (``layers``: a layer's
# inputs above a row of ones); ``{z}``: ReLU's zeros, as ``_relu`` reads
_INTO = {op: _NP[op][:-1] + ", out={o})"
         for op in ("tanh", "exp", "sin", "cos", "abs", "maximum", "minimum")}
_INTO.update({op: f"{call}({{0}}, {{1}}, out={{o}})" for op, call in UFUNCS.items()})
_INTO["relu"] = "_np.maximum({0}, {z}, out={o})"
_FACTORS = {num.step: "_tofloat({0} > 0)", num.sign: "_op_sign({0})",
            num.share: "_share({0}, {1})"}
_ZEROS: dict = {}  # (shape, dtype) -> a read-only array of zeros (see ``_relu``)
_MOST_ZEROS = 1 << 20  # entries: larger arrays take the scalar path (no 8 MB+ cache)
_ZEROS_BYTES = 1 << 25  # and all the cached zeros hold at most 32 MB (32 shapes of 8 MB: 256)


def _relu(x: Any) -> Any:
    """``max(x, 0)``, against an array of zeros of ``x``'s shape: numpy 2.4
    runs ``maximum`` of two arrays in SIMD code, and against the scalar 0.0
    element by element, 2.4x slower on a 128 x 500 layer. The same bits (NaN
    stays NaN, -0.0 becomes 0.0, either way).

    >>> _relu(np.array([-1.0, 2.0, -0.0])).tolist()
    [0.0, 2.0, 0.0]
    """
    shape = getattr(x, "shape", ())
    if not shape or x.size > _MOST_ZEROS:
        return np.maximum(x, 0.0)
    return np.maximum(x, zeros(shape, x.dtype))


def zeros(shape: tuple, dtype: Any) -> np.ndarray:
    """A read-only array of zeros of ``shape`` and ``dtype``, from one cache of
    the latest shapes (``_relu``'s, and the constants ``inline`` bakes in).

    >>> zeros((2,), np.dtype(float)) is zeros((2,), np.dtype(float))
    True
    """
    key = (shape, dtype)
    z = _ZEROS.get(key)
    if z is None:
        held = list(_ZEROS.values())  # (one C-level copy: other threads add and clear)
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if len(held) >= 32 or sum(a.nbytes for a in held) + size > _ZEROS_BYTES:
            _ZEROS.clear()  # the shapes of the latest programs only
        z = np.zeros(shape, dtype=dtype)
        z.flags.writeable = False
        _ZEROS[key] = z
    return z


def _tofloat(b: Any) -> Any:
    """A comparison's booleans as 0.0 and 1.0: read as bytes, which numpy 2.4
    converts in SIMD code, 1.6x faster than from booleans (a comparison's
    booleans are the bytes 0 and 1).

    >>> _tofloat(np.array([1.0, -1.0]) > 0).tolist()
    [1.0, 0.0]
    """
    return b.view(np.uint8).astype(float) if b.ndim else b.astype(float)


def _float_scalar(a: Any) -> Any:
    """A numpy float64 scalar as a Python float, for a custom rule's ``fwd``:
    the user's code then runs as eagerly and in the scalar backend (``1.0 / x``
    at 0.0 raises; numpy's gave inf)."""
    return float(a) if a.__class__ is np.float64 else a


class _Numpy:
    """numpy for the generated code, with ``power`` as ``numeric.power_array``
    (``** 0.5`` as sqrt with an array exponent too, as floats compute it)."""

    def __getattr__(self, name: str) -> Any:
        found = getattr(np, name)
        setattr(self, name, found)  # looked up once
        return found

    @staticmethod
    def power(a: Any, b: Any) -> Any:
        return num.power_array(np, a, b)


# The names generated code uses; ``export`` binds the same names to torch.
NUMPY = {"_np": _Numpy(), "_cat": np.concatenate, "_stack": np.stack, "_errstate": np.errstate,
         "_sigmoid": lambda x: num._sigmoid(np, x), "_share": num._ARRAY_FUNCS["share"](np),
         "_tofloat": _tofloat, "_tolist": lambda a: a.tolist(),
         "_out": lambda a: a.tolist(),
         "_copy": np.array, "_fwd": lambda param, *args: param.forward(*map(_float_scalar, args)),
         "_call": lambda fn, *args: fn(*args), "_relu": _relu,
         "_rev": lambda a: a[::-1], "_detach": lambda a: a, "_adds": adds,
         "_reduce": np.add.reduce, "_ones_below": layers.ones_below}
NUMPY.update({f"_op_{op}": getattr(num, op) for op in CALLED_OPS})




_FEW = 4  # sums of up to this many terms add one gathered array per term
_SAMPLE = 16  # a group's row order is judged by the reads of this many arguments at most


def worth_it(p: Program) -> bool:
    """Whether batched array code beats straight-line float code for ``p``.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> lv = next_level()
    >>> x = variable(1.0, lv)
    >>> worth_it(lower([x * x + 1.0], [x], [], lv))
    False
    """
    if p.size > 20000:  # (one line per operation costs ~10 us of Python compile and ~3 KB of
        # memory each, where array code has a line per group: a long program takes the
        # float code where groups average under 6 operations, a long scalar chain, which
        # array code ran as one numpy call per operation: 20x slower; reviews measured 2-6
        # chains side by side faster as float code, 10 as fast, 30 2x slower, with 3.5x the
        # memory from 10 on)
        p.found_groups = groups(p)  # (``batched_program`` takes them)
        return p.size > 6 * len(p.found_groups)
    return batched_cost(p) < scalar_cost(p)


def batched_program(p: Program, namespace: dict = NUMPY,
                    constant: Callable | None = None, views: bool = True,
                    in_place: bool = True, any_order: bool = False) -> Callable:
    """``run(I) -> output list`` (None when a guard fails) for input vector ``I``
    (a tuple of arrays when the inputs have several shapes, see ``gather``).

    ``namespace`` binds the array functions the code calls (numpy's by
    default); ``constant`` converts the baked numpy constants for them.
    ``views``: matrix products read strided views and take their rows in the
    order that makes reads cheap (numpy's BLAS gives the same bits for those;
    torch's kernels may not, so ``export`` passes False: contiguous operands
    in the graph's order, as 3-d ``matmul``). ``in_place``: numpy operations
    write into arrays no later line reads (see ``reuse``; off for ``export``,
    whose tensors torch's autograd keeps). ``any_order``: for all-scalar
    outputs, return them in the order they are cheapest to read (``split``'s
    batch sums): ``run.__fm_order__`` lists their positions in ``p.outputs``.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> lv = next_level()
    >>> xs = [variable(float(i), lv) for i in range(3)]
    >>> batched_program(lower([fm.exp(x) * 0.0 for x in xs], xs, [], lv))(np.zeros(3))
    [0.0, 0.0, 0.0]
    """
    return _Emitter(p, views, in_place, any_order).build(namespace, constant)


class _Emitter:
    def __init__(self, p: Program, views: bool = True, in_place: bool = True,
                 any_order: bool = False) -> None:
        self.p = p
        self.in_place = in_place
        self.any_order = any_order
        self.order: list | None = None
        self.plan: tuple = (None, None)  # the last group's row-wise op and argument texts
        self.src = Source()
        self.views = views
        self.rows = Rows(p, self.src, views, _ROWWISE, any_order)
        self.gather = self.rows.gather
        self.elem = self.rows.elem
        self.augmented: set = set()  # ``Rows``' arrays with a row of ones under their rows
        # for guards, the group after which each node exists: -1 for inputs and
        # constants, and "not yet" (p.size) for the others until their group is emitted
        self.ready = np.array([-1 if op in ("in", "const") else p.size for op in p.ops]
                              if p.guards else [], dtype=np.intp)

    def arg(self, members: list, pos: int, ndim: int, column: Any = None) -> str:
        """Argument ``pos`` of every member, shaped to broadcast against ``ndim``
        trailing axes (a shared argument is one broadcast row); ``column``:
        those arguments, if known."""
        ids = [self.p.args[m][pos] for m in members] if column is None else column
        return self.rows.column(ids, ndim)

    # groups -------------------------------------------------------------------
    def build(self, namespace: dict, constant: Callable | None) -> Callable:
        p = self.p
        found = merge_later(p, p.found_groups or groups(p), _ROWWISE)
        if len(self.rows.inputs) > 1:
            self.src.emit(f"{', '.join(f'I{c}' for c in range(len(self.rows.inputs)))}, = I")
        pending = list(p.guards)
        pending = self._guards(pending, -1)
        plans: list = []
        shapes: list = []
        fused = (self.views and self.in_place and layers.plan(p, found, _INTO)) or \
            layers.Layers()
        for j, members in enumerate(found):
            if j in fused.skipped:  # (computed with another group: ``layers``)
                continue
            var = f"g{len(plans)}"
            self.plan = (None, None)
            below = int(j in fused.augmented)  # (a row of ones under its rows)
            if below:
                order, text = self._ones_below(fused.augmented[j])
            elif j in fused.forward:
                order, text = self._affine(members, fused.forward[j])
            else:
                order, text = self._group(members)
            plans.append((len(self.src.lines), *self.plan))
            shapes.append((len(order) + below,) + p.shapes[order[0]])
            self.src.emit(f"{var} = {text}")
            self.rows.place(var, order, below)
            if below:
                self.augmented.add(len(self.rows.names) - 1)
            if pending:
                self.ready[order] = j
                pending = self._guards(pending, j)
        if pending:  # every node is computed by now: a guard left over would be dropped
            raise RuntimeError(f"fm.jit: guards {pending} were never checked (a compiler bug)")
        self._outputs()
        if self.in_place:
            reuse(self.src.lines, plans, shapes, self.src.names)
        shown = ["    with _errstate(all='ignore'):"] + ["    " + x for x in self.src.lines]
        body = self.src.lines
        texts: list[str] = []
        if self.in_place:  # (numpy code only: not ``export``'s)
            if len(self.rows.inputs) <= 1 and 0 < p.width <= hoist.MOST:
                body, texts = hoist.hoist(body, p.width)
            body = hoist.reshaped(body, self.src.names, lambda a: self.src.name(a, "c"))
            if all(plain(v) for v in self.src.names.values()):  # (every array float64)
                body = inline(body, shapes, lambda shape: self.src.name(
                    zeros(shape, np.dtype(float)), "c"))
        self.src.lines = ["    with _errstate(all='ignore'):"] + ["    " + x for x in body]
        if constant is not None:
            self.src.names = {k: constant(v) if isinstance(v, np.ndarray) else v
                              for k, v in self.src.names.items()}
        run: Any = self._held(namespace, texts) if texts else self.src.build("I", namespace)
        run.__fm_hoisted__ = run.__fm_source__  # what runs; ``lower`` shows the same
        run.__fm_source__ = "def run(I):\n" + "\n".join(shown) + "\n"  # program inline
        if self.order is not None:
            run.__fm_order__ = self.order
        return run

    def _held(self, namespace: dict, texts: list) -> Callable:
        """``run(I)`` over the body with the views of ``I`` as arguments
        ``V0, V1, ...`` made once (see ``hoist``)."""
        names = ", ".join(f"V{k}" for k in range(len(texts)))
        body: Any = self.src.build(f"I, {names}", namespace)
        views = Source()
        views.emit(f"return ({''.join(t + ', ' for t in texts)})")
        make: Any = views.build("I")
        run: Any = hoist.held(body, make, self.p.width)
        run.__fm_source__ = (make.__fm_source__.replace("def run(", "def views(", 1)
                             + body.__fm_source__)
        return run

    def _guards(self, pending: list, j: int) -> list:
        left = []
        for g in pending:
            op, a, b, expected = g
            if max(self.ready[a], self.ready[b]) <= j:
                self.src.emit(f"if ({self.elem(a)} {op} {self.elem(b)}) != {expected}: "
                              f"return None")
            else:
                left.append(g)
        return left

    def _outputs(self) -> None:
        p = self.p
        scalars = [o for o in p.outputs if p.ops[o] != "const" and p.shapes[o] == ()]
        if scalars == p.outputs:  # ``_out``: the list of floats (or, for ``fm.jit``, the vector)
            if self.any_order:
                self.order = np.argsort(self.rows.keys(scalars), kind="stable").tolist()
                scalars = [scalars[k] for k in self.order]
            self.src.emit(f"return _out({self.gather(scalars)})")
            return
        if scalars:
            self.src.emit(f"_s = _tolist({self.gather(scalars)})")
        place = {o: k for k, o in enumerate(scalars)}
        items = []
        for o in p.outputs:
            if o in place:
                items.append(f"_s[{place[o]}]")
            elif p.ops[o] == "const" and not isinstance(p.params[o], np.ndarray):
                items.append(self.src.literal(p.params[o]))
            else:
                items.append(f"_copy({self.elem(o)})")
        self.src.emit(f"return [{', '.join(items)}]")

    # layers (``layers``) --------------------------------------------------------
    def _ones_below(self, xs: list) -> tuple[list, str]:
        """An elementwise group written into an array with a row of ones
        under it, its rows in the order ``xs`` (a fused layer's inputs)."""
        p = self.p
        m0 = xs[0]
        op, shape = p.ops[m0], p.shapes[m0]
        k = len(xs)
        args = [self.arg(xs, a, len(shape)) for a in range(len(p.args[m0]))]
        full = (k,) + shape
        z = self.src.name(zeros(full, np.dtype(float)), "c") if op == "relu" and \
            int(np.prod(full)) <= _MOST_ZEROS else "(0.0)"
        return list(xs), _INTO[op].format(*args, z=z, o=f"_ones_below({full})") + ".base"

    def _with_ones(self, xs: list) -> str:
        """``[X; 1]`` for inputs ``xs``: their array where it has the row of
        ones under them in this order, else a concatenation."""
        rows = self.rows
        at = np.asarray(xs, dtype=np.intp)
        var = rows.var_of[at]
        v = int(var[0])
        if v in self.augmented and rows.sizes[v] == len(xs) + 1 and np.all(var == v) and \
                np.array_equal(rows.row_of[at], np.arange(len(xs))):  # (all its rows)
            return rows.names[v]
        shape = self.p.shapes[xs[0]]
        one = self.src.name(np.ones((1,) + shape), "c")
        return f"_cat(({rows.matrix(list(xs), (len(xs),), shape)}, {one}))"

    def _affine(self, members: list, layer: tuple) -> tuple[list, str]:
        """A layer's products plus biases as one product ``[W | b] @ [X; 1]``
        (``layer``: its inputs and grid, as ``layers.plan`` found them)."""
        xs, grid = layer
        ids = np.array(grid, dtype=np.intp)
        if self.views:  # (rows in the order the weights live: a view where they are a grid)
            perm = np.argsort(self.rows.keys(ids[:, 0]), kind="stable")
            ids, members = ids[perm], [members[r] for r in perm]
        W = self.rows.matrix(ids.ravel().tolist(), (len(members), len(xs) + 1), ())
        return members, f"{W} @ {self._with_ones(xs)}"

    def _group(self, members: list) -> tuple[list, str]:
        p = self.p
        m0 = members[0]
        op, shape = p.ops[m0], p.shapes[m0]
        k, nd = len(members), len(p.shapes[m0])
        if op in _NP or op in ("select", "sum", "bsum") or (
                op == "factor" and p.params[m0] in _FACTORS):  # rows in any order
            n = len(p.args[m0])  # (judged by at most _SAMPLE of its arguments, spread out)
            positions = list(range(n)) if n <= _SAMPLE else \
                sorted(set(np.linspace(0, n - 1, _SAMPLE).astype(int).tolist()))
            # the members' arguments by position, their rows permuted with them
            members, grid = self.rows.arrange(members, positions, self.rows.arg_grid(members))
        if op in _NP or op == "select" or (op == "factor" and p.params[m0] in _FACTORS):
            if op in _NP and nd == 0:
                found = self._outer(list(grid.T))
                if found is not None:
                    return members, f"({_NP[op].format(*found)}).reshape(-1)"
            args = [self.arg(members, a, nd, column) for a, column in enumerate(grid.T)]
        if op in _NP:
            self.plan = (op, args)
            return members, _NP[op].format(*args)
        if op == "factor" and p.params[m0] in _FACTORS:
            return members, _FACTORS[p.params[m0]].format(*args)
        if op == "select":
            # the condition at the group's shape: a predicate that reads only its smaller
            # arguments (b == 0 of an unmapped exponent) would give every row one answer
            # and the result the shape of the branches it picked (as rules._select says)
            pred = self.src.name(p.params[m0], "f")
            cond = f"_np.broadcast_to({pred}({', '.join(args[:-2])}), {(k,) + shape})"
            return members, f"_np.where({cond}, {args[-2]}, {args[-1]})"
        if op == "sum":
            return members, self._sum(members, nd, grid)
        if op == "bsum":
            axes = tuple(a + 1 for a in p.params[m0])
            return members, f"{self.gather(grid[:, 0].tolist(), steps=False)}.sum(axis={axes})"
        if op == "dot":
            return self._dot(members)
        if op == "bdot":
            return self._bdot(members)
        if op == "col":  # data columns (no node per entry): their entries of ``I``
            members = sorted(members, key=lambda m: p.params[m].start)  # in the input's order
            at = np.concatenate([p.params[m].positions() for m in members])
            return members, f"{self.rows.positions(at)}.reshape({(k,) + shape})"
        if op == "stack" and all(p.shapes[a] == shape[1:] for a in p.args[m0]):
            members = self.rows.order(members, [0])  # rows in the order of their first parts
            ids = [a for m in members for a in p.args[m]]
            return members, f"{self.gather(ids)}.reshape({(k,) + shape})"
        if op == "take" and p.params[m0].lead == 0 and p.params[m0].shape == shape == \
                p.params[m0].full[1:] and all(  # (no sum down to ``shape`` after the take)
                p.shapes[p.args[m][0]] == p.params[m0].full for m in members):
            xs = [p.args[m][0] for m in members]
            if all(x == xs[0] for x in xs):
                # rows in the order of their entries: a vector taken apart whole (an
                # optimizer's update under ``vmap``, ``optim.base.leafwise``) is read as
                # it is, or as one slice, not through an index
                members = sorted(members, key=lambda m: p.params[m].index)
                entries = [p.params[m].index for m in members]
                whole = f"{self.gather(xs[:1])}[0]"
                if entries == list(range(entries[0], entries[0] + k)):
                    return members, whole if k == p.params[m0].full[0] else \
                        f"{whole}[{entries[0]}:{entries[0] + k}]"
                return members, f"{whole}[{self.src.name(np.array(entries), 'i')}]"
            # each member's entry of its source's row: the distinct sources gathered
            # once (a row per member made a members x batch copy: a gradient by a
            # list of examples' tuples, 3 x 4,000 takes, 256 MB and 58 ms a call)
            where: dict = {}
            rows = [where.setdefault(x, len(where)) for x in xs]
            index = self.src.name(np.array([p.params[m].index for m in members]), "i")
            rows_at = self.src.name(np.array(rows), "i")
            return members, f"{self.gather(list(where))}[{rows_at}, {index}]"
        return members, self._each(members)

    def _each(self, members: list) -> str:
        """The slow path: each member on its own (rare node kinds)."""
        p = self.p
        calls = []
        for m in members:
            args = ", ".join(self.elem(a) for a in p.args[m])
            param = p.params[m]
            if p.ops[m] == "factor":
                calls.append(f"_call({self.src.name(param, 'f')}, {args})")
            elif hasattr(param, "forward"):  # custom and vmap nodes
                calls.append(f"_fwd({self.src.name(param, 'f')}, {args})")
            else:
                raise ValueError(f"fm.jit: no array form for node op {p.ops[m]!r}")
        return f"_stack([{', '.join(calls)}])"

    def _sum(self, members: list, nd: int, grid: np.ndarray) -> str:
        p = self.p
        n = len(p.args[members[0]])
        classes: dict[tuple, list] = {}
        for pos in range(n):
            classes.setdefault(p.shapes[p.args[members[0]][pos]], []).append(pos)
        terms = []
        for shape, positions in classes.items():
            text = self._many(grid[:, positions], shape) if len(positions) > _FEW else \
                self._few([grid[:, pos] for pos in positions], nd == 0 and shape == ())
            if len(shape) < nd:
                text = f"{text}.reshape({(len(members),) + (1,) * (nd - len(shape)) + shape})"
            terms.append(text)
        if len(terms) == 2:
            self.plan = ("+", terms)
        return " + ".join(terms)

    def _few(self, columns: list, scalar: bool) -> str:
        """The sum of a few argument columns: broadcast grids (``_outer``) for
        ``scalar`` ones if they repeat, else one gather per column, added."""
        found = self._outer(columns) if scalar else None
        if found is not None:
            return f"({' + '.join(found)}).reshape(-1)"
        # a column of one node is one row (unless all are: the sum's rows)
        shared = [len(c) > 1 and bool(np.all(c == c[0])) for c in columns]
        shared = shared if not all(shared) else [False] * len(columns)
        reads = iter(self.rows.reads([c for c, one in zip(columns, shared) if not one]))
        parts = [self.rows.column(c[:2], 0) if one else next(reads)
                 for c, one in zip(columns, shared)]
        return " + ".join(parts) if len(parts) == 1 else f"({' + '.join(parts)})"

    def _outer(self, columns: list) -> list | None:
        """The scalar argument columns of a group (``k`` rows each) as ``(q,
        p)`` grids that broadcast, when some repeat with a period ``p`` (a
        bias added in each of ``q`` examples: ``(1, p)``) or in runs of ``p``
        (an example's value for each of ``p`` neurons: ``(q, 1)``), and the
        others (``(q, p)``) fill the grid; else None. The operation then
        reads ``p`` or ``q`` values for such a column, not ``k``."""
        k = len(columns[0])
        if k < 4:
            return None
        ids = [np.asarray(c, dtype=np.intp) for c in columns]
        period = 0
        for a in ids:  # the first column that repeats gives the period
            at = np.flatnonzero((a[1:] != a[0]) if a[1] == a[0] else (a[1:] == a[0]))
            if len(at):  # where a run of the first value ends, or where it comes again
                period = int(at[0]) + 1
                break
        if period < 2 or k % period or period == k:
            return None
        q, kinds = k // period, []
        for a in ids:
            grid = a.reshape(q, period)
            if np.all(grid == grid[0]):
                kinds.append("row" if np.any(grid[0] != grid[0, 0]) else "one")
            elif np.all(grid == grid[:, :1]):
                kinds.append("column")
            else:
                kinds.append("full")
        if not ({"row", "full"} & set(kinds) and {"column", "full"} & set(kinds)) or (
                "row" not in kinds and "column" not in kinds):
            return None
        texts = []
        for a, kind in zip(ids, kinds):
            if kind == "one":
                texts.append(self.rows.column(a[:2].tolist(), 0))
            elif kind == "row":
                texts.append(f"{self.gather(a[:period].tolist())}.reshape((1, {period}))")
            elif kind == "column":
                texts.append(f"{self.gather(a[::period].tolist())}.reshape(({q}, 1))")
            else:
                texts.append(f"{self.gather(a.tolist())}.reshape(({q}, {period}))")
        return texts

    def _many(self, ids: np.ndarray, shape: tuple) -> str:
        """The sum of many terms per member: one gather of them all, summed
        per row; but when all save a few live in one array (an unrolled
        batch's bias gradient: the examples' cotangents, plus an L2 term or
        two), one gather from there, summed, plus the few added."""
        k, n = ids.shape
        where = self.rows.var_of[ids]
        main = np.flatnonzero(np.all(where == where[0], axis=0) & (where[0] >= 0))
        if len(main):  # the columns living in the array most of them live in
            arrays, counts = np.unique(where[0, main], return_counts=True)
            main = main[where[0, main] == arrays[np.argmax(counts)]]
        rest = np.setdiff1d(np.arange(n), main)
        if len(main) <= _FEW or not 0 < len(rest) <= _FEW:
            main, rest = np.arange(n), rest[:0]
        text = self.gather(ids[:, main].ravel().tolist(), steps=False)
        text = f"{text}.reshape({(k, len(main)) + shape}).sum(1)"
        if len(rest):
            parts = self.rows.reads([ids[:, r] for r in rest])
            text = f"({text} + {' + '.join(parts)})"
        return text

    def _dot(self, members: list) -> tuple[list, str]:
        p = self.p
        m0 = members[0]
        n = len(p.args[m0]) // 2
        shapes = [p.shapes[a] for a in p.args[m0]]
        sx, sy = shapes[0], shapes[n]
        if any(s != sx for s in shapes[:n]) or any(s != sy for s in shapes[n:]):
            return members, self._dot_terms(members)
        ids = np.array([p.args[m] for m in members], dtype=np.intp)
        xs, ys = ids[:, :n], ids[:, n:]
        if sx != () and sy == ():  # keep the scalar operand first
            xs, ys, sx, sy = ys, xs, sy, sx
        return contract(self.rows, members, xs, ys, sx, sy, p.shapes[m0])

    def _dot_terms(self, members: list) -> str:
        p = self.p
        m0 = members[0]
        n, nd = len(p.args[m0]) // 2, len(p.shapes[m0])
        terms = [f"{self.arg(members, r, nd)} * {self.arg(members, n + r, nd)}"
                 for r in range(n)]
        return sum_text(terms)

    def _bdot(self, members: list) -> tuple[list, str]:
        p = self.p
        m0 = members[0]
        axes = p.params[m0]
        a0, b0 = p.args[m0]
        sa, sb, out = p.shapes[a0], p.shapes[b0], p.shapes[m0]
        if sa == sb and out == () and axes == tuple(range(len(sa))):
            flat = int(np.prod(sa, dtype=int))
            grid = self.rows.arg_grid(members)
            # a full contraction is a dot over the flattened batch entries
            return contract_rows(self.rows, members, grid[:, 0], grid[:, 1], flat)
        nd = max(len(sa), len(sb))
        A = self.arg(members, 0, nd)
        B = self.arg(members, 1, nd)
        return members, f"({A} * {B}).sum(axis={tuple(a + 1 for a in axes)})"
