"""fit watches itself: detectors, on_instability policies, diagnose."""

import importlib
import math
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pvector

import fmicrograd as fm
from fmicrograd.train import InstabilityError, InstabilityWarning, Thresholds
from fmicrograd.train.detectors import detect, running_min

XS = tuple(i / 10 for i in range(10))
YS = tuple(2.0 * x - 1.0 for x in XS)


def line_loss(p, batch):
    xs, ys = batch
    return fm.mean([(p["w"] * x + p["b"] - y) ** 2 for x, y in zip(xs, ys)])


def run(loss, params, opt, epochs, data=((XS, YS),), **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InstabilityWarning)
        return fm.train.fit(loss, params, opt, list(data), epochs=epochs, **kw)


def kinds(history):
    return [e["kind"] for e in history["events"]]


# ------------------------------------------------------------------ detectors
def sqrt_loss(p, batch):
    return fm.sqrt(p["w"])  # sgd(2.0) steps w from 1 to 0 (infinite gradient), then -inf


def dead_mlp():
    model = fm.nn.MLP.init(2, [4, 4, 1], key=fm.random.key(0))
    first = model.layers[0]
    dead = fm.nn.Layer(tuple(fm.nn.Neuron(n.w, -100.0, n.activation) for n in first.neurons))
    return fm.nn.MLP((dead, *model.layers[1:]))


def mlp_loss(m, batch):
    xs, ys = batch
    return fm.losses.mse([m(x) for x in xs], [(y + 1) / 2 for y in ys])


MOONS = fm.datasets.moons(16, 0.1, seed=0)

TRIGGERS = {
    "nan": lambda: run(sqrt_loss, {"w": 1.0}, fm.optim.sgd(2.0), 3),
    "explosion": lambda: run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(5.0), 6),
    "exploding_grad": lambda: run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(5.0), 6),
    # |w| with a fixed step bounces between w = 0.3 and -0.7 for ever
    "oscillation": lambda: run(lambda p, b: abs(p["w"]), {"w": 0.3}, fm.optim.sgd(1.0), 12),
    "plateau": lambda: run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(0.0), 8,
                           thresholds=Thresholds(plateau_window=5)),
    "vanishing_grad": lambda: run(lambda p, b: fm.stop_gradient(p["w"]) + 1.0, {"w": 1.0},
                                  fm.optim.sgd(0.1), 2),
}


@pytest.mark.parametrize("kind", sorted(TRIGGERS))
def test_each_detector_fires_on_a_run_built_for_it(kind):
    _, history = TRIGGERS[kind]()
    assert kind in kinds(history)
    event = next(e for e in history["events"] if e["kind"] == kind)
    assert isinstance(event, PMap) and isinstance(history["events"], PVector)
    assert {"epoch", "kind", "message", "action"} <= set(event)
    assert isinstance(event["message"], str) and event["message"]
    assert len(set(event) - {"epoch", "kind", "message", "action"}) >= 1  # the numbers


def test_detector_details():
    _, h = TRIGGERS["nan"]()
    assert h["events"][0]["epoch"] == 1 and h["loss"][1] == 0.0 and math.isnan(h["loss"][2])
    assert h["nonfinite_grads"][1] == 1 and h["events"][0]["message"] == (
        "not finite: grad_norm, param_norm, nonfinite_grads, nonfinite_params")
    _, h = TRIGGERS["oscillation"]()
    assert [e["epoch"] for e in h["events"]] == [9]  # one event while the condition lasts
    _, h = TRIGGERS["vanishing_grad"]()
    assert h["events"][0]["epoch"] == 0 and "every gradient is zero" in h["events"][0]["message"]


def test_a_dead_layer_is_a_vanishing_gradient():
    _, h = run(mlp_loss, dead_mlp(), fm.optim.sgd(0.1), 6, data=[MOONS])
    assert h["grad_norm.layers[0]"][0] == 0.0 and h["grad_norm.layers[2]"][0] > 0
    (event,) = h["events"]
    assert (event["kind"], event["layer"], event["epoch"]) == ("vanishing_grad", "layers[0]", 4)


def test_thresholds_are_overridable_and_checked():
    _, h = run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(5.0), 6,
               thresholds=Thresholds(explosion_factor=1e300, explosion_window=50,
                                     exploding_factor=1e300))
    assert kinds(h) == []
    with pytest.raises(ValueError, match="plateau_window must be a positive int"):
        Thresholds(plateau_window=0)


def test_healthy_runs_fire_nothing():
    xs, ys = fm.datasets.moons(100, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.split(fm.random.key(0))[0])

    def loss(m, batch):
        bx, by = batch
        return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)

    with warnings.catch_warnings():
        warnings.simplefilter("error", InstabilityWarning)
        # micrograd's demo, and adam on part of it
        for opt, n, epochs in ((fm.optim.sgd(fm.optim.micrograd_schedule(1.0, 0.9, 100)), 100,
                                100), (fm.optim.adam(0.05), 30, 60)):
            m, h = fm.train.fit(loss, model, opt, [(xs[:n], ys[:n])], epochs=epochs, jit=True)
            assert list(h["events"]) == [] and h["loss"][-1] < 0.05
            assert h["nonfinite_grads"][-1] == 0 and h["param_norm"][-1] > 0
            assert set(k for k in h if k.startswith("grad_norm.")) == {
                "grad_norm.layers[0]", "grad_norm.layers[1]", "grad_norm.layers[2]"}
        _, h = fm.train.fit(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(0.5), [(XS, YS)],
                            epochs=60)
        assert list(h["events"]) == []


_LOSS = st.one_of(st.floats(0.0, 10.0), st.sampled_from([math.nan, math.inf, -math.inf]))


@settings(max_examples=150, deadline=None)
@given(st.lists(_LOSS, min_size=1, max_size=60), st.data())
def test_detect_with_running_minima_fires_as_from_the_whole_history(losses, data):
    n = len(losses)
    grads = data.draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n))
    history = {"loss": pvector(losses), "grad_norm": pvector(grads)}
    since = data.draw(st.integers(0, n - 1))
    t = Thresholds(plateau_window=5, oscillation_window=6, explosion_window=3)
    e = n - 1
    plain = detect(history, e, t, since)
    fast = detect(history, e, t, since, running_min(history["loss"], start=since))
    # the reference: the history from ``since`` on, copied, as the detectors saw it before
    copied = detect({k: list(v[since:]) for k, v in history.items()}, e - since, t)
    assert plain == fast
    assert [dict(ev, epoch=None) for ev in fast] == [dict(ev, epoch=None) for ev in copied]


def test_running_min_extends_and_skips_non_finite_losses():
    mins = running_min([2.0, math.nan, 3.0])
    assert list(mins) == [2.0, 2.0, 2.0]
    assert list(running_min([2.0, math.nan, 3.0, 1.0, -math.inf], mins)) == [2.0] * 3 + [1.0] * 2
    assert list(running_min([5.0, math.nan, 4.0], start=1)) == [math.inf, 4.0]
    assert list(mins) == [2.0, 2.0, 2.0]  # persistent: extended, not changed


def test_fit_passes_the_running_minima_since_the_last_rollback(monkeypatch):
    fit_module = importlib.import_module("fmicrograd.train.fit")
    seen = []
    real = fit_module.detect

    def spy(history, epoch, thresholds, since=0, best=None):
        seen.append((since, list(best), list(running_min(history["loss"], start=since))))
        return real(history, epoch, thresholds, since, best)

    monkeypatch.setattr(fit_module, "detect", spy)
    run(sqrt_loss, {"w": 1.0}, fm.optim.sgd(2.0), 30, data=[None],
        on_instability="rollback", max_rollbacks=3, rollback_lr_factor=0.5)
    assert seen and all(best == want for _, best, want in seen)
    assert any(since > 0 for since, _, _ in seen)  # a rollback moved the start


# ------------------------------------------------------------------ policies
def test_warn_records_warns_and_goes_on():
    with pytest.warns(InstabilityWarning, match="epoch 2: nan"):
        _, h = fm.train.fit(sqrt_loss, {"w": 1.0}, fm.optim.sgd(2.0), [None], epochs=4)
    assert len(h["loss"]) == 4 and kinds(h) == ["nan"] and h["events"][0]["action"] == "warn"
    assert h["nonfinite_params"][-1] == 1


def test_raise_carries_the_events_and_history():
    with pytest.raises(InstabilityError, match="epoch 2: nan") as info:
        fm.train.fit(sqrt_loss, {"w": 1.0}, fm.optim.sgd(2.0), [None], epochs=4,
                     on_instability="raise")
    assert info.value.events[0]["kind"] == "nan" and len(info.value.history["loss"]) == 2
    assert "lower the learning rate" in str(fm.train.diagnose(info.value.history))
    # the message counts epochs from 1, as the command line and diagnose do (it said 1)
    assert "(epoch 2)" in str(fm.train.diagnose(info.value.history))


def test_stop_returns_the_last_good_parameters():
    p, h = run(sqrt_loss, {"w": 1.0}, fm.optim.sgd(2.0), 5, data=[None], on_instability="stop")
    assert p == {"w": 1.0} and len(h["loss"]) == 2 and h["events"][0]["action"] == "stop"


def test_rollback_lowers_the_learning_rate_and_recovers():
    p, h = run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(5.0), 40, on_instability="rollback")
    rollbacks = [e for e in h["events"] if e["action"] == "rollback"]
    assert 1 <= len(rollbacks) <= 3 and len(h["loss"]) == 40
    assert [e["lr_scale"] for e in rollbacks] == pytest.approx(
        [0.1 ** (i + 1) for i in range(len(rollbacks))])
    assert h["loss"][-1] < 1e-3 and line_loss(p, (XS, YS)) < 1e-3
    assert (p, h) == run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(5.0), 40,
                         on_instability="rollback")  # the same every run


def test_rollback_gives_up_after_max_rollbacks():
    p, h = run(sqrt_loss, {"w": 1.0}, fm.optim.sgd(2.0), 30, data=[None],
               on_instability="rollback", max_rollbacks=1, rollback_lr_factor=0.5)
    actions = [e["action"] for e in h["events"]]
    assert actions == ["rollback", "stop"] and math.isfinite(p["w"]) and p["w"] > 0


def test_rollback_works_for_every_optimizer_under_jit():
    for opt in (fm.optim.adam(0.1), fm.optim.sgd(fm.optim.exponential_decay(5.0, 10, 0.5)),
                fm.optim.chain(fm.optim.clip_by_global_norm(100.0), fm.optim.sgd(5.0))):
        eager = run(line_loss, {"w": 0.0, "b": 0.0}, opt, 12, on_instability="rollback")
        compiled = run(line_loss, {"w": 0.0, "b": 0.0}, opt, 12, on_instability="rollback",
                       jit=True)
        assert kinds(eager[1]) == kinds(compiled[1])
        for a, b in zip(fm.tree.leaves(eager[0]), fm.tree.leaves(compiled[0])):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_rollback_of_a_model_under_jit_restarts_from_its_deferred_parameters():
    # an fm.nn model under jit stays the program's flat vector between epochs; a
    # rollback hands the step an older one, which it builds and runs from
    xs, ys = fm.datasets.moons(40, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [8, 8, 1], key=fm.random.key(0))

    def loss(m, batch):
        bx, by = batch
        return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)

    eager, compiled = (run(loss, model, fm.optim.sgd(30.0), 25, data=[(xs, ys)],
                           on_instability="rollback", max_rollbacks=4, jit=jit)
                       for jit in (False, True))
    assert kinds(eager[1]) == kinds(compiled[1]) and "explosion" in kinds(eager[1])
    assert [e["action"] for e in compiled[1]["events"]][0] == "rollback"
    assert type(compiled[0]) is fm.nn.MLP
    for a, b in zip(fm.tree.leaves(eager[0]), fm.tree.leaves(compiled[0])):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_policy_arguments_are_checked():
    args = (line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(0.1), [(XS, YS)])
    with pytest.raises(ValueError, match="on_instability must be one of"):
        fm.train.fit(*args, epochs=1, on_instability="ignore")
    with pytest.raises(ValueError, match="rollback_lr_factor"):
        fm.train.fit(*args, epochs=1, rollback_lr_factor=2.0)
    with pytest.raises(ValueError, match="max_rollbacks"):
        fm.train.fit(*args, epochs=1, max_rollbacks=-1)


@pytest.mark.parametrize("asked", [{"on_instability": "raise"}, {"on_instability": "rollback"},
                                   {"on_instability": "stop"}, {"on_event": print},
                                   {"thresholds": fm.train.Thresholds()}])
def test_monitor_off_refuses_what_acts_on_its_events(asked):
    # monitor=False used to drop on_instability="raise" silently: a NaN run went on to the end
    nan_run = (lambda p, b: fm.sqrt(p["w"]) * b, {"w": 1.0}, fm.optim.sgd(10.0), [1.0])
    with pytest.raises(ValueError, match=f"{next(iter(asked))}=.* needs monitoring.*monitor=True"):
        fm.train.fit(*nan_run, epochs=3, monitor=False, **asked)
    if asked.get("on_instability") == "raise":  # what the user asked for, with monitoring
        with pytest.raises(fm.train.InstabilityError):
            fm.train.fit(*nan_run, epochs=3, **asked)


# ------------------------------------------------------------------ diagnose
def test_diagnose_explains_and_advises():
    _, h = TRIGGERS["explosion"]()
    d = fm.train.diagnose(h)
    found = {f["kind"]: f for f in d.findings}
    assert {"explosion", "exploding_grad"} <= set(found)
    assert "10x" in found["explosion"]["advice"] and "clip" in found["exploding_grad"]["advice"]
    assert str(d).startswith(f"{len(d.findings)} problems found:") and "advice:" in str(d)
    _, h = TRIGGERS["vanishing_grad"]()
    assert "connectivity" in fm.train.diagnose(h).findings[0]["advice"]
    _, h = run(line_loss, {"w": 0.0, "b": 0.0}, fm.optim.sgd(5.0), 40, on_instability="rollback")
    assert "recovered" in {f["kind"] for f in fm.train.diagnose(h).findings}
    clean = fm.train.diagnose({"loss": [1.0], "events": []})
    assert not clean and str(clean) == "no problems found: no detector fired"
    with pytest.raises(TypeError, match="history"):
        fm.train.diagnose([1.0])


# ------------------------------------------------------------------ inspect
def test_inspect_reports_activations_and_gradients_per_layer():
    xs, ys = MOONS
    model = fm.nn.MLP.init(2, [4, 4, 1], key=fm.random.key(0))
    healthy = fm.train.inspect(model, mlp_loss, (xs, ys))
    assert [r["name"] for r in healthy.layers] == ["layers[0]", "layers[1]", "layers[2]"]
    assert all(r["grad_norm"] > 0 for r in healthy.layers)
    assert healthy.loss == pytest.approx(mlp_loss(model, (xs, ys)))
    first = healthy.layers[0]
    outs = [max(0.0, sum(w * x for w, x in zip(n.w, p)) + n.b)
            for p in xs for n in model.layers[0].neurons]
    assert first["mean"] == pytest.approx(sum(outs) / len(outs))
    assert first["saturated"] == pytest.approx(sum(o == 0 for o in outs) / len(outs))
    dead = fm.train.inspect(dead_mlp(), mlp_loss, (xs, ys))
    assert dead.layers[0]["dead"] == 1.0 and dead.layers[0]["grad_norm"] == 0.0
    assert "100% of its units are flat" in str(dead)
    tanh = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0), activation="tanh")
    big = fm.nn.MLP(tuple(fm.nn.Layer(tuple(fm.nn.Neuron(tuple(50 * w for w in n.w), n.b,
                                                         n.activation) for n in layer.neurons))
                          for layer in tanh.layers))
    assert fm.train.inspect(big, mlp_loss, (xs, ys)).layers[0]["saturated"] > 0.8
    with pytest.raises(TypeError, match="fm.nn.MLP"):
        fm.train.inspect({"w": 1.0}, mlp_loss, (xs, ys))
    with pytest.raises(ValueError, match="inputs first"):
        fm.train.inspect(dead_mlp(), mlp_loss, ((), ()))


def test_layer_stats_plot_returns_a_figure_and_accepts_ax(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    report = fm.train.inspect(dead_mlp(), mlp_loss, MOONS)
    fig = fm.plot.layer_stats(report, tmp_path / "layers.png", title="dead")
    assert isinstance(fig, Figure) and (tmp_path / "layers.png").read_bytes()[:4] == b"\x89PNG"
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[0] < 1e-200 and heights[2] > 0  # layer 0 passes no gradient
    mine = Figure()
    ax = mine.add_subplot()
    assert fm.plot.layer_stats(report, ax=ax) is mine and ax.get_yscale() == "log"
    with pytest.raises(TypeError, match="inspect"):
        fm.plot.layer_stats({"loss": [1.0]})


@pytest.mark.parametrize("jit", [False, True])
def test_a_one_layer_mlp_has_its_layer_column_too(jit):
    # the per-layer columns were written only for two layers or more
    model = fm.nn.MLP.init(2, [1], key=fm.random.key(0))
    loss = lambda m, b: fm.mean([(m(x) - y) ** 2 for x, y in zip(*b)])
    _, h = fm.train.fit(loss, model, fm.optim.sgd(0.1), [(((1.0, 2.0), (0.5, -1.0)), (1.0, 0.0))],
                        epochs=2, jit=jit)
    assert list(h["grad_norm.layers[0]"]) == list(h["grad_norm"])


def test_diagnose_counts_one_rollback_per_epoch_and_says_when_the_run_stopped():
    # two detectors firing in one epoch asked for one rollback; it counted two (an outside
    # probe: "6 rollback(s)" for 3, at epochs 2, 2, 4, 4, 6, 6), and called a stopped run
    # "recovered" without a word about the stop
    def ev(kind, epoch, action, scale=None):
        e = {"kind": kind, "epoch": epoch, "action": action, "message": f"{kind} fired"}
        return e if scale is None else {**e, "lr_scale": scale}

    events = [ev(k, e, "rollback", s) for e, s in ((1, 0.1), (3, 0.01), (5, 0.001))
              for k in ("explosion", "exploding_grad")]
    events += [ev(k, 7, "stop") for k in ("explosion", "exploding_grad")]
    found = fm.train.diagnose({"loss": [1.0] * 8, "events": events})
    recovered = [f for f in found.findings if f["kind"] == "recovered"][0]
    assert recovered["epochs"] == (1, 3, 5)
    assert recovered["message"] == ("3 rollback(s), each lowering the learning rate; the "
                                    "learning rate ended at 0.001x the first; then no rollback "
                                    "was left and the run stopped at epoch 8")
    again = fm.train.diagnose({"loss": [1.0] * 6, "events": events[:6]})
    assert [f["message"] for f in again.findings if f["kind"] == "recovered"] == [
        "3 rollback(s), each lowering the learning rate; the learning rate ended at 0.001x "
        "the first"]


def test_detectors_take_no_converged_noise_and_no_divergence_for_a_plateau():
    from fmicrograd.train.detectors import Thresholds, detect

    t = Thresholds()
    kinds = lambda h, e: [ev["kind"] for ev in detect(h, e, t)]  # noqa: E731
    # a loss that jumped far above its best was a "plateau" (with "raise the learning rate")
    jump = [1.0] + [0.5] * 26 + [5000.0] * 25
    jump_h = {"loss": jump, "grad_norm": [1.0] * len(jump)}
    assert "plateau" not in kinds(jump_h, len(jump) - 1)
    flat = [1.0] + [0.5] * 51
    assert "plateau" in kinds({"loss": flat, "grad_norm": [1.0] * len(flat)}, len(flat) - 1)
    # a converged run's rises (0.009 to 0.027, below 0.1x the first epoch's loss) and swings
    rising = [1.0] + [0.01] * 10 + [0.009, 0.011, 0.014, 0.018, 0.022, 0.027]
    assert "explosion" not in kinds({"loss": rising, "grad_norm": [1.0] * 17}, 16)
    high = [1.0] + [0.3] * 10 + [0.3, 0.35, 0.4, 0.5, 0.6, 0.7]  # the same rise while high
    assert "explosion" in kinds({"loss": high, "grad_norm": [1.0] * 17}, 16)
    swings = [1.0] + [0.01, 0.03] * 6
    assert "oscillation" not in kinds({"loss": swings, "grad_norm": [1.0] * 13}, 12)
    assert "oscillation" in kinds({"loss": [1.0] + [0.3, 0.9] * 6, "grad_norm": [1.0] * 13}, 12)
    # a gradient norm that overflowed while every entry is finite (1e200): not "nan"
    over = {"loss": [1.0, 0.9], "grad_norm": [1.0, math.inf], "nonfinite_grads": [0, 0]}
    assert kinds(over, 1) == ["exploding_grad"]
    nan = {"loss": [1.0, 0.9], "grad_norm": [1.0, math.inf], "nonfinite_grads": [0, 3]}
    assert kinds(nan, 1)[0] == "nan"


def test_diagnose_names_the_epoch_of_the_first_finite_gradient_norm():
    h = {"loss": [math.nan, 5.0, 3.0], "grad_norm": [math.nan, 500.0, 1.0],
         "events": [{"epoch": 0, "kind": "nan", "message": "not finite: loss"}]}
    text = str(fm.train.diagnose(h))
    assert "- loss_scale (epoch 2): epoch 2's (the first finite) gradient norm is 500" in text


def test_an_instability_warning_points_at_the_call_of_fit():
    # fit's data-parallel wrapper (distributed.tells_peers) added a frame: the warning
    # named distributed.py as where it came from (the round's own suite showed it)
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fm.train.fit(lambda p, b: (p["w"] * 3.0) ** 2, {"w": 1.0}, fm.optim.sgd(1.0), [None],
                     epochs=4)
    found = [w for w in seen if issubclass(w.category, fm.train.InstabilityWarning)]
    assert found and all(w.filename == __file__ for w in found), [w.filename for w in found]
