"""A newcomer probe of round 32: ``fm.plot.loss_curve`` crashed on ``fit``'s
own history once a detector had fired (its ``events`` entry) and on the axes
array ``plt.subplots(1, 2)`` returns; ``fm.losses`` read a dict key by key
(``mse({0.0: 5.0, 1.0: 7.0}, [0.0, 1.0])`` was 0.0 for 30.5) and a set in any
order."""

from __future__ import annotations

import pytest

import fmicrograd as fm

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def test_loss_curve_takes_fits_history_with_events():
    xs, ys = fm.datasets.moons(20, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0))
    loss = lambda m, b: fm.losses.hinge([m(x) for x in b[0]], b[1])
    _, hist = fm.train.fit(loss, model, fm.optim.sgd(100.0), [(xs, ys)], epochs=6)
    assert "explosion" in [e["kind"] for e in hist["events"]]
    fig = fm.plot.loss_curve(hist)
    labels = [a.get_ylabel() for a in fig.axes]
    assert "loss" in labels and "events" not in labels


def test_loss_curve_takes_the_axes_array_of_subplots():
    import matplotlib.pyplot as plt
    fig, axs = plt.subplots(1, 2)
    out = fm.plot.loss_curve({"loss": [1.0, 0.5], "accuracy": [0.1, 0.2]}, ax=axs)
    assert out is fig and [a.get_ylabel() for a in axs] == ["loss", "accuracy"]
    plt.close(fig)


@pytest.mark.parametrize("call", [
    lambda: fm.losses.mse({0.0: 5.0, 1.0: 7.0}, [0.0, 1.0]),
    lambda: fm.losses.hinge({-3.0: 1.0}, [1.0]),
    lambda: fm.losses.mse([1.0, 2.0], {1.0, 2.0}),
], ids=["mse dict", "hinge dict", "mse set"])
def test_losses_refuse_dicts_and_sets(call):
    with pytest.raises(TypeError, match=r"fm\.losses: got a (dict|set), whose order is not the "
                                        r"examples'"):
        call()


def test_losses_take_a_dicts_keys_and_values_views_in_order():
    # (a review's catch: a keys view, ordered, was refused as a set)
    assert fm.losses.mse({1.0: "a", 2.0: "b"}.keys(), [0.0, 0.0]) == 2.5
    assert fm.losses.mse({"a": 1.0, "b": 2.0}.values(), [0.0, 0.0]) == 2.5
