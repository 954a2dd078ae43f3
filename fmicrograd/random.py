"""Explicit, splittable randomness: a key in, numbers out, no global state.

A ``Key`` is an immutable 64-bit value. ``split`` derives new keys from it by
hashing, so the same key always gives the same numbers, and keys split from
one another never share a stream. Samplers draw from a local
``random.Random`` seeded with the key; nothing outside the call changes.

>>> k = fm.random.key(0)
>>> a, b = fm.random.split(k)
>>> fm.random.uniform(a) == fm.random.uniform(a), fm.random.uniform(a) == fm.random.uniform(b)
(True, False)
"""

from __future__ import annotations

import hashlib
import math
import numbers
import random as _random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .core import pytree as tree
from .core.expr import Expr

__all__ = ["Key", "key", "split", "fold_in", "uniform", "normal", "permutation", "shuffle"]

_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class Key:
    """A random key: pass it to a sampler or ``split`` it, never reuse it for
    two purposes. It is a pytree with no leaves, so it can sit inside a
    structure that a transform walks.

    >>> fm.random.key(1)  # doctest: +ELLIPSIS
    Key(data=0x...)
    """

    data: int

    def __post_init__(self) -> None:
        if isinstance(self.data, bool) or not isinstance(self.data, int) \
                or not 0 <= self.data < 2 ** 64:
            raise ValueError(f"Key: data must be a 64-bit unsigned int, got {self.data!r:.40}; "
                             f"make keys with fm.random.key(seed)")

    def __repr__(self) -> str:
        return f"Key(data={self.data:#018x})"


tree.register(Key, lambda k: ((), k.data), lambda data, _: Key(data))


def _mix(*parts: int | str) -> int:
    text = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _check_key(k: Any, who: str) -> Key:
    if not isinstance(k, Key):
        raise TypeError(f"fm.random.{who}: expected a Key from fm.random.key(seed), got "
                        f"{type(k).__name__} {k!r}")
    return k


def key(seed: int) -> Key:
    """A key from an integer seed (any size, negative included).

    >>> fm.random.key(42) == fm.random.key(42), fm.random.key(42) == fm.random.key(43)
    (True, False)
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):  # numpy ints too
        raise TypeError(f"fm.random.key: the seed must be an int, got {type(seed).__name__} "
                        f"{seed!r}")
    return Key(_mix("seed", int(seed)))


def split(key: Key, n: int = 2) -> tuple[Key, ...]:
    """``n`` new independent keys derived from ``key``.

    >>> a, b, c = fm.random.split(fm.random.key(0), 3)
    >>> len({a, b, c})
    3
    """
    _check_key(key, "split")
    return tuple(Key(_mix("split", key.data, i)) for i in range(_count(n, "split")))


def fold_in(k: Key, data: int) -> Key:
    """A new key from ``k`` and an integer (an epoch, a step number...).

    >>> k = fm.random.key(0)
    >>> fm.random.fold_in(k, 3) == fm.random.fold_in(k, 3) != fm.random.fold_in(k, 4)
    True
    """
    _check_key(k, "fold_in")
    if isinstance(data, bool) or not isinstance(data, numbers.Integral):
        hint = ""
        if getattr(getattr(data, "value", None), "ndim", 0):  # one per example of a vmap
            hint = ("; under fm.vmap an index is one value per example, and keys are not "
                    "mapped: draw outside the vmap ([fm.random.uniform(fm.random.fold_in(k, i)) "
                    "for i in range(n)]) and pass the draws to the mapped function as data")
        raise TypeError(f"fm.random.fold_in: data must be an int (an epoch, a step number), "
                        f"got {type(data).__name__} {data!r:.40}{hint}")
    return Key(_mix("fold", k.data, int(data)))


def _rng(k: Key, who: str) -> _random.Random:
    return _random.Random(_check_key(k, who).data)


def uniform(k: Key, n: int | None = None, low: float = 0.0, high: float = 1.0) -> Any:
    """One float in ``[low, high)``, or a tuple of ``n`` of them.

    >>> len(fm.random.uniform(fm.random.key(0), 3, -1.0, 1.0))
    3
    """
    rng = _rng(k, "uniform")
    low, high = _as_float(low), _as_float(high)  # (float16 would overflow)
    if not low < high:  # (NaN too)
        raise ValueError(f"fm.random.uniform: needs low < high, got low={low!r}, high={high!r}")
    if _infinite(low) or _infinite(high):  # (a node's value too: an infinite bound under
        # grad or jit made ``_below`` draw forever)
        raise ValueError(f"fm.random.uniform: needs finite bounds, got low={low!r}, "
                         f"high={high!r}")
    draw = rng.uniform
    if _infinite(_number(high) - _number(low)):
        def draw(a: float, b: float) -> float:  # (``uniform``'s width overflows: weigh them)
            r = rng.random()
            return a * (1.0 - r) + b * r
    if n is None:
        return _below(draw(low, high), draw, low, high)
    return tuple(_below(draw(low, high), draw, low, high)
                 for _ in range(_count(n, "uniform")))


def _as_float(b: Any) -> Any:
    """A plain number bound as a Python float (numpy's float16 or float32
    would compute the draw in its own type); an int beyond float64 as inf,
    which the finite-bounds check then names; a node as it is."""
    if b.__class__ is float:
        return b
    if not isinstance(b, numbers.Real):
        if hasattr(b, "children"):  # (a node: as it is)
            return b
        raise TypeError(f"fm.random: a bound, mean or std must be a number, got "
                        f"{type(b).__name__} {b!r}")
    try:
        return float(b)
    except OverflowError:
        return math.inf if b > 0 else -math.inf  # type: ignore[operator]  # (an int)


def _number(b: Any) -> Any:
    """A bound's number: a node's value (an array under ``vmap``, whose
    width ``_infinite`` reads entry by entry)."""
    return b.value if isinstance(b, Expr) else b


def _infinite(b: Any) -> bool:
    """Whether a bound (a number, or a node's value: an array under
    ``vmap``, entry by entry) is infinite."""
    v = _number(b)
    if isinstance(v, numbers.Real):
        return math.isinf(v)
    ravel = getattr(v, "ravel", None)
    return ravel is not None and any(map(math.isinf, ravel().tolist()))


def _below(x: float, draw: Callable, low: float, high: float) -> float:
    """``x``, drawn again while it rounded up to ``high`` (``[low, high)``)."""
    while x >= high:
        x = draw(low, high)
    return x


def _count(n: Any, who: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"fm.random.{who}: n must be a non-negative int, got {n!r}")
    return int(n)


def normal(k: Key, n: int | None = None, mean: float = 0.0, std: float = 1.0) -> Any:
    """One float from a normal distribution, or a tuple of ``n`` of them.

    >>> x = fm.random.normal(fm.random.key(0), 2000)
    >>> abs(sum(x) / len(x)) < 0.1
    True
    """
    rng = _rng(k, "normal")
    mean, std = _as_float(mean), _as_float(std)  # (numpy's float32 drew in float32)
    if _infinite(mean) or _infinite(std) or mean != mean:  # (an int beyond float64, an
        # infinity, or a NaN mean: NaN draws, where a NaN std was refused)
        raise ValueError(f"fm.random.normal: needs a finite mean and std, got mean={mean!r}, "
                         f"std={std!r}")
    if not std >= 0.0:
        raise ValueError(f"fm.random.normal: std must be >= 0, got {std!r}")
    if n is None:
        return rng.gauss(mean, std)
    return tuple(rng.gauss(mean, std) for _ in range(_count(n, "normal")))


def permutation(k: Key, n: int) -> tuple[int, ...]:
    """A random ordering of ``range(n)``.

    >>> sorted(fm.random.permutation(fm.random.key(0), 5))
    [0, 1, 2, 3, 4]
    """
    return _permutation(k, n, "permutation")


def _permutation(k: Key, n: Any, who: str) -> tuple[int, ...]:
    rng = _rng(k, who)
    order = list(range(_count(n, who)))
    rng.shuffle(order)  # a local list: nobody else sees it
    return tuple(order)


def shuffle(k: Key, items: Any) -> tuple:
    """The items of a sequence in a random order, as a new tuple.

    >>> sorted(fm.random.shuffle(fm.random.key(0), "abc"))
    ['a', 'b', 'c']
    """
    _check_key(k, "shuffle")
    if not isinstance(items, Iterable):  # (None: Python's bare "not iterable")
        raise TypeError(f"fm.random.shuffle: items must be a sequence, got "
                        f"{type(items).__name__} {items!r:.40}")
    seq = tuple(items)
    return tuple(seq[i] for i in _permutation(k, len(seq), "shuffle"))
