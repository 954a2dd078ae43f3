"""fm.datasets: shapes, labels, determinism and the geometry of each set."""

import math
import statistics

import pytest

from fmicrograd import datasets


def _check_shape(xs, ys, n, dim=2):
    assert isinstance(xs, tuple) and isinstance(ys, tuple)
    assert len(xs) == len(ys) == n
    assert all(isinstance(x, tuple) and len(x) == dim for x in xs)
    assert all(isinstance(c, float) for x in xs for c in x)


@pytest.mark.parametrize("make", [
    lambda seed: datasets.moons(60, 0.1, seed=seed),
    lambda seed: datasets.circles(60, 0.05, seed=seed),
    lambda seed: datasets.blobs(60, 2, seed=seed),
])
def test_deterministic_for_a_seed_and_seeds_differ(make):
    assert make(3) == make(3)
    assert make(3) != make(4)


@pytest.mark.parametrize("n", [2, 7, 100])
def test_moons_shape_and_labels(n):
    xs, ys = datasets.moons(n, 0.1, seed=0)
    _check_shape(xs, ys, n)
    assert ys.count(-1.0) == n // 2 and ys.count(1.0) == n - n // 2


def test_moons_geometry_without_noise():
    xs, ys = datasets.moons(51, 0.0, shuffle=False)
    for (x, y), label in zip(xs, ys):
        if label == -1.0:  # upper moon: unit half circle around the origin
            assert math.isclose(x * x + y * y, 1.0) and y >= -1e-12
        else:  # lower moon: around (1, 0.5), opening upwards
            assert math.isclose((x - 1.0) ** 2 + (y - 0.5) ** 2, 1.0) and y <= 0.5 + 1e-12
    assert xs[0] == (1.0, 0.0)
    assert math.isclose(xs[-1][0], 2.0) and math.isclose(xs[-1][1], 0.5)


def test_moons_noise_scale():
    clean, _ = datasets.moons(2000, 0.0, seed=1)
    noisy, _ = datasets.moons(2000, 0.2, seed=1)
    # shuffling is the same for a seed, so noise is the pointwise difference
    diffs = [n[d] - c[d] for n, c in zip(noisy, clean) for d in range(2)]
    assert abs(statistics.stdev(diffs) - 0.2) < 0.01
    assert abs(statistics.fmean(diffs)) < 0.01


def test_shuffle_permutes_the_same_points():
    a, la = datasets.moons(40, 0.0, seed=0)
    b, lb = datasets.moons(40, 0.0, shuffle=False)
    assert a != b and sorted(zip(a, la)) == sorted(zip(b, lb))


def test_circles_geometry():
    xs, ys = datasets.circles(40, 0.0, factor=0.3, seed=2)
    _check_shape(xs, ys, 40)
    for (x, y), label in zip(xs, ys):
        r = math.hypot(x, y)
        assert math.isclose(r, 1.0 if label == -1.0 else 0.3)
    assert ys.count(-1.0) == ys.count(1.0) == 20
    with pytest.raises(ValueError, match="factor"):
        datasets.circles(10, factor=1.5)


def test_xor():
    xs, ys = datasets.xor()
    _check_shape(xs, ys, 4)
    for (a, b), y in zip(xs, ys):
        assert y == (1.0 if (a > 0.5) != (b > 0.5) else -1.0)


def test_blobs_two_centres_use_pm1_labels():
    xs, ys = datasets.blobs(101, 2, std=0.5, seed=0)
    _check_shape(xs, ys, 101)
    assert ys.count(-1.0) == 51 and ys.count(1.0) == 50


def test_blobs_many_centres_and_spread():
    centers = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)]
    xs, ys = datasets.blobs(3000, centers, std=0.5, seed=1)
    assert sorted(set(ys)) == [0, 1, 2]
    for k, (cx, cy) in enumerate(centers):
        pts = [x for x, y in zip(xs, ys) if y == k]
        assert len(pts) == 1000
        assert abs(statistics.fmean(p[0] for p in pts) - cx) < 0.1
        assert abs(statistics.fmean(p[1] for p in pts) - cy) < 0.1
        assert abs(statistics.stdev(p[1] for p in pts) - 0.5) < 0.05


def test_blobs_random_centres_lie_in_the_box():
    xs, _ = datasets.blobs(20, 4, std=0.0, box=(-1.0, 1.0), seed=3)
    assert all(-1.0 <= c <= 1.0 for x in xs for c in x)
    assert len(set(xs)) == 4


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, True])
def test_bad_sizes_are_value_errors(bad):
    with pytest.raises(ValueError, match="n must be"):
        datasets.moons(bad)


@pytest.mark.parametrize("make, name", [(datasets.moons, "moons.*noise"),
                                        (datasets.circles, "circles.*noise")])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -0.1, "0.1", True])
def test_bad_noise_is_a_value_error(make, name, bad):
    with pytest.raises(ValueError, match=name):
        make(10, bad)


def test_bad_blob_spread_is_a_value_error():
    with pytest.raises(ValueError, match="blobs: std must be a finite number"):
        datasets.blobs(10, std=float("nan"))


@pytest.mark.parametrize("args, kwargs, message", [
    ((10,), {"box": None}, r"box must be two numbers \(low, high\), got None"),
    ((10,), {"box": (1, 2, 3)}, r"box must be two numbers"),
    ((10,), {"box": (5.0, 1.0)}, r"box must be finite with low < high"),
    ((10, [("a", "b")]), {}, r"centers\[0\] must be a sequence of numbers"),
    ((10, [[]]), {}, r"of one dimension \(at least 1\)"),
    ((10, [(float("nan"), 0.0)]), {}, r"centers\[0\] must be finite"),
    ((10, 10 ** 20), {}, r"centers must be a count from 1 to n \(10\)"),  # (it drew until OOM)
])
def test_blobs_checks_its_box_and_centers(args, kwargs, message):
    # raw TypeErrors, a float() error, or accepted (empty or NaN centers): an outside probe
    with pytest.raises(ValueError, match=message):
        datasets.blobs(*args, **kwargs)
