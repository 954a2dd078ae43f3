"""fm.nn: MLP/Layer/Neuron as pytrees, initialisation, forward pass, gradients."""

import dataclasses
import math
import statistics

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd import nn

KEY = fm.random.key(0)


def _loss(model, xs, ys):
    return fm.mean([(model(x) - y) ** 2 for x, y in zip(xs, ys)])


def _finite_difference_grads(f, tree, eps=1e-6):
    leaves, treedef = fm.tree.flatten(tree)
    out = []
    for i in range(len(leaves)):
        up = fm.tree.unflatten(treedef, [v + eps if j == i else v for j, v in enumerate(leaves)])
        down = fm.tree.unflatten(treedef, [v - eps if j == i else v for j, v in enumerate(leaves)])
        out.append((f(up) - f(down)) / (2 * eps))
    return out


def test_same_key_same_model_different_keys_differ():
    a = nn.MLP.init(3, [4, 2], key=KEY)
    assert a == nn.MLP.init(3, [4, 2], key=KEY)
    assert nn.parameters(a) != nn.parameters(nn.MLP.init(3, [4, 2], key=fm.random.key(1)))


def test_structure_and_micrograd_defaults():
    model = nn.MLP.init(2, [16, 16, 1], key=KEY)
    assert [len(layer.neurons) for layer in model.layers] == [16, 16, 1]
    assert [layer.neurons[0].activation for layer in model.layers] == ["relu", "relu", "linear"]
    assert all(isinstance(n.w, tuple) and len(n.w) == layer.nin
               for layer in model.layers for n in layer.neurons)
    ws = [w for layer in model.layers for n in layer.neurons for w in n.w]
    assert all(-1.0 <= w <= 1.0 for w in ws) and max(ws) > 0.9 and min(ws) < -0.9
    assert all(n.b == 0.0 for layer in model.layers for n in layer.neurons)
    assert nn.count_params(model) == 337 and model.nin == 2 and model.nouts == (16, 16, 1)


def test_leaves_are_exactly_the_float_parameters_in_micrograd_order():
    model = nn.MLP.init(2, [3, 1], key=KEY, activation="tanh")
    expected = tuple(p for layer in model.layers for n in layer.neurons for p in (*n.w, n.b))
    assert nn.parameters(model) == expected == tuple(fm.tree.leaves(model))
    assert all(isinstance(p, float) for p in expected)


def _variance(ws):
    return statistics.pvariance(ws, mu=0.0)


def test_xavier_scale():
    fan_in, fan_out = 300, 100
    layer = nn.Layer.init(fan_in, fan_out, key=KEY, init="xavier")
    ws = [w for n in layer.neurons for w in n.w]
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert all(abs(w) <= bound for w in ws) and max(map(abs, ws)) > 0.99 * bound
    assert abs(_variance(ws) / (2.0 / (fan_in + fan_out)) - 1.0) < 0.05
    assert abs(statistics.fmean(ws)) < 0.01 * bound


def test_he_scale():
    fan_in = 200
    layer = nn.Layer.init(fan_in, 150, key=KEY, init="he")
    ws = [w for n in layer.neurons for w in n.w]
    assert abs(_variance(ws) / (2.0 / fan_in) - 1.0) < 0.05
    assert abs(statistics.fmean(ws)) < 0.01


def test_apply_outputs_scalar_or_tuple():
    x = (0.5, -1.5)
    one = nn.MLP.init(2, [4, 1], key=KEY)
    many = nn.MLP.init(2, [4, 3], key=KEY)
    assert isinstance(one(x), float) and nn.apply(one, x) == one(x)
    assert isinstance(many(x), tuple) and len(many(x)) == 3
    assert isinstance(nn.Layer.init(2, 1, key=KEY)(x), float)


def test_forward_pass_by_hand():
    neuron = nn.Neuron(w=(2.0, -1.0), b=0.5, activation="linear")
    layer = nn.Layer([neuron, dataclasses.replace(neuron, activation="relu"),
                      dataclasses.replace(neuron, activation="tanh"),
                      dataclasses.replace(neuron, activation="sigmoid")])
    x = (1.0, 4.0)  # pre-activation 2 - 4 + 0.5 = -1.5
    assert layer(x) == pytest.approx((-1.5, 0.0, math.tanh(-1.5), 1.0 / (1.0 + math.exp(1.5))),
                                     rel=1e-15)
    model = nn.MLP([layer, nn.Layer([nn.Neuron((1.0, 1.0, 1.0, 1.0), 0.0, "linear")])])
    assert math.isclose(model(x), sum(layer(x)))


def test_float_and_graph_forward_agree():
    model = nn.MLP.init(3, [5, 5, 2], key=KEY, activation="tanh")
    x = (0.1, -0.2, 0.3)
    traced = fm.trace(lambda m: m(x))(model)
    assert tuple(t.value for t in traced) == model(x)


def test_wrong_input_length_is_a_value_error_saying_expected_and_got():
    model = nn.MLP.init(2, [3, 1], key=KEY)
    with pytest.raises(ValueError, match=r"expected an input of length 2, got length 3"):
        model((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"expected an input of length 2, got length 1"):
        nn.apply(model, [1.0])
    with pytest.raises(ValueError, match=r"expected an input of length 2, got length 0"):
        nn.Layer.init(2, 2, key=KEY)(())
    with pytest.raises(ValueError, match=r"MLP: layer 1 takes 5 inputs but layer 0 gives 3"):
        nn.MLP([model.layers[0], nn.Layer.init(5, 1, key=KEY)])


def test_scalar_input_is_a_type_error_with_a_hint():
    model = nn.MLP.init(1, [2, 1], key=KEY)
    with pytest.raises(TypeError, match=r"wrap a single input as \(x,\)"):
        model(1.0)
    assert isinstance(model((1.0,)), float)


def test_models_are_frozen_and_apply_is_pure():
    model = nn.MLP.init(2, [3, 1], key=KEY)
    before = nn.parameters(model)
    model((1.0, 2.0))
    fm.grad(lambda m: m((1.0, 2.0)))(model)
    assert nn.parameters(model) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.layers = ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.layers[0].neurons[0].b = 1.0


def test_grad_returns_an_mlp_of_gradients_matching_finite_differences():
    model = nn.MLP.init(2, [4, 3, 1], key=fm.random.key(3), activation="tanh")
    xs, ys = ((0.5, -1.0), (1.5, 0.2), (-0.3, 0.8)), (1.0, -1.0, 0.5)
    g = fm.grad(_loss)(model, xs, ys)
    assert type(g) is nn.MLP
    assert all(type(layer) is nn.Layer for layer in g.layers)
    assert all(type(n) is nn.Neuron for layer in g.layers for n in layer.neurons)
    assert [n.activation for layer in g.layers for n in layer.neurons] == \
        [n.activation for layer in model.layers for n in layer.neurons]
    assert fm.tree.structure(g) == fm.tree.structure(model)
    numeric = _finite_difference_grads(lambda m: _loss(m, xs, ys), model)
    for got, want in zip(nn.parameters(g), numeric):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-8)


def test_grad_with_respect_to_the_input():
    model = nn.MLP.init(2, [5, 1], key=fm.random.key(4), activation="sigmoid")
    x = (0.3, -0.7)
    got = fm.grad(lambda x: model(x))(x)
    want = _finite_difference_grads(lambda x: model(x), x)
    assert got == pytest.approx(tuple(want), rel=1e-6)


def test_second_order_through_the_model():
    model = nn.MLP.init(1, [3, 1], key=fm.random.key(5), activation="tanh")
    f = lambda x: model((x,))
    d2 = fm.grad(fm.grad(f))(0.4)
    eps = 1e-4
    assert d2 == pytest.approx((f(0.4 + eps) - 2 * f(0.4) + f(0.4 - eps)) / eps ** 2, rel=1e-5)


def test_reprs():
    model = nn.MLP.init(2, [16, 1], key=KEY)
    assert repr(model) == "MLP(Layer(2->16, relu), Layer(16->1, linear))"
    assert repr(nn.Neuron((1.0,), 0.0)) == "Neuron(w=(1.0,), b=0.0, activation='relu')"


def test_bad_arguments_are_reported():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        nn.MLP.init(2, [3, 1], key=KEY, activation="gelu")
    with pytest.raises(ValueError, match="unknown init 'normal'"):
        nn.MLP.init(2, [3, 1], key=KEY, init="normal")
    with pytest.raises(ValueError, match="nouts"):
        nn.MLP.init(2, [], key=KEY)
    with pytest.raises(ValueError, match="positive int"):
        nn.MLP.init(2, [0, 1], key=KEY)
    with pytest.raises(TypeError, match=r"MLP.init: key must be a Key from fm.random.key\(seed\)"):
        nn.MLP.init(2, [3, 1], key=0)  # (named by fm.random.split before, round 44's review)
    with pytest.raises(TypeError, match="Layer.init: key must be a Key"):
        nn.Layer.init(2, 3, key="a")
    with pytest.raises(ValueError, match="Layer.init: nin must be a positive int"):
        nn.Layer.init(0, 3, key=KEY)  # (it said Neuron.init)
    with pytest.raises(TypeError, match="Neuron, Layer or MLP"):
        nn.apply({"w": 1.0}, (1.0,))


def test_a_model_larger_than_memory_is_refused_before_it_is_built(monkeypatch):
    # MLP.init(2, [10**9, 1]) made floats for minutes before failing (round 44's review)
    monkeypatch.setattr(nn, "_physical_memory", lambda: 2**30)  # a machine of 1 GiB
    for build, where in [(lambda: nn.MLP.init(2, [25 * 10**6, 1], key=KEY), "MLP.init"),
                         (lambda: nn.Layer.init(10**4, 10**4, key=KEY), "Layer.init"),
                         (lambda: nn.Neuron.init(10**8, key=KEY), "Neuron.init")]:
        with pytest.raises(MemoryError, match=rf"{where}: layer sizes .* about 3 GiB as "
                                              r"Python floats, more than this machine's 1 GiB"):
            build()
    assert nn.count_params(nn.MLP.init(2, [1000, 1], key=KEY)) == 4001  # what fits is built
    monkeypatch.setattr(nn, "_physical_memory", lambda: None)  # (memory unknown: no guard)
    assert nn.count_params(nn.MLP.init(2, [1000, 1], key=KEY)) == 4001


def test_a_later_neuron_holding_a_node_keeps_it_on_plain_inputs():
    """The plain-input path looked at neuron 0 only: a Var bias of a later
    neuron went through float() (the graph lost outside a transform, a wrong
    float() error under grad), and a float32 weight after the first kept
    float32 arithmetic (round 28)."""
    v = fm.Var(0.5)
    layer = fm.nn.Layer((fm.nn.Neuron((1.0, 2.0), 0.0, "linear"),
                         fm.nn.Neuron((1.0, 2.0), v, "linear")))
    out = layer((1.0, 1.0))
    assert out[0] == 3.0 and isinstance(out[1], fm.Expr) and out[1].value == 3.5
    assert fm.viz.node_grads(out[1])[v] == 1.0
    m = fm.nn.MLP.init(2, [2, 2], key=fm.random.key(0), activation="tanh")

    def f(b):
        return fm.tree.at(lambda mm: mm.layers[0].neurons[1].b, m, b)((0.5, -0.3))[1]

    eps = 1e-6
    assert abs(fm.grad(f)(0.2) - (f(0.2 + eps) - f(0.2 - eps)) / (2 * eps)) < 1e-8
    assert fm.jit(fm.grad(f))(0.2) == pytest.approx(fm.grad(f)(0.2), rel=1e-12)
    n = fm.nn.Neuron((1.0, np.float32(0.1)), 0.0, "linear")
    assert type(n((0.0, 1.0))) is float and n((0.0, 1.0)) == float(np.float32(0.1))


def test_neurons_of_a_layer_with_different_widths_are_an_error_not_truncated():
    """A model edited with fm.tree.at to hold a neuron of another width ran
    eagerly on the shorter of weights and inputs (zip), where transforms
    raised fm.dot's error (round 28)."""
    m = fm.nn.MLP.init(3, [2, 1], key=fm.random.key(0))
    for w in ((1.0, 2.0), (1.0, 2.0, 3.0, 4.0)):
        bad = fm.tree.at(lambda mm: mm.layers[0].neurons[1].w, m, w)
        for call in (bad, fm.jit(bad), lambda x, b=bad: fm.grad(lambda s: b((s, 2.0, 3.0)))(x[0])):
            with pytest.raises(ValueError, match=r"layer 0 its neurons have different "
                                                 r"numbers of weights \(\[3, \d\]\)|fm.dot: "
                                                 r"sequences differ in length"):
                call((1.0, 2.0, 3.0))
