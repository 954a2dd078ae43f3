"""``Unread``: an entry of a jit array argument that has no variable yet
(``compiler/unread.py``), and ``EntriesRead``, what reading one raises.

Every use of a placeholder that would use a variable's number or build a node
from it raises ``EntriesRead``: its operators, conversions, comparisons, text,
its attributes (numpy's object loops call ``x.exp()``), and fm's functions
(``lift`` and ``functions._widened`` check for it). ``EntriesRead`` is a
``BaseException``, as ``KeyboardInterrupt`` is, so that a traced function's
own ``except Exception`` cannot take it and go on down another path.

>>> x = object.__new__(Unread)
>>> try:
...     x * 2.0
... except EntriesRead:
...     print("read")
read
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["EntriesRead", "Unread", "mirror", "refuse", "ValuesRead", "NoNumbers", "scalar",
           "is_scalar"]


class EntriesRead(BaseException):
    """An entry of a large array argument was read while ``fm.jit`` traced
    it with placeholders: the trace starts again with a variable per entry."""


def _read(*_: Any, **__: Any) -> NoReturn:
    raise EntriesRead


class Unread:
    """An entry of a large array argument while its trace has no variable for
    it. Each entry has its own placeholder, hashed by identity as a variable
    is, so that containers and ``is`` tell the entries apart as they would
    their variables."""

    __slots__ = ()

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _read
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _read
    __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __divmod__ = __rdivmod__ = _read
    __neg__ = __pos__ = __abs__ = __invert__ = __round__ = __trunc__ = _read
    __floor__ = __ceil__ = __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _read
    __bool__ = __float__ = __int__ = __index__ = __complex__ = __format__ = _read
    __repr__ = __str__ = __copy__ = __deepcopy__ = _read
    __hash__ = object.__hash__

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # (Python's and numpy's probes for protocols: absent, as
            raise AttributeError(name)  # on a variable)
        raise EntriesRead  # (``x.value``, and ``x.exp()`` from numpy's object loops)


def mirror(cls: type) -> None:
    """Give ``Unread`` a refusing method for each public method of ``cls``
    (``Expr``): numpy's object loops call ``x.exp()`` for ``np.exp`` and
    report a missing method as their own ``TypeError``, where a node has it.

    >>> class Node:
    ...     def exp(self): return 1.0
    >>> mirror(Node)
    >>> try:
    ...     object.__new__(Unread).exp()
    ... except EntriesRead:
    ...     print("read")
    read
    """
    for name in dir(cls):
        if not name.startswith("_") and callable(getattr(cls, name, None)):
            setattr(Unread, name, _read)


def refuse(x: Any) -> None:
    """Raise ``EntriesRead`` if ``x`` is a placeholder (fm's functions on a
    value that is neither a node nor a number).

    >>> refuse(2.0)
    >>> try:
    ...     refuse(object.__new__(Unread))
    ... except EntriesRead:
    ...     print("read")
    read
    """
    if x.__class__ is Unread:
        raise EntriesRead


class ValuesRead(EntriesRead):
    """The numbers of a value without numbers (``core/shaped.py``) were
    needed: the trace starts again with values (a ``BaseException``, as
    ``EntriesRead`` is, so that the traced function's own ``except
    Exception`` does not take it)."""


class NoNumbers:
    """Base of ``core/shaped.py``'s ``Shaped``, a value with a ``shape`` and
    no numbers (here, where importing fmicrograd needs no numpy)."""

    __slots__ = ()
    shape: tuple


def scalar(x: Any) -> Any:
    """A 0-d value as a float, as fm keeps scalars; one without numbers as it is.

    >>> scalar(True).__class__.__name__
    'float'
    """
    return x if isinstance(x, NoNumbers) else float(x)


def is_scalar(x: Any) -> bool:
    """Whether ``x`` is a float, or a value without numbers standing for one.

    >>> is_scalar(1.0), is_scalar(1)
    (True, False)
    """
    return x.__class__ is float or isinstance(x, NoNumbers) and not x.shape
