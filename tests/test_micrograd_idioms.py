"""A learner coming from micrograd: each micrograd idiom raises an error that
names the fmicrograd way, and the fmicrograd way it names works."""

import dataclasses

import pytest

import fmicrograd as fm


def test_value_names_var_and_grad():
    with pytest.raises(AttributeError, match=r"fm\.Var\(2\.0.*fm\.grad\(f\)\(x\)"):
        fm.Value(2.0)
    assert not hasattr(fm, "Value")


@pytest.mark.parametrize("attr, fix", [
    ("data", r"node\.value"),
    ("grad", r"fm\.grad\(f\)\(x\).*fm\.viz\.node_grads\(out\)\[node\]"),
    ("backward", r"fm\.grad\(f\)\(x\).*fm\.viz\.node_grads"),
    ("zero_grad", r"store no gradient"),
    ("_prev", r"node\.children"),
    ("_op", r"node\.op"),
    ("label", r"node\.name.*fm\.Var\(2\.0, name='a'\)"),
])
def test_node_attributes_name_the_fmicrograd_way(attr, fix):
    x = fm.Var(2.0, name="x")
    for node in (x, x * x, fm.Const(1.0)):
        with pytest.raises(AttributeError, match=fix):
            getattr(node, attr)
        assert not hasattr(node, attr)
    # the nodes stay frozen dataclasses with exactly their fields
    assert [f.name for f in dataclasses.fields(x * x)] == ["value", "op", "children"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        x.value = 3.0


def test_the_named_ways_give_micrograds_numbers():
    a, b = fm.Var(2.0, name="a"), fm.Var(-3.0, name="b")
    out = (a * b).tanh()
    grads = fm.viz.node_grads(out)
    f = lambda a, b: fm.tanh(a * b)  # noqa: E731
    assert grads[a] == pytest.approx(fm.grad(f, argnums=0)(2.0, -3.0), abs=1e-15)
    assert grads[b] == pytest.approx(fm.grad(f, argnums=1)(2.0, -3.0), abs=1e-15)
    assert out.value == pytest.approx(fm.tanh(-6.0))


def test_micrograd_constructors_name_init_with_the_users_arguments():
    with pytest.raises(TypeError, match=r"fm\.nn\.MLP\.init\(2, \[16, 1\], "
                                        r"key=fm\.random\.key\(0\)\)"):
        fm.nn.MLP(2, [16, 1])
    with pytest.raises(TypeError, match=r"fm\.nn\.Layer\.init\(2, 3, key="):
        fm.nn.Layer(2, 3)
    with pytest.raises(TypeError, match=r"fm\.nn\.Neuron\.init\(2, key="):
        fm.nn.Neuron(2)
    model = fm.nn.MLP.init(2, [16, 1], key=fm.random.key(0))  # the form it names works
    assert fm.nn.MLP(model.layers).nouts == (16, 1)  # and the dataclass form still does
    assert fm.nn.Neuron(w=(1.0,), b=0.0).nin == 1


@pytest.mark.parametrize("attr, fix", [
    ("parameters", r"fm\.nn\.parameters\(model\)"),
    ("zero_grad", r"fm\.grad\(loss\)\(model\)"),
])
def test_model_methods_name_the_fmicrograd_way(attr, fix):
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
    for part in (model, model.layers[0], model.layers[0].neurons[0]):
        with pytest.raises(AttributeError, match=fix):
            getattr(part, attr)()
    assert len(fm.nn.parameters(model)) == 13
    g = fm.grad(lambda m: m((1.0, 2.0)))(model)
    assert type(g) is fm.nn.MLP


def test_copies_of_a_node_are_the_node_and_pickling_one_under_a_transform_is_refused():
    # a copy was another leaf: grad(x * copy(x)) gave 1.3, not 2.6
    import copy
    import pickle

    assert fm.grad(lambda x: x * copy.copy(x))(1.3) == 2.6
    assert fm.grad(lambda p: copy.deepcopy(p)["w"] * 2.0)({"w": 1.3})["w"] == 2.0
    assert fm.jit(fm.grad(lambda x: fm.sin(copy.copy(x))))(1.3) == fm.grad(fm.sin)(1.3)
    with pytest.raises(TypeError, match="pickle of an fm.Expr"):
        fm.grad(lambda x: pickle.loads(pickle.dumps(x * x)))(1.3)
    assert pickle.loads(pickle.dumps(fm.Var(2.0))).value == 2.0  # outside a transform: fine


def test_a_node_wrapped_in_a_0d_numpy_array_keeps_its_derivative():
    # np.array(x) became a constant holding the node: its derivative was dropped
    import numpy as np

    assert fm.grad(lambda x: x * np.where(x > 0, x, 0.0))(1.3) == 2.6
    assert fm.grad(lambda x: np.array(x) + x)(1.3) == 2.0
    assert fm.jit(fm.grad(lambda x: x + np.array(x * 2.0)))(3.0) == 3.0


def test_a_comparison_multiplies_as_a_bool_does():
    # bool * node raised "cannot combine an fm.Expr with bool" (in vmap only when examples agreed)
    assert fm.grad(lambda x: (x > 0) * x)(1.3) == 1.0
    assert fm.jit(fm.grad(lambda x: (x > 0) * x))(-1.3) == 0.0
    assert fm.vmap(lambda x: (x > 0) * x)((1.0, 2.0)) == (1.0, 2.0)


@pytest.mark.parametrize("make, shown", [
    (lambda: fm.nn.MLP(nin=2, nouts=[16, 1]),
     "fm.nn.MLP.init(nin=2, nouts=[16, 1], key=fm.random.key(0))"),
    (lambda: fm.nn.Neuron(nin=2, nonlin=False),
     'fm.nn.Neuron.init(nin=2, activation="linear", key=fm.random.key(0))'),
])
def test_micrograds_keyword_constructor_names_init(make, shown):
    # the keyword form was dataclasses' bare "unexpected keyword argument 'nin'"
    with pytest.raises(TypeError, match="is micrograd's constructor") as e:
        make()
    assert shown in str(e.value)
    assert fm.nn.count_params(eval(shown, {"fm": fm})) > 0  # the form it names works
