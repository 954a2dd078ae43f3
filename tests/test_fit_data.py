"""``fit``'s dataset checks and ``fm.random.uniform``'s bounds (round 28: an
outside probe found a bare ZeroDivisionError, a key error naming fold_in, and
a uniform draw that hung or gave NaN)."""

import math
import random

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd import train


def _loss(p, batch):
    xs, ys = batch
    return fm.losses.mse([p * x for x in xs], list(ys))


def test_an_empty_dataset_is_a_clear_error_not_a_division_by_zero():
    for data in (((), ()), (np.zeros((0, 2)), np.zeros(0))):
        for jit in (False, True):
            with pytest.raises(ValueError, match="fit: the dataset holds no examples"):
                train.fit(_loss, 1.0, fm.optim.sgd(0.1), data, epochs=1, batch_size=3, jit=jit)


def test_columns_of_different_lengths_are_named_by_fit():
    with pytest.raises(ValueError, match=r"fit: the dataset's columns differ in length: "
                                         r"column 0 has 10, column 1 has 7"):
        train.fit(_loss, 1.0, fm.optim.sgd(0.1), (tuple(range(10)), tuple(range(7))),
                  epochs=1, batch_size=3)


def test_a_key_that_is_not_an_fm_random_key_is_named_as_fits():
    for key in (0, np.array([0, 1], dtype=np.uint32)):
        with pytest.raises(TypeError, match="fit: key must be an fm.random key"):
            train.fit(_loss, 1.0, fm.optim.sgd(0.1), ((1.0, 2.0), (2.0, 4.0)), epochs=1,
                      batch_size=1, key=key)


def test_uniform_refuses_infinite_bounds_and_draws_where_the_width_overflows():
    k = fm.random.key(0)
    for low, high in ((-math.inf, 1.0), (0.0, math.inf)):
        with pytest.raises(ValueError, match="needs finite bounds"):
            fm.random.uniform(k, 2, low, high)
    xs = np.array(fm.random.uniform(k, 20000, -1e308, 1e308))
    assert np.isfinite(xs).all() and (xs >= -1e308).all() and (xs < 1e308).all()
    assert abs((xs / 1e308).mean()) < 0.03 and xs.min() < -0.99e308 and xs.max() > 0.99e308
    # an ordinary range draws the numbers it always drew (Python's uniform of the key's seed)
    rng = random.Random(k.data)
    assert fm.random.uniform(k, 3, -1.0, 1.0) == tuple(rng.uniform(-1.0, 1.0) for _ in range(3))
