"""numpy meeting a node: numpy's operators with a node are the node's own
(``np.float64(2.0) * x``, ``arr < x``), and numpy's functions on a node
(``np.sin(x)``) are a TypeError naming fm's, since numpy can neither
differentiate nor trace them. ``Expr.__array_ufunc__`` calls ``numpy_on_node``.
"""

from __future__ import annotations

import sys
from typing import Any

from .comparisons import Mask
from .control import _vmap_depth
from .expr import Expr, Var, boxed, object_entries  # noqa: F401 -- the doctest uses Var
from .numeric import _np  # (numpy, imported when first needed)

__all__ = ["numpy_on_node", "numpy_function_on_node"]

# numpy's ufuncs that Python operators call, as the node's methods: (when the
# node is the right operand, when it is the left one)
_OPERATORS = {
    "add": ("__radd__", "__add__"), "subtract": ("__rsub__", "__sub__"),
    "multiply": ("__rmul__", "__mul__"), "divide": ("__rtruediv__", "__truediv__"),
    "true_divide": ("__rtruediv__", "__truediv__"), "power": ("__rpow__", "__pow__"),
    "floor_divide": ("__rfloordiv__", "__floordiv__"), "remainder": ("__rmod__", "__mod__"),
    "less": ("__gt__", "__lt__"), "less_equal": ("__ge__", "__le__"),
    "greater": ("__lt__", "__gt__"), "greater_equal": ("__le__", "__ge__"),
    "equal": ("__eq__", "__eq__"), "not_equal": ("__ne__", "__ne__"),
}
_SIGNS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "true_divide": "/",
          "power": "**", "floor_divide": "//", "remainder": "%"}
_FM_NAMES = {"arctan": "atan", "arctan2": "atan2", "arcsinh": "asinh", "arctanh": "atanh",
             "arcsin": "asin", "arccos": "acos", "arccosh": "acosh", "matmul": "dot",
             "vecdot": "dot", "logaddexp": "logsumexp", "fmax": "maximum", "fmin": "minimum",
             "float_power": "power", "pow": "power"}
_WRITE = {"absolute": "abs(x)", "fabs": "abs(x)", "abs": "abs(x)", "negative": "-x",
          "positive": "+x", "isnan": "x != x", "isinf": "abs(x) == float('inf')",
          "isfinite": "abs(x) < float('inf')", "reciprocal": "1.0 / x"}


def numpy_on_node(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    """A numpy ufunc called with a node among its operands. An operator
    (``np.float64(2.0) * x``, ``arr < x``, ``arr += x``) is the node's own,
    as Python's reflected operators would give it; anything else (``np.sin(x)``,
    ``np.maximum(x, 0.0)``) is a TypeError naming fm's function: numpy cannot
    differentiate or trace it.

    >>> import numpy as np
    >>> (np.float64(2.0) * Var(3.0)).value, np.float64(1.0) < Var(3.0)
    (6.0, np.True_)
    >>> np.sin(Var(0.5))
    Traceback (most recent call last):
    ...
    TypeError: np.sin on an fm node: numpy cannot differentiate or trace it; use fm.sin \
instead (fm's functions take nodes and numbers alike)
    """
    name = ufunc.__name__
    ops = _OPERATORS.get(name)
    out = kwargs.pop("out", None)
    if ops is not None and method == "__call__" and len(inputs) == 2 and not kwargs and (
            out is None or (len(out) == 1 and out[0] is inputs[0])):  # ``arr += x``: rebinds
        a, b = inputs
        if out is not None and isinstance(a, _np().ndarray):  # ``arr += x`` in place
            return _in_place(a, b, ops[0], name)
        if object_entries(a) or object_entries(b):  # (a jit array argument: node entries)
            return ufunc(*[boxed(v) for v in inputs])  # numpy's object loop, entry by entry
        if isinstance(b, Expr) and not isinstance(a, Expr):
            return getattr(b, ops[0])(a)
        if isinstance(a, Expr):
            return getattr(a, ops[1])(b)
    if name == "conjugate" and method == "__call__" and len(inputs) == 1 and not kwargs \
            and out is None:
        return inputs[0].conjugate()  # of a real number: itself, as x.conjugate()
    fm_name = _FM_NAMES.get(name, name)
    how = f"write {_WRITE[name]}" if name in _WRITE else f"use fm.{fm_name} instead"
    if name not in _WRITE and not hasattr(sys.modules["fmicrograd"], fm_name):
        how = ("compute it with fm's functions and Python's operators on the node (fm has no "
               f"{name}; see dir(fm))")
    if name == "add" and method in ("reduce", "accumulate"):  # np.sum(x), np.cumsum(x)
        how = ("reduce a sequence of nodes with fm.sum, fm.mean or fm.dot (one node is its "
               "own sum)")
    call = f"np.{name}" if method == "__call__" else f"np.{name}.{method}"
    raise TypeError(f"{call} on an fm node: numpy cannot differentiate or trace it; {how} "
                    "(fm's functions take nodes and numbers alike)")


def _in_place(arr: Any, x: Any, reflected: str, name: str) -> Any:
    """``arr += x`` (``np.add(arr, x, out=arr)``) with node ``x``: into an
    array of Python objects, each entry's ``entry + x`` is written in place,
    as numpy does for objects; a float array cannot hold a node, and handing
    back a new node instead would leave the caller's array (one a helper
    function was given) as it was: a TypeError naming the fix."""
    if arr.dtype == object:
        for index in _np().ndindex(arr.shape):  # (each entry itself: a slice or a transpose too)
            arr[index] = getattr(x, reflected)(arr[index])
        return arr
    sign = _SIGNS.get(name, "")
    raise TypeError(f"np.{name} in place (arr {sign}= x, or out=arr) of a numpy {arr.dtype} "
                    "array with an fm node: the array cannot hold the node, and its numbers "
                    "would miss x's derivative (and a transform's later values). Make a new "
                    "value instead: "
                    f"arr = arr {sign} x (a node under fm.vmap), or keep the entries in a list "
                    f"([e {sign} x for e in arr.tolist()])")


# numpy functions whose work depends on the array holding floats: given a node
# (to numpy an object array of one) they skip it and return the node unchanged
_FLOAT_ONLY = {"nan_to_num": "fm.where(x != x, 0.0, x) (and fm.clip for infinities)",
               "real_if_close": "the node itself"}


def numpy_function_on_node(func: Any, args: tuple, kwargs: dict) -> Any:
    """A numpy function (not a ufunc) called with a node as an argument
    (``Expr.__array_function__``): numpy's own code, which takes the node as
    an object, unless the node holds an array that entered the computation
    (``x * arr`` outside ``vmap``: numpy would reduce the one object, not the
    entries, and a compiled call would return the array) or the function
    only works on floats (``np.nan_to_num``, ``np.nansum``...); those are a
    TypeError naming the fix.

    >>> import numpy as np
    >>> np.mean(Var(2.0) * np.array([1.0, 2.0]))
    Traceback (most recent call last):
    ...
    TypeError: np.mean on an fm.Expr holding an array of shape (2,): a numpy array entered \
the computation (as in x * arr), and fmicrograd is scalar-valued; compute per entry \
(tuple(x * a for a in arr.tolist())) and reduce with fm.sum, fm.mean or fm.dot
    >>> np.mean(Var(2.0)).value
    2.0
    """
    name = getattr(func, "__name__", repr(func))
    depth = _vmap_depth()
    for x in (*args, *kwargs.values()):
        for y in (x if isinstance(x, (list, tuple)) else (x,)):
            if isinstance(y, (Expr, Mask)) and getattr(y.value, "ndim", 0) > depth:
                raise TypeError(f"np.{name} on an fm.Expr holding an array of shape "
                                f"{y.value.shape}: a numpy array entered the computation (as in "
                                "x * arr), and fmicrograd is scalar-valued; compute per entry "
                                "(tuple(x * a for a in arr.tolist())) and reduce with fm.sum, "
                                "fm.mean or fm.dot")
    if name in _FLOAT_ONLY or name.startswith("nan"):
        fix = _FLOAT_ONLY.get(name, f"fm.{name[3:]} over the entries, choosing with fm.where")
        raise TypeError(f"np.{name} on an fm node: numpy takes it as an object, not a float, "
                        f"and would skip its work; use {fix}")
    implementation = getattr(func, "_implementation", None)
    if implementation is None:
        return NotImplemented
    try:
        return implementation(*args, **kwargs)
    except AttributeError as e:  # numpy's code read a float array's attribute off a node
        raise TypeError(_FLOAT_CODE.format(name=name, why=e)) from None
    except TypeError as e:
        if "does not support item assignment" not in str(e) and \
                "loop of ufunc does not support" not in str(e):  # (np.round: rint on objects)
            raise  # (fm's own errors, numpy's about the arguments: as they are)
        raise TypeError(_FLOAT_CODE.format(name=name, why=e)) from None


_FLOAT_CODE = ("np.{name} on an fm node: numpy's code for it needs float arrays ({why}); "
               "compute it with fm's functions and Python's operators on the nodes (sorted() "
               "and min()/max() compare nodes), or call it on plain numbers outside the "
               "transform")
