"""Flags and hyper-parameters that cannot mean what they say are refused where
they are given (round 45's review of the training API)."""

import math

import pytest

import fmicrograd as fm


def _loss(p, batch):
    return fm.mean([(p["w"] * x - y) ** 2 for x, y in zip(*batch)])


DATA = [((1.0, 2.0, 3.0), (2.0, 4.0, 6.5))]


@pytest.mark.parametrize("flag", ["restore_best", "jit", "progress", "data_parallel",
                                  "monitor"])
def test_a_flag_of_fit_that_is_not_a_bool_is_refused(flag):
    # restore_best="no" restored the best epoch, data_parallel="no" switched it on
    with pytest.raises(TypeError, match=f"fit: {flag} must be True or False, got 'no'"):
        fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=2, **{flag: "no"})


def test_fit_refuses_an_empty_checkpoint_dir_and_an_on_event_that_is_no_function(tmp_path,
                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)  # (it wrote epoch-*.json into the working directory)
    with pytest.raises(ValueError, match="checkpoint_dir is an empty path"):
        fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=2, checkpoint_dir="")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TypeError, match="on_event must be a function"):
        fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=2, on_event=3)


def test_thresholds_error_names_a_real_field():
    with pytest.raises(TypeError, match=r"Thresholds\(explosion_factor=10.0\)"):
        fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=1, thresholds={})
    assert fm.train.Thresholds(explosion_factor=10.0).explosion_factor == 10.0


@pytest.mark.parametrize("schedule", [fm.optim.constant_schedule(math.inf),
                                      fm.optim.linear_schedule(math.inf, 0.0, 5),
                                      lambda k: math.inf])
def test_an_infinite_learning_rate_from_a_schedule_is_refused(schedule):
    # sgd(inf) was refused, a schedule giving inf made every update -inf
    opt = fm.optim.sgd(schedule)
    with pytest.raises(ValueError, match="gave inf at step 0: a learning rate must be finite"):
        opt.update((1.0,), opt.init((0.0,)))


def test_trace_refuses_a_nesterov_that_is_not_a_bool_and_normal_a_nan_mean():
    with pytest.raises(TypeError, match="trace: nesterov must be True or False, got 'no'"):
        fm.optim.trace(0.5, nesterov="no")
    with pytest.raises(ValueError, match="needs a finite mean and std, got mean=nan"):
        fm.random.normal(fm.random.key(0), 3, mean=math.nan)


def test_a_callback_that_changes_the_parameters_it_is_handed_does_not_change_the_run():
    # it was handed fit's own containers: params["w"][0] = 1000.0 trained on from 1000
    loss = lambda p, b: (p["w"][0] - 1.0) ** 2  # noqa: E731
    clean, _ = fm.train.fit(loss, {"w": [0.0]}, fm.optim.sgd(0.1), [None], epochs=2)

    def scribble(epoch, params, metrics):
        params["w"][0] = 1000.0

    got, _ = fm.train.fit(loss, {"w": [0.0]}, fm.optim.sgd(0.1), [None], epochs=2,
                          callback=scribble)
    assert got == clean == {"w": [0.36000000000000004]}
