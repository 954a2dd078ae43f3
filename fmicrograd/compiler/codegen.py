"""Straight-line Python for scalar programs: one line per node.

A program whose values are all floats (no ``vmap`` inside) and that is small
enough runs fastest as plain Python arithmetic: ``v5 = v3 * v4``, with the
IEEE-safe functions of ``scalar`` where Python would raise. Guards become
``if (v7 > 0.0) != True: return None``, checked as soon as both sides exist;
``None`` tells the caller to retrace.

>>> from fmicrograd.core.expr import variable, next_level
>>> from fmicrograd.compiler.ir import lower
>>> lv = next_level()
>>> x = variable(2.0, lv)
>>> run = scalar_program(lower([fm.exp(x) * x, x / 0.0], [x], [], lv))
>>> [round(v, 6) for v in run([1.0])], run([-1.0])[1]
([2.718282, inf], -inf)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..core import scalar
from .ir import Program

__all__ = ["Source", "scalar_program", "SCALAR_OPS"]


class Source:
    """Lines of a generated function and the constants it refers to.

    >>> src = Source()
    >>> src.emit(f"return x * {src.literal(2.0)} + {src.name(10, 'k')}")
    >>> src.build("x")(3.0)
    16.0
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self._ids: dict[int, str] = {}

    def name(self, obj: Any, hint: str = "k") -> str:
        """A global name bound to ``obj`` in the generated code."""
        key = id(obj)
        if key not in self._ids:
            self._ids[key] = f"{hint}{len(self.names)}"
            self.names[self._ids[key]] = obj
        return self._ids[key]

    def literal(self, value: Any) -> str:
        """``value`` as source text (a named constant unless a finite float)."""
        if value.__class__ is float and math.isfinite(value):
            return f"({value!r})"
        return self.name(value, "c")

    def emit(self, line: str) -> None:
        """Add a line to the function body."""
        self.lines.append("    " + line)

    def build(self, signature: str, extra: dict | None = None) -> Callable:
        """Compile ``def run(signature): <lines>`` and return ``run``."""
        text = f"def run({signature}):\n" + "\n".join(self.lines or ["    pass"]) + "\n"
        namespace = dict(self.names, **(extra or {}))
        try:
            code = compile(text, "<fm.jit>", "exec")
        except MemoryError:  # (CPython's compiler holds the whole function's tree)
            raise MemoryError(
                f"fm.jit: the generated code ({len(self.lines):,} lines) is too large for "
                "Python to compile in this process's memory: a function traced into very "
                "many scalar operations (a long scalar chain, or very many outputs). Run it "
                "without jit, or jit one step of it and loop in Python (docs/sharp-bits.md, "
                "\"A first jit call of a long scalar chain is costly\")") from None
        exec(code, namespace)  # noqa: S102 -- generated code
        run = namespace["run"]
        run.__fm_source__ = text
        return run


SCALAR_OPS: dict[str, str] = {
    "+": "{0} + {1}", "-": "{0} - {1}", "*": "{0} * {1}", "/": "_div({0}, {1})",
    "**": "_pow({0}, {1})", "neg": "-{0}", "abs": "abs({0})", "exp": "_exp({0})",
    "log": "_log({0})", "sqrt": "_sqrt({0})", "tanh": "_tanh({0})",
    "sigmoid": "_sigmoid({0})", "relu": "_relu({0})", "sin": "_sin({0})", "cos": "_cos({0})",
    "maximum": "_maximum({0}, {1})", "minimum": "_minimum({0}, {1})",
    "tan": "_tan({0})", "sinh": "_sinh({0})", "cosh": "_cosh({0})", "asin": "_asin({0})",
    "acos": "_acos({0})", "atan": "_atan({0})", "atan2": "_atan2({0}, {1})",
    "asinh": "_asinh({0})", "acosh": "_acosh({0})", "atanh": "_atanh({0})",
    "erf": "_erf({0})", "erfc": "_erfc({0})", "log1p": "_log1p({0})", "expm1": "_expm1({0})",
    "log2": "_log2({0})", "log10": "_log10({0})", "softplus": "_softplus({0})",
    "log_sigmoid": "_log_sigmoid({0})", "sign": "_sign({0})", "hypot": "_hypot({0}, {1})",
    "clip": "_clip({0}, {1}, {2})", "where": "({1} if {0} else {2})",
    "greater": "(1.0 if {0} > {1} else 0.0)", "greater_equal": "(1.0 if {0} >= {1} else 0.0)",
}
_HELPERS = {f"_{n}": getattr(scalar, n) for n in (
    "div", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum", "minimum",
    "tan", "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "erf",
    "erfc", "log1p", "expm1", "log2", "log10", "softplus", "log_sigmoid", "sign", "hypot",
    "clip")}
_HELPERS["_pow"] = scalar.power
_NARY = ("sum", "dot", "factor", "select", "custom")


def supports(p: Program) -> bool:
    """Whether ``p`` is a scalar program this backend can run.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> from fmicrograd.compiler.ir import lower
    >>> lv = next_level()
    >>> x = variable(1.0, lv)
    >>> supports(lower([fm.tanh(x)], [x], [], lv))
    True
    """
    return p.shapes.count(()) == len(p.shapes) and all(
        op in SCALAR_OPS or op in _NARY or op in ("in", "const") for op in p.ops)


def scalar_program(p: Program) -> Callable:
    """``run(inputs) -> output list`` (or None when a guard fails) for ``p``.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> from fmicrograd.compiler.ir import lower
    >>> lv = next_level()
    >>> x = variable(1.0, lv)
    >>> run = scalar_program(lower([x * 3.0], [x], [(">", x, 0.0, True)], lv))
    >>> run([2.0]), run([-2.0])
    ([6.0], None)
    """
    src = Source()
    names: list[str] = [f"v{i}" for i in range(p.size)]
    guards_at: dict[int, list] = {}
    for g in p.guards:
        guards_at.setdefault(max(g[1], g[2]), []).append(g)
    if p.n_inputs:
        src.emit(", ".join(names[:p.n_inputs]) + ", = map(float, I)")
    for i in range(p.size):
        op, args = p.ops[i], [names[a] for a in p.args[i]]
        if op == "const":
            names[i] = src.literal(p.params[i])
        elif op != "in":
            src.emit(f"{names[i]} = {_expr(src, op, args, p.params[i])}")
        for op_, a, b, expected in guards_at.get(i, ()):
            src.emit(f"if ({names[a]} {op_} {names[b]}) != {expected}: return None")
    src.emit("return [" + ", ".join(names[o] for o in p.outputs) + "]")
    return src.build("I", _HELPERS)


LONG_SUM = 400  # terms of a sum written as ``_adds(...)``, not one ``+`` line (see ``adds``)


def adds(*terms: Any) -> Any:
    """``terms[0] + terms[1] + ...``, left to right (the same bits): generated
    code's form of a sum of more than ``LONG_SUM`` terms, which as one ``+``
    line made CPython's parser and compiler recurse once per term
    (``RecursionError`` at about 3,000).

    >>> adds(1.0, 2.0, 3.0)
    6.0
    """
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


def sum_text(terms: list) -> str:
    """The source of ``terms``' sum, left to right (see ``adds``)."""
    return " + ".join(terms) if len(terms) <= LONG_SUM else f"_adds({', '.join(terms)})"


_HELPERS["_adds"] = adds


def _expr(src: Source, op: str, args: list, param: Any) -> str:
    if op in SCALAR_OPS:
        return SCALAR_OPS[op].format(*args)
    if op == "sum":
        return sum_text(args)
    if op == "dot":
        n = len(args) // 2
        return sum_text([f"{x} * {y}" for x, y in zip(args[:n], args[n:])])
    if op == "factor":
        return f"{src.name(param, 'f')}({', '.join(args)})"
    if op == "select":
        conds, yes, no = args[:-2], args[-2], args[-1]
        return f"({yes} if {src.name(param, 'f')}({', '.join(conds)}) else {no})"
    if op == "custom":
        return f"{src.name(param, 'f')}.forward({', '.join(args)})"
    raise ValueError(f"codegen: no scalar form for op {op!r}")
