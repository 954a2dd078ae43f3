"""Hostile inputs: a model called on a batch, a dict or a set, an assignment to a
node, micrograd's ``from ... import Value`` each raise an error that says what was
passed and names the fix; valid inputs give the same numbers as before."""

import dataclasses
import math
import re

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd import nn

KEY = fm.random.key(0)
MODEL = nn.MLP.init(2, [4, 4, 1], key=KEY)
LAYER = nn.Layer.init(2, 3, key=fm.random.key(1))
NEURON = nn.Neuron.init(2, key=fm.random.key(2), activation="tanh")
ACT = {"relu": lambda v: max(v, 0.0), "tanh": math.tanh, "linear": lambda v: v}


def reference(model, x):
    """The forward pass written out in floats, in fmicrograd's summation order."""
    layers = model.layers if isinstance(model, nn.MLP) else (
        (model,) if isinstance(model, nn.Layer) else (nn.Layer((model,)),))
    x = tuple(float(v) for v in x)
    for layer in layers:
        x = tuple(ACT[n.activation](sum((w * v for w, v in zip(n.w, x)), 0.0) + n.b)
                  for n in layer.neurons)
    return x[0] if len(x) == 1 else x


# --- 1. the input of a model -------------------------------------------------------

@pytest.mark.parametrize("model, who", [(MODEL, "MLP"), (LAYER, "Layer"), (NEURON, "Neuron")])
def test_a_square_batch_names_the_model_the_shape_and_vmap(model, who):
    X = np.array([[0.5, -1.0], [2.0, 0.25]])  # rows == nin: was read as 2 column inputs
    with pytest.raises(TypeError) as info:
        model(X)
    message = str(info.value)
    assert message.startswith(f"{who}.apply: expected 2 scalar inputs")
    assert "got a 2-D array of shape (2, 2)" in message
    assert "fm.vmap(model)(X)" in message
    with pytest.raises(TypeError, match=re.escape("got a 2-D array of shape (1, 2)")):
        nn.apply(model, X[:1])
    with pytest.raises(TypeError, match=r"got a 3-D array of shape \(2, 2, 1\)"):
        model(X[..., None])
    with pytest.raises(TypeError, match=r"got a 0-D array of shape \(\); wrap a single"):
        model(np.array(1.0))


@pytest.mark.parametrize("model", [MODEL, LAYER, NEURON])
def test_the_vmap_the_message_names_runs_each_row(model):
    X = np.array([[0.5, -1.0], [2.0, 0.25], [-0.75, 1.5]])
    rows = [reference(model, r) for r in X]
    for batch in (X, X.tolist(), [tuple(r) for r in X]):
        out = fm.vmap(model)(batch)
        assert len(out) == 3
        for got, want in zip(out, rows):
            assert got == pytest.approx(want, rel=1e-15, abs=1e-15)


@pytest.mark.parametrize("x, words", [
    ({0.5: 1.0, -1.0: 2.0}, "got a dict (its keys would be read as the inputs)"),
    ({0.5, -1.0}, "got a set, which has no order"),
    (frozenset({0.5, -1.0}), "got a frozenset, which has no order"),
    ("ab", "got str 'ab'"),
    (b"ab", "got bytes b'ab'"),
])
def test_unordered_or_text_containers_are_refused(x, words):
    with pytest.raises(TypeError, match="^MLP.apply: expected 2 scalar inputs") as info:
        MODEL(x)
    assert words in str(info.value)


@pytest.mark.parametrize("x, index, words", [
    (("a", 1.0), 0, "is str 'a': each input must be a number or an fm.Expr"),
    ((1.0, None), 1, "is NoneType None: each input must be a number or an fm.Expr"),
    (([0.5, -1.0], [2.0, 0.25]), 0, "is list [0.5, -1.0]: a nested sequence"),
    ([0.5, np.array([1.0, 2.0])], 1, "is ndarray array([1., 2.]): a nested sequence"),
    ((True, 1.0), 0, "is bool True: a bool is not an input here"),
    ((1.0, 1 + 2j), 1, "is complex (1+2j)"),
])
@pytest.mark.parametrize("model, who", [(MODEL, "MLP"), (LAYER, "Layer"), (NEURON, "Neuron")])
def test_bad_items_name_their_index(model, who, x, index, words):
    with pytest.raises(TypeError) as info:
        model(x)
    message = str(info.value)
    assert message.startswith(f"{who}.apply: expected 2 scalar inputs")
    assert f"but input {index} {words}" in message
    if "nested" in words:
        assert "fm.vmap(model)(X)" in message


def test_bad_items_are_caught_when_the_model_holds_nodes():
    params = fm.tree.map(fm.Var, MODEL)  # the graph-building path (lifts the inputs)
    with pytest.raises(TypeError, match=r"but input 1 is str 'b'"):
        params((1.0, "b"))
    with pytest.raises(TypeError, match=r"but input 0 is list .*fm\.vmap\(model\)\(X\)"):
        fm.grad(lambda m: m(([1.0, 2.0], [3.0, 4.0])))(MODEL)


def test_non_sequences_keep_their_errors():
    with pytest.raises(TypeError, match=r"got float 0\.5; wrap a single input as \(x,\)"):
        MODEL(0.5)
    with pytest.raises(TypeError, match=r"got Var .*wrap a single input as \(x,\)"):
        MODEL(fm.Var(0.5))
    with pytest.raises(TypeError, match=r"got generator .*pass tuple\(x\)"):
        MODEL(v for v in (0.5, -1.0))
    with pytest.raises(ValueError, match="expected an input of length 2, got length 3"):
        MODEL((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="expected an input of length 2, got length 3"):
        MODEL(np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("model", [MODEL, LAYER, NEURON])
def test_valid_inputs_give_the_same_numbers(model):
    want = reference(model, (0.5, -1.0))
    for x in [(0.5, -1.0), [0.5, -1.0], np.array([0.5, -1.0]), (np.float64(0.5), -1),
              (0.5, np.int64(-1)), (np.array(0.5), -1.0), nn.Neuron(w=(0.5, -1.0)).w]:
        assert model(x) == want  # bit for bit: the same float sums
        assert nn.apply(model, x) == want
    # after a refused call the valid ones still work (no type was learnt from it)
    with pytest.raises(TypeError):
        model((True, 1.0))
    assert model((0.5, -1.0)) == want
    out = model((fm.Var(0.5), fm.Const(-1.0)))  # nodes in, nodes out
    values = tuple(o.value for o in out) if isinstance(out, tuple) else out.value
    assert values == pytest.approx(want, rel=1e-15, abs=1e-15)


def test_transforms_over_models_still_work():
    x = (0.5, -1.0)
    want = reference(MODEL, x)
    assert fm.jit(MODEL)(x) == pytest.approx(want, rel=1e-14)
    assert fm.jit(lambda m, x: m(x))(MODEL, x) == pytest.approx(want, rel=1e-14)
    g = fm.grad(lambda x: MODEL(x))(x)
    h = 1e-6
    for i in range(2):
        up = tuple(v + h * (j == i) for j, v in enumerate(x))
        down = tuple(v - h * (j == i) for j, v in enumerate(x))
        assert g[i] == pytest.approx((reference(MODEL, up) - reference(MODEL, down)) / (2 * h),
                                     abs=1e-6)
    gm = fm.grad(lambda m: m(x))(MODEL)
    assert type(gm) is nn.MLP
    gj = fm.jit(fm.grad(lambda m: m(x)))(MODEL)
    assert nn.parameters(gj) == pytest.approx(nn.parameters(gm), rel=1e-12, abs=1e-15)
    X = np.array([[0.5, -1.0], [2.0, 0.25]])
    assert fm.jit(fm.vmap(MODEL))(X) == pytest.approx([reference(MODEL, r) for r in X],
                                                     rel=1e-14)


# --- 2. assigning to a node --------------------------------------------------------

NODES = [fm.Var(2.0, name="x"), fm.Var(2.0) * 3.0, fm.Const(1.0)]


@pytest.mark.parametrize("node", NODES, ids=["Var", "Expr", "Const"])
def test_micrograd_data_update_names_the_functional_update(node):
    with pytest.raises(dataclasses.FrozenInstanceError) as info:
        node.data = 3.0
    message = str(info.value)
    assert isinstance(info.value, AttributeError)
    assert "cannot assign to 'data'" in message and "immutable" in message
    assert "fm.tree.map(lambda p, g: p - lr * g, params, grads)" in message
    with pytest.raises(AttributeError, match=re.escape("fm.tree.map(lambda p, g: p - lr * g")):
        node.data -= 0.1  # micrograd's p.data -= lr * p.grad reads .data first


@pytest.mark.parametrize("node", NODES, ids=["Var", "Expr", "Const"])
def test_micrograd_grad_reset_and_other_assignments_explain(node):
    with pytest.raises(dataclasses.FrozenInstanceError,
                       match=r"cannot assign to 'grad'.*store no gradient.*fm\.grad\(f\)\(x\)"):
        node.grad = 0
    with pytest.raises(dataclasses.FrozenInstanceError,
                       match=r"cannot assign to field 'value'.*immutable.*fm\.tree\.map"):
        node.value = 5.0
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot assign to 'label'"):
        node.label = "a"
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot delete field 'op'"):
        del node.op
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot assign to field 'op'"):
        node.op = "+"
    assert node.value in (2.0, 6.0, 1.0) and not hasattr(node, "label")


def test_nodes_made_by_transforms_are_frozen_with_the_same_message():
    seen = []

    def f(x):
        try:
            x.data = 1.0
        except dataclasses.FrozenInstanceError as e:
            seen.append(str(e))
        return x * x

    assert fm.grad(f)(3.0) == 6.0
    assert fm.jit(f)(3.0) == 9.0
    assert len(seen) == 2 and all("fm.tree.map" in s for s in seen)


def test_the_named_update_works():
    params = {"w": fm.Var(1.0), "b": 0.5}
    grads = fm.grad(lambda p: p["w"] * 2.0 + p["b"])({"w": 1.0, "b": 0.5})
    lr = 0.1
    params = fm.tree.map(lambda p, g: p - lr * g, params, grads)
    assert params["w"].value == pytest.approx(0.8) and params["b"] == pytest.approx(0.4)


# --- 3. micrograd's Value ----------------------------------------------------------

def test_from_fmicrograd_import_value_shows_the_hint():
    with pytest.raises(ImportError) as info:
        exec("from fmicrograd import Value", {})
    message = str(info.value)
    assert message.startswith("cannot import name 'Value' from 'fmicrograd': ")
    assert "fm.Var(2.0, name='a')" in message and "fm.grad(f)(x)" in message
    assert info.value.name == "fmicrograd"

    def in_a_function():
        from fmicrograd import Value, tanh  # noqa: F401

    with pytest.raises(ImportError, match=r"fm\.Var\(2\.0"):
        in_a_function()


def test_value_as_an_attribute_stays_an_attribute_error():
    with pytest.raises(AttributeError, match=r"fm\.Var\(2\.0"):
        fm.Value(2.0)
    name = "Value"
    with pytest.raises(AttributeError, match=r"fm\.Var\(2\.0"):
        getattr(fm, name)
    assert not hasattr(fm, "Value")
    assert getattr(fm, "Value", None) is None
    with pytest.raises(ImportError, match=r"^cannot import name 'Nope' from 'fmicrograd' \("):
        exec("from fmicrograd import Nope", {})


def test_micrograds_engine_module_path_shows_the_hint():
    # micrograd's own import line, with the package renamed
    with pytest.raises(ImportError, match=r"from 'fmicrograd\.engine': .*fm\.Var\(2\.0"):
        exec("from fmicrograd.engine import Value", {})
    from fmicrograd import engine

    with pytest.raises(AttributeError, match=r"fm\.grad\(f\)\(x\)"):
        engine.Value(2.0)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        engine.Nope  # noqa: B018



def test_a_float32_row_is_computed_in_float64_as_vmap_and_jit_do():
    # numpy kept float32 arithmetic: 6e-8 relative off, and an np.float32 came back
    import numpy as np

    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0), activation="tanh")
    row = np.array([0.1, 0.7], dtype=np.float32)
    got = model(row)
    assert type(got) is float and got == model(tuple(map(float, row)))
    assert got == pytest.approx(fm.vmap(model)(row[None, :])[0], rel=1e-15)  # last bits: sums
