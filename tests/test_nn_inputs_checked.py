"""fm.nn refuses, when built or called, what would fail later with numpy's or
Python's own error (an outside probe found each)."""

import numpy as np
import pytest

import fmicrograd as fm

KEY = fm.random.key(0)


@pytest.mark.parametrize("make, message", [
    (lambda: fm.nn.Neuron(w=(1.0,), b=np.array([1.0, 2.0])),
     r"Neuron: b must be a number, got ndarray of shape \(2,\)"),
    (lambda: fm.nn.Neuron(w=np.array([[1.0, 2.0]])),
     r"Neuron: w\[0\] must be a number, got ndarray of shape \(2,\)"),
    (lambda: fm.nn.Neuron(w=(np.str_("1"),)), r"Neuron: w\[0\] must be a number, got str_"),
    (lambda: fm.nn.Layer(None), "Layer: neurons must be a sequence of Neurons, got NoneType"),
    (lambda: fm.nn.Layer(fm.nn.Neuron.init(2, key=KEY)),
     r"got Neuron \(one neuron: Layer\(\(neuron,\)\)\)"),
    (lambda: fm.nn.MLP(fm.nn.Layer.init(2, 3, key=KEY)),
     r"got Layer \(one layer: MLP\(\(layer,\)\)\)"),
    (lambda: fm.nn.MLP(np.int64(2), [16, 1]),
     r"fm.nn.MLP\(2, \[16, 1\]\) is micrograd's constructor"),
])
def test_a_model_is_checked_when_built(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_fan_out_is_checked():
    with pytest.raises(ValueError, match="fan_out must be a positive int, got -2"):
        fm.nn.Neuron.init(2, key=KEY, init="xavier", fan_out=-2)  # (a ZeroDivisionError)


@pytest.mark.parametrize("x, error, message", [
    ((10 ** 400, 0.5), ValueError, "input 0 is int 1000.*an int beyond the float range"),
    (np.array(["a", "b"]), TypeError, "input 0 is str_ np.str_\\('a'\\): each input must be"),
    (np.array([True, False]), TypeError, "a bool is not an input here"),
])
def test_a_model_call_names_the_bad_input(x, error, message):
    model = fm.nn.MLP.init(2, [3, 1], key=KEY)
    with pytest.raises(error, match=message):
        model(x)


def test_numbers_of_other_kinds_still_go_in():
    model = fm.nn.MLP.init(2, [3, 1], key=KEY)
    want = model((0.5, 3.0))
    assert model((np.float32(0.5), np.int64(3))) == model(np.array([0.5, 3.0])) == want
    neuron = fm.nn.Neuron(w=np.array([1.0, 2.0]), b=np.float64(0.5))
    assert neuron((1.0, 1.0)) == 3.5 and fm.nn.Neuron(w=(1.0,), b=np.array(0.5))((1.0,)) == 1.5


@pytest.mark.parametrize("jitted", [False, True])
def test_a_model_under_vmap_says_what_shape_the_batch_needs(jitted):
    # it said "got Const Const(array(...)); wrap a single input as (x,)", and for a 3-D batch
    # advised fm.vmap(model)(X), which was the call being made (an outside probe)
    model = fm.nn.MLP.init(2, [3, 1], key=KEY)
    run = fm.jit(fm.vmap(model)) if jitted else fm.vmap(model)
    with pytest.raises(TypeError, match=r"got one number per example: fm.vmap mapped a 1-D "
                                        r"array.*shape \(batch, 2\)"):
        run(np.ones(4))
    with pytest.raises(TypeError, match=r"examples that are themselves nested: pass an array of "
                                        r"shape \(batch, 2\)"):
        run(np.ones((3, 2, 2)))


def test_micrograd_s_linear_layer_is_named_with_its_activation():
    # the hint dropped nonlin=False and named Layer.init(2, 3, ...), a ReLU layer
    with pytest.raises(TypeError, match=r'fm\.nn\.Layer\(2, 3, nonlin=False\) is micrograd.s '
                                        r'constructor.*fm\.nn\.Layer\.init\(2, 3, '
                                        r'activation="linear", key='):
        fm.nn.Layer(2, 3, nonlin=False)
    with pytest.raises(TypeError, match=r'fm\.nn\.Neuron\.init\(2, key='):
        fm.nn.Neuron(2, nonlin=True)
    layer = fm.nn.Layer.init(2, 3, activation="linear", key=fm.random.key(0))
    assert layer((1.0, 2.0)) == tuple(fm.dot(n.w, (1.0, 2.0)) + n.b for n in layer.neurons)
