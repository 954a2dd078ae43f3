"""``Shaped``: a value with a shape and a dtype but no numbers, for the trace
of a large batch (``compiler/unread.py``).

``fm.jit`` traces a function by running it on nodes that carry their values,
then compiles the graph and runs the program for the result. A training step
over a large batch maps its data with ``vmap``, so every node of its layers
held a vector of the batch's values: computed by the trace and kept until
the compile ended (1.2 GB at 100,000 examples), only for the program to
compute them again. Where the function only maps such an array, its trace
gives the columns a ``Shaped`` value instead: arithmetic, numpy's ufuncs and
their reductions, and a few numpy functions give the result's shape and dtype
and nothing else.

Anything that would look at the numbers (a comparison's truth, ``float``,
``np.asarray``, ``tolist``, formatting, a numpy function or method not listed
here, a ``Shaped`` frozen into a constant of the program) raises
``ValuesRead``, and ``fm.jit`` traces again with the values. So a program
traced with ``Shaped`` values is one whose structure did not depend on them.

>>> v = Shaped((4,))
>>> w = np.tanh(v * 2.0 + 1.0)
>>> w.shape, w.dtype.name, (w > 0).dtype.name, w.sum(axis=0).shape
((4,), 'float64', 'bool', ())
>>> try:
...     bool(w > 0)
... except ValuesRead:
...     print("read")
read
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from .placeholder import NoNumbers, ValuesRead

__all__ = ["Shaped", "ValuesRead", "shaped_sums"]  # (``ValuesRead`` from ``placeholder``,
# which needs no numpy)

_F64 = np.dtype(np.float64)
_ADD: Any = np.add  # (its reduce, typed for arrays only)
_OPERANDS = (float, int, bool, np.ndarray, np.float64, np.float32, np.int64, np.bool_)


def _read(*_: Any, **__: Any) -> NoReturn:
    raise ValuesRead


def shaped_sums(g: Any, others: list) -> Any:
    """The values of the batch sums of ``g`` times each of ``others`` (their
    values), as ``dot_cotangents.batch_values`` computes them: an iterator of
    scalar ``Shaped``, or None unless all are float64 vectors of one length.

    >>> [v.shape for v in shaped_sums(Shaped((5,)), [Shaped((5,))] * 2)]
    [(), ()]
    """
    if g.ndim != 1 or g.dtype != _F64:
        return None
    for v in others:
        if v.__class__ is not Shaped or v.shape != g.shape or v.dtype != _F64:
            return None
    return iter([_make((), _F64) for _ in others])


def _shape(x: Any) -> tuple:
    if x.__class__ is Shaped:
        return x.shape
    if isinstance(x, _OPERANDS):
        return np.shape(x)
    raise ValuesRead  # (an operand of another kind: not shaped here)


def _dtype(x: Any) -> Any:
    if x.__class__ is Shaped:
        return x.dtype
    if x.__class__ is float or x.__class__ is int:
        return x.__class__  # (a Python number: numpy's weak scalar)
    if isinstance(x, _OPERANDS):
        dtype = np.asarray(x).dtype
        if dtype.kind in "biuf":
            return dtype
    raise ValuesRead  # (an object array, of nodes: not shaped here)


def _make(shape: tuple, dtype: np.dtype) -> Shaped:
    v = object.__new__(Shaped)
    v.shape = shape
    v.dtype = dtype
    return v


class Shaped(NoNumbers):
    """A value of ``shape`` and ``dtype`` (float64 by default) without its
    numbers (see the module docstring).

    >>> Shaped((3, 1)).reshape(3).shape, Shaped((2, 3)).T.shape
    ((3,), (3, 2))
    """

    __slots__ = ("shape", "dtype")
    __array_priority__ = 1000.0

    def __init__(self, shape: tuple, dtype: Any = _F64) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """The number of entries."""
        return int(np.prod(self.shape, dtype=np.intp))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Shaped({self.shape}, {self.dtype.name})"

    __str__ = __repr__

    # the numbers: never there
    __bool__ = __float__ = __int__ = __index__ = __complex__ = _read
    __iter__ = __array__ = __format__ = __round__ = __trunc__ = __floor__ = __ceil__ = _read
    tolist = item = __reduce__ = __reduce_ex__ = __deepcopy__ = __copy__ = _read
    __hash__ = object.__hash__

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _apply(ufunc, method, inputs, kwargs.pop("out", None), kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        rule = _FUNCTIONS.get(func)
        if rule is None:
            raise ValuesRead
        return rule(*args, **kwargs)

    # operators, as numpy's arrays have them (float64 with a float or a float64 of
    # the same shape or a scalar, the trace's usual case, without numpy's dispatch)
    def __add__(self, o: Any) -> Any: return _arith(self, o, np.add)
    def __radd__(self, o: Any) -> Any: return _arith(self, o, np.add, True)
    def __sub__(self, o: Any) -> Any: return _arith(self, o, np.subtract)
    def __rsub__(self, o: Any) -> Any: return _arith(self, o, np.subtract, True)
    def __mul__(self, o: Any) -> Any: return _arith(self, o, np.multiply)
    def __rmul__(self, o: Any) -> Any: return _arith(self, o, np.multiply, True)
    def __truediv__(self, o: Any) -> Any: return _arith(self, o, np.true_divide)
    def __rtruediv__(self, o: Any) -> Any: return _arith(self, o, np.true_divide, True)
    def __pow__(self, o: Any) -> Any: return _arith(self, o, np.power)
    def __rpow__(self, o: Any) -> Any: return _arith(self, o, np.power, True)
    def __neg__(self) -> Any: return np.negative(self)
    def __pos__(self) -> Any: return np.positive(self)
    def __abs__(self) -> Any: return np.absolute(self)
    def __lt__(self, o: Any) -> Any: return np.less(self, o)
    def __le__(self, o: Any) -> Any: return np.less_equal(self, o)
    def __gt__(self, o: Any) -> Any: return np.greater(self, o)
    def __ge__(self, o: Any) -> Any: return np.greater_equal(self, o)
    def __eq__(self, o: Any) -> Any: return np.equal(self, o)
    def __ne__(self, o: Any) -> Any: return np.not_equal(self, o)
    def __matmul__(self, o: Any) -> Any: return _matmul(self, o)
    def __rmatmul__(self, o: Any) -> Any: return _matmul(o, self)

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # (Python's and numpy's probes for protocols: absent)
            raise AttributeError(name)
        raise ValuesRead  # (a numpy method not listed here)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Any:
        """``np.sum``'s shape."""
        return _ADD.reduce(self, axis=axis, keepdims=keepdims)

    def astype(self, dtype: Any, copy: bool = True) -> Shaped:
        """The same shape in ``dtype``."""
        return Shaped(self.shape, dtype)

    def copy(self) -> Shaped:
        """Another of the same shape and dtype."""
        return Shaped(self.shape, self.dtype)

    def reshape(self, *shape: Any) -> Shaped:
        """``np.reshape``'s shape."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return _view(self, lambda a: a.reshape(shape))

    def transpose(self, *axes: Any) -> Shaped:
        """``np.transpose``'s shape."""
        return _view(self, lambda a: a.transpose(*axes))

    @property
    def T(self) -> Shaped:  # noqa: N802 -- numpy's name
        """The axes reversed."""
        return Shaped(self.shape[::-1], self.dtype)

    def __getitem__(self, index: Any) -> Shaped:
        for i in index if isinstance(index, tuple) else (index,):
            if not (i is None or i is Ellipsis or isinstance(i, (int, slice))):
                raise ValuesRead  # (an index array: not shaped here)
        return _view(self, lambda a: a[index])


def _arith(x: Shaped, o: Any, ufunc: Any, right: bool = False) -> Any:
    """``x op o`` (``o op x`` when ``right``) for an arithmetic ``ufunc``."""
    if x.dtype is _F64:
        c = o.__class__
        if c is float:
            return _make(x.shape, _F64)
        if c is Shaped and o.dtype is _F64:
            if o.shape == x.shape or not o.shape:
                return _make(x.shape, _F64)
            if not x.shape:
                return _make(o.shape, _F64)
    return ufunc(o, x) if right else ufunc(x, o)


def _apply(ufunc: Any, method: str, inputs: tuple, out: Any, kwargs: dict) -> Any:
    """The ``Shaped`` result of ``ufunc`` (a call or a reduction)."""
    if ufunc is np.matmul and method == "__call__" and not kwargs and out is None:
        return _matmul(*inputs)
    if ufunc.signature is not None:
        raise ValuesRead  # (another generalized ufunc)
    if method == "__call__" and ufunc.nout == 1 and set(kwargs) <= {"dtype", "casting"}:
        shape = np.broadcast_shapes(*map(_shape, inputs))
        if kwargs.get("dtype") is not None:
            dtype = np.dtype(kwargs["dtype"])
        else:
            dtype = ufunc.resolve_dtypes(tuple(map(_dtype, inputs)) + (None,))[-1]
    elif method == "reduce" and len(inputs) == 1 and set(kwargs) <= {"axis", "keepdims",
                                                                      "dtype"}:
        shape = _reduced(_shape(inputs[0]), kwargs.get("axis", 0), bool(kwargs.get("keepdims")))
        start = _dtype(inputs[0])
        dtype = np.dtype(kwargs["dtype"]) if kwargs.get("dtype") is not None else \
            ufunc.resolve_dtypes((start, start, None))[-1]
    else:
        raise ValuesRead
    if out is None:
        return _make(shape, dtype)
    target = out[0] if isinstance(out, tuple) else out
    if target.__class__ is not Shaped or target.shape != shape:
        raise ValuesRead  # (written into an array that has numbers)
    return target


def _reduced(shape: tuple, axis: Any, keepdims: bool) -> tuple:
    if axis is None:
        axes = set(range(len(shape)))
    else:
        axes = {a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,))}
    if keepdims:
        return tuple(1 if i in axes else n for i, n in enumerate(shape))
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _dummy(x: Shaped) -> np.ndarray:
    """A read-only array of ``x``'s shape and dtype holding one number."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype=x.dtype), x.shape,
                                           (0,) * len(x.shape), writeable=False)


def _view(x: Shaped, op: Any) -> Shaped:
    """The shape of a view ``op`` takes of ``x`` (a reshape, a transpose, a slice)."""
    return _make(np.shape(op(_dummy(x))), x.dtype)


def _matmul(a: Any, b: Any) -> Shaped:
    sa, sb = _shape(a), _shape(b)
    if not (1 <= len(sa) <= 2 and 1 <= len(sb) <= 2) or sa[-1] != sb[0]:
        raise ValuesRead  # (numpy's error, or a stack of matrices: with the numbers)
    return _make(sa[:-1] + sb[1:], np.result_type(_dtype(a), _dtype(b)))


def _stack(arrays: Any, axis: int = 0, out: Any = None) -> Shaped:
    arrays = list(arrays)
    shapes = {_shape(a) for a in arrays}
    if out is not None or len(shapes) != 1:
        raise ValuesRead
    shape = list(shapes.pop())
    shape.insert(axis % (len(shape) + 1), len(arrays))
    return _make(tuple(shape), np.result_type(*map(_dtype, arrays)))


def _where(cond: Any, a: Any = None, b: Any = None) -> Shaped:
    if a is None or b is None:
        raise ValuesRead  # (``np.where(cond)``: the positions, which are numbers)
    shape = np.broadcast_shapes(_shape(cond), _shape(a), _shape(b))
    return _make(shape, np.result_type(_dtype(a), _dtype(b)))


_FUNCTIONS: dict = {np.stack: _stack, np.shape: _shape, np.ndim: lambda x: len(_shape(x)),
                    np.where: _where, np.sum: Shaped.sum, np.matmul: _matmul, np.dot: _matmul}
