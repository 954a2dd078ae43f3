"""fm.train.fit: a pure fold over epochs and batches."""

import copy
import functools
import io

import numpy as np
import pytest
from pyrsistent import PMap, PVector

import fmicrograd as fm
from fmicrograd import optim, train


def line_loss(p, batch):
    xs, ys = batch
    return fm.mean([(p["w"][0] * x + p["b"] - y) ** 2 for x, y in zip(xs, ys)])


XS = tuple(i / 10 for i in range(10))
YS = tuple(2.0 * x - 1.0 for x in XS)


def accuracy(model, batch):
    xs, ys = batch
    return sum((model(x) > 0) == (y > 0) for x, y in zip(xs, ys)) / len(ys)


def test_fit_leaves_its_inputs_untouched():
    params = {"w": [0.0], "b": 0.0}
    data = [[list(XS), list(YS)]]
    val = [list(XS[:3]), list(YS[:3])]
    before = copy.deepcopy((params, data, val))
    new, history = train.fit(line_loss, params, optim.adam(0.1), data, epochs=5,
                             val_data=val, patience=3)
    assert (params, data, val) == before
    assert new != params and type(new) is dict and type(new["w"]) is list


def test_history_is_a_pmap_of_pvectors_one_value_per_epoch():
    _, history = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), [(XS, YS)],
                           epochs=7, val_data=(XS, YS), metrics={"abs_w": lambda p, b: p["w"][0]})
    assert isinstance(history, PMap)
    assert set(history) == {"loss", "abs_w", "val_loss", "val_abs_w", "grad_norm", "update_norm",
                            "param_norm", "nonfinite_grads", "nonfinite_params", "events"}
    assert all(isinstance(v, PVector) and len(v) == 7 for k, v in history.items() if k != "events")
    assert list(history["events"]) == []
    _, bare = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), [(XS, YS)], epochs=2,
                        monitor=False)
    assert set(bare) == {"loss", "grad_norm"}
    assert list(history["loss"]) == sorted(history["loss"], reverse=True)


def test_fit_equals_the_manual_loop():
    opt = optim.sgd(0.2, momentum=0.5)
    params = {"w": [0.3], "b": -0.1}
    batches = [(XS[:5], YS[:5]), (XS[5:], YS[5:])]

    def step(carry, batch):
        p, s, losses = carry
        loss, g = fm.value_and_grad(line_loss)(p, batch)
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s, losses + (loss,)

    p, _, losses = functools.reduce(step, batches * 4, (params, opt.init(params), ()))
    got, history = train.fit(line_loss, params, opt, batches, epochs=4)
    assert got == p
    assert list(history["loss"]) == [(losses[2 * i] + losses[2 * i + 1]) / 2 for i in range(4)]


def test_batches_cover_the_dataset_once():
    data = (tuple(range(10)), tuple(range(10, 20)))
    bs = train.batches(data, 3, key=fm.random.key(0))
    assert [len(b[0]) for b in bs] == [3, 3, 3, 1]
    assert sorted(x for b in bs for x in b[0]) == list(range(10))
    assert all(y == x + 10 for b in bs for x, y in zip(*b))  # columns stay aligned
    assert bs == train.batches(data, 3, key=fm.random.key(0))
    assert bs != train.batches(data, 3, key=fm.random.key(1))
    assert [len(b[0]) for b in train.batches(data, 3, drop_last=True)] == [3, 3, 3]
    assert train.batches(data, 4)[0] == ((0, 1, 2, 3), (10, 11, 12, 13))


def test_minibatch_training_is_deterministic_for_a_key():
    run = lambda key: train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), (XS, YS),
                                epochs=3, batch_size=4, key=key)
    a, b, c = run(fm.random.key(0)), run(fm.random.key(0)), run(fm.random.key(1))
    assert a == b and a[0] != c[0]
    unshuffled, _ = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), (XS, YS),
                              epochs=3, batch_size=4)
    manual, _ = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1),
                          train.batches((XS, YS), 4), epochs=3)
    assert unshuffled == manual


def test_callback_sees_every_epoch():
    seen = []
    train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), [(XS, YS)], epochs=3,
              callback=lambda epoch, p, m: seen.append((epoch, type(p), dict(m))))
    assert [e for e, _, _ in seen] == [0, 1, 2]
    assert all(t is dict and {"loss", "grad_norm"} <= set(m) for _, t, m in seen)


def test_progress_bar_on_stderr(capsys):
    train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), [(XS, YS)], epochs=3,
              progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "epoch 3/3 [########################]" in err and "loss" in err
    assert err.endswith("\n") and "\r" not in err and len(err.splitlines()) == 3  # not a tty
    assert "elapsed" in err and "ETA" in err


def test_early_stopping_on_a_plateau():
    params = {"w": [0.0], "b": 0.0}
    _, history = train.fit(line_loss, params, optim.sgd(0.0), [(XS, YS)], epochs=50,
                           patience=3)
    assert len(history["loss"]) == 4  # the first epoch, then three without improvement


def test_restore_best_returns_the_best_parameters():
    # a learning rate far too large: the loss grows after the first epoch
    best, history = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(5.0), [(XS, YS)],
                              epochs=4, val_data=(XS, YS), restore_best=True)
    last, _ = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(5.0), [(XS, YS)],
                        epochs=4, val_data=(XS, YS))
    vals = list(history["val_loss"])
    assert vals.index(min(vals)) == 0 and best != last
    assert line_loss(best, (XS, YS)) == min(vals)


def test_metrics_and_validation_on_a_classifier():
    xs, ys = fm.datasets.xor()
    model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0))
    hinge = lambda m, b: fm.losses.hinge([m(x) for x in b[0]], b[1])
    _, history = train.fit(hinge, model, optim.adam(0.05), [(xs, ys)], epochs=150,
                           val_data=(xs, ys), metrics={"accuracy": accuracy})
    assert history["val_accuracy"][-1] == 1.0 and history["accuracy"][0] < 1.0


def test_zero_epochs_returns_the_inputs():
    params = {"w": [1.0], "b": 0.0}
    p, history = train.fit(line_loss, params, optim.sgd(0.1), [(XS, YS)], epochs=0)
    assert p is params and list(history["loss"]) == []


def test_errors_teach():
    args = (line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1))
    with pytest.raises(TypeError, match="one-shot iterator"):
        train.fit(*args, iter([(XS, YS)]), epochs=2)
    with pytest.raises(ValueError, match="key shuffles a dataset cut by batch_size"):
        train.fit(*args, [(XS, YS)], epochs=2, key=fm.random.key(0))
    with pytest.raises(ValueError, match="metric names"):
        train.fit(*args, [(XS, YS)], epochs=2, metrics={"loss": line_loss})
    with pytest.raises(ValueError, match="epochs"):
        train.fit(*args, [(XS, YS)], epochs=-1)
    with pytest.raises(ValueError, match="differ in length"):
        train.fit(*args, (XS, YS[:3]), epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="no batches"):
        train.fit(*args, [], epochs=1)


def test_fit_with_jit_follows_the_same_trajectory():
    xs, ys = fm.datasets.moons(20, 0.1, seed=3)
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(5))

    def loss(m, batch):
        bx, by = batch
        return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)

    plain, h1 = fm.train.fit(loss, model, fm.optim.sgd(0.1), [(xs, ys)], epochs=15)
    compiled, h2 = fm.train.fit(loss, model, fm.optim.sgd(0.1), [(xs, ys)], epochs=15, jit=True)
    for a, b in zip(fm.tree.leaves(plain), fm.tree.leaves(compiled)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)
    assert list(h1["loss"]) == pytest.approx(list(h2["loss"]), rel=1e-12)
    assert h1["loss"][-1] < h1["loss"][0]


def mse_loss(m, batch):
    bx, by = batch
    return fm.losses.mse([m(x) for x in bx], by) + 1e-3 * fm.losses.l2(m)


OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.1),
    "momentum": lambda: optim.sgd(0.1, momentum=0.9),
    "nesterov": lambda: optim.sgd(0.1, momentum=0.9, nesterov=True),
    "adam": lambda: optim.adam(0.05),
    "adamw": lambda: optim.adamw(0.05, weight_decay=0.1),
    "rmsprop": lambda: optim.rmsprop(0.01, momentum=0.5),
    "clipped": lambda: optim.chain(optim.clip_by_global_norm(0.5), optim.sgd(0.2)),
    "linear": lambda: optim.sgd(optim.linear_schedule(0.2, 0.01, 6)),
    "cosine": lambda: optim.adam(optim.cosine_decay_schedule(0.1, 8)),
    "staircase": lambda: optim.sgd(optim.exponential_decay(0.2, 3, 0.5, staircase=True)),
    "micrograd": lambda: optim.sgd(optim.micrograd_schedule(0.5, 0.9, 8)),
    "injected": lambda: optim.inject_lr_scale(optim.adam(0.05), 0.5),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fit_jit_compiles_the_whole_step_for_every_optimizer(name):
    xs, ys = fm.datasets.moons(12, 0.1, seed=3)
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(5))
    calls = []

    def loss(m, batch):
        calls.append(1)
        return mse_loss(m, batch)

    run = lambda jit: fm.train.fit(loss, model, OPTIMIZERS[name](), (xs, ys), epochs=4,
                                   batch_size=6, key=fm.random.key(1), jit=jit)
    plain, h1 = run(False)
    eager_calls = len(calls)
    calls.clear()
    compiled, h2 = run(True)
    assert eager_calls == 8 and len(calls) <= 3  # one trace, more if a schedule branch flips
    for a, b in zip(fm.tree.leaves(plain), fm.tree.leaves(compiled)):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)
    for k in h1:
        if k != "events":
            assert list(h1[k]) == pytest.approx(list(h2[k]), rel=1e-12, abs=1e-12), k
    assert list(h1["events"]) == list(h2["events"]) == []


def test_a_dataset_without_batch_size_is_a_clear_error():
    xs, ys = fm.datasets.moons(10, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
    with pytest.raises(TypeError, match="looks like a dataset") as info:
        train.fit(mse_loss, model, optim.sgd(0.1), (xs, ys), epochs=3)
    assert "[(xs, ys)]" in str(info.value) and "batch_size=32" in str(info.value)
    with pytest.raises(TypeError, match="with batch_size, data must be a dataset") as info:
        train.fit(mse_loss, model, optim.sgd(0.1), [(xs, ys)], epochs=3, batch_size=4)
    assert "[(xs, ys)]" in str(info.value) and "batch_size=32" in str(info.value)
    # the two documented forms train
    full, _ = train.fit(mse_loss, model, optim.sgd(0.1), [(xs, ys)], epochs=1)
    cut, _ = train.fit(mse_loss, model, optim.sgd(0.1), (xs, ys), epochs=1, batch_size=10)
    assert full == cut


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_redraws_on_a_terminal_and_prints_lines_elsewhere():
    clock = iter([0.0, 2.0, 4.0, 10.0]).__next__
    term = FakeTerminal()
    bar = train.Progress(3, term, clock=clock)
    bar.update(1, {"accuracy": 0.5, "loss": 1.0})
    bar.update(2, {"accuracy": 0.75, "loss": 0.5})
    bar.close()
    text = term.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "loss 0.5000  accuracy 0.7500  4.0s elapsed, 0.50 epoch/s, ETA 2.0s" in text
    log = io.StringIO()
    bar = train.Progress(100, log, every=10, clock=iter([0.0] + [1.0] * 100).__next__)
    for k in range(1, 101):
        bar.update(k, {"loss": 1.0 / k})
    lines = log.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in log.getvalue()
    assert lines[0].startswith("epoch 1/100") and lines[-1].startswith("epoch 100/100")


def test_history_prints_in_a_stable_order():
    _, history = train.fit(line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), [(XS, YS)],
                           epochs=3, val_data=(XS, YS), metrics={"abs_w": lambda p, b: p["w"][0]})
    assert train.history_order(history) == [
        "loss", "grad_norm", "update_norm", "param_norm", "nonfinite_grads", "nonfinite_params",
        "abs_w", "val_abs_w", "val_loss", "events"]
    text = train.format_history(history)
    assert [ln.split()[0] for ln in text.splitlines()] == train.history_order(history)
    assert text.splitlines()[0] == (f"loss              first {history['loss'][0]:.6g}  min "
                                    f"{min(history['loss']):.6g}  last "
                                    f"{history['loss'][-1]:.6g}  (3 epochs)")


def test_restore_best_without_validation_returns_the_parameters_its_loss_was_taken_at():
    loss = lambda p, batch: (p["w"] - 1.0) ** 2
    for jit in (False, True):
        p, h = train.fit(loss, {"w": 0.0}, optim.sgd(1.5), [None], epochs=10, patience=2,
                         restore_best=True, monitor=False, jit=jit)
        assert list(h["loss"]) == [1.0, 4.0, 16.0]
        assert p == {"w": 0.0} and loss(p, None) == min(h["loss"])


def test_patience_and_min_delta_are_checked():
    args = (line_loss, {"w": [0.0], "b": 0.0}, optim.sgd(0.1), [(XS, YS)])
    for bad in (0, -1, "3", 2.0, True):
        with pytest.raises(ValueError, match="patience"):
            train.fit(*args, epochs=2, patience=bad)
    for bad in (float("nan"), -0.1, float("inf"), "0"):
        with pytest.raises(ValueError, match="min_delta"):
            train.fit(*args, epochs=2, min_delta=bad)


def test_a_dataset_of_arrays_is_cut_into_array_batches():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 2)), np.where(rng.normal(size=10) > 0, 1.0, -1.0)
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))

    def loss(m, batch):
        xs, ys = batch
        return fm.mean(fm.vmap(lambda x, y: fm.relu(1.0 - y * m(x)))(xs, ys))

    key = fm.random.key(1)
    arrays = train.fit(loss, model, optim.sgd(0.1), (X, Y), epochs=5, batch_size=4, key=key)
    tuples = train.fit(loss, model, optim.sgd(0.1), (tuple(map(tuple, X.tolist())),
                       tuple(Y.tolist())), epochs=5, batch_size=4, key=key)
    compiled = train.fit(loss, model, optim.sgd(0.1), (X, Y), epochs=5, batch_size=4, key=key,
                         jit=True)
    assert list(arrays[1]["loss"]) == list(tuples[1]["loss"])
    assert list(compiled[1]["loss"]) == pytest.approx(list(arrays[1]["loss"]), rel=1e-12)
    with pytest.raises(TypeError, match="looks like a dataset"):  # arrays without batch_size
        train.fit(loss, model, optim.sgd(0.1), (X, Y), epochs=1)
