"""fm.random: explicit keys, deterministic, splittable, no global state."""

import random as stdlib_random
import statistics

import pytest

import fmicrograd as fm
from fmicrograd import random as fr


def test_same_seed_same_key_and_numbers():
    assert fr.key(7) == fr.key(7)
    assert fr.uniform(fr.key(7), 5) == fr.uniform(fr.key(7), 5)
    assert fr.normal(fr.key(7), 5) == fr.normal(fr.key(7), 5)


def test_different_seeds_differ():
    assert fr.key(7) != fr.key(8)
    assert fr.uniform(fr.key(7), 5) != fr.uniform(fr.key(8), 5)


def test_split_is_deterministic_and_gives_distinct_keys():
    k = fr.key(0)
    keys = fr.split(k, 50)
    assert keys == fr.split(k, 50)
    assert len(set(keys)) == 50
    assert k not in keys
    assert fr.split(k)[0] == keys[0]  # splitting in 2 or in 50 starts alike
    grandchildren = {g for c in keys for g in fr.split(c, 3)}
    assert len(grandchildren) == 150 and not grandchildren & set(keys)


def test_fold_in():
    k = fr.key(3)
    assert fr.fold_in(k, 1) == fr.fold_in(k, 1)
    assert len({fr.fold_in(k, i) for i in range(20)}) == 20


def test_no_global_state_is_touched():
    state = stdlib_random.getstate()
    k = fr.key(1)
    fr.uniform(k, 10)
    fr.normal(k, 10)
    fr.permutation(k, 10)
    fm.nn.MLP.init(2, [3, 1], key=k)
    assert stdlib_random.getstate() == state


def test_uniform_range_and_normal_moments():
    xs = fr.uniform(fr.key(0), 5000, -2.0, 3.0)
    assert all(-2.0 <= x < 3.0 for x in xs)
    assert abs(statistics.fmean(xs) - 0.5) < 0.1
    ys = fr.normal(fr.key(1), 5000, 1.0, 2.0)
    assert abs(statistics.fmean(ys) - 1.0) < 0.1
    assert abs(statistics.stdev(ys) - 2.0) < 0.1


def test_scalar_draws():
    assert isinstance(fr.uniform(fr.key(0)), float)
    assert isinstance(fr.normal(fr.key(0)), float)


def test_permutation_and_shuffle():
    p = fr.permutation(fr.key(2), 100)
    assert sorted(p) == list(range(100)) and p != tuple(range(100))
    items = tuple("abcdefgh")
    s = fr.shuffle(fr.key(2), items)
    assert sorted(s) == sorted(items) and items == tuple("abcdefgh")


def test_key_is_a_pytree_without_leaves():
    k = fr.key(5)
    assert fm.tree.leaves(k) == []
    tree = {"key": k, "w": 1.0}
    assert fm.tree.map(lambda x: x * 2, tree) == {"key": k, "w": 2.0}
    assert fm.grad(lambda t: t["w"] ** 2)(tree)["key"] == k


@pytest.mark.parametrize("bad", [1.5, "0", None, True])
def test_key_rejects_non_int_seeds(bad):
    with pytest.raises(TypeError, match="seed must be an int"):
        fr.key(bad)


def test_samplers_reject_non_keys():
    with pytest.raises(TypeError, match="expected a Key"):
        fr.uniform(0)
    with pytest.raises(TypeError, match="expected a Key"):
        fr.split(0)
    with pytest.raises(ValueError, match="non-negative"):
        fr.split(fr.key(0), -1)


def test_numpy_ints_are_ints_for_seeds_and_counts():
    import numpy as np

    k = fm.random.key(0)
    assert fm.random.key(np.int64(7)) == fm.random.key(7)
    assert fm.random.split(k, np.int32(3)) == fm.random.split(k, 3)
    assert fm.random.fold_in(k, np.int64(2)) == fm.random.fold_in(k, 2)
    with pytest.raises(TypeError, match="the seed must be an int, got bool"):
        fm.random.key(True)
    with pytest.raises(TypeError, match="got float64"):
        fm.random.key(np.float64(1.0))
