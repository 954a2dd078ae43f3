"""A newcomer's first mistakes (0/1 labels for hinge, micrograd's names, an
optimizer's state left out, a learning rate for an optimizer) each raise an
error that says what was wrong, where, and the fmicrograd way; and dir()
shows the API, not the modules' helpers."""

import dataclasses

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd import losses

# --- loss label conventions -------------------------------------------------------------


def test_hinge_rejects_a_0_1_label_naming_its_index_value_and_the_fix():
    # accepted silently: a 0 label makes the example's loss the constant 1
    with pytest.raises(ValueError, match=r"hinge: labels\[1\] is 0\.0, but hinge expects labels "
                                         r"-1 or \+1.*2\*y - 1"):
        losses.hinge([0.5, -0.5], [1.0, 0.0])
    with pytest.raises(ValueError, match=r"hinge: the label is 0, "):
        losses.hinge(0.5, 0)
    with pytest.raises(ValueError, match=r"hinge: labels\[2\] is 2\.0, "):
        losses.hinge(np.zeros(3), np.array([1.0, -1.0, 2.0]))  # numpy scalars
    with pytest.raises(ValueError, match=r"hinge: labels\[1\] is 0\.5, "):
        losses.hinge([0.5, 0.5], [np.float32(1.0), np.float32(0.5)], "none")


def test_binary_cross_entropy_rejects_a_minus_one_label_naming_the_fix():
    # gave -50.0: a loss below zero
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: labels\[0\] is -1\.0, "
                                         r"but .* expects labels in \[0, 1\].*\(y \+ 1\) / 2"):
        losses.binary_cross_entropy_with_logits([-50.0], [-1.0])
    with pytest.raises(ValueError, match=r"the label is nan"):
        losses.binary_cross_entropy_with_logits(0.0, float("nan"))
    assert losses.binary_cross_entropy_with_logits([0.0, 0.0], [0, 0.25]) > 0  # soft labels: fine


def test_vmap_batches_of_labels_are_checked_naming_the_example():
    with pytest.raises(ValueError, match=r"hinge: the label at batch index 1 is 0\.0, "):
        fm.vmap(losses.hinge)((0.5, -0.5, 2.0), (1.0, 0.0, 1.0))
    bce = losses.binary_cross_entropy_with_logits
    with pytest.raises(ValueError, match=r"the label at batch index 2 is -1\.0, "):
        fm.vmap(bce)(np.zeros(3), np.array([0.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match=r"the label at batch index \(1, 0\) is 0\.0, "):
        fm.vmap(fm.vmap(losses.hinge))(((0.5, 0.5), (0.5, 0.5)), ((1.0, -1.0), (0.0, 1.0)))
    assert fm.vmap(losses.hinge)((0.5, -0.5), (1.0, 1.0)) == (0.5, 1.5)


def test_softmax_cross_entropy_rejects_probabilities_outside_0_1():
    sce = losses.softmax_cross_entropy
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels\[0\] is -1\.0, .*"
                                         r"class probabilities in \[0, 1\]"):
        sce([0.0, 1.0], [-1.0, 1.0])
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels\[1\]\[0\] is -1\.0, "):
        sce([[0.0, 1.0], [0.0, 1.0]], [1, [-1.0, 1.0]])
    assert sce([[0.0, 0.0], [0.0, 0.0]], [1, [0.5, 0.5]]) == pytest.approx(0.6931471805599453)


def test_labels_that_are_nodes_are_checked_by_their_values():
    # jit traces the label: the call that traces checks it (fit(jit=True) trained on -1/+1
    # labels given to binary_cross_entropy_with_logits without a word)
    assert fm.jit(losses.hinge)(0.5, 1.0) == 0.5
    with pytest.raises(ValueError, match="hinge: the label is 0.0"):
        fm.jit(losses.hinge)(0.5, 0.0)
    assert fm.grad(losses.hinge, argnums=1)(0.5, 1.0) == -0.5  # a label being differentiated
    with pytest.raises(ValueError, match="hinge: the label is 0.0"):  # as hinge(0.5, 0.0)
        fm.grad(losses.hinge, argnums=1)(0.5, 0.0)
    assert fm.jit(fm.vmap(losses.hinge))((0.5, -0.5), (1.0, -1.0)) == (0.5, 0.5)
    with pytest.raises(ValueError, match="hinge: the label at batch index 1 is 0.0"):
        fm.jit(fm.vmap(losses.hinge))((0.5, -0.5), (1.0, 0.0))
    bce = losses.binary_cross_entropy_with_logits
    with pytest.raises(ValueError, match=r"the label is -1.0.*\(y \+ 1\) / 2"):
        fm.jit(bce)(0.3, -1.0)
    xs, ys = fm.datasets.moons(20, noise=0.1, seed=0)  # -1/+1 labels, as micrograd's
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
    loss = lambda m, b: fm.mean(fm.vmap(lambda x, y: bce(m(x), y))(*b))
    with pytest.raises(ValueError, match=r"the label at batch index 0 is -1.0.*\(y \+ 1\) / 2"):
        fm.train.fit(loss, model, fm.optim.sgd(0.1), [(np.array(xs), np.array(ys))], epochs=1,
                     jit=True)


def test_the_datasets_labels_work_with_hinge_and_mapped_with_binary_cross_entropy():
    xs, ys = fm.datasets.moons(20, noise=0.1, seed=0)
    assert set(ys) == {-1.0, 1.0}
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
    scores = [model(x) for x in xs]
    assert losses.hinge(scores, ys) >= 0.0
    assert losses.binary_cross_entropy_with_logits(scores, [(y + 1) / 2 for y in ys]) > 0.0
    with pytest.raises(ValueError, match=r"\(y \+ 1\) / 2"):
        losses.binary_cross_entropy_with_logits(scores, ys)
    assert fm.grad(lambda m: losses.hinge([m(x) for x in xs], ys))(model) is not None


# --- micrograd's names ------------------------------------------------------------------


def test_var_with_micrograds_label_keyword_names_name():
    with pytest.raises(TypeError, match=r"fm\.Var\(2\.0, label='a'\).*name=.*"
                                        r"fm\.Var\(2\.0, name='a'\)"):
        fm.Var(2.0, label="a")
    with pytest.raises(TypeError, match=r"no _op=.*come from operations"):
        fm.Var(2.0, _op="+")
    assert fm.Var(2.0, name="a").name == "a" and fm.Var(value=1.0).value == 1.0


@pytest.mark.parametrize("part", ["neuron", "layer", "model"])
def test_assigning_a_model_field_names_tree_at_and_replace(part):
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
    obj = {"neuron": model.layers[0].neurons[0], "layer": model.layers[0], "model": model}[part]
    name = {"neuron": "b", "layer": "neurons", "model": "layers"}[part]
    with pytest.raises(dataclasses.FrozenInstanceError,
                       match=rf"cannot assign to field '{name}'.*fm\.tree\.at\(lambda m: "
                             rf"m\.{name}, {part}, .*dataclasses\.replace\({part}, {name}="):
        setattr(obj, name, getattr(obj, name))
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot delete field.*tree\.at"):
        delattr(obj, name)
    neuron = model.layers[0].neurons[0]
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"dataclasses\.replace\(neuron, "
                                                              r"activation='tanh'\)"):
        neuron.activation = "tanh"
    # the ways it names work
    assert fm.tree.at(lambda m: m.b, neuron, 1.0).b == 1.0
    assert fm.tree.at(lambda m: m.layers[0].neurons[0].b, model, 1.0).layers[0].neurons[0].b == 1.0
    assert dataclasses.replace(neuron, b=1.0).b == 1.0 and neuron.b == 0.0


# --- API misuse -------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: fm.optim.sgd(0.1), lambda: fm.optim.adam(0.1),
    lambda: fm.optim.chain(fm.optim.clip_by_global_norm(1.0), fm.optim.sgd(0.1)),
    lambda: fm.optim.inject_lr_scale(fm.optim.sgd(0.1)),
], ids=["sgd", "adam", "chain", "inject_lr_scale"])
def test_update_without_the_state_names_the_call(make):
    opt = make()
    with pytest.raises(TypeError, match=r"opt\.update\(grads\) without the optimizer state.*"
                                        r"opt\.init\(params\).*opt\.update\(grads, state, "
                                        r"params\)") as info:
        opt.update((1.0,))
    assert "_chain_update" not in str(info.value) and "missing" not in str(info.value)
    updates, _ = opt.update((1.0,), opt.init((0.0,)), (0.0,))  # the call it names works
    assert updates[0] < 0


def test_fit_given_a_learning_rate_names_an_optimizer():
    loss = lambda p, batch: (p - batch) ** 2  # noqa: E731
    with pytest.raises(TypeError, match=r"fit: optimizer must be an fm\.optim optimizer, got "
                                        r"float 0\.1; pass fm\.optim\.sgd\(0\.1\)"):
        fm.train.fit(loss, 0.0, 0.1, [1.0], epochs=1)
    with pytest.raises(TypeError, match=r"got str 'adam'; pass fm\.optim\.sgd\(0\.1\)"):
        fm.train.fit(loss, 0.0, "adam", [1.0], epochs=1)
    p, _ = fm.train.fit(loss, 0.0, fm.optim.sgd(0.1), [1.0], epochs=1)
    assert p == pytest.approx(0.2)


# --- dir() --------------------------------------------------------------------------------


def test_dir_fm_shows_the_api_not_the_helpers_it_imports():
    names = dir(fm)
    for helper in ("Any", "TYPE_CHECKING", "importlib", "_sys", "_LAZY", "core", "transforms"):
        assert helper not in names
    assert set(fm.__all__) <= set(names) and "__version__" in names


def test_dir_fm_testing_lists_the_lazy_exports():
    names = dir(fm.testing)
    for lazy in ("check_op", "programs", "dags", "op_args", "Program", "Dag", "SMOOTH_OPS"):
        assert lazy in names
    assert set(fm.testing.__all__) <= set(names) and "importlib" not in names


def test_vmapped_class_indices_out_of_range_name_the_example() -> None:
    f = lambda z, y: fm.losses.softmax_cross_entropy(list(z), y)  # noqa: E731
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    assert fm.vmap(f)(logits, np.array([2, 0]))[1] == pytest.approx(np.log(3.0), rel=1e-15)
    for bad in (5, 0.5, -1):
        with pytest.raises(ValueError, match="batch index 1 .* class indices 0 .. 2"):
            fm.vmap(f)(logits, np.array([2, bad]))


def test_a_var_given_micrograd_s_children_says_how_graphs_are_built():
    a = fm.Var(1.0)
    # it was accepted, and printing it raised "sequence item 0: expected str instance"
    with pytest.raises(TypeError, match=r"fm\.Var\(value, name\): name is a str, got tuple; "
                                        r"micrograd's Value\(data, _children\).*x \* y"):
        fm.Var(2.0, (a, a))
    with pytest.raises(TypeError, match=r"name is a str, got int$"):
        fm.Var(2.0, 3)
    assert fm.Var(2.0, "x").name == "x"
