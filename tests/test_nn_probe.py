"""Regression tests from probing fm.nn and fm.datasets: numpy-int sizes, a
bare int for ``nouts``, numpy scalar noise / factor / centers."""

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd import datasets, nn


def test_numpy_int_sizes_build_the_same_model_as_python_ints() -> None:
    key = fm.random.key(0)
    want = nn.MLP.init(3, [4, 1], key=key)
    for nin, nouts in [(np.int64(3), [4, 1]), (3, np.array([4, 1])),
                       (np.int32(3), (np.int64(4), np.int64(1)))]:
        got = nn.MLP.init(nin, nouts, key=key)
        assert got == want and type(got.nin) is int and got.nouts == (4, 1)
    assert nn.Layer.init(np.int32(2), np.int32(3), key=key) == nn.Layer.init(2, 3, key=key)
    assert nn.Neuron.init(np.int64(2), key=key) == nn.Neuron.init(2, key=key)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True, np.float64(2.0), np.int64(0)])
def test_nonsense_sizes_still_raise(bad: object) -> None:
    with pytest.raises(ValueError, match="must be a positive int"):
        nn.MLP.init(bad, [1], key=fm.random.key(0))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be a positive int"):
        nn.MLP.init(2, [bad], key=fm.random.key(0))  # type: ignore[list-item]


@pytest.mark.parametrize("nouts", [16, np.int64(16), None, "16", 2.5])
def test_nouts_not_a_sequence_names_the_list_form(nouts: object) -> None:
    # was TypeError: 'int' object is not iterable (and '16' complained about size '1')
    with pytest.raises(TypeError, match=r"nouts must be a sequence of layer sizes, e\.g\."):
        nn.MLP.init(2, nouts, key=fm.random.key(0))  # type: ignore[arg-type]
    if nouts in (16, np.int64(16)):
        with pytest.raises(TypeError, match=r"write \[16\]"):
            nn.MLP.init(2, nouts, key=fm.random.key(0))  # type: ignore[arg-type]


@pytest.mark.parametrize("make", [datasets.moons, datasets.circles])
def test_numpy_scalar_n_and_noise_match_python_numbers(make: object) -> None:
    want = make(10, 0.25, seed=1)  # type: ignore[operator]
    assert make(np.int64(10), np.float64(0.25), seed=np.int64(1)) == want  # type: ignore[operator]
    xs, _ = make(10, np.float32(0.25), seed=1)  # type: ignore[operator]
    assert {type(c) for p in xs for c in p} == {float}
    assert make(10, np.int64(0), seed=1) == make(10, 0.0, seed=1)  # type: ignore[operator]


def test_circles_numpy_factor_gives_floats_and_bad_factor_is_clear() -> None:
    xs, _ = datasets.circles(8, 0.0, factor=np.float32(0.5), shuffle=False)
    assert {type(c) for p in xs for c in p} == {float}
    assert xs == datasets.circles(8, 0.0, factor=0.5, shuffle=False)[0]  # 0.5 is exact
    for bad in ["0.5", None, True, float("nan"), 1.0, -0.1]:
        with pytest.raises(ValueError, match=r"circles: factor must be a number in \[0, 1\)"):
            datasets.circles(10, 0.0, factor=bad)  # type: ignore[arg-type]


def test_blobs_numpy_count_and_bad_centers() -> None:
    assert datasets.blobs(10, np.int64(3), seed=2) == datasets.blobs(10, 3, seed=2)
    for bad in [2.5, True, None, "ab"]:
        with pytest.raises(ValueError, match="blobs: centers must be a positive count"):
            datasets.blobs(10, bad)  # type: ignore[arg-type]


def test_a_float32_model_computes_in_float64_as_under_jit():
    # a model converted with np.float32 computed its plain-number forward pass in
    # float32 (numpy's arithmetic), while fm.jit reads every parameter as a float64
    import numpy as np

    model = fm.nn.MLP.init(2, [4, 3, 1], key=fm.random.key(0))
    for convert in (np.float32, np.float16):
        small = fm.tree.map(convert, model)
        for x in [(0.3, -0.7), (1.5, 2.0)]:
            eager = small(x)
            assert eager.__class__ is float
            assert eager == fm.jit(lambda m, x: m(x))(small, x)
            assert eager == fm.tree.map(float, small)(x)


def test_dataset_shuffle_must_be_a_bool():
    import numpy as np

    assert fm.datasets.moons(6, 0.0, shuffle=np.bool_(False)) == fm.datasets.moons(6, 0.0,
                                                                                    shuffle=False)
    for bad in ("no", 0, None, 0.5):  # "no" used to shuffle, as any truthy value did
        with pytest.raises(TypeError, match="shuffle must be True or False"):
            fm.datasets.moons(6, 0.0, shuffle=bad)
