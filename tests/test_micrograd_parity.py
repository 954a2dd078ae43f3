"""Parity with the micrograd package: same weights and data, same losses step
by step; and micrograd's demo reaching 100% training accuracy."""

import gc
import random

import micrograd.nn as micrograd_nn
import pytest
from micrograd.engine import Value

import fmicrograd as fm

XS, YS = fm.datasets.moons(100, 0.1, seed=0)
ALPHA = 1e-4


def demo_loss(model, batch):
    xs, ys = batch
    scores = [model(x) for x in xs]
    return fm.losses.hinge(scores, ys) + ALPHA * fm.losses.l2(model)


def micrograd_twin(model):
    """A micrograd MLP holding the same weights as ``model``."""
    state = random.getstate()  # micrograd draws from the global RNG: leave it as it was
    try:
        twin = micrograd_nn.MLP(model.nin, list(model.nouts))
    finally:
        random.setstate(state)
    params = twin.parameters()
    assert len(params) == fm.nn.count_params(model)
    for p, v in zip(params, fm.nn.parameters(model)):
        p.data = v
    return twin


def micrograd_demo_losses(model, steps):
    """micrograd's demo loop, verbatim but for the data and the step count."""
    losses = []
    for k in range(steps):
        inputs = [list(map(Value, xrow)) for xrow in XS]
        scores = list(map(model, inputs))
        data_loss = [(1 + -yi * scorei).relu() for yi, scorei in zip(YS, scores)]
        data_loss = sum(data_loss) * (1.0 / len(data_loss))
        reg_loss = ALPHA * sum(p * p for p in model.parameters())
        total_loss = data_loss + reg_loss
        model.zero_grad()
        total_loss.backward()
        learning_rate = 1.0 - 0.9 * k / 100
        for p in model.parameters():
            p.data -= learning_rate * p.grad
        losses.append(total_loss.data)
    return losses


def test_forward_pass_matches_micrograd():
    model = fm.nn.MLP.init(3, [5, 4, 2], key=fm.random.key(7))
    twin = micrograd_twin(model)
    for x in fm.random.normal(fm.random.key(8), 30)[::3], (0.0, 0.0, 0.0), (5.0, -3.0, 1.0):
        x = tuple(x[:3])
        assert model(x) == pytest.approx(tuple(v.data for v in twin(list(x))), rel=1e-12,
                                         abs=1e-12)


def test_training_matches_micrograd_step_by_step():
    steps = 20
    model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(1337))
    twin = micrograd_twin(model)
    final, history = fm.train.fit(demo_loss, model, fm.optim.sgd(fm.optim.micrograd_schedule()),
                                  [(XS, YS)], epochs=steps)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # micrograd's graphs are reference cycles: the collector would dominate
    try:
        expected = micrograd_demo_losses(twin, steps)
    finally:
        gc.collect()
        if gc_was_enabled:
            gc.enable()
    assert len(history["loss"]) == steps
    for got, want in zip(history["loss"], expected):
        assert abs(got - want) <= 1e-9
    for got, want in zip(fm.nn.parameters(final), (p.data for p in twin.parameters())):
        assert abs(got - want) <= 1e-9


def test_micrograd_demo_reaches_full_training_accuracy():
    model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(1337))
    accuracy = lambda m, batch: sum((m(x) > 0) == (y > 0) for x, y in zip(*batch)) / len(XS)
    final, history = fm.train.fit(demo_loss, model, fm.optim.sgd(fm.optim.micrograd_schedule()),
                                  [(XS, YS)], epochs=100, metrics={"accuracy": accuracy})
    assert history["loss"][-1] < 0.05 < history["loss"][0]
    assert accuracy(final, (XS, YS)) == 1.0
