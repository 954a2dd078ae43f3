"""Expression graphs: frozen nodes that hold their inputs and their value.

A node is built once, with its forward value computed on the spot, and never
changes. Comparisons (``==`` included) answer as the values would; hashing is
by identity (so nodes can key a sweep's dictionaries), and nothing here
recurses over the graph, so a chain of a million nodes builds, prints and
hashes like a short one.

>>> a, b = Var(2.0, name="a"), Var(-3.0, name="b")
>>> c = a * b + b ** 3
>>> c.value, c.op, len(c.children)
(-33.0, '+', 2)
"""

from __future__ import annotations

import itertools
import math
import numbers
import reprlib
import sys
import warnings
from dataclasses import dataclass
from typing import Any, SupportsFloat

from . import numeric as num
from .comparisons import Mask, compare, integer_test  # noqa: F401
from .control import (  # noqa: F401
    FORMATTED,
    GUARDS,
    RUNNING,
    TRACE_CONSTS,
    TRACING,
    _vmap_depth,
    beyond_traces,
    dependent,
    escape,
    refuse_foreign,
    refused,
    running,
    traced_anywhere,
)
from .micrograd_names import install as install_micrograd_names
from .node_text import node_text
from .percent import percent_op
from .placeholder import is_scalar, mirror, refuse

Number = float | int
# Transform invocations are ordered by this counter, like object ids: an inner
# transform tells the variables of enclosing transforms (older) from those of
# transforms that ran and finished inside it (newer). It never alters values.
_levels = itertools.count()


def next_level() -> int:
    """A level newer than every existing variable (see ``Var.level``).

    >>> a = next_level(); a < next_level()
    True
    """
    return next(_levels)


@dataclass(frozen=True, slots=True, eq=False, repr=False, init=False)
class Expr:
    """Base of every graph node: ``value``, ``op`` and ``children``.

    >>> x = fm.Var(0.5)
    >>> (x.tanh().op, x.exp().children == (x,))
    ('tanh', True)
    """

    value: Any
    op: str
    children: tuple

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """numpy's operators with a node (``np.float64(2.0) * x``, ``arr < x``)
        are the node's own; numpy's functions (``np.sin(x)``) are a TypeError
        naming fm's (see ``numpy_on_node``)."""
        return numpy_on_node(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        """numpy's other functions with a node (``np.mean(x)``): numpy's own
        code, except where it would silently do something else than on the
        float (see ``numpy_function_on_node``)."""
        return numpy_function_on_node(func, args, kwargs)

    # arithmetic: every operator builds one node
    def __add__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return o  # (an array of objects: numpy's, entry by entry)
        return node("+", _value(self) + _value(o), (self, o))

    def __radd__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return entrywise("add", other, self)  # (numpy's declined: np.matrix)
        return node("+", _value(o) + _value(self), (o, self))

    def __sub__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return o  # (an array of objects: numpy's, entry by entry)
        return node("-", _value(self) - _value(o), (self, o))

    def __rsub__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return entrywise("subtract", other, self)  # (numpy's declined: np.matrix)
        return node("-", _value(o) - _value(self), (o, self))

    # A product with the float 1.0 is the node itself: the same value bit for
    # bit and the same derivatives, one node fewer. Derivative rules lean on it
    # (``ct * partial`` with the seed 1.0, which + and sum pass on), so a sweep
    # that builds a graph builds no ``1.0 * p`` nodes.
    def __mul__(self, other: Any) -> Expr:
        if other.__class__ is float and other == 1.0 and is_scalar(_value(self)):
            return self
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return o  # (an array of objects: numpy's, entry by entry)
        return node("*", _value(self) * _value(o), (self, o))

    def __rmul__(self, other: Any) -> Expr:
        if other.__class__ is float and other == 1.0 and is_scalar(_value(self)):
            return self
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return entrywise("multiply", other, self)  # (numpy's declined: np.matrix)
        return node("*", _value(o) * _value(self), (o, self))

    def __truediv__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return o  # (an array of objects: numpy's, entry by entry)
        return node("/", num.div(_value(self), _value(o)), (self, o))

    def __rtruediv__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return entrywise("true_divide", other, self)  # (numpy's declined: np.matrix)
        return node("/", num.div(_value(o), _value(self)), (o, self))

    def __pow__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return o  # (an array of objects: numpy's, entry by entry)
        return node("**", num.power(_value(self), _value(o)), (self, o))

    def __rpow__(self, other: Any) -> Expr:
        if isinstance(other, Expr):
            o = other
        elif (o := operand(other)) is NotImplemented:
            return entrywise("power", other, self)  # (numpy's declined: np.matrix)
        return node("**", num.power(_value(o), _value(self)), (o, self))

    def __neg__(self) -> Expr:
        return node("neg", -_value(self), (self,))

    def __pos__(self) -> Expr:
        return self

    def __abs__(self) -> Expr:
        return node("abs", abs(_value(self)), (self,))

    # micrograd's methods
    def relu(self) -> Expr:
        """``max(x, 0)``; derivative 0 at 0, as torch."""
        return node("relu", num.relu(_value(self)), (self,))

    def tanh(self) -> Expr:
        """Hyperbolic tangent."""
        return node("tanh", num.tanh(_value(self)), (self,))

    def exp(self) -> Expr:
        """``e ** x``."""
        return node("exp", num.exp(_value(self)), (self,))

    def log(self) -> Expr:
        """Natural logarithm (``-inf`` at 0)."""
        return node("log", num.log(_value(self)), (self,))

    def sigmoid(self) -> Expr:
        """Logistic function ``1 / (1 + e ** -x)``."""
        return node("sigmoid", num.sigmoid(_value(self)), (self,))

    def sqrt(self) -> Expr:
        """Square root."""
        return node("sqrt", num.sqrt(_value(self)), (self,))

    def sin(self) -> Expr:
        """Sine."""
        return node("sin", num.sin(_value(self)), (self,))

    def cos(self) -> Expr:
        """Cosine."""
        return node("cos", num.cos(_value(self)), (self,))

    # numbers.Real's API, as a float answers it
    @property
    def real(self) -> Expr:
        """The real part: the node itself, as ``float.real`` (derivative 1).

        >>> x = fm.Var(2.0)
        >>> x.real is x, fm.grad(lambda y: y.real * y)(3.0)
        (True, 6.0)
        """
        return self

    @property
    def imag(self) -> float:
        """The imaginary part: the plain float ``0.0``, as ``float.imag``. It is
        the same for every value, so no transform sees it (derivative 0).

        >>> fm.Var(2.0).imag, fm.grad(lambda y: y.imag + y)(3.0)
        (0.0, 1.0)
        """
        return 0.0

    def conjugate(self) -> Expr:
        """The complex conjugate of a real number: the node itself.

        >>> x = fm.Var(2.0)
        >>> x.conjugate() is x
        True
        """
        return self

    def is_integer(self) -> Any:
        """Whether the value is a whole number, as ``float.is_integer``: a
        bool, read from comparisons of the node, so ``fm.jit`` guards it like
        ``x > 0`` (a call on the other side recompiles), and under ``fm.vmap``
        examples that disagree give a per-example truth for ``fm.where`` (in
        ``if``, an error naming it).

        >>> fm.Var(3.0).is_integer(), fm.Var(2.5).is_integer(), fm.Var(float("inf")).is_integer()
        (True, False, False)
        >>> f = fm.jit(lambda x: x * 2.0 if x.is_integer() else x)
        >>> f(3.0), f(2.5), f(4.0)
        (6.0, 2.5, 8.0)
        """
        return integer_test(self)

    # Comparisons and truth tests read values only (they are not differentiable)
    # and answer exactly as the floats would; fm.jit guards each one it sees.
    # The hash stays identity (nodes key the sweeps' dictionaries), as torch's
    # tensors do, so two equal nodes are == but never collide as keys.
    def __lt__(self, other: Any) -> Any:
        return _compare("<", self, other)

    def __le__(self, other: Any) -> Any:
        return _compare("<=", self, other)

    def __gt__(self, other: Any) -> Any:
        return _compare(">", self, other)

    def __ge__(self, other: Any) -> Any:
        return _compare(">=", self, other)

    def __eq__(self, other: Any) -> Any:
        return _compare("==", self, other)

    def __ne__(self, other: Any) -> Any:
        return _compare("!=", self, other)

    __hash__ = object.__hash__

    def _bitwise(self, *_: Any) -> Any:
        """``&``, ``|``, ``^``, ``<<``, ``>>``, ``~``: an int's operators, which a
        float (and so a node) lacks; under ``jit`` an int argument is a node."""
        raise refused(self, TypeError(
            "a bitwise operator (& | ^ << >> ~) on an fm node, which holds a float (under "
            "fm.jit an int argument is traced as a float64): pass the argument in "
            "static_argnums, or test bits with comparisons (n % 2 needs static_argnums too)"))

    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _bitwise
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __invert__ = _bitwise

    def __bool__(self) -> bool:
        return bool(_compare("!=", self, 0.0))

    # Implicit escapes to a plain number: fine on their own, an error on a node
    # that a running transform differentiates, maps or traces (see ``escape``);
    # asked for by %-formatting ("loss %.4f" % x), an error naming the f-string.
    def __float__(self) -> float:
        try:
            value = escape(self, "float()")
        except TypeError as e:
            _if_percent(e, "float()", '"%.4f" % x', "float()")
            raise
        log = GUARDS.get()
        if log is not None:
            log.append(("float", self, None, value))
        return value

    def __int__(self) -> int:
        try:
            return int(escape(self, "int()"))
        except TypeError as e:
            _if_percent(e, "int()", '"%d" % x', "int()")
            raise

    def as_integer_ratio(self) -> tuple[int, int]:
        """The value as an exact ratio of ints, as ``float.as_integer_ratio``
        (``statistics.mean`` asks for it): an escape to plain
        numbers, as ``float()`` is, so a ``TypeError`` naming the fix on a node
        that a transform differentiates, maps or traces.

        >>> fm.Var(0.75).as_integer_ratio()
        (3, 4)
        """
        return float(escape(self, "x.as_integer_ratio()")).as_integer_ratio()

    def item(self) -> float:
        """The value as a float, as numpy's ``x.item()`` (code written for a
        numpy number, a learning rate ``lr.item()``): an escape to a plain
        number, as ``float()`` is, so a ``TypeError`` naming the fix on a node
        that a transform differentiates, maps or traces (``jit``'s argument:
        ``static_argnums``).

        >>> fm.Var(0.5).item()
        0.5
        """
        return float(escape(self, "x.item()"))

    def __index__(self) -> int:
        """A node as an index (``lst[x]``, ``range(x)``): its value if it is a
        whole number no transform depends on, else a ``TypeError``."""
        how = "using a node as an index (lst[x], range(x))"
        try:
            value = escape(self, how)
        except TypeError as e:
            _if_percent(e, how, '"%x" % x', "an index")
            raise
        if value != int(value):
            raise TypeError(f"a node of value {value!r} is not a whole number: it cannot be "
                            "an index")
        return int(value)

    def __mod__(self, other: Any) -> Any:
        if not (isinstance(other, Expr) or _is_value(other)):
            return NotImplemented  # (x % None: Python's TypeError, as a float's)
        raise refused(self, TypeError(_NO_MOD))

    __rmod__ = __floordiv__ = __rfloordiv__ = __divmod__ = __rdivmod__ = __mod__

    def __round__(self, ndigits: int | None = None) -> Any:
        return round(escape(self, "round()"), ndigits)

    def __trunc__(self) -> int:
        return math.trunc(escape(self, "math.trunc()"))

    def __floor__(self) -> int:
        return math.floor(escape(self, "math.floor()"))

    def __ceil__(self) -> int:
        return math.ceil(escape(self, "math.ceil()"))

    def __complex__(self) -> complex:
        return complex(escape(self, "complex()"))

    def __format__(self, spec: str) -> str:
        """``f"{x:.4f}"`` formats the value (the way to print inside a loss);
        an empty spec gives ``str(x)``. Under ``jit`` the text of a traced
        value is the trace's, so the function then runs uncompiled, on every
        call (see ``FORMATTED``)."""
        if not spec:
            return str(self)
        if spec[-1] in "bcdoxXn" and spec[-1] != "n":  # an int's presentation: no float's
            raise refused(self, TypeError(
                f"format spec {spec!r} is for an int, and an fm node holds a float (under "
                "fm.jit an int argument is traced as a float64): pass the argument in "
                "static_argnums, or format with a float spec (f\"{x:.0f}\")"))
        _formatted(self, f"f\"{{x:{spec}}}\" (format)")
        value = self.value
        if hasattr(value, "ravel"):
            return node_text("[" + ", ".join(format(float(v), spec) for v in value.ravel()) +
                             "]", self, spec, True)  # (parsed back, read: see ``BatchText``)
        return node_text(format(value, spec), self, spec)  # parsed back: see ``NodeText``

    def __repr__(self) -> str:
        _formatted(self)
        return f"Expr(op={self.op!r}, value={self.value!r}, children={len(self.children)})"

    def __str__(self) -> str:
        """The node as a readable formula (abbreviated for large graphs).

        >>> w, x = fm.Var(0.5, name="w"), fm.Var(2.0, name="x")
        >>> str(fm.tanh(w * x + 1.0))
        'tanh(w*x + 1.0)'
        """
        from .formula import formula

        _formatted(self)
        return formula(self)


def _formatted(x: Expr, how: str = "str() or repr()") -> None:
    """Under ``jit``, text made from a traced value (``str(x)``, ``repr(x)``,
    ``f"{x:.4f}"``) holds the trace's number, which compiled calls would
    freeze (printed, or parsed back into a number): the function then runs
    as Python on every call, with a warning (see ``FORMATTED``). In a thread
    without the caller's context, where that transform cannot see it, a
    ``TypeError`` naming the fix (``control.refuse_foreign``)."""
    refuse_foreign(x, how)
    log = GUARDS.get()
    if log is None or FORMATTED in log or _from_fm():
        return
    who = dependent(x)
    if who is not None:
        log.append(FORMATTED)
        if who == "fm.to_torch":
            return  # (it cannot run as Python: its lowering says so, as an error)
        warnings.warn("fm.jit: the function turns a traced value into text (str(x), "
                      "f\"{x:.4f}\", print(x)), so it runs as Python on every call (the text "
                      "of a compiled call would be the trace's); print outside the jitted "
                      "function for compiled speed", RuntimeWarning, stacklevel=3)


def _if_percent(error: TypeError, how: str, form: str, conversion: str) -> None:
    """``escape``'s ``error`` (which begins with ``how``) as a ``ValueError``
    naming the f-string, raised where the conversion is asked for by a ``%``
    operation in the function (``percent_op``; ``"%d"`` would replace a
    ``TypeError`` from it with its own message, which names neither).

    >>> fm.grad(lambda x: len("%.1f" % x) * x)(2.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: %-formatting ("%.4f" % x converts x with float(); f"{x:.4f}" formats a node \
under every transform) on an fm.Expr that fm.grad differentiates: ...
    """
    if percent_op(sys._getframe(2)):
        raise ValueError(f'%-formatting ({form} converts x with {conversion}; f"{{x:.4f}}" '
                         "formats a node under every transform)"
                         + str(error).removeprefix(how)) from None


def _from_fm() -> bool:
    """Whether the text is asked for by fmicrograd's own code (an error
    message naming the node, raised while tracing), not by the function."""
    frame: Any = sys._getframe(2)
    while frame is not None and frame.f_code.co_name in _TEXT_METHODS \
            and frame.f_globals is globals():
        frame = frame.f_back  # (__format__ calls str: the nodes' own methods)
    return frame is not None and frame.f_globals.get("__name__", "").startswith("fmicrograd.")


_TEXT_METHODS = frozenset({"__str__", "__repr__", "__format__"})


@dataclass(frozen=True, slots=True, eq=False, repr=False, init=False)
class Var(Expr):
    """A leaf variable. ``level`` orders variables by the transform that made
    them; a variable made by a transform for an ``Expr`` argument has that
    expression as its one child (derivative 1), so enclosing transforms see
    through it.

    >>> fm.Var(3.0, name="x")
    Var(3.0, name='x')
    """

    name: str | None
    level: int

    def __init__(self, value: SupportsFloat, name: str | None = None) -> None:
        if name is not None and not isinstance(name, str):
            micrograd = isinstance(name, (tuple, list, set)) or isinstance(name, Expr)
            raise TypeError(f"fm.Var(value, name): name is a str, got {type(name).__name__}"
                            + ("; micrograd's Value(data, _children) links nodes by hand, and "
                               "here operations build the graph: x * y, fm.tanh(x)"
                               if micrograd else ""))
        value = _check_number(value, "Var")
        shape: Any = getattr(value, "shape", ())
        if shape:  # (a Var is one number: a node holding an array is
            raise TypeError(            # vmap's, made for it)
                f"fm.Var(value): expected a number, got an array of shape "
                f"{tuple(shape)}; fmicrograd is scalar-valued: one Var per entry "
                "([fm.Var(v) for v in arr.tolist()]), or map with fm.vmap")
        _init_var(self, value, name, next_level(), ())

    def __repr__(self) -> str:
        _formatted(self)
        extra = f", name={self.name!r}" if self.name is not None else ""
        return f"Var({self.value!r}{extra})"


@dataclass(frozen=True, slots=True, eq=False, repr=False, init=False)
class Const(Expr):
    """A constant leaf: its derivative is zero.

    >>> fm.Const(2.0) * 3
    Expr(op='*', value=6.0, children=2)
    """

    def __init__(self, value: Any) -> None:
        _set_value(self, _check_number(value, "Const"))
        _set_op(self, "const")
        _set_children(self, ())

    def __repr__(self) -> str:
        return f"Const({self.value!r})"


@dataclass(frozen=True, slots=True, eq=False, repr=False, init=False)
class Prim(Expr):
    """A node whose rule needs data besides its inputs (``param``), such as a
    user's ``custom_vjp`` rule or the index of a batch element."""

    param: Any


_new = object.__new__
_set_value = Expr.__dict__["value"].__set__  # the slots' own setters (fields are frozen)
_set_op = Expr.__dict__["op"].__set__
_set_children = Expr.__dict__["children"].__set__
_set_name = Var.__dict__["name"].__set__
_set_level = Var.__dict__["level"].__set__
_set_param = Prim.__dict__["param"].__set__


def _init_var(v: Var, value: Any, name: str | None, level: int, children: tuple) -> Var:
    _set_value(v, value)
    _set_op(v, "var")
    _set_children(v, children)
    _set_name(v, name)
    _set_level(v, level)
    return v


def node(op: str, value: Any, children: tuple) -> Expr:
    """Build a node without the dataclass ``__init__`` (3x faster, same object).

    >>> node("+", 3.0, (Const(1.0), Const(2.0))).value
    3.0
    """
    n = _new(TracedExpr if TRACING else Expr)
    _set_value(n, value)
    _set_op(n, op)
    _set_children(n, children)
    return n


def prim(op: str, value: Any, children: tuple, param: Any) -> Prim:
    """Build a ``Prim`` node carrying ``param`` for its rule.

    >>> prim("custom", 1.0, (Const(1.0),), lambda ct, out, a: (ct,)).op
    'custom'
    """
    n = _new(Prim)
    _set_value(n, value)
    _set_op(n, op)
    _set_children(n, children)
    _set_param(n, param)
    return n


def variable(value: Any, level: int, source: Expr | None = None, name: str | None = None) -> Var:
    """A transform's input variable at ``level``; ``source`` is the outer
    expression it stands for, if any.

    >>> outer = Var(2.0)
    >>> variable(2.0, next_level(), source=outer).children == (outer,)
    True
    """
    # (while a trace runs, one whose ``.value`` the user's code may not read: ``CheckedVar``)
    return _init_var(_new(CheckedVar if TRACING else Var), value, name, level,
                     () if source is None else (source,))


# a node's stored value, read without ``TracedVar``'s check (fmicrograd's own
# code, on hot paths: the sweeps, the rules, jit's lowering)
stored_value = Expr.__dict__["value"].__get__
# (the operators read it so: from fmicrograd's own code a checked ``value`` gives the
# stored one, after a look at the caller's frame that costs more than the operation)
_value = stored_value


def _checked_value(self: Expr) -> Any:
    """``.value`` of a ``Prim`` node (a ``vmap`` example, a rule's output),
    a ``CheckedVar`` or a ``TracedExpr`` (a node built while a trace runs):
    read by the user's code while ``jit`` or ``to_torch`` traces a function
    it depends on, a ``TypeError``, as for the traced arguments themselves
    (the compiled code would freeze the number). fmicrograd's own code reads
    freely (its hot paths read the slot: ``stored_value``)."""
    if TRACING and not sys._getframe(1).f_globals.get("__name__", "").startswith("fmicrograd."):
        who = traced_anywhere(self)  # (a thread the function started reads it too)
        if who is not None:
            raise TypeError(_frozen(who))
    return stored_value(self)


checked_value = property(_checked_value, _set_value)  # (set by unpickling; fields are frozen)


def _frozen(who: str) -> str:
    if who == "fm.to_torch":
        return ("x.value on a value that fm.to_torch is tracing: it is the number seen while "
                "tracing, and the torch program would freeze it. Compute with fm functions on "
                "the node itself")
    return ("x.value on a value that fm.jit is tracing: it is the number seen while tracing, "
            "and the compiled code would freeze it (a branch on it never flips). Compare the "
            "node itself (`if x > 0:` is guarded), compute with fm functions, or pass the "
            "argument in static_argnums (or static_argnames). To print it, format the node "
            "(print(f\"{x:.4f}\")): jit then runs the function as Python")


Prim.value = checked_value  # type: ignore[misc]


class TracedExpr(Expr):
    """A plain node built while a ``jit`` or ``to_torch`` trace runs: ``.value``
    is checked as ``Prim``'s is. A node built otherwise reads its slot (eager
    code reads many); ``PLAIN`` holds both classes.

    >>> lv = next_level()
    >>> x = traced_variable(2.0, lv)
    >>> with running(lv, "fm.jit", traces=True):
    ...     y = x * 3.0
    ...     eval("y.value", {"y": y})
    Traceback (most recent call last):
        ...
    TypeError: x.value on a value that fm.jit is tracing: it is the number seen while tracing, \
and the compiled code would freeze it (a branch on it never flips). Compare the node itself \
(`if x > 0:` is guarded), compute with fm functions, or pass the argument in static_argnums \
(or static_argnames). To print it, format the node (print(f"{x:.4f}")): jit then runs the \
function as Python
    >>> y.value  # (the trace has ended)
    6.0
    """

    __slots__ = ()

    value = checked_value


# the classes of plain computed nodes (no rule data, not leaves)
PLAIN = (Expr, TracedExpr)


class CheckedVar(Var):
    """A transform's variable made while a ``jit`` or ``to_torch`` trace runs
    (``grad``'s inside ``jit``): ``.value`` is checked as ``Prim``'s is. A
    variable made otherwise reads its slot (eager code reads many)."""

    __slots__ = ()

    value = checked_value


class TracedVar(Var):
    """An argument variable of ``fm.jit``'s trace. Reading its ``.value`` from
    the user's code while the trace runs is a ``TypeError``: the compiled
    code would freeze the number (fmicrograd's own code reads it freely).

    >>> lv = next_level()
    >>> x = traced_variable(2.0, lv)
    >>> with running(lv, "fm.jit", traces=True):  # eval: as from a user's module
    ...     eval("x.value", {"x": x})
    Traceback (most recent call last):
        ...
    TypeError: x.value on an argument that fm.jit is tracing: it is the number seen while \
tracing, and the compiled code would freeze it (a branch on it never flips). Compare the node \
itself (`if x > 0:` is guarded), compute with fm functions, or pass the argument in \
static_argnums (or static_argnames). To print it, format the node (print(f"{x:.4f}")): jit \
then runs the function as Python
    >>> (x * 3.0).value
    6.0
    """

    __slots__ = ()

    @property
    def value(self) -> Any:
        who = TRACING.get(self.level)  # its trace runs (in this thread or another)
        if who and not sys._getframe(1).f_globals.get("__name__", "").startswith("fmicrograd."):
            raise TypeError(_frozen(who).replace("a value that", "an argument that"))
        return stored_value(self)


def traced_variable(value: Any, level: int) -> Var:
    """A ``TracedVar`` holding ``value`` at ``level`` (``fm.jit``'s arguments).

    >>> traced_variable(1.5, next_level()).op
    'var'
    """
    return _init_var(_new(TracedVar), value, None, level, ())


def traced_variables(values: list, level: int) -> list:
    """``[traced_variable(v, level) for v in values]``, without two calls per
    variable (a step's trace makes one per parameter and data entry).

    >>> [v.value for v in traced_variables([1.5, 2.5], next_level())]
    [1.5, 2.5]
    """
    out: list = []
    new, append = _new, out.append
    set_value, set_op, set_children, set_name, set_level = \
        _set_value, _set_op, _set_children, _set_name, _set_level
    for value in values:
        v = new(TracedVar)
        set_value(v, value)
        set_op(v, "var")
        set_children(v, ())
        set_name(v, None)
        set_level(v, level)
        append(v)
    return out


def const(value: Any) -> Const:
    """A constant node, skipping validation (for values already checked).

    >>> const(2.0)
    Const(2.0)
    """
    c = _new(Const)
    _set_value(c, value)
    _set_op(c, "const")
    _set_children(c, ())
    return c


def operand(x: Any) -> Any:
    """``lift(x)`` for an operator's other operand, but ``NotImplemented``
    for a numpy array of objects (nodes, as a ``jit`` array argument is)
    outside ``vmap``: Python then hands the operation to numpy, which applies
    it entry by entry (``numpy_ops.numpy_on_node``), as for a float on the
    node's side. (Under ``vmap`` such an array is a batch: one node.)

    >>> import numpy as np
    >>> operand(np.array([Var(1.0)], dtype=object)) is NotImplemented, operand(2.0)
    (True, Const(2.0))
    """
    if x.__class__ is float:
        if TRACING and x == x and x:  # in a trace: one leaf per value (``TRACE_CONSTS``;
            consts = TRACE_CONSTS.get()  # 0.0 and -0.0, and NaNs, each their own)
            if consts is not None:
                c = consts.get(x)
                if c is None:
                    c = consts[x] = const(x)
                return c
        return const(x)
    if object_entries(x):
        return NotImplemented
    return lift(x)


def object_entries(x: Any) -> bool:
    """Whether ``x`` is a numpy array of Python objects (nodes) with entries
    outside ``vmap``, which operators with a node take entry by entry."""
    return bool(getattr(x, "ndim", 0)) and getattr(getattr(x, "dtype", None), "kind", "") == "O" \
        and isinstance(x, sys.modules["numpy"].ndarray) and not _vmap_depth()


def boxed(v: Any) -> Any:
    """A node as a 0-d array of objects (numpy then calls Python's operator
    on each entry with it); anything else as it is."""
    if not isinstance(v, Expr):
        return v
    box = sys.modules["numpy"].empty((), dtype=object)
    box[()] = v
    return box


def entrywise(ufunc: str, a: Any, b: Any) -> Any:
    """numpy's ``ufunc`` of ``a`` and ``b``, one a node and the other an
    array of objects, entry by entry: what a reflected operator does when
    the array's own operator declined (``np.matrix`` of nodes ``* x``)."""
    return getattr(sys.modules["numpy"], ufunc)(boxed(a), boxed(b))


def lift(x: Any) -> Expr:
    """``x`` as a node: nodes pass through, numbers become ``Const``.

    >>> x = Var(1.0)
    >>> lift(x) is x, lift(3)
    (True, Const(3.0))
    """
    if isinstance(x, Expr):
        return x
    if x.__class__ is float:
        return const(x)
    if x.__class__ is int:  # (before the checks below: ``x * 2``)
        try:
            return const(float(x))
        except OverflowError:  # an int beyond float64, as fm.exp(10 ** 400) takes it
            return const(math.inf if x > 0 else -math.inf)
    if not _is_value(x):
        refuse(x)  # (a jit placeholder: see ``placeholder``)
        if hasattr(x, "as_node"):  # a comparison's per-example answers (``comparisons.Mask``):
            return x.as_node()     # x * (x > 0) as (x > 0) * x
        hint = (" (repeating a list n times needs n to be a Python int: under fm.jit pass "
                "it in static_argnums, or static_argnames)" if isinstance(x, (list, tuple)) else "")
        raise TypeError(f"cannot combine an fm.Expr with {type(x).__name__} {x!r}; "
                        f"expected a number or an Expr{hint}")
    if getattr(x, "ndim", None) == 0 and getattr(getattr(x, "dtype", None), "kind", "") == "O":
        # np.array(x), np.where(c, x, 0.0) of a node: the node, not a constant holding it
        # (whose derivative would be 0)
        return lift(x.item())
    if x.__class__.__name__ == "Tensor" or (  # (an nn.Parameter too; eagerly a node may
            x.__class__.__module__.startswith("torch") and hasattr(x, "requires_grad")):
        # hold one: torch's autograd then follows the values fm computes)
        if not x.ndim and not x.requires_grad:
            return const(float(x))  # a torch number as a float64, as a numpy scalar is
        if TRACING or _vmap_depth() or any(who != "fm.trace" for _, who, _ in RUNNING.get()):
            # (a transform's values are numpy's; fm.trace builds the eager graph)
            raise TypeError(_TENSOR.format(shape=tuple(x.shape), grad=x.requires_grad))
    if _masked(x):
        raise TypeError(_MASKED.format(what="cannot combine an fm.Expr with"))
    odd = _odd_scalar(x)
    if odd == "complex":
        raise TypeError(f"cannot combine an fm.Expr with the complex number {x!r}; fm works on "
                        "real numbers: pass x.real or abs(x)")
    if odd == "bool" or isinstance(x, numbers.Real):  # a bool (numpy's too) as 0.0 / 1.0
        try:
            return const(float(x))
        except OverflowError:  # an int beyond float64, as fm.exp(10 ** 400) takes it
            return const(math.inf if x > 0 else -math.inf)
    if hasattr(x, "__array__") and \
            x.__class__.__module__.split(".")[0] not in ("numpy", "builtins", "torch"):
        # another library's array (jax's): its numbers as numpy's float64, as fm computes
        # (a jax float32 scalar stayed one: log(x * jnp.array(1.0)) at 1 + 1e-9 gave 0.0)
        import numpy

        a = numpy.asarray(x)
        if a.dtype.kind in "fiub":
            a = a.astype(float)
            return lift(a.item() if a.ndim == 0 else a)
    np = sys.modules.get("numpy")
    if np is not None and x.__class__ is np.ndarray and x.ndim == 0 and x.dtype.kind in "fiub":
        return const(float(x))  # a 0-d array (float32 too) as float64, as a numpy scalar is
    if getattr(getattr(x, "dtype", None), "kind", "") == "O":  # (an array of nodes?)
        if _holds_examples(x) and _vmap_depth():
            raise TypeError(_EXAMPLES_ARRAY.format(shape=x.shape))
        if holds_nodes(x):
            raise TypeError(_NODE_ARRAY.format(shape=x.shape))
    return const(x)


def _holds_examples(x: Any) -> bool:
    """Whether ``x`` is a numpy array of nodes one of which holds ``vmap``'s
    per-example values: a constant of it would be read along the batch, its
    entries taken for examples (``np.array([x, 2.0 * x]) > y`` under
    ``vmap`` counted one entry per example).

    >>> import numpy as np
    >>> _holds_examples(np.array([Const(np.array([1.0, 2.0])), 1.0])), _holds_examples(1.0)
    (True, False)
    """
    kind = getattr(getattr(x, "dtype", None), "kind", "")  # (cheap for a number: no dtype)
    np = sys.modules.get("numpy") if kind == "O" else None
    return np is not None and isinstance(x, np.ndarray) and x.ndim > 0 and any(
        isinstance(e, Expr) and stored_value(e).__class__ is np.ndarray for e in x.flat)


_TENSOR = ("a node inside an fm transform meets a torch tensor (shape {shape}, "
           "requires_grad={grad}), which fm's arrays cannot hold (nor torch's autograd "
           "follow): under fm.to_torch pass the tensor as an argument (in_axes None for a "
           "parameter); otherwise convert it (t.item(), t.tolist(), t.detach().numpy())")


def holds_nodes(x: Any) -> bool:
    """Whether ``x`` is a numpy array of nodes that reach a variable, whose
    derivatives a constant holding them would drop. Nodes of a running
    ``jit`` or ``to_torch`` trace only (its array arguments are such arrays)
    do not count: such a constant reaches the output, which ``ir.lower``
    refuses, and the function runs as Python on numbers.

    >>> import numpy as np
    >>> holds_nodes(np.array([Var(1.0)])), holds_nodes(np.array([Const(1.0)]))
    (True, False)
    """
    np = sys.modules.get("numpy")  # (subclasses too: np.matrix, a user's ndarray subclass)
    return np is not None and isinstance(x, np.ndarray) and x.dtype.kind == "O" and any(
        isinstance(e, Expr) and beyond_traces(e) for e in x.flat)


_NODE_ARRAY = (
    "cannot combine an fm.Expr with a numpy array of fm nodes (shape {shape}, as "
    "np.array([a, b]) makes, or fm.debug_nans of an array argument): fmicrograd is "
    "scalar-valued, and the array would be one constant whose entries' derivatives are "
    "dropped. Compute entry by entry "
    "([e * x for e in arr.tolist()], fm.dot(arr.tolist(), ws)), or make the array after the "
    "arithmetic")


_EXAMPLES_ARRAY = (
    "cannot combine an fm.Expr with a numpy array of fm nodes (shape {shape}) inside fm.vmap: "
    "its entries hold per-example values (np.array([x, 2.0 * x]) of a mapped x), and as one "
    "array it would be read along the batch, entry i for example i. Keep the entries in a "
    "tuple and compute entry by entry ([e * x for e in (x, 2.0 * x)], fm.sum(...)), or make "
    "the array after the arithmetic")


def _same(self: Expr, memo: Any = None) -> Expr:
    """``copy.copy`` and ``copy.deepcopy`` of a node: the node itself (it is
    immutable; a copy would be another leaf to the sweeps, and drop its
    derivative)."""
    return self


def _no_pickle(self: Expr, protocol: Any) -> Any:
    if dependent(self):
        raise refused(self, TypeError(
            "pickle of an fm.Expr that a running transform depends on: the copy would be "
            "another node, cut from the graph (its derivative dropped). Keep the node itself, "
            "or pickle plain numbers (x.value) outside the transform"))
    return object.__reduce_ex__(self, protocol)


def _is_value(x: Any) -> bool:
    return isinstance(x, numbers.Real) or hasattr(x, "__array__")


def _compare(op: str, a: Expr, b: Any) -> Any:
    """``a op b`` (see ``Expr.__lt__``). A ``Decimal`` is refused, naming the
    fix: Python compares a float with it exactly, a node could not (under
    ``jit`` or ``vmap`` it would compare with a float near it).

    >>> from decimal import Decimal
    >>> fm.Var(0.5) < Decimal("0.1")
    Traceback (most recent call last):
    TypeError: `<` between an fm node and a Decimal: compare with Fraction(d) (exact) or float(d)
    """
    if isinstance(b, Expr):
        return compare(op, a, b, b.value)
    if object_entries(b):
        return NotImplemented  # numpy's, entry by entry (``numpy_ops.numpy_on_node``)
    if _is_value(b):
        if b.__class__ is not float and b.__class__ is not int and not isinstance(b, float) \
                and _holds_examples(b) and _vmap_depth():
            raise TypeError(_EXAMPLES_ARRAY.format(shape=b.shape))  # (read as examples)
        r = compare(op, a, b, b)
        if r.__class__ is bool and b.__class__ is not float and b.__class__ is not int:
            np = sys.modules.get("numpy")  # a numpy number answers with numpy's bool, as
            if np is not None and isinstance(b, (np.generic, np.ndarray)):  # against a
                return np.bool_(r)  # float (its arithmetic differs: np.True_ + np.True_
                # is True; a 0-d array too, as numpy hands a scalar on the left)
        return r
    if b.__class__.__name__ == "Mask" and hasattr(b, "as_node"):  # a comparison under vmap:
        b = b.as_node()  # its truths as 0/1, as the loop's bool compares (x == (x > 0))
        return compare(op, a, b, b.value)
    if b.__class__.__name__ == "Decimal" and isinstance(b, numbers.Number):
        raise refused(a, TypeError(f"`{op}` between an fm node and a Decimal: compare with "
                                   "Fraction(d) (exact) or float(d)"))
    if isinstance(b, numbers.Complex) and not isinstance(b, numbers.Real):
        if op in ("==", "!="):  # as a float: equal to a complex with its value and no imag
            if b.imag == 0:
                return compare(op, a, b.real, b.real)
            return op == "!="
        raise TypeError(f"`{op}` between an fm node and the complex number {b!r}: complex "
                        "numbers are not ordered; compare with its real part")  # (as a float's)
    return NotImplemented  # ``x == "text"`` is False, as for a float


def _check_number(value: Any, who: str) -> Any:
    if value.__class__ is float:  # (the usual value: none of the checks below)
        return value
    if _masked(value):
        raise TypeError(_MASKED.format(what=f"fm.{who}(value): got"))
    odd = _odd_scalar(value) if not isinstance(value, (bool, float)) else None
    if isinstance(value, bool) or not _is_value(value) or odd is not None:
        kind = "a real number" if odd == "complex" else "a number"
        raise TypeError(f"{who}(value): expected {kind}, got {type(value).__name__} {value!r}")
    if holds_nodes(value):
        raise TypeError(f"fm.{who}(value): a numpy array of fm nodes (shape {value.shape}) "
                        "would be one leaf, its entries' derivatives dropped: keep the nodes "
                        "(a tuple of them) and compute entry by entry")
    if isinstance(value, numbers.Real) or _zero_d(value):
        # (a 0-d array or tensor too: a float32 one computed the graph in float32)
        try:
            number = float(value)
        except OverflowError:
            raise TypeError(f"fm.{who}(value): the int {reprlib.repr(value)} is beyond "
                            "float64's range; fm computes in float64") from None
        if who == "Var" and _integer(value) and num.rounded_int(value):
            raise TypeError(f"fm.Var(value): the int {reprlib.repr(value)} is beyond 2**53, "
                            "and a float64 cannot hold it exactly; fm computes in float64 "
                            "(pass float(n) to round it)")
        return number
    return value


_MASKED = ("{what} a numpy masked array (np.ma.masked, or an array with a mask): fm computes "
           "with its numbers and would drop the mask (the masked constant's number, or a hidden "
           "entry, came back as a value); fill it first (x.filled(value)), or choose with "
           "fm.where")


def _masked(x: Any) -> bool:
    """Whether ``x`` is a numpy masked array (``np.ma.masked`` too)."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(x, ma.MaskedArray)


def _zero_d(value: Any) -> bool:
    """A 0-d numeric numpy array (not a subclass: a masked one) or tensor."""
    if getattr(value, "ndim", None) != 0:
        return False
    kind = getattr(getattr(value, "dtype", None), "kind", None)
    if type(value).__module__ == "numpy":
        return type(value).__name__ == "ndarray" and kind in ("f", "i", "u")
    return getattr(value, "is_floating_point", None) is not None  # (a torch tensor)


def _integer(value: Any) -> bool:
    """An int: Python's, numpy's, or a 0-d int array."""
    return value.__class__ is int or isinstance(value, numbers.Integral) or \
        getattr(getattr(value, "dtype", None), "kind", None) in ("i", "u")


def _odd_scalar(x: Any) -> str | None:
    """``"bool"`` for a numpy bool, ``"complex"`` for a complex number (numpy's
    too), else None: numbers ``_is_value`` lets through that a node must not
    hold as they are (an array, vmap's batch, is neither)."""
    kind = "c" if isinstance(x, complex) else getattr(getattr(x, "dtype", None), "kind", "")
    if kind in ("b", "c") and not getattr(x, "ndim", 0):
        return "bool" if kind == "b" else "complex"
    return None


_NO_MOD = ("fm nodes have no % or // (no derivative rule reproduces Python's float "
           "rounding of them). If this is a schedule's step count under fit(jit=True) or "
           "fm.jit (it is traced there): branch with comparisons (0.1 if k < 100 else 0.01, "
           "guarded), use fm.optim's schedules (exponential_decay(..., staircase=True)), or "
           "train with jit=False")

# micrograd's names (x.data, x.grad, x.backward(), p.data -= ...) as errors naming the
# fmicrograd way, before ``mirror`` copies the node's attributes for placeholders
install_micrograd_names(Expr, Var, Const, Prim)
mirror(Expr)  # (a jit placeholder refuses each of a node's methods: see ``placeholder``)


Expr.__copy__ = _same  # type: ignore[attr-defined]
Expr.__deepcopy__ = _same  # type: ignore[attr-defined]
Expr.__reduce_ex__ = _no_pickle  # type: ignore[method-assign, assignment]

from .numpy_ops import numpy_function_on_node, numpy_on_node  # noqa: E402 -- needs Expr
