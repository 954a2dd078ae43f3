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
    with pytest.raises(ValueError, match="checkpoint_dir is .., not a usable path"):
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


def test_messages_that_name_the_argument():
    # each was Python's or the os module's bare message (round 45's review)
    import numpy as np

    for kw, err, said in [({"checkpoint_dir": 3}, TypeError, "checkpoint_dir must be a path"),
                          ({"resume": 3}, TypeError, "resume must be a path"),
                          ({"checkpoint_dir": "a\0b"}, ValueError, "not a usable path")]:
        with pytest.raises(err, match=said):
            fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=1, **kw)
    with pytest.raises(TypeError, match="fit: data must be a list of batches"):
        fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), None, epochs=1)
    with pytest.raises(TypeError, match="schedule: a value must be a number, got str"):
        fm.optim.sgd(fm.optim.constant_schedule("a"))
    with pytest.raises(TypeError, match="scale: step_size must be a number"):
        fm.optim.scale("a")
    with pytest.raises(ValueError, match="max_norm is an int beyond float64"):
        fm.optim.clip_by_global_norm(10**400)
    opt = fm.optim.inject_lr_scale(fm.optim.sgd(1.0), np.float32(0.5))  # (it was refused)
    assert opt.update((1.0,), opt.init((0.0,)))[0] == (-0.5,)
    state = fm.optim.scale_lr(opt.init((0.0,)), 1e308)
    with pytest.raises(ValueError, match="the product must stay a finite number > 0"):
        fm.optim.scale_lr(fm.optim.scale_lr(state, 1e308), 1e308)
    with pytest.raises(TypeError, match="fm.random: a bound, mean or std must be a number"):
        fm.random.uniform(fm.random.key(0), 2, "0", 1)
    with pytest.raises(ValueError, match="precision must be None or an int >= 0"):
        fm.viz.to_dot(fm.Var(1.0) * 2.0, precision=-1)
    with pytest.raises(ValueError, match="n must be an int >= 0"):
        fm.distributed.shard_bounds(-1, 0, 3)


def test_flags_that_worked_before_still_work():
    # round 45's first check refused None for fit's flags and 1 / numpy's bools for trace's
    # nesterov, which trained as False / True before (a re-review)
    import numpy as np

    plain, _ = fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=2)
    for flag in ("progress", "jit", "restore_best", "data_parallel"):
        got, _ = fm.train.fit(_loss, {"w": 0.0}, fm.optim.sgd(0.01), DATA, epochs=2,
                              **{flag: None})
        assert got == plain
    for on in (True, np.True_, 1):
        opt = fm.optim.trace(0.9, nesterov=on)
        s = opt.init((0.0,))
        assert opt.update((1.0,), opt.update((1.0,), s)[1])[0] == (2.71,)


def test_to_torch_of_an_empty_batch_has_an_empty_gradient():
    import torch

    x = torch.zeros(0, dtype=torch.float64, requires_grad=True)
    out = fm.to_torch(lambda a: fm.log(a + 1.0))(x)
    out.sum().backward()
    assert out.shape == (0,) and x.grad is not None and x.grad.shape == (0,)


def test_a_datasets_seed_and_shuffles_items_are_named():
    # the seed's error named fm.random.key, None's was Python's "not iterable"
    with pytest.raises(TypeError, match=r"fm.datasets.moons: seed=1.5 is not a seed: the seed "
                                        r"must be an int"):
        fm.datasets.moons(10, seed=1.5)
    with pytest.raises(TypeError, match="fm.random.shuffle: items must be a sequence"):
        fm.random.shuffle(fm.random.key(0), None)
    assert sorted(fm.random.shuffle(fm.random.key(0), "abc")) == ["a", "b", "c"]
