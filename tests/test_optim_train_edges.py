"""Edges an outside probe of fm.optim and fm.train found (round 17)."""

import io
import os
import shutil

import numpy as np
import pytest
import torch

import fmicrograd as fm

_DATA = [(1.0, 2.0), (2.0, 3.5), (-1.0, 0.1)]


def _loss(p, b):
    return (p["w"] * b[0] + p["c"] - b[1]) ** 2


def test_float32_parameters_train_in_float64_eager_compiled_and_resumed(tmp_path):
    # eager steps rounded np.float32 parameters to float32 (p + u stays float32 in
    # numpy 2), while jit=True computed in float64: 3e-7 apart, and a checkpoint
    # (JSON floats) resumed a different run
    p32 = {"w": np.float32(0.1), "c": np.float32(-0.3)}
    opt = fm.optim.adam(0.01)
    eager, he = fm.train.fit(_loss, p32, opt, _DATA, epochs=30)
    compiled, hj = fm.train.fit(_loss, p32, opt, _DATA, epochs=30, jit=True)
    assert eager == compiled and list(he["loss"]) == list(hj["loss"])
    assert all(type(v) is float for v in eager.values())
    assert p32 == {"w": np.float32(0.1), "c": np.float32(-0.3)}  # not changed
    whole, hw = fm.train.fit(_loss, p32, opt, _DATA, epochs=10, checkpoint_dir=tmp_path / "a")
    os.mkdir(tmp_path / "b")
    shutil.copy(sorted((tmp_path / "a").iterdir())[4], tmp_path / "b")
    resumed, hr = fm.train.fit(_loss, p32, opt, _DATA, epochs=10,
                               checkpoint_dir=tmp_path / "b", resume=tmp_path / "b")
    assert resumed == whole and hr == hw


@pytest.mark.parametrize("g", [1e155, 3e154, 2.5, 1e-200])
def test_adam_stays_finite_where_torch_does(g):
    # (1 - b2) * (g * g) overflowed to inf for |g| ~ 1.3e154..4e155: the update was 0
    opt = fm.optim.adam(0.1)
    (u,), _ = opt.update((g,), opt.init((0.0,)))
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    step = torch.optim.Adam([t], lr=0.1)
    t.grad = torch.tensor(g, dtype=torch.float64)
    step.step()
    assert u == pytest.approx(t.item(), rel=1e-15)


def test_rmsprop_squares_in_torchs_order():
    opt = fm.optim.rmsprop(0.01)
    (u,), _ = opt.update((1e154,), opt.init((0.0,)))
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    step = torch.optim.RMSprop([t], lr=0.01, alpha=0.9, eps=1e-8)
    t.grad = torch.tensor(1e154, dtype=torch.float64)
    step.step()
    assert u == pytest.approx(t.item(), rel=1e-12) and u != 0.0


def test_progress_rate_counts_only_this_sessions_epochs():
    # a resumed run counted the epochs done before it: 20x the true rate
    times = iter([0.0, 1.0, 2.0])
    bar = fm.train.Progress(24, io.StringIO(), clock=lambda: next(times))
    assert "1.00 epoch/s, ETA 3.0s" in bar.line(21, {"loss": 0.5})
    assert "1.00 epoch/s, ETA 2.0s" in bar.line(22, {"loss": 0.5})


def test_diagnose_says_when_nothing_was_monitored():
    _, h = fm.train.fit(lambda p, b: (p[0] - b) ** 2, (0.0,), fm.optim.sgd(1.5), [1.0],
                        epochs=3, monitor=False)
    found = fm.train.diagnose(h)
    assert not found and not found.monitored and "monitoring off" in str(found)
    assert str(fm.train.diagnose({"loss": [1.0], "events": []})).startswith("no problems")


def test_nesterov_must_be_a_bool():
    with pytest.raises(TypeError, match="nesterov must be True or False, got 'no'"):
        fm.optim.sgd(0.1, 0.9, nesterov="no")


@pytest.mark.parametrize("schedule", [
    fm.optim.linear_schedule(0.1, -0.1, 10),
    fm.optim.cosine_decay_schedule(-0.1, 10),
    fm.optim.micrograd_schedule(1.0, decay=1.5),
    fm.optim.exponential_decay(float("nan"), 10, 0.5),
    fm.optim.constant_schedule(-1e-3),
])
def test_a_built_in_schedule_that_goes_negative_is_refused_when_the_optimizer_is_made(schedule):
    # a negative number was refused as lr, a schedule reaching one was not: the
    # steps silently climbed the loss once it crossed 0
    for make in (fm.optim.sgd, fm.optim.adam, fm.optim.rmsprop):
        with pytest.raises(ValueError, match="learning rate must be >= 0"):
            make(schedule)


def test_a_schedule_function_giving_a_negative_rate_fails_at_that_step_eager_and_compiled():
    opt = fm.optim.sgd(lambda k: 1.0 - 0.5 * k)

    def step(p, s):
        u, s = opt.update((1.0,), s)
        return fm.optim.apply_updates(p, u), s

    for run in (step, fm.jit(step)):
        p, s = (1.0,), opt.init((1.0,))
        for _ in range(3):
            p, s = run(p, s)
        assert p == (-0.5,)  # rates 1.0, 0.5, 0.0
        with pytest.raises(ValueError, match="gave -0.5 at step 3: a learning rate must be "
                                             "finite and >= 0"):
            run(p, s)


@pytest.mark.parametrize("kind", ["dir", "dangling_symlink", "symlink_loop"])
def test_a_checkpoint_entry_that_is_not_a_readable_file_is_a_value_error(tmp_path, kind):
    # it was a raw IsADirectoryError / FileNotFoundError / OSError (the contract: ValueError)
    opt = fm.optim.sgd(0.1)
    fm.train.fit(_loss, {"w": 0.1, "c": 0.0}, opt, _DATA, epochs=2, checkpoint_dir=tmp_path)
    bad = tmp_path / "epoch-000009.json"
    {"dir": lambda: bad.mkdir(), "dangling_symlink": lambda: bad.symlink_to("/nonexistent"),
     "symlink_loop": lambda: bad.symlink_to(bad)}[kind]()
    with pytest.raises(ValueError, match="epoch-000009.json cannot be read"):
        fm.train.fit(_loss, {"w": 0.1, "c": 0.0}, opt, _DATA, epochs=4,
                     checkpoint_dir=tmp_path, resume=tmp_path)


@pytest.mark.parametrize("options,error,match", [
    # a metric named like monitoring's own column replaced it silently
    ({"metrics": {"update_norm": lambda p, b: 123.0}}, ValueError, "'update_norm'.*own columns"),
    ({"metrics": {"nonfinite_grads": lambda p, b: 0.0}}, ValueError, "'nonfinite_grads'"),
    # "no" is true: it monitored, and a resume check named a checkpoint there was none of
    ({"monitor": "no"}, TypeError, "monitor must be True or False, got 'no'"),
    ({"thresholds": {}}, TypeError, "thresholds must be an fm.train.Thresholds.*got dict"),
    ({"metrics": {"acc": lambda p, b: "x"}}, TypeError, "metric 'acc' returned str 'x'"),
    ({"metrics": {3: lambda p, b: 1.0}}, TypeError, r"metrics\[3\] must be a function"),
    ({"metrics": [lambda p, b: 1.0]}, TypeError, "metrics must be a dict.*got list"),
    ({"callback": 3}, TypeError, "callback must be a function.*got int"),
])
def test_fit_options_are_checked_before_training(options, error, match):
    calls = []

    def loss(p, b):
        calls.append(1)
        return (p["w"] - b) ** 2

    with pytest.raises(error, match=match):
        fm.train.fit(loss, {"w": 0.0}, fm.optim.sgd(0.1), [1.0], epochs=2, progress=False,
                     **options)
    assert calls == [] or "returned str" in match  # (the metric's error: after a step)


def test_metric_names_clash_only_with_columns_fit_writes():
    loss = lambda p, b: (p["w"] - b) ** 2  # noqa: E731
    one = lambda p, b: 1.0  # noqa: E731
    for name, monitor in (("param_norm", False), ("nonfinite_count", True)):
        _, h = fm.train.fit(loss, {"w": 0.0}, fm.optim.sgd(0.1), [1.0], epochs=2,
                            monitor=monitor, metrics={name: one})
        assert list(h[name]) == [1.0, 1.0]
    _, h = fm.train.fit(loss, {"w": 0.0}, fm.optim.sgd(0.1), [1.0], epochs=2,
                        metrics=[("mae", one)])  # (name, fn) pairs, as dict() takes them
    assert list(h["mae"]) == [1.0, 1.0]


def test_a_registered_flattens_own_error_comes_out_as_it_is():
    class Broken:
        pass

    def flatten(b):
        raise ValueError("Broken is not initialised")

    fm.tree.register(Broken, flatten, lambda meta, children: Broken())
    with pytest.raises(ValueError, match="^Broken is not initialised$"):
        fm.tree.leaves(Broken())
