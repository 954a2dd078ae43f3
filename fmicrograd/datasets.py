"""Small 2-D toy datasets, as plain tuples, deterministic for a seed.

Each returns ``(xs, ys)``: ``xs`` a tuple of points (tuples of floats) and
``ys`` a tuple of labels ``-1.0`` / ``1.0``, as in micrograd's demo. The
constructions follow scikit-learn's ``make_moons``, ``make_circles`` and
``make_blobs`` (which is not needed); the random numbers come from
``fm.random``, so the points differ from scikit-learn's for the same seed.

>>> xs, ys = fm.datasets.moons(100, 0.1, seed=0)
>>> len(xs), len(xs[0]), sorted(set(ys))
(100, 2, [-1.0, 1.0])
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

from . import random as fr

__all__ = ["moons", "circles", "xor", "blobs"]

Points = tuple[tuple[float, ...], ...]


def _linspace(start: float, stop: float, n: int, endpoint: bool = True) -> list[float]:
    """numpy.linspace for floats."""
    if n == 1:
        return [start]
    steps = n - 1 if endpoint else n
    return [start + (stop - start) * i / steps for i in range(n)]


def _check_n(n: int, who: str) -> int:
    # numpy ints count (as in fm.random.key); the points are built from a Python int
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
        raise ValueError(f"fm.datasets.{who}: n must be an int >= 2, got {n!r}")
    return int(n)


def _is_real(x: object) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _seeded(seed: Any, who: str) -> fr.Key:
    """``fm.random.key(seed)``, its error naming the dataset's ``seed``."""
    try:
        return fr.key(seed)
    except (TypeError, ValueError) as e:  # (it named fm.random.key, which the user never called)
        raise type(e)(f"fm.datasets.{who}: seed={seed!r} is not a seed: "
                      f"{str(e).split(': ', 1)[-1]}") from None


def _finish(points: Sequence[tuple[float, ...]], labels: Sequence, noise: float,
            key: fr.Key, shuffle: bool, who: str) -> tuple[Points, tuple]:
    """Shuffle (as scikit-learn does, before the noise) and add Gaussian noise."""
    if not _is_real(noise) or not 0.0 <= noise < math.inf:
        name = "std" if who == "blobs" else "noise"
        raise ValueError(f"fm.datasets.{who}: {name} must be a finite number >= 0, "
                         f"got {noise!r}")
    noise = float(noise)  # a numpy float32 would make every coordinate a float32
    if shuffle.__class__ is not bool and type(shuffle).__name__ not in ("bool", "bool_"):
        # (a numpy bool is a bool; "no" or 0.5 would have shuffled, as any truthy value)
        raise TypeError(f"fm.datasets.{who}: shuffle must be True or False, got "
                        f"{type(shuffle).__name__} {shuffle!r}")
    k_order, k_noise = fr.split(key)
    order = fr.permutation(k_order, len(points)) if shuffle else range(len(points))
    dims = len(points[0])
    eps = fr.normal(k_noise, len(points) * dims, 0.0, noise) if noise else None
    xs = tuple(tuple(c + (eps[j * dims + d] if eps else 0.0) for d, c in enumerate(points[i]))
               for j, i in enumerate(order))
    return xs, tuple(labels[i] for i in order)


def moons(n: int = 100, noise: float = 0.1, *, seed: int = 0,
          shuffle: bool = True) -> tuple[Points, tuple[float, ...]]:
    """Two interleaving half circles: ``n // 2`` labelled -1 (the upper
    moon), the rest 1, with Gaussian noise of standard deviation ``noise``.

    >>> xs, ys = fm.datasets.moons(4, 0.0, shuffle=False)
    >>> xs[0], ys
    ((1.0, 0.0), (-1.0, -1.0, 1.0, 1.0))
    """
    n_out = _check_n(n, "moons") // 2
    n_in = n - n_out
    outer = [(math.cos(t), math.sin(t)) for t in _linspace(0.0, math.pi, n_out)]
    inner = [(1.0 - math.cos(t), 1.0 - math.sin(t) - 0.5) for t in _linspace(0.0, math.pi, n_in)]
    return _finish(outer + inner, (-1.0,) * n_out + (1.0,) * n_in, noise, _seeded(seed, "moons"),
                   shuffle, "moons")


def circles(n: int = 100, noise: float = 0.05, *, factor: float = 0.8, seed: int = 0,
            shuffle: bool = True) -> tuple[Points, tuple[float, ...]]:
    """A circle of radius 1 (label -1) around one of radius ``factor`` (label 1).

    >>> xs, ys = fm.datasets.circles(8, 0.0, factor=0.5, shuffle=False)
    >>> xs[0], xs[4], ys[0], ys[4]
    ((1.0, 0.0), (0.5, 0.0), -1.0, 1.0)
    """
    if not _is_real(factor) or not 0.0 <= factor < 1.0:
        raise ValueError(f"fm.datasets.circles: factor must be a number in [0, 1), got "
                         f"{factor!r:.40}")
    factor = float(factor)  # a numpy float32 would make the inner points float32
    n_out = _check_n(n, "circles") // 2
    n_in = n - n_out
    outer = [(math.cos(t), math.sin(t))
             for t in _linspace(0.0, 2 * math.pi, n_out, endpoint=False)]
    inner = [(factor * math.cos(t), factor * math.sin(t))
             for t in _linspace(0.0, 2 * math.pi, n_in, endpoint=False)]
    return _finish(outer + inner, (-1.0,) * n_out + (1.0,) * n_in, noise, _seeded(seed, "circles"),
                   shuffle, "circles")


def xor() -> tuple[Points, tuple[float, ...]]:
    """The four corners of the unit square, labelled by exclusive or.

    >>> fm.datasets.xor()
    (((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)), (-1.0, 1.0, 1.0, -1.0))
    """
    return ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)), (-1.0, 1.0, 1.0, -1.0)


def _box(box: Any) -> tuple[float, float]:
    """``(low, high)``, finite with ``low < high``, or a ValueError saying so."""
    try:
        low, high = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"fm.datasets.blobs: box must be two numbers (low, high), got "
                         f"{box!r:.40}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"fm.datasets.blobs: box must be finite with low < high, got {box!r}")
    return low, high


def _point(center: Any, i: int) -> tuple:
    """Center ``i`` as a tuple of finite floats, or a ValueError naming it."""
    try:
        point = tuple(float(c) for c in center)
    except (TypeError, ValueError):
        raise ValueError(f"fm.datasets.blobs: centers[{i}] must be a sequence of numbers, got "
                         f"{center!r:.40}") from None
    if not all(math.isfinite(c) for c in point):
        raise ValueError(f"fm.datasets.blobs: centers[{i}] must be finite, got {point!r}")
    return point


def blobs(n: int = 100, centers: int | Sequence[Sequence[float]] = 2, *, std: float = 1.0,
          seed: int = 0, box: tuple[float, float] = (-10.0, 10.0),
          shuffle: bool = True) -> tuple[Points, tuple]:
    """Gaussian clusters around ``centers`` (a count, drawn uniformly in
    ``box`` in 2-D, or explicit points). Two clusters are labelled -1.0 / 1.0
    like the other datasets; more get their index ``0 .. k-1`` (an int, for
    ``fm.losses.softmax_cross_entropy``). Cluster ``i`` gets ``n // k`` points,
    one more for the first ``n % k``.

    >>> xs, ys = fm.datasets.blobs(6, [(0.0, 0.0), (5.0, 5.0), (9.0, 0.0)], std=0.0, shuffle=False)
    >>> xs[2], ys
    ((5.0, 5.0), (0, 0, 1, 1, 2, 2))
    """
    k_centers, k_rest = fr.split(_seeded(seed, "blobs"))
    _check_n(n, "blobs")
    if isinstance(centers, numbers.Integral) and not isinstance(centers, bool):
        if not 1 <= int(centers) <= n:
            raise ValueError(f"fm.datasets.blobs: centers must be a count from 1 to n ({n}), "
                             f"got {centers}")
        low, high = _box(box)
        flat = fr.uniform(k_centers, 2 * int(centers), low, high)
        centers = [flat[2 * i:2 * i + 2] for i in range(int(centers))]
    elif isinstance(centers, str | bytes) or not isinstance(centers, Iterable):
        raise ValueError(f"fm.datasets.blobs: centers must be a positive count or a non-empty "
                         f"sequence of points, got {type(centers).__name__} {centers!r:.40}")
    cs = [_point(center, i) for i, center in enumerate(centers)]
    k = len(cs)
    if k == 0 or len({len(c) for c in cs}) != 1 or not cs[0]:
        raise ValueError("fm.datasets.blobs: centers must be a positive count or a non-empty "
                         "sequence of points of one dimension (at least 1)")
    counts = [n // k + (1 if i < n % k else 0) for i in range(k)]
    points = [c for c, m in zip(cs, counts) for _ in range(m)]
    names = (-1.0, 1.0) if k == 2 else tuple(range(k))
    labels = tuple(names[i] for i, m in enumerate(counts) for _ in range(m))
    return _finish(points, labels, std, k_rest, shuffle, "blobs")
