"""A traced graph as a flat program: the form ``fm.jit`` compiles.

``lower`` walks the graph once (iteratively) and numbers its nodes in
topological order. Nodes that do not depend on the inputs are folded to
constants, identical nodes are merged, identity nodes (a transform's variable
standing for an outer value, ``stop_gradient`` in the forward direction, ``+
0``) vanish. ``optimize`` then rewrites for array execution: ``+`` chains
become n-ary sums, a sum of single-use products a ``dot``, and a batch sum of a
product a ``bdot`` (a contraction over batch axes), so the batched backend can
find matrix products (``compiler/rewrite.py``).

>>> from fmicrograd.core.expr import variable, next_level
>>> lv = next_level()
>>> x, y = variable(2.0, lv), variable(3.0, lv)
>>> p = lower([x * y + x * 2.0 + 1.0], [x, y], [], lv)
>>> [p.ops[i] for i in range(p.size)], p.outputs
(['in', 'in', 'const', 'const', '*', '*', '+', '+'], [7])
>>> q = optimize(p)
>>> [(q.ops[i], q.args[i]) for i in range(2, q.size)]
[('const', ()), ('const', ()), ('dot', (0, 0, 1, 3)), ('sum', (4, 2))]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from itertools import chain
from typing import Any

import numpy as np

from ..batching import vmap_ops
from ..core.batch_axes import BATCHES
from ..core.expr import PLAIN, Expr, Prim, Var, next_level, variable  # noqa: F401 -- doctests use them
from ..core.expr import stored_value as _stored
from ..core.shaped import Shaped, ValuesRead
from ..transforms.closures import holds
from ..transforms.custom_rule import CustomRule

__all__ = ["Program", "lower", "optimize", "NotCompilable"]

_VMAP_OPS = {vmap_ops.Take: "take", vmap_ops.Put: "put", vmap_ops.Stack: "stack",
             vmap_ops.Reshape: "reshape", vmap_ops.MoveAxis: "moveaxis"}
_COMPARE = ("<", "<=", ">", ">=")


class NotCompilable(Exception):
    """The graph reaches something a compiled program cannot recompute.

    >>> outer = Var(1.0)  # an enclosing transform's variable: older than the trace
    >>> lv = next_level()
    >>> try:
    ...     _ = lower([outer * variable(2.0, lv)], [], [], lv)
    ... except NotCompilable as e:
    ...     print(e)
    the function uses a variable of an enclosing transform
    """


class Program:
    """Nodes ``0..size-1`` in topological order: ``ops[i]``, ``args[i]`` (node
    numbers), ``params[i]`` (a constant's value, an input's position, a
    rule's function, axes...), ``shapes[i]`` (``()`` for a scalar, batch axes
    otherwise); ``outputs`` (node numbers) and ``guards`` ``(op, a, b,
    expected)`` with node numbers ``a`` and ``b``.

    The input vector ``I`` has ``width`` entries: the first ``n_inputs`` are
    the input nodes ``0..n_inputs-1`` (node ``i`` at position ``i``), the
    ``extra`` after them have no node each: a large array argument's
    entries, which the program reads only as ``col`` nodes (a column that
    ``vmap`` maps: ``I[start::step][:size]``, param ``(start, step, size,
    depth)``, depth the vmap's, as a ``Stack``'s; ``compiler/unread.py``).

    >>> p = Program()
    >>> x = p.add("in", (), 0, ())
    >>> p.add("*", (x, p.const(2.0)), None, ()) == p.add("*", (x, p.const(2.0)), None, ())
    True
    """

    def __init__(self) -> None:
        self.ops: list = []
        self.args: list = []
        self.params: list = []
        self.shapes: list = []
        self.outputs: list = []
        self.guards: list = []
        self.checks: list = []  # (node number, ok) of labels (see ``lower``)
        self.n_inputs = 0
        self.extra = 0  # entries of ``I`` after the inputs, without a node (``col``)
        self._memo: dict = {}
        self._edges: tuple | None = None
        self.detach = False  # stop_gradient kept as an operation (see ``lower``)
        self.found_groups: list | None = None  # ``schedule.groups``, once computed

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, flat)``: each node's number of arguments, and all the
        arguments in order, as arrays; computed once (a program is not
        changed once built and handed on; one that grew is counted again).

        >>> p = Program()
        >>> x = p.add("in", (), 0, ())
        >>> _ = p.add("*", (x, x), None, ())
        >>> [a.tolist() for a in p.edges()]
        [[0, 2], [0, 0]]
        """
        if self._edges is None or len(self._edges[0]) != self.size:  # none yet, or stale
            n = self.leading_inputs()
            rest = self.args[n:] if n else self.args
            counts = np.zeros(self.size, dtype=np.intp)  # (an input has no arguments)
            counts[n:] = np.fromiter(map(len, rest), dtype=np.intp, count=self.size - n)
            flat = np.fromiter(chain.from_iterable(rest), dtype=np.intp,
                               count=int(counts.sum()))  # ~10^5 of them
            self._edges = (counts, flat)
        return self._edges

    def leading_inputs(self) -> int:
        """How many of the first nodes are inputs: ``n_inputs`` where they
        are (as ``lower`` makes them), else 0. A pass can skip them: an
        input has no arguments (1.6 million of them under a large batch).

        >>> p = Program()
        >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(3)])
        >>> p.leading_inputs()
        3
        """
        n = self.n_inputs
        return n if n <= self.size and self.ops[:n].count("in") == n else 0

    @property
    def width(self) -> int:
        """How many entries the input vector ``I`` has."""
        return self.n_inputs + self.extra

    def blank(self) -> Program:
        """An empty program over this one's input vector (its ``n_inputs``
        and ``extra``), for a pass to build a copy in.

        >>> p = Program()
        >>> p.n_inputs, p.extra = 2, 5
        >>> q = p.blank()
        >>> q.width, q.size
        (7, 0)
        """
        q = Program()
        q.n_inputs, q.extra = self.n_inputs, self.extra
        return q

    def taking(self, nodes: Iterable[int]) -> tuple[Program, list]:
        """A copy of this program's ``nodes`` (in increasing order, with the
        nodes their arguments read among them) over the same input vector, and
        each kept node's new number by its old one.

        >>> p = Program()
        >>> p.n_inputs = len([p.add("in", (), k, ()) for k in range(2)])
        >>> q, renum = p.taking([0, 1, p.add("*", (0, 1), None, ())])
        >>> q.ops, q.args, renum[2]
        (['in', 'in', '*'], [(), (), (0, 1)], 2)
        """
        renum: list = [0] * self.size
        q = self.blank()
        ops, args, params, shapes = self.ops, self.args, self.params, self.shapes
        for i in nodes:
            renum[i] = len(q.ops)
            q.ops.append(ops[i])
            q.args.append(tuple([renum[a] for a in args[i]]))
            q.params.append(params[i])
            q.shapes.append(shapes[i])
        return q, renum

    @property
    def size(self) -> int:
        """How many nodes the program has."""
        return len(self.ops)

    def add(self, op: str, args: tuple, param: Any, shape: tuple) -> int:
        """Node number of ``op(args)``, merged with an identical earlier node."""
        key: tuple
        if op == "const":
            key = ("const", _const_key(param))
        else:
            key = (op, args, param)
        found = self._memo.get(key)
        if found is not None:
            return found
        self.ops.append(op)
        self.args.append(args)
        self.params.append(param)
        self.shapes.append(shape)
        self._memo[key] = len(self.ops) - 1
        return len(self.ops) - 1

    def const(self, value: Any) -> int:
        """Node number of the constant ``value``."""
        if value.__class__ is Shaped:  # a value without numbers (``core/shaped.py``) frozen
            raise ValuesRead
        shape = () if value.__class__ is float else tuple(np.shape(value))
        return self.add("const", (), value, shape)

    def is_const(self, i: int) -> bool:
        """Whether node ``i`` is a constant."""
        return self.ops[i] == "const"


def _const_key(value: Any) -> Any:
    if isinstance(value, float):
        return ("f", value.hex())  # tells 0.0 from -0.0, and nan equals itself
    return ("obj", id(value))


def _shape(value: Any) -> tuple:
    return getattr(value, "shape", ())


PER_EXAMPLE_GUARD = "a guard compares per-example values"


def lower(outputs: list, inputs: list, guards: list, level: int,
          detach: bool = False, columns: dict | None = None,
          checks: list | None = None, width: int | None = None) -> Program:
    """The program computing ``outputs`` (nodes or plain values) from
    ``inputs`` (the trace's variables, at ``level``). ``guards`` is the trace's
    comparison log. Raises ``NotCompilable`` when the graph reaches a variable
    of an enclosing transform or a custom node without a ``forward``.
    ``detach``: keep ``stop_gradient`` as an operation (``to_torch``, whose
    program torch's autograd differentiates); ``jit``'s forward code drops it.
    ``columns``: the trace's column variables of array arguments, each the
    ``(op, args, param, shape)`` of the node it stands for: a ``stack`` of
    input nodes, or a ``col`` of entries after them
    (``batching/traced_arrays.py``). ``checks``: ``(node, ok)`` of labels that
    ``fm.losses`` checks (``control.CHECKS``), as ``p.checks`` ``(number, ok)``.
    ``width``: the input vector's length, where entries after ``inputs``
    (a large array's, ``compiler/unread.py``) are read as ``col`` nodes only.

    >>> lv = next_level()
    >>> x = variable(3.0, lv)
    >>> p = lower([x * x, 5.0], [x], [(">", x, 0.0, True)], lv)
    >>> p.ops, p.outputs, p.guards
    (['in', '*', 'const', 'const'], [1, 2], [('>', 0, 3, True)])
    """
    for g in guards:
        if g[0] == "uncompiled":  # (``UNCOMPILED``): code that runs at every call
            raise NotCompilable(g[1])
    if any(_shape(x.value) for g in guards for x in g[1:3] if isinstance(x, Expr)):
        # a comparison on per-example values (jit of vmap): run the function itself
        raise NotCompilable(PER_EXAMPLE_GUARD)
    p = Program()
    p.detach = detach
    number: dict = {}
    # inputs are never merged (each has its own position): no memo entries
    p.ops = ["in"] * len(inputs)
    p.args = [()] * len(inputs)
    p.params = list(range(len(inputs)))
    values = list(map(_stored, inputs))
    p.shapes = [()] * len(values) if set(map(type, values)) <= {float} else [
        () if v.__class__ is float else _shape(v) for v in values]  # (jit's: all floats)
    number.update(zip(inputs, p.params))
    p.n_inputs = len(inputs)
    p.extra = 0 if width is None else width - len(inputs)
    roots = [o for o in outputs if isinstance(o, Expr)]
    for _op, a, b, _ in guards:
        roots += [x for x in (a, b) if isinstance(x, Expr)]
    _walk(p, roots, number, level, columns or {})
    # the labels fm.losses checks (``control.CHECKS``) that the program has as nodes
    p.checks = [(number[n], ok) for n, ok in checks or () if n in number]
    if any(x in number for call in BATCHES.get() for x in call):
        raise NotCompilable("the function uses a per-example value of an enclosing vmap")
    for o in outputs:
        if o.__class__ is np.ndarray and o.dtype == object:  # a constant would freeze it
            raise NotCompilable("an output is an object array (of nodes)")
        if not isinstance(o, (Expr, float, np.ndarray)) and holds(
                o, lambda n: n.op != "const", every_attribute=True):
            # an OrderedDict, a deque, an object: one leaf to fm.tree, whose nodes a
            # constant would freeze (the trace's object came back from every call)
            raise NotCompilable(f"an output leaf, a {type(o).__name__}, holds nodes")
    p.outputs = [number[o] if isinstance(o, Expr) else p.const(o) for o in outputs]
    for op, a, b, expected in guards:
        ia = number[a]
        if op == "float":
            if not p.is_const(ia):
                raise TypeError(
                    "fm.jit: float() was called on a value that depends on the jitted "
                    f"function's inputs (a {_describe(a)}); the compiled code would freeze it. "
                    "Compute with fm functions instead, or pass that argument in static_argnums "
                    "(or static_argnames)")
            continue
        ib = number[b] if isinstance(b, Expr) else p.const(_float(b))
        if not (p.is_const(ia) and p.is_const(ib)):
            p.guards.append((op, ia, ib, expected))
    p._memo = {}
    return p


def _float(x: Any) -> Any:
    """A comparison's constant as the float64 the compiled guard compares
    with; NotCompilable where that would compare differently from Python (an
    int a float64 cannot hold, a float32: numpy compares in float32)."""
    if x.__class__ is float:
        return x
    if isinstance(x, (int, np.integer)):
        try:
            f = float(x)
        except OverflowError:  # (an int beyond float64: Python still compares it exactly)
            f = float("inf")
        if f != f or abs(f) == float("inf") or int(f) != int(x):
            shown = repr(x) if abs(int(x)) < 10 ** 30 else f"of {len(str(abs(int(x))))} digits"
            raise NotCompilable(f"a comparison with the integer {shown}, which a float64 "
                                "cannot hold exactly")
        return f
    if isinstance(x, np.floating) and x.dtype != np.float64:
        raise NotCompilable(f"a comparison with a {x.dtype} constant")
    return float(x) if isinstance(x, (float, np.floating)) else x


def _describe(n: Expr) -> str:
    return f"node of op {n.op!r} with value {n.value!r}"


_DONE = object()  # stack marker: the node below it has all its children numbered
_SPECIAL = frozenset(("var", "stop_gradient", "mean"))  # plain nodes ``_lower_node`` rewrites


def _walk(p: Program, roots: list, number: dict, level: int, columns: dict) -> None:
    """Number every node under ``roots`` (children first, the last child
    first), folding, merging and dropping nodes as ``lower`` says. The common
    cases (a plain node that depends on the inputs, a float constant leaf, a
    transform's variable, a batch contraction) are inlined: a compile of an
    MLP step walks hundreds of thousands of nodes."""
    stack = list(roots)
    pop, push, extend = stack.pop, stack.append, stack.extend
    ops, args, params, shapes, memo = p.ops, p.args, p.params, p.shapes, p._memo
    number_of = number.__getitem__
    floats: dict = {}  # a nonzero, non-NaN float constant's node (equal ones have equal bits)
    while stack:
        n = pop()
        if n is not _DONE:
            if n in number:
                continue
            kids = n.children
            if not kids:
                if n.op == "var":
                    if n.level < level:
                        raise NotCompilable("the function uses a variable of an enclosing "
                                            "transform")
                    column = columns.get(n)
                    if column is not None:  # an array argument's column (``stack``, ``col``)
                        number[n] = p.add(*column)
                        continue
                value = _stored(n)
                if value.__class__ is float and value and value == value:
                    i = floats.get(value)
                    if i is None:
                        i = floats[value] = p.const(value)
                    number[n] = i
                else:
                    if value.__class__ is np.ndarray and value.dtype == object:
                        # nodes (an array argument's entries) frozen into a constant
                        # by ``node * array``: the function runs as it is
                        raise NotCompilable("a constant holds an object array (of nodes)")
                    number[n] = p.const(value)
                continue
            if n.op == "var":  # a transform's variable standing for its one child
                if n.level < level:  # one holding a node (a vmap batch)
                    raise NotCompilable("the function uses a variable of an enclosing transform")
                i = number.get(kids[0])
                if i is not None:  # numbered already: nothing to wait for
                    number[n] = i
                    continue
            # no mark while its children are numbered: a node is never its own
            # descendant (immutable nodes are built after their children)
            push(n)
            push(_DONE)
            extend(kids)  # the numbered ones are skipped when popped
            continue
        n = pop()
        ch = n.children
        if len(ch) == 2:  # most nodes: without ``map`` and a loop
            a, b = ch
            kids = (number_of(a), number_of(b))
            folded = ops[kids[0]] == "const" and ops[kids[1]] == "const"
        else:
            kids = tuple(map(number_of, ch))
            for k in kids:
                if ops[k] != "const":
                    folded = False
                    break
            else:
                folded = True
        if folded:  # nothing here depends on the inputs
            if n.__class__ is Prim and n.op == "custom" and not hasattr(n.param, "forward"):
                number[n] = _lower_node(p, n, kids)
            else:
                number[n] = p.const(n.value)
            continue
        op = n.op
        if n.__class__ not in PLAIN or op in _SPECIAL:
            if op == "var" or op == "stop_gradient" and not p.detach:  # as ``_lower_node``
                number[n] = kids[0]
                continue
            if op == "batch_dot" and n.__class__ is Prim:  # as ``_lower_node``, inlined
                key: tuple = ("bdot", kids, tuple(n.param))
                i = memo.get(key)
                if i is None:
                    i = memo[key] = len(ops)
                    ops.append("bdot")
                    args.append(kids)
                    params.append(key[2])
                    shapes.append(_shape(_stored(n)))
                number[n] = i
                continue
            number[n] = _lower_node(p, n, kids)
            continue
        value = _stored(n)
        shape = () if value.__class__ is float else getattr(value, "shape", ())
        if op == "+" or op == "-":  # ``x + -0.0``, ``x - 0.0``, ``-0.0 + x`` are ``x``
            a, b = kids
            if _identity(p, b, op == "+") and shapes[a] == shape:
                number[n] = a
                continue
            if op == "+" and _identity(p, a, True) and shapes[b] == shape:
                number[n] = b
                continue
        key = (op, kids, None)
        i = memo.get(key)
        if i is None:
            i = memo[key] = len(ops)
            ops.append(op)
            args.append(kids)
            params.append(None)
            shapes.append(shape)
        number[n] = i


def _lower_node(p: Program, n: Expr, kids: tuple) -> int:
    op = n.op
    shape = _shape(_stored(n))
    if op == "var" or op == "stop_gradient" and not p.detach:
        return kids[0]
    if op == "mean":
        total = p.add("sum", kids, None, shape)
        return p.add("/", (total, p.const(float(len(kids)))), None, shape)
    if op in ("+", "-") and _identity(p, kids[1], op == "+") and p.shapes[kids[0]] == shape:
        return kids[0]
    if op == "+" and _identity(p, kids[0], True) and p.shapes[kids[1]] == shape:
        return kids[1]
    if n.__class__ is not Prim:
        return p.add(op, kids, None, shape)
    param = n.param
    if op == "custom":
        kind = _VMAP_OPS.get(type(param))
        if kind is not None:
            return p.add(kind, kids, param, shape)
        if not hasattr(param, "forward"):
            raise NotCompilable("a custom node has no forward function")
        if getattr(param, "passes_value", False) and not p.detach:
            return kids[0]  # a node whose value is its first input's (plain ops: fm.losses)
        if isinstance(param, CustomRule):  # keep the rule, not the traced call
            param = dataclasses.replace(param, residuals=None, args=tuple(
                a if i in param.fn.nondiff_argnums else None for i, a in enumerate(param.args)))
        return p.add("custom", kids, param, shape)
    if op == "batch_sum":
        return p.add("bsum", kids, tuple(param), shape)
    if op == "batch_dot":
        return p.add("bdot", kids, tuple(param), shape)
    if op in ("factor", "select"):
        return p.add(op, kids, param, shape)
    raise NotCompilable(f"no compiled form for node op {op!r}")


def _identity(p: Program, i: int, added: bool) -> bool:
    """Whether node ``i`` is a float zero that leaves every ``x`` as it is when
    ``added`` (``-0.0``) or subtracted (``0.0``): ``-0.0 + 0.0`` is ``0.0``, so
    dropping ``x + 0.0`` would turn ``1 / (x + 0.0)`` at ``x = -0.0`` from
    ``inf`` into ``-inf`` (and ``atan2``'s angle from pi into -pi).

    >>> p = Program()
    >>> _identity(p, p.const(-0.0), True), _identity(p, p.const(0.0), True)
    (True, False)
    >>> _identity(p, p.const(0.0), False), _identity(p, p.const(-0.0), False)
    (True, False)
    """
    v = p.params[i]
    return (p.ops[i] == "const" and isinstance(v, float) and v == 0.0
            and math.copysign(1.0, v) == (-1.0 if added else 1.0))


from .rewrite import optimize  # noqa: E402 -- after Program, which rewrite imports
