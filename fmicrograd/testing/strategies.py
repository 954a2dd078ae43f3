"""Hypothesis strategies for random expression DAGs over every op of ``OPS``.

A drawn ``Program`` is a straight-line program: each step applies one op to
earlier values (inputs or steps, so subexpressions are shared), and the output
is the sum of the steps nothing else uses. An argument that must stay in a
restricted domain (``log``'s positive one, a divisor, ``exp``'s range...) is
mapped there smoothly by ``lo + (hi - lo) * sigmoid(z)``, so every input
gives a finite value and the program is smooth wherever its ops are. One
program runs on floats, on ``fm.Expr`` and on torch tensors (detected by type,
evaluated with ``OPS[op].torch``), so fmicrograd and torch can be compared on
the very same function.

>>> from hypothesis import given
>>> @given(dags(max_inputs=2, max_steps=4))
... def test_runs_on_floats(dag):
...     fn, n, xs = dag
...     assert len(xs) == n and isinstance(fn(*xs), float)
>>> test_runs_on_floats()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hypothesis import strategies as st

from .ops import OPS, OpCase

__all__ = ["Program", "Dag", "programs", "dags", "op_args", "SMOOTH_OPS"]

_REAL = (-4.0, 4.0)  # the domain of ops that accept any real input (see ops.py)

# Ops whose derivatives, to any order, are smooth on their whole domain: use these
# when comparing with finite differences. Left out: ops with kinks (abs, relu, sign,
# where, softplus), maximum and minimum (along a == b), clip (where x meets a
# bound), and ** whose rule, as torch's, masks the base derivative to a constant 0
# where the exponent is exactly 0 (a^0 is constant in a), so its mixed second
# derivative there is 0 instead of 1/a (and derivative graphs
# reach exponent b - k, so integer exponents hit it at order k + 2).
SMOOTH_OPS: tuple[str, ...] = tuple(
    name for name, case in OPS.items()
    if not case.kinks and name not in ("maximum", "minimum", "**", "clip"))


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


@dataclass(frozen=True)
class Program:
    """``steps``: ``(op, refs)`` pairs, where ``refs`` index the values so far
    (the ``n_inputs`` inputs first, then one value per step); ``outputs``:
    value indices, one output or a tuple of several.

    >>> p = fm.testing.Program(2, (("*", (0, 1)), ("log", (2,))), (3,))
    >>> p
    Program(n_inputs=2): v2 = v0 * v1; v3 = log(into(v2, 0.05, 20.0)); out = v3
    >>> round(p(1.0, 2.0), 12) == round(fm.log(fm.sigmoid(2.0) * 19.95 + 0.05), 12)
    True
    """

    n_inputs: int
    steps: tuple[tuple[str, tuple[int, ...]], ...]
    outputs: tuple[int, ...]
    table: Mapping[str, OpCase] = field(default_factory=lambda: OPS, compare=False)

    def __call__(self, *xs: Any) -> Any:
        if len(xs) != self.n_inputs:
            raise TypeError(f"Program takes {self.n_inputs} inputs, got {len(xs)}")
        if any(_is_torch(x) for x in xs):
            import torch

            apply = lambda op, *args: self._case(op).torch(torch, *args)
        else:
            apply = lambda op, *args: self._case(op).call(*args)
        values = list(xs)
        for op, refs in self.steps:
            domain = self._case(op).domain
            args = [_into(apply, values[r], domain[i % len(domain)])
                    for i, r in enumerate(refs)]
            values.append(apply(op, *args))
        outs = tuple(values[i] for i in self.outputs)
        return outs[0] if len(outs) == 1 else outs

    def _case(self, op: str) -> OpCase:
        # the library's ops (sum, sigmoid) stay available next to a user's table
        return self.table[op] if op in self.table else OPS[op]

    def __repr__(self) -> str:
        lines = []
        for k, (op, refs) in enumerate(self.steps):
            domain = self._case(op).domain
            args = [_show_into(f"v{r}", domain[i % len(domain)]) for i, r in enumerate(refs)]
            if op in ("+", "-", "*", "/", "**"):
                expr = f"{args[0]} {op} {args[1]}"
            elif op == "neg":
                expr = f"-{args[0]}"
            else:
                expr = f"{op}({', '.join(args)})"
            lines.append(f"v{self.n_inputs + k} = {expr}")
        outs = ", ".join(f"v{i}" for i in self.outputs)
        lines.append(f"out = {outs}" if len(self.outputs) == 1 else f"out = ({outs})")
        return f"Program(n_inputs={self.n_inputs}): " + "; ".join(lines)


def _into(apply: Callable, z: Any, interval: tuple[float, float]) -> Any:
    lo, hi = interval
    if (lo, hi) == _REAL:
        return z
    return lo + (hi - lo) * apply("sigmoid", z)


def _show_into(name: str, interval: tuple[float, float]) -> str:
    return name if interval == _REAL else f"into({name}, {interval[0]}, {interval[1]})"


class Dag(NamedTuple):
    """A drawn program with inputs: ``fn, n_inputs, inputs = dag``."""

    fn: Program
    n_inputs: int
    inputs: tuple[float, ...]


@st.composite
def programs(draw: Callable, min_inputs: int = 1, max_inputs: int = 3, max_steps: int = 8,
             ops: Iterable[str] | Mapping[str, OpCase] | None = None,
             n_outputs: int = 1) -> Program:
    """Random programs over ``ops``: names from ``OPS`` (default: all of them),
    or your own table, a mapping from name to ``OpCase`` (nothing global
    changes). n-ary ops get as many arguments as their case lists domains.
    The first output is the sum of the unused steps; further outputs
    (``n_outputs > 1``) are drawn values.

    >>> from hypothesis import find
    >>> p = find(fm.testing.programs(ops=("tanh", "*")), lambda p: len(p.steps) >= 3)
    >>> {op for op, _ in p.steps} <= {"tanh", "*", "sum"}, isinstance(p(0.5), float)
    (True, True)
    >>> cube = fm.testing.OpCase("cube", lambda x: x * x * x, lambda t, x: x ** 3, ((-2.0, 2.0),))
    >>> mine = {"cube": cube}
    >>> p = find(fm.testing.programs(ops=mine), lambda p: len(p.steps) >= 2)
    >>> import torch
    >>> half = torch.tensor(0.5, dtype=torch.float64)
    >>> {op for op, _ in p.steps} <= {"cube", "sum"}, p(0.5) == p(half).item()
    (True, True)
    """
    table = ops if isinstance(ops, Mapping) else OPS
    names = sorted(table) if ops is None or isinstance(ops, Mapping) else list(ops)
    unknown = [op for op in names if op not in table]
    if unknown or not names:
        raise ValueError(f"programs: unknown ops {unknown}; choose from {sorted(table)}, or "
                         "pass your own ops as a mapping from name to OpCase")
    n = draw(st.integers(min_inputs, max_inputs))
    k = draw(st.integers(1, max_steps))
    steps: list = []
    used: set = set()
    for s in range(k):
        op = draw(st.sampled_from(names))
        refs = tuple(draw(st.integers(0, n + s - 1)) for _ in table[op].domain)
        used.update(refs)
        steps.append((op, refs))
    sinks = [i for i in range(n, n + k) if i not in used]
    if len(sinks) > 1:
        steps.append(("sum", tuple(sinks)))
        sinks = [n + len(steps) - 1]
    extra = [draw(st.integers(0, n + len(steps) - 1)) for _ in range(n_outputs - 1)]
    return Program(n, tuple(steps), tuple(sinks + extra), table)


@st.composite
def dags(draw: Callable, min_inputs: int = 1, max_inputs: int = 3, max_steps: int = 8,
         ops: Iterable[str] | None = None, n_outputs: int = 1, low: float = -3.0,
         high: float = 3.0) -> Dag:
    """A random ``Program`` (see ``programs``) with inputs drawn in ``[low, high]``.

    >>> from hypothesis import find
    >>> fn, n, xs = find(fm.testing.dags(), lambda d: d.n_inputs == 2)
    >>> xs
    (0.0, 0.0)
    """
    fn = draw(programs(min_inputs, max_inputs, max_steps, ops, n_outputs))
    xs = draw(st.tuples(*[st.floats(low, high, allow_nan=False)] * fn.n_inputs))
    return Dag(fn, fn.n_inputs, xs)


def op_args(op: str, table: Mapping[str, OpCase] = OPS) -> st.SearchStrategy[tuple[float, ...]]:
    """Arguments for ``OPS[op]`` drawn inside its smooth domain.

    >>> from hypothesis import find
    >>> xs = find(fm.testing.op_args("log"), lambda xs: xs[0] < 1.0)
    >>> 0.05 <= xs[0] < 1.0
    True
    """
    return st.tuples(*[st.floats(lo, hi, allow_nan=False) for lo, hi in table[op].domain])
