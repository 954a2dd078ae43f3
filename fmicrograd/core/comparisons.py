"""Comparisons of node values: ``compare`` answers ``a < b`` as the floats
would (a guard under ``fm.jit``, noted for the transforms running), and a
``Mask`` holds the per-example answers where ``vmap``'s examples disagree
(usable by ``fm.where``, an error in ``if``).

>>> compare("<", Var(1.0), 2.0, 2.0)
True
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, replace
from typing import Any

from .control import (
    _IN_A_THREAD,
    COMPARED,
    EVERY_EXAMPLE,
    FREE_OF_VARIABLES,
    GUARDS,
    INTEGER_TEST,
    TRACING,
    _vmap_depth,
    foreign,
    raised,
    refused,
    thread_hint,
)

__all__ = ["Mask", "compare", "integer_test"]

def _as_bools(node: Any) -> Any:
    """``node`` (a ``Mask``'s truths), noted as free of variables for
    ``fm.where`` (``functions.undifferentiated``): in the loop ``vmap`` stands
    for it is a Python bool, so a condition computed from it, ``(x > 0.0) *
    1.0``, picks a branch per example as a float would, even where ``x`` is
    differentiated (its comparison carries no derivative)."""
    memo = FREE_OF_VARIABLES.get()
    if memo is not None and hasattr(node, "children"):
        memo[id(node)] = node  # (held: its id stays its own while the memo lives)
    return node


@dataclass(frozen=True, eq=False)
class Mask:
    """The per-example answers of a comparison under ``fm.vmap`` whose
    examples disagree: usable by ``fm.where``, an error in ``if``.

    >>> import numpy as np
    >>> m = Mask(">", None, 0.0, np.array([True, False]))
    >>> bool(m)
    Traceback (most recent call last):
        ...
    ValueError: `>` on an fm.Expr holding an array (a numpy array entered the computation, as \
in x * arr): Python control flow needs one truth, and an array has one per entry; choose per \
entry with fm.where(cond, a, b), or compare scalars

    (inside ``fm.vmap`` the message names the per-example values).
    """

    op: str  # a comparison's, or "node": ``left`` is the truth as a 0/1 node
    left: Any
    right: Any
    value: Any
    written: str = ""  # the test as the function wrote it (x.is_integer()), for messages

    @property
    def shown(self) -> str:
        """The test as error messages name it: as written, else the comparison."""
        return self.written or self.op

    def __bool__(self) -> bool:
        if EVERY_EXAMPLE.get():
            error = ValueError(f"fm.to_torch: `{self.shown}` in Python control flow: a torch "
                               "graph is made for every batch and cannot follow a branch on a "
                               "per-example value; choose per example with fm.where(cond, a, "
                               "b) (or fm.maximum, fm.minimum, fm.relu, fm.clip)")
            raise raised(("vmap", _vmap_depth()), error) if _vmap_depth() else error
        if not _vmap_depth():  # the entries of an array that entered the graph (x * arr)
            raise ValueError(f"`{self.shown}` on an fm.Expr holding an array (a numpy array "
                             "entered the computation, as in x * arr): Python control flow "
                             "needs one truth, and an array has one per entry; choose per entry "
                             "with fm.where(cond, a, b), or compare scalars" + thread_hint())
        raise raised(("vmap", _vmap_depth()), ValueError(
            f"`{self.shown}` inside fm.vmap: Python control flow cannot depend on a per-example "
            "value (here the examples disagree); choose per example with fm.where(cond, a, "
            "b), e.g. fm.where(x > 0.0, x, 0.0), or fm.maximum / fm.minimum / fm.relu"))

    # As the loop's bools combine, per example: ``==``, ``!=``, ``&``, ``|``, ``^``
    # and ``~`` give the masks of the combined truths (``==`` was identity: a
    # plain bool that picked one branch for the whole batch); arithmetic takes
    # the truths as 0.0 / 1.0, as Python takes a bool as 0 / 1.

    def as_node(self) -> Any:
        """The per-example truths as a node of 0.0 / 1.0 (what ``fm.where`` chooses by).

        >>> import fmicrograd as fm
        >>> fm.vmap(lambda x: (x > 0.0).as_node() if not isinstance(x > 0.0, bool)
        ...         else 0.0)((1.0, -1.0))
        (1.0, 0.0)
        """
        if self.op == "node":
            return _as_bools(self.left)
        from .functions import _COMPARISONS

        exact = _in_float64(self.op, self.right)
        if exact is None:
            return _as_bools(_COMPARISONS[self.op](self.left, _scalar_of(self.right)))
        bounds, negated = exact  # (a constant float64 would not answer as Python does)
        truth: Any = 1.0
        for op, bound in bounds:
            truth = truth * _COMPARISONS[op](self.left, bound)
        return _as_bools(1.0 - truth if negated else truth)

    def __eq__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: 1.0 - abs(a - b), "==")

    def __ne__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: abs(a - b), "!=")

    def __hash__(self) -> int:
        """A set or dict lookup (``(x > 1.0) in {True}``, ``table[x > 1.0]``)
        needs one truth: the ``if`` error (by identity it never matched True,
        and one branch was taken for the whole batch)."""
        self.__bool__()  # (raises: a mask's examples disagree)
        return object.__hash__(self)

    def __str__(self) -> str:
        """Text needs one truth too (``str(x > 1.0) == "True"`` took one branch for
        the whole batch): the ``if`` error; ``repr`` shows the mask."""
        self.__bool__()  # (raises: a mask's examples disagree)
        return repr(self)

    def __format__(self, spec: str) -> str:
        self.__bool__()
        return format(repr(self), spec)

    def __and__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: a * b, "&")

    def __or__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: a + b - a * b, "|")

    def __xor__(self, other: Any) -> Any:
        return _combined(self, other, lambda a, b: abs(a - b), "^")

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def __invert__(self) -> Any:
        # on the loop's bools ~ gives -2 and -1, both true: no mask can mean that
        raise TypeError(f"~ of a comparison (`{self.shown}`) inside fm.vmap: on a Python bool ~ "
                        "gives -2 or -1 (both true), on numpy's bool its negation, and a mask "
                        "of per-example truths cannot tell which the loop has; write `not` as "
                        "the opposite comparison (x <= 0 for not x > 0), or swap fm.where's "
                        "branches")

    def __add__(self, other: Any) -> Any:
        return self.as_node() + _truth(other)

    def __radd__(self, other: Any) -> Any:
        return _truth(other) + self.as_node()

    def __sub__(self, other: Any) -> Any:
        return self.as_node() - _truth(other)

    def __rsub__(self, other: Any) -> Any:
        return _truth(other) - self.as_node()

    def __mul__(self, other: Any) -> Any:
        return _unsigned(self.as_node() * _truth(other), other)

    def __rmul__(self, other: Any) -> Any:
        return _unsigned(_truth(other) * self.as_node(), other)

    def __truediv__(self, other: Any) -> Any:
        if other.__class__ in (int, float, bool) and other == 0 or \
                isinstance(other, Mask) and not other.as_node().value.all():
            raise ZeroDivisionError(f"division of a comparison (`{self.shown}`) by zero on "
                                    "some examples of fm.vmap, as a Python loop's bool by 0 "
                                    "would be: choose with fm.where instead")
        return self.as_node() / _truth(other)

    def __pow__(self, other: Any) -> Any:
        return self.as_node() ** _truth(other)

    def __rpow__(self, other: Any) -> Any:
        return _truth(other) ** self.as_node()

    def __rtruediv__(self, other: Any) -> Any:
        node = self.as_node()
        if other.__class__ in (int, float, bool) and not node.value.all():  # (the loop
            # divides a Python number by a False there; numpy's numbers give inf, as here)
            raise ZeroDivisionError(f"division by a comparison (`{self.shown}`) that is False "
                                    "on some examples of fm.vmap, as a Python loop's False "
                                    "(0) would be: choose with fm.where instead")
        return _truth(other) / node

    def __neg__(self) -> Any:
        # (0.0 - truth: the loop's -False is the int 0, where -0.0 turned an atan2's or a
        # division's sign on the examples where it is False)
        return 0.0 - self.as_node()

    def __pos__(self) -> Any:
        return self  # (the loop's +True is the int 1: still the truths, signless)

    def __abs__(self) -> Any:
        return self  # (the loop's abs(True) is the int 1)

    def __round__(self, ndigits: int | None = None) -> Any:
        return self

    def __lt__(self, other: Any) -> Any:
        return self.as_node() < _truth(other)

    def __le__(self, other: Any) -> Any:
        return self.as_node() <= _truth(other)

    def __gt__(self, other: Any) -> Any:
        return self.as_node() > _truth(other)

    def __ge__(self, other: Any) -> Any:
        return self.as_node() >= _truth(other)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """numpy's operators with a mask (``np.int64(-3) * (x > 0)``) are the
        mask's own, as the loop's numpy numbers and bools give them, but for
        numpy's arithmetic of two bools (``np.add`` is their or, ``np.multiply``
        their and) and numpy's divisions (by a False lane inf or nan, where
        Python's numbers raise); numpy's functions are as on its 0/1 node."""
        from .numpy_ops import _OPERATORS, numpy_on_node

        name = ufunc.__name__
        names = _OPERATORS.get(name)
        if method == "__call__" and len(inputs) == 2 and not kwargs and \
                all(_boolean(x) for x in inputs) and name in _NUMPY_BOOLS:
            # numpy's arithmetic of bools: + is or, * is and (np.add(True, True) is True)
            if name == "subtract":
                raise TypeError("numpy boolean subtract, the `-` operator, is not supported, "
                                "use the bitwise_xor, the `^` operator, or the logical_xor "
                                "function instead")
            other = inputs[1] if inputs[0] is self else inputs[0]
            return getattr(self, _NUMPY_BOOLS[name])(
                other if isinstance(other, Mask) else bool(other))
        if names is not None and method == "__call__" and len(inputs) == 2 and not kwargs:
            a, b = inputs
            if name not in _NUMPY_DIVISIONS:  # (numpy divides by a False: inf and nan,
                own = getattr(self, names[1] if a is self else names[0], None)  # as
                if own is not None:  # on its node; Python's numbers raise, as the loop's)
                    return own(b if a is self else a)
        return numpy_on_node(ufunc, method, tuple(x.as_node() if isinstance(x, Mask) else x
                                                  for x in inputs), kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        """numpy's functions on a mask (``np.sum(x > arr)``), as on a node."""
        from .numpy_ops import numpy_function_on_node

        return numpy_function_on_node(func, args, kwargs)

    def __float__(self, how: str = "float()") -> float:
        if not _vmap_depth():  # the entries of an array that entered the graph (x * arr)
            raise TypeError(f"{how} of a comparison (`{self.shown}`) on an fm.Expr holding an "
                            "array (a numpy array entered the computation, as in x * arr): "
                            "one number cannot stand for its entries; choose per entry with "
                            "fm.where(cond, a, b), or compare scalars")
        raise raised(("vmap", _vmap_depth()), TypeError(
            f"{how} of a comparison (`{self.shown}`) inside fm.vmap whose examples disagree: "
            "one number cannot stand for every example; compute with it (mask * 1.0 is 0.0 / "
            "1.0 per example) or choose with fm.where"))

    def __int__(self) -> int:
        return int(self.__float__("int()"))

    def __index__(self) -> int:
        return int(self.__float__("using it as an index"))


_NUMPY_DIVISIONS = frozenset(("divide", "true_divide", "floor_divide", "remainder", "power"))
_NUMPY_BOOLS = {"add": "__or__", "multiply": "__and__", "subtract": "", "bitwise_or": "__or__",
                "bitwise_and": "__and__", "bitwise_xor": "__xor__", "logical_or": "__or__",
                "logical_and": "__and__", "logical_xor": "__xor__"}


def _boolean(x: Any) -> bool:
    """A mask, a bool, or numpy's bool (a 0-d bool array too)."""
    return isinstance(x, (Mask, bool)) or (getattr(getattr(x, "dtype", None), "kind", "") == "b"
                                           and not getattr(x, "ndim", 0))


def _unsigned(node: Any, other: Any) -> Any:
    """``node``, a mask times ``other``, as the loop's product of a bool and an
    int (or a bool) is: ``False * -2`` is the int 0 there, and ``0.0 * -2``
    is -0.0 (with a float ``other`` the loop's product is a float, -0.0 too)."""
    if isinstance(other, numbers.Integral) or getattr(other, "dtype", None) is not None \
            and getattr(other.dtype, "kind", "") in "biu" and not getattr(other, "ndim", 0):
        return node + 0.0
    return node


def _truth(x: Any) -> Any:
    """An operand next to a mask: a mask as its 0/1 node, a bool as 0.0 / 1.0."""
    if isinstance(x, Mask):
        return x.as_node()
    if isinstance(x, bool):
        return 1.0 if x else 0.0
    return x


def _combined(m: Mask, other: Any, f: Any, what: str) -> Any:
    """The mask of ``f`` of the two truths (0/1 nodes), or a plain bool (its
    comparison guarded) where every example agrees, as ``compare`` gives."""
    if not isinstance(other, (Mask, bool)):
        if what in ("==", "!="):  # a mask against a number: the truth as 0/1 against it
            return compare(what, m.as_node(), other, other)
        return NotImplemented
    node = f(m.as_node(), _truth(other))
    value = node.value != 0
    if value.all() or not value.any():
        r = bool(value.all())
        log = GUARDS.get()
        if log is not None:  # (a guard on per-example values: jit runs the function as is)
            log.append(("!=", node, 0.0, r))
        return r
    return Mask("node", node, None, value)


def compare(op: str, a: Any, b: Any, b_value: Any) -> Any:
    """``a op b`` on values, as the floats would answer (guarded under ``jit``);
    a ``Mask`` when ``vmap``'s examples disagree.

    >>> compare("<", Var(1.0), 2.0, 2.0), compare("==", Var(1.0), 2.0, 2.0)
    (True, False)
    """
    value = a.value
    result = _OPS[op](value, b_value) if value.__class__ is float or not getattr(
        value, "ndim", 0) else _compared(op, value, b_value)
    if getattr(result, "ndim", 0):
        if EVERY_EXAMPLE.get():
            return Mask(op, a, b, result)
        if not _vmap_depth():
            if getattr(value, "ndim", 0) or hasattr(b, "children"):
                # a node holding an array (x * arr): the entries' answers, for fm.where; an
                # error in `if`, also where they agree (a bool took a branch there, where
                # the float program raises)
                return Mask(op, a, b, result)
            # a number against an array of the user's: the entries' answers, which one
            # bool cannot stand for (np.sum(arr < x) would count one)
            raise refused(a, TypeError(
                            f"a numpy array entered the computation: `{op}` between an fm node "
                            f"and a numpy array of shape {result.shape} outside fm.vmap; "
                            "fmicrograd is scalar-valued and a comparison answers one bool: "
                            f"compare entry by entry, [x {op} v for v in arr.tolist()], or map "
                            "the array with fm.vmap"))
        if result.all():
            r = True
        elif not result.any():
            r = False
        else:
            return Mask(op, a, b, result)
    else:
        r = bool(result)
    compared = COMPARED.get()
    if compared is not None:
        compared.append((op, a, b))
    log = GUARDS.get()
    if log is not None:
        log.append((op, a, b, r))
    elif TRACING:  # a trace runs somewhere: maybe this comparison is on its values
        there = foreign(a, tracing=True) or (
            foreign(b, tracing=True) if hasattr(b, "children") else None)
        if there is not None:
            raise raised(there[1], TypeError(
                f"`{op}` on a value that {there[0]} is tracing ran "
                + _IN_A_THREAD.format(who=there[0])
                + " (the compiled code could not re-check this branch)"))
    return r


def _compared(op: str, values: Any, b: Any) -> Any:
    """``values op b`` for the float64 values of ``vmap``'s examples, as
    each float would answer: an int beyond 2**53 exactly (numpy would round
    it to a float64 first, or overflow), a float32 or float16 number in its
    own type (as numpy compares a Python float with it).

    >>> import numpy as np
    >>> _compared("<", np.array([2.0 ** 53, 1.0]), 2 ** 53 + 1).tolist()
    [True, True]
    >>> _compared("==", np.array([0.1]), np.float32(0.1)).tolist()
    [True]
    """
    b = _scalar_of(b)
    exact = _in_float64(op, b)
    if exact is None:
        return _OPS[op](values, b)
    bounds, negated = exact  # (the float64 bounds ``Mask.as_node`` compares with too)
    truth = _OPS[bounds[0][0]](values, bounds[0][1])
    for o, bound in bounds[1:]:
        truth &= _OPS[o](values, bound)
    return ~truth if negated else truth


_EXACT_INT = 2 ** 53


def _near(b: Any) -> float | None:
    """For a number a float64 may not hold exactly, the float64 nearest it
    (+-inf beyond float64's range, NaN for a NaN): an int beyond 2**53 (numpy's
    too), a ``Fraction``, a ``np.longdouble``; None for any other ``b``.
    Python compares a float with each of them exactly; numpy would round
    them to a float64 first (or compare as objects, where ``fm.where``'s node
    could not).

    >>> from fractions import Fraction
    >>> _near(2 ** 53 + 1), _near(Fraction(1, 3)), _near(2.0)
    (9007199254740992.0, 0.3333333333333333, None)
    """
    import numpy as np

    kind = b.__class__
    if kind is float:
        return None
    if kind is int or isinstance(b, np.integer):
        if -_EXACT_INT <= b <= _EXACT_INT:
            return None
    elif isinstance(b, numbers.Rational) and not isinstance(b, numbers.Integral):
        pass  # a Fraction
    elif not (isinstance(b, np.floating) and b.dtype.itemsize > 8):  # a long double
        return None
    try:
        return float(b)
    except OverflowError:
        return math.inf if b > 0 else -math.inf


def _scalar_of(b: Any) -> Any:
    """A 0-d numpy array as its scalar (numpy hands ``np.float32(0.1) < x`` to
    the node as one), anything else as it is."""
    if getattr(b, "ndim", None) == 0:
        if b.__class__.__name__ == "ndarray":
            return b[()]
        if b.__class__.__name__ == "Tensor":  # a torch number: as its numpy scalar, whose
            if str(b.dtype) not in _TORCH_FLOATS:  # float32 compares as Python compares it
                raise TypeError(f"a comparison with a {b.dtype} number inside fm.vmap: "
                                "fm compares per example as Python compares floats, and "
                                "torch rounds this one its own way; convert it first "
                                "(t.item(), or float(t))")
            return b.detach().cpu().numpy()[()]
    return b


_TORCH_FLOATS = ("torch.float64", "torch.float32", "torch.float16")


def _in_float64(op: str, b: Any) -> tuple[list[tuple[str, float]], bool] | None:
    """``x op b`` for float64 ``x`` and a constant ``b`` that a float64
    comparison would not answer as Python does (an int beyond 2**53, a
    float32 or float16 number, which numpy compares in its own type), as
    ``(bounds, negated)``: comparisons with float64 bounds that must all hold
    (or, ``negated``, not all hold); None for any other ``b``.

    >>> _in_float64("<", 2 ** 53 + 1), _in_float64("<", 2.0)
    (([('<=', 9007199254740992.0)], False), None)
    """
    import numpy as np

    b = _scalar_of(b)
    near = _near(b)
    if near is not None:
        if op in ("==", "!="):  # equal only at near, and only if near is b itself
            return ([("==", near)] if near == b else [("<", -math.inf)]), op == "!="
        at = _OPS[op](near, b)  # the answer at x == near; any other x answers as with near
        if op in ("<", "<="):
            return [("<=" if at else "<", near)], False
        return [(">=" if at else ">", near)], False
    if isinstance(b, np.floating) and b.dtype.itemsize < 8:
        if b != b:  # NaN: only != holds
            return [("<", -math.inf)], op == "!="
        lo, hi = _rounding_interval(b)  # the float64 x that round to b in b's type
        if op in ("==", "!="):
            return [(">=", lo), ("<=", hi)], op == "!="
        return {"<": [("<", lo)], "<=": [("<=", hi)], ">": [(">", hi)],
                ">=": [(">=", lo)]}[op], False
    return None


def _rounding_interval(b: Any) -> tuple[float, float]:
    """The least and greatest float64 that round to the float32 (or float16)
    ``b``: to nearest, ties to even, and beyond the largest finite number's
    half step up to inf.

    >>> import numpy as np
    >>> lo, hi = _rounding_interval(np.float32(1.0))
    >>> np.float32(lo), np.float32(np.nextafter(lo, -1.0)), np.float32(hi)
    (np.float32(1.0), np.float32(0.99999994), np.float32(1.0))
    """
    import numpy as np

    kind = b.dtype.type
    top = float(np.finfo(kind).max)
    overflow = top + (top - float(np.nextafter(kind(top), kind(0)))) / 2  # rounds to inf
    v = float(b)
    if v == math.inf:
        lo, hi = overflow, math.inf
    elif v == -math.inf:
        lo, hi = -math.inf, -overflow
    else:
        with np.errstate(over="ignore"):  # (the neighbours of the largest finite: +-inf)
            below = float(np.nextafter(b, kind(-np.inf)))
            above = float(np.nextafter(b, kind(np.inf)))
        lo = -overflow if below == -math.inf else (below + v) / 2  # (exact in float64)
        hi = overflow if above == math.inf else (v + above) / 2
    # a midpoint itself rounds to the even neighbour: step inside where that is not b
    with np.errstate(over="ignore"):  # (a bound past the largest finite casts to inf)
        if math.isfinite(lo) and kind(lo) != b:
            lo = float(np.nextafter(lo, math.inf))
        if math.isfinite(hi) and kind(hi) != b:
            hi = float(np.nextafter(hi, -math.inf))
    return lo, hi


def integer_test(x: Any) -> Any:
    """``x.is_integer()`` of a node, as its float answers, told by comparisons
    of ``x`` that ``jit`` guards like any other (a call whose answer differs
    recompiles): ``x == n`` for a whole value ``n``, ``n < x < n + 1``
    otherwise, ``x == x`` for NaN, ``x == inf`` for infinities. Under ``vmap``
    examples that disagree give a ``Mask`` (for ``fm.where``; an error in
    ``if``), and ``jit`` runs the function as Python (see ``INTEGER_TEST``).

    >>> integer_test(Var(3.0)), integer_test(Var(2.5)), integer_test(Var(-math.inf))
    (True, False, False)
    """
    v = x.value
    if getattr(v, "ndim", 0):
        import numpy as np  # only under vmap: importing fmicrograd needs no numpy

        log = GUARDS.get()
        if log is not None and INTEGER_TEST not in log:
            log.append(INTEGER_TEST)
        with np.errstate(invalid="ignore"):
            whole = np.where(np.isfinite(v), np.floor(v), np.nan)  # NaN: equal to none
        truth = compare("==", x, whole, whole)
        return replace(truth, written="x.is_integer()") if isinstance(truth, Mask) else truth
    if v != v:
        return compare("==", x, x, v)  # False, as long as x is NaN
    if v in (math.inf, -math.inf):
        return not compare("==", x, v, v)
    n = float(math.floor(v))
    if v == n:
        return compare("==", x, n, n)
    # strictly between two whole numbers: both comparisons hold (they are the guards)
    return not (compare(">", x, n, n) and compare("<", x, n + 1.0, n + 1.0))


_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        "==": operator.eq, "!=": operator.ne}
