"""micrograd idioms a newcomer review (round 49) found answered by Python's
bare errors: ``fm.nn.Module``, ``neuron.nonlin``, ``MLP.init(..., nonlin=False)``.
Each names the fmicrograd way now; the models themselves are unchanged."""

import dataclasses
import inspect

import pytest

import fmicrograd as fm


def test_module_base_class_names_frozen_dataclasses():
    with pytest.raises(AttributeError, match=r"micrograd's base class.*dataclass\(frozen=True\)"):
        fm.nn.Module  # noqa: B018
    with pytest.raises(ImportError):
        from fmicrograd.nn import Module  # noqa: F401

    @dataclasses.dataclass(frozen=True)  # the way it names: a pytree as it is
    class Net:
        w: float
        b: float

    assert fm.grad(lambda n: n.w * n.b)(Net(2.0, 3.0)) == Net(3.0, 2.0)


@pytest.mark.parametrize("cls, args", [(fm.nn.MLP, (2, [3, 1])), (fm.nn.Layer, (2, 3)),
                                       (fm.nn.Neuron, (2,))])
def test_init_with_nonlin_names_activation(cls, args):
    key = fm.random.key(0)
    with pytest.raises(TypeError, match='nonlin=False is activation="linear"'):
        cls.init(*args, key=key, nonlin=False)
    with pytest.raises(TypeError, match='nonlin=True is activation="relu"'):
        cls.init(*args, key=key, nonlin=True)
    linear = cls.init(*args, key=key, activation="linear")
    assert linear == cls.init(*args, key=key, activation="linear")  # init itself as before
    assert cls.init.__doc__ and "key" in inspect.signature(cls.init).parameters  # (docs)


def test_nonlin_attribute_names_activation():
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
    neuron = model.layers[0].neurons[0]
    with pytest.raises(AttributeError, match=r"\.activation"):
        neuron.nonlin  # noqa: B018
    assert neuron.activation == "relu"
