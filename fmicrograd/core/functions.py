"""Functions on graph nodes and plain numbers alike.

Each takes an ``Expr`` (and builds a node) or a number (and returns a plain
float), or a numpy array under ``vmap``. The derivative rules are written
with these, so one rule serves floats, graphs (higher order) and arrays.

>>> tanh(0.0), tanh(Var(0.0)).op
(0.0, 'tanh')
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable, Mapping
from operator import mul
from typing import Any, Protocol, TypeVar, overload

from . import numeric as num
from .accumulate import products_sum
from .batch_axes import DEPTH
from .comparisons import Mask
from .control import FREE_OF_VARIABLES, RUNNING, TRACING
from .expr import Expr, TracedVar, const, lift, node, stored_value
from .placeholder import refuse
from .reach import choice

__all__ = ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "sin", "cos", "maximum",
           "minimum", "sum", "mean", "dot", "div", "power", "stop_gradient", "where_value",
           "tan", "sinh", "cosh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh",
           "erf", "erfc", "log1p", "expm1", "log2", "log10", "softplus", "log_sigmoid", "sign",
           "square", "hypot", "clip", "where", "greater", "greater_equal", "less", "less_equal"]

_builtin_sum = sum
T = TypeVar("T")


class Unary(Protocol):
    """Type of a one-argument function: a float for a number, a node for a node
    (and an array under ``vmap``)."""

    @overload
    def __call__(self, x: Expr, /) -> Expr: ...
    @overload
    def __call__(self, x: float, /) -> float: ...
    @overload
    def __call__(self, x: Any, /) -> Any: ...


class Binary(Protocol):
    """Type of a two-argument function: a node if either argument is a node."""

    @overload
    def __call__(self, a: Expr, b: Expr | float, /) -> Expr: ...
    @overload
    def __call__(self, a: float, b: Expr, /) -> Expr: ...
    @overload
    def __call__(self, a: float, b: float, /) -> float: ...
    @overload
    def __call__(self, a: Any, b: Any, /) -> Any: ...


def _unary(op: str, doc: str) -> Unary:
    forward = getattr(num, op)

    def f(x: Any) -> Any:
        if isinstance(x, Expr):
            return node(op, forward(x.value), (x,))
        if x.__class__ is not float:
            if hasattr(x, "as_node"):  # a comparison under vmap (``Mask``): its 0/1 node
                return f(x.as_node())
            x = _widened(x, op, True)
        return forward(x)

    f.__name__ = op
    f.__doc__ = doc
    return f


def _widened(x: Any, who: str = "function", strict: bool = False) -> Any:
    """``x`` as a function of plain numbers computes it in float64: a numpy
    scalar as a Python float (numpy would keep a float32 a float32, and a
    numpy bool is 0.0 or 1.0 as Python's ``True`` is), an int as a float
    (``relu(1)`` is ``1.0``, as the contract's plain float), one beyond
    float64's range as +-inf (``math.exp(-10 ** 400)`` overflows), any other
    real number (``Fraction``, ``Decimal``) as its float; a complex number is
    a ``TypeError`` naming ``fm.<who>``; anything else (an array under
    ``vmap``) as it is.

    >>> import numpy as np
    >>> _widened(np.float32(0.5)), _widened(-10 ** 400), _widened(3), _widened(np.True_)
    (0.5, -inf, 3.0, 1.0)
    """
    if isinstance(x, int):  # (a bool too: True is 1.0)
        return float(x) if -_HUGE_INT < x < _HUGE_INT else (math.inf if x > 0 else -math.inf)
    np = sys.modules.get("numpy")  # no numpy scalar exists before numpy is imported
    if np is not None:
        if x.__class__ is np.ndarray:  # vmap's values: as they are, at no further cost
            return x
        if isinstance(x, np.floating):  # float(), as .item() keeps a longdouble a longdouble
            return float(x)
        if isinstance(x, (np.integer, np.bool_)):
            return _widened(int(x))
    if isinstance(x, numbers.Complex) and not isinstance(x, numbers.Real):
        raise TypeError(f"fm.{who}: got {type(x).__name__} {x!r}; fm works on real numbers "
                        "only: pass x.real or abs(x)")
    if isinstance(x, numbers.Real):  # a Fraction
        return float(x)
    decimal = sys.modules.get("decimal")
    if decimal is not None and isinstance(x, decimal.Decimal):  # (not a numbers.Real)
        return float(x)
    if isinstance(x, (list, tuple)):  # numpy would broadcast it: softmax of a list of rows
        raise TypeError(  # normalised down the columns
            f"fm.{who}: got a {type(x).__name__} of length {len(x)} where a number is "
            "expected; fmicrograd is scalar-valued: "
            + (f"for several rows of scores, [fm.{who}(row) for row in rows]"
               if who in _ROW_FUNCTIONS else f"apply fm.{who} to each item")
            + ", or map it with fm.vmap")
    if x.__class__.__name__ == "Tensor" and not x.ndim and not x.requires_grad:
        return float(x)  # a torch number, as a numpy scalar
    refuse(x)  # (a jit placeholder: see ``placeholder``)
    if strict and (x is None or isinstance(x, (str, bytes, dict, set, frozenset))):
        # an argument of fm.<who>: numpy's ufunc error, or an AttributeError naming the
        # method it looked for on None
        raise TypeError(f"fm.{who}: got {type(x).__name__} {x!r:.40}; expected a number or an "
                        "fm.Expr")
    return x


_HUGE_INT = 2 ** 1024
_ROW_FUNCTIONS = ("softmax", "log_softmax", "logsumexp")  # one row of scores each


exp = _unary("exp", "``e ** x``; ``exp(1000.0) == inf``.\n\n>>> fm.exp(0.0)\n1.0")
log = _unary("log", "Natural log; ``log(0.0) == -inf``.\n\n>>> fm.log(1.0)\n0.0")
sqrt = _unary("sqrt", "Square root; nan below 0.\n\n>>> fm.sqrt(4.0)\n2.0")
tanh = _unary("tanh", "Hyperbolic tangent.\n\n>>> fm.tanh(0.0)\n0.0")
sigmoid = _unary("sigmoid", "Logistic function.\n\n>>> fm.sigmoid(0.0)\n0.5")
relu = _unary("relu", "``max(x, 0)``.\n\n>>> fm.relu(-2.0), fm.relu(fm.Var(3.0)).value\n(0.0, 3.0)")
sin = _unary("sin", "Sine.\n\n>>> fm.sin(0.0)\n0.0")
cos = _unary("cos", "Cosine.\n\n>>> fm.cos(0.0)\n1.0")
tan = _unary("tan", "Tangent.\n\n>>> fm.tan(0.0), fm.tan(fm.Var(0.0)).op\n(0.0, 'tan')")
sinh = _unary("sinh", "Hyperbolic sine.\n\n>>> fm.sinh(0.0)\n0.0")
cosh = _unary("cosh", "Hyperbolic cosine.\n\n>>> fm.cosh(0.0)\n1.0")
asin = _unary("asin", "Inverse sine; nan outside [-1, 1].\n\n>>> fm.asin(0.0), fm.asin(2.0)\n"
              "(0.0, nan)")
acos = _unary("acos", "Inverse cosine; nan outside [-1, 1].\n\n>>> fm.acos(1.0)\n0.0")
atan = _unary("atan", "Inverse tangent.\n\n>>> fm.atan(0.0)\n0.0")
asinh = _unary("asinh", "Inverse hyperbolic sine.\n\n>>> fm.asinh(0.0)\n0.0")
acosh = _unary("acosh", "Inverse hyperbolic cosine; nan below 1.\n\n>>> fm.acosh(1.0)\n0.0")
atanh = _unary("atanh", "Inverse hyperbolic tangent; ``atanh(1.0) == inf``.\n\n"
               ">>> fm.atanh(0.0), fm.atanh(1.0)\n(0.0, inf)")
erf = _unary("erf", "Error function; ``erf(inf) == 1``.\n\n>>> fm.erf(0.0), fm.erf(float('inf'))\n"
             "(0.0, 1.0)")
erfc = _unary("erfc", "``1 - erf(x)``, accurate where erf(x) is close to 1.\n\n"
              ">>> fm.erfc(0.0), fm.erfc(30.0) > 0.0\n(1.0, False)")
log1p = _unary("log1p", "``log(1 + x)``, accurate near 0; ``log1p(-1.0) == -inf``.\n\n"
               ">>> fm.log1p(0.0), fm.log1p(-1.0)\n(0.0, -inf)")
expm1 = _unary("expm1", "``exp(x) - 1``, accurate near 0.\n\n>>> fm.expm1(0.0)\n0.0")
log2 = _unary("log2", "Base-2 logarithm.\n\n>>> fm.log2(8.0)\n3.0")
log10 = _unary("log10", "Base-10 logarithm.\n\n>>> fm.log10(1000.0)\n3.0")
softplus = _unary("softplus", "``log(1 + exp(x))``, exactly ``x`` above 20 (torch's "
                  "threshold, derivative 1 there).\n\n>>> fm.softplus(1000.0), "
                  "fm.grad(fm.softplus)(1000.0)\n(1000.0, 1.0)")
log_sigmoid = _unary("log_sigmoid", "``log(sigmoid(x))``, stable at both tails.\n\n"
                     ">>> fm.log_sigmoid(-1000.0)\n-1000.0")
sign = _unary("sign", "-1, 0 or 1 (0 for nan); derivative 0 everywhere, as torch.\n\n"
              ">>> fm.sign(-2.0), fm.grad(fm.sign)(0.5)\n(-1.0, 0.0)")


def _binary(op: str, doc: str) -> Binary:
    forward = getattr(num, op)

    def f(a: Any, b: Any) -> Any:
        if isinstance(a, Expr) or isinstance(b, Expr):
            a, b = _lifted(a, op), _lifted(b, op)
            return node(op, forward(a.value, b.value), (a, b))
        if a.__class__ is not float:
            if hasattr(a, "as_node"):  # a comparison under vmap (``Mask``): its 0/1 node
                return f(a.as_node(), b)
            a = _widened(a, op, True)
        if b.__class__ is not float:
            if hasattr(b, "as_node"):
                return f(a, b.as_node())
            b = _widened(b, op, True)
        return forward(a, b)

    f.__name__ = op
    f.__doc__ = doc
    return f


def _lifted(x: Any, who: str) -> Expr:
    """``x`` as a node, a plain number widened first (a numpy bool as 0.0 or
    1.0, a complex number a ``TypeError``), as the number path reads it."""
    if isinstance(x, Expr):
        return x
    if x.__class__ is float:
        return const(x)
    return lift(_widened(x, who))


maximum = _binary("maximum", "Larger of ``a`` and ``b``; a tie splits the derivative "
                  "0.5/0.5 as torch.\n\n>>> fm.maximum(1.0, 2.0)\n2.0")
minimum = _binary("minimum", "Smaller of ``a`` and ``b``; a tie splits the derivative "
                  "0.5/0.5 as torch.\n\n>>> fm.minimum(1.0, 2.0)\n1.0")
_atan2 = _binary("atan2", "")


def atan2(y: Any, x: Any) -> Any:
    """Angle of the point ``(x, y)`` for ``atan2(y, x)``, in [-pi, pi].

    >>> import math
    >>> fm.atan2(1.0, 1.0) == math.pi / 4, fm.atan2(y=1.0, x=-1.0) == 3 * math.pi / 4
    (True, True)
    """
    return _atan2(y, x)
hypot = _binary("hypot", "``sqrt(a * a + b * b)`` without overflow.\n\n>>> fm.hypot(3.0, 4.0)\n"
                "5.0")
greater = _binary("greater", "1.0 where ``a > b``, else 0.0: a comparison as data, for "
                  "``where``\n(derivative 0; per example under ``vmap``, a select under "
                  "``jit``).\n\n>>> fm.greater(2.0, 1.0), fm.greater(fm.Var(1.0), 1.0).value\n"
                  "(1.0, 0.0)")
greater_equal = _binary("greater_equal", "1.0 where ``a >= b``, else 0.0 (see ``greater``)."
                        "\n\n>>> fm.greater_equal(1.0, 1.0)\n1.0")


def less(a: Any, b: Any) -> Any:
    """1.0 where ``a < b``, else 0.0 (see ``greater``).

    >>> fm.less(1.0, 2.0), fm.less(fm.Var(2.0), 1.0).op
    (1.0, 'greater')
    """
    return greater(b, a)


def less_equal(a: Any, b: Any) -> Any:
    """1.0 where ``a <= b``, else 0.0 (see ``greater``).

    >>> fm.less_equal(2.0, 2.0)
    1.0
    """
    return greater_equal(b, a)


def _equal(a: Any, b: Any) -> Any:
    """1.0 where ``a == b``, else 0.0 (nan: 0.0), as a node for ``where``."""
    return greater_equal(a, b) * greater_equal(b, a)


def _not_equal(a: Any, b: Any) -> Any:
    return 1.0 - _equal(a, b)


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    ">": greater, ">=": greater_equal, "<": less, "<=": less_equal,
    "==": _equal, "!=": _not_equal}


def square(x: Any) -> Any:
    """``x * x``.

    >>> fm.square(3.0), fm.grad(fm.square)(3.0), fm.square(3)
    (9.0, 6.0, 9.0)
    """
    if x.__class__ is not float and not isinstance(x, Expr):
        x = _widened(x, "square", True)
    return x * x


def clip(x: Any, lo: Any, hi: Any) -> Any:
    """``x`` clamped to ``[lo, hi]`` as ``torch.clamp``: derivative 1 inside the
    closed interval (bounds included), 0 outside; ``hi`` wins if ``lo > hi``.

    >>> fm.clip(5.0, 0.0, 1.0), fm.grad(lambda x: fm.clip(x, 0.0, 1.0))(1.0)
    (1.0, 1.0)
    """
    if isinstance(x, Expr) or isinstance(lo, Expr) or isinstance(hi, Expr):
        x, lo, hi = _lifted(x, "clip"), _lifted(lo, "clip"), _lifted(hi, "clip")
        return node("clip", num.clip(x.value, lo.value, hi.value), (x, lo, hi))
    return num.clip(_float(x, "clip"), _float(lo, "clip"), _float(hi, "clip"))


def where(cond: Any, a: Any, b: Any) -> Any:
    """``a`` where ``cond`` holds, else ``b``; the derivative flows through the
    branch taken only.

    ``cond`` is a bool (the branch is chosen now: under ``jit`` the comparison
    that made it is guarded; under ``vmap`` a comparison of a per-example
    value answers per example, and ``where`` picks per example),
    or a node such as ``greater(x, 0.0)`` (nonzero means true): then ``where``
    is a node, an elementwise select per example under ``vmap`` and a select,
    not a guard, under ``jit``.

    >>> huber = lambda x: fm.where(fm.less(abs(x), 1.0), 0.5 * x * x, abs(x) - 0.5)
    >>> fm.grad(huber)(0.5), fm.grad(huber)(-3.0)
    (0.5, -1.0)
    >>> fm.vmap(huber)((0.5, -3.0))
    (0.125, 2.5)
    >>> fm.vmap(lambda x: fm.where(x > 0.0, x, 0.0))((1.0, -2.0))  # a comparison per example
    (1.0, 0.0)
    """
    if isinstance(cond, Mask):  # a comparison whose examples disagree under vmap: a choice
        # per example, as the loop's bools make it (its condition a node that jit recomputes)
        return choice(cond.as_node(), _lifted(a, "where"), _lifted(b, "where"))
    if isinstance(cond, Expr):
        a, b = _lifted(a, "where"), _lifted(b, "where")
        if undifferentiated(cond):  # a float without jit and vmap: it picks a branch
            return choice(cond, a, b)
        return node("where", num.where(cond.value, a.value, b.value), (cond, a, b))
    if getattr(cond, "ndim", 0) > 0:  # an array of per-example truth values
        if isinstance(a, Expr) or isinstance(b, Expr):
            import numpy as np

            return choice(const(np.asarray(cond, dtype=float)), _lifted(a, "where"),
                          _lifted(b, "where"))
        return num.where(cond, a, b)
    if cond.__class__ is not bool and (cond is None or isinstance(
            cond, (str, bytes, list, tuple, dict, set, frozenset))):
        # its truth is its length: fm.where([True, False], 1.0, 2.0) gave 1.0 (elementwise
        # in numpy and JAX), fm.where("no", 1.0, 2.0) too
        raise TypeError(f"fm.where: cond is {type(cond).__name__} {cond!r:.60}; pass a bool, a "
                        "comparison (x > 0.0), a node, or an array of truth values per "
                        "example (np.array(cond))")
    chosen = a if cond else b  # (a branch of several numbers, as a Python conditional)
    if chosen.__class__ is float or isinstance(chosen, (Expr, list, tuple)):
        return chosen
    return _widened(chosen, "where")


def undifferentiated(cond: Expr) -> bool:
    """Whether ``where``'s node condition is one that would be a float without
    ``jit`` and ``vmap``: under either, it reaches no variable but ``jit``'s
    (a value it traces) and constants (``vmap``'s examples). A variable of any
    other transform (``grad``'s, ``jvp``'s, a rule's rerun) keeps the ``where``
    a node, whose branch not taken gets a zero cotangent, as torch's does.
    Asked of the nodes, not of the transforms now running: a rule's rerun runs
    when a sweep reaches it, after its transform's call returned.

    >>> from fmicrograd.core.expr import next_level, traced_variable
    >>> lv = next_level()
    >>> with fm.core.control.running(lv, "fm.jit", traces=True):
    ...     p = traced_variable(1.0, lv)
    ...     undifferentiated(fm.greater(p, 0.0)), undifferentiated(fm.greater(Var(1.0), 0.0))
    (True, False)
    """
    if not DEPTH.get() and not any(traces for _, _, traces in RUNNING.get()):
        return False
    memo = FREE_OF_VARIABLES.get()
    if memo is None:
        memo = {}
    seen, stack, free = {id(cond)}, [cond], []
    while stack:
        n = stack.pop()
        if id(n) in memo:
            continue
        if n.op == "var" and n.__class__ is not TracedVar:
            return False
        free.append(n)
        for c in n.children:
            if id(c) not in seen:
                seen.add(id(c))
                stack.append(c)
    for n in free:  # (the whole graph under cond: free of variables)
        memo[id(n)] = n
    return True


def _float(x: Any, who: str) -> Any:
    """Plain numbers as floats (the contract's return type, see ``_widened``);
    nodes and arrays as they are."""
    if x.__class__ is float or isinstance(x, Expr):
        return x
    return _widened(x, who, True)


@overload
def div(a: Expr, b: Expr | float) -> Expr: ...
@overload
def div(a: float, b: Expr) -> Expr: ...
@overload
def div(a: float, b: float) -> float: ...
@overload
def div(a: Any, b: Any) -> Any: ...
def div(a: Any, b: Any) -> Any:
    """``a / b`` with IEEE results at 0 for numbers; a node for ``Expr``.

    >>> fm.div(1.0, 0.0)
    inf
    """
    if isinstance(a, Expr) or isinstance(b, Expr):
        return _lifted(a, "div") / b
    return num.div(_float(a, "div"), _float(b, "div"))


@overload
def power(a: Expr, b: Expr | float) -> Expr: ...
@overload
def power(a: float, b: Expr) -> Expr: ...
@overload
def power(a: float, b: float) -> float: ...
@overload
def power(a: Any, b: Any) -> Any: ...
def power(a: Any, b: Any) -> Any:
    """``a ** b`` as C's ``pow`` for numbers (nan, not complex, for a negative
    base and fractional exponent); a node for ``Expr``.

    >>> fm.power(0.0, -1.0), fm.power(2.0, 3.0)
    (inf, 8.0)
    """
    if isinstance(a, Expr) or isinstance(b, Expr):
        return _lifted(a, "power") ** b
    return num.power(_float(a, "power"), _float(b, "power"))


def _items(xs: Iterable, who: str) -> tuple:
    if xs.__class__ is tuple or xs.__class__ is list:  # (the usual case, before the checks)
        return tuple(xs)
    if isinstance(xs, Expr):
        raise TypeError(f"fm.{who} expects a sequence of numbers or Exprs, got one Expr")
    if isinstance(xs, (Mapping, str, bytes)):  # (a dict iterates its keys)
        kind = type(xs).__name__
        raise TypeError(f"fm.{who} expects a sequence of numbers or Exprs (a tuple, list or "
                        f"numpy array), got a {kind}" + (
                            "; for a dict's numbers pass fm.tree.leaves(d) (or "
                            "list(d.values()))" if isinstance(xs, Mapping) else ""))
    if isinstance(xs, numbers.Number) or xs is None:  # ("'float' object is not iterable")
        raise TypeError(f"fm.{who} expects a sequence of numbers or Exprs (a tuple, list or "
                        f"numpy array), got {type(xs).__name__} {xs!r}")
    shape = getattr(xs, "shape", ())
    if len(shape) >= 2 and xs.__class__.__module__ == "numpy":
        # its rows were the items, each read as one value per example: fm.softmax of a
        # (2, 2) array normalised its columns, fm.sum summed its rows into an array
        each = ("fm.dot(a.ravel(), b.ravel()) for the sum over every entry" if who == "dot" else
                f"a.ravel() for all its entries, or [fm.{who}(row) for row in a] (or map it "
                "with fm.vmap) for each row")
        raise TypeError(f"fm.{who}: got a numpy array of shape {shape}, whose rows would be "
                        "taken as per-example values (one result per column); fmicrograd is "
                        f"scalar-valued: pass {each}")
    return tuple(xs)


# Sums start from -0.0, the one number that adds nothing (0.0 + -0.0 is 0.0): as in
# the compiled code, which starts from the first item, a sum of -0.0s is -0.0
# (Python's ``sum``, ``np.sum`` and torch's start from 0 and give 0.0; IEEE's sum
# of two -0.0 is -0.0). An empty sum is 0.0. Dots too, from their first product, as
# ``jit``'s code, ``vmap`` and ``fm.to_torch`` compute them (torch's own dot starts from
# 0.0: a dot of -0.0 products is 0.0 there; eager fm's was until round 47, so a jitted
# ``if 1 / fm.dot(w, x) < 0`` could take the other branch than eager).
_NOTHING = -0.0


def _total(xs: Iterable) -> Any:
    xs = tuple(xs)
    return _builtin_sum(xs, _NOTHING) if xs else 0.0


def _dot_total(xs: Iterable, ys: Iterable) -> Any:
    return _builtin_sum(map(mul, xs, ys), _NOTHING)


def _in_float64(reduce: Callable[..., Any], who: str, *seqs: tuple) -> Any:
    """``reduce(*seqs)`` over plain numbers, computed in float64 and returned
    as a Python float, as under ``jit``: as it is when it gives a float (or
    ``vmap``'s array), else again with every item widened (NumPy 2 keeps a sum
    that meets one float32 item in float32, and a Python float does not widen
    it).

    >>> import numpy as np
    >>> _in_float64(_total, "sum", (np.float32(0.1), 0.2)) == float(np.float32(0.1)) + 0.2
    True
    """
    total: Any
    try:
        total = reduce(*seqs)
    except (TypeError, OverflowError):  # a Decimal, an int beyond float64: widened below
        total = None
    if total.__class__ is float or getattr(total, "ndim", 0) > 0:  # (or vmap's arrays)
        return total
    return reduce(*([x if x.__class__ is float else _widened(x, who) for x in xs]
                    for xs in seqs))


@overload
def sum(xs: Iterable[float]) -> float: ...  # type: ignore[overload-overlap]
@overload
def sum(xs: Iterable[Expr | float]) -> Expr: ...
@overload
def sum(xs: Any) -> Any: ...
def sum(xs: Any) -> Any:
    """Sum of a sequence as one n-ary node (a plain float for numbers).

    >>> fm.sum([1.0, 2.0, 3.0]), fm.sum([fm.Var(1.0), 2.0]).op
    (6.0, 'sum')
    """
    if hasattr(xs, "__fm_reduce__"):  # a vmap result reduces over its batch axis
        return xs.__fm_reduce__("sum")
    items = _items(xs, "sum")
    if any(isinstance(x, Expr) for x in items):
        kids = tuple(_lifted(x, "sum") for x in items)
        return node("sum", _builtin_sum((k.value for k in kids), _NOTHING), kids)
    return _in_float64(_total, "sum", items)


@overload
def mean(xs: Iterable[float]) -> float: ...  # type: ignore[overload-overlap]
@overload
def mean(xs: Iterable[Expr | float]) -> Expr: ...
@overload
def mean(xs: Any) -> Any: ...
def mean(xs: Any) -> Any:
    """Mean of a non-empty sequence as one n-ary node.

    >>> fm.mean([1.0, 2.0, 3.0])
    2.0
    """
    if hasattr(xs, "__fm_reduce__"):
        return xs.__fm_reduce__("mean")
    items = _items(xs, "mean")
    if not items:
        raise ValueError("fm.mean of an empty sequence")
    if any(isinstance(x, Expr) for x in items):
        kids = tuple(_lifted(x, "mean") for x in items)
        return node("mean", _builtin_sum((k.value for k in kids), _NOTHING) / len(kids), kids)
    return _in_float64(_total, "mean", items) / len(items)


@overload
def dot(xs: Iterable[float], ys: Iterable[float]) -> float: ...  # type: ignore[overload-overlap]
@overload
def dot(xs: Iterable[Expr | float], ys: Iterable[Expr | float]) -> Expr: ...
@overload
def dot(xs: Any, ys: Any) -> Any: ...
def dot(xs: Any, ys: Any) -> Any:
    """``sum(x * y)`` over two equal-length sequences, as one node.

    >>> fm.dot([1.0, 2.0], [3.0, 4.0])
    11.0
    """
    xs, ys = _items(xs, "dot"), _items(ys, "dot")
    n = len(xs)
    if n != len(ys):
        raise ValueError(f"fm.dot: sequences differ in length ({n} vs {len(ys)})")
    if not n:  # an empty dot is the number 0.0 (as an empty sum), not a node
        return 0.0
    kids = xs + ys
    try:  # (while a trace runs, the nodes' ``.value`` is checked: read the slots)
        values = list(map(stored_value, kids)) if TRACING else [k.value for k in kids]
    except (AttributeError, TypeError):  # some plain numbers (or no nodes at all)
        if not any(isinstance(k, Expr) for k in kids):
            return _in_float64(_dot_total, "dot", xs, ys)
        kids = tuple(_lifted(k, "dot") for k in kids)
        values = list(map(stored_value, kids))
    return node("dot", products_sum(values[:n], values[n:], _NOTHING), kids)  # (from the first
    # product: -0.0 adds nothing, and ``sum`` from it runs in C)


@overload
def stop_gradient(x: Expr) -> Expr: ...
@overload
def stop_gradient(x: T) -> T: ...
def stop_gradient(x: Any) -> Any:
    """The value of ``x`` with derivative zero (numbers pass through).

    >>> fm.stop_gradient(fm.Var(2.0)).value
    2.0
    """
    if isinstance(x, Expr):
        return node("stop_gradient", x.value, (x,))
    if callable(x):
        raise TypeError(f"fm.stop_gradient takes a value, got the function {x!r}; to stop the "
                        "derivative of a function's result, write fm.stop_gradient(f(x))")
    from . import pytree as tree

    return tree.map(lambda leaf: stop_gradient(leaf) if isinstance(leaf, Expr) else leaf, x)


def where_value(x: Any) -> Any:
    """The value of a node, or ``x`` itself: rules branch on values only.

    >>> where_value(Var(2.0)), where_value(3.0)
    (2.0, 3.0)
    """
    return x.value if isinstance(x, Expr) else x

