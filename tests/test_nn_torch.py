"""fm.nn.to_torch_module / from_torch_module: fm models as torch modules and back."""

import subprocess
import sys

import pytest

import fmicrograd as fm

torch = pytest.importorskip("torch")

XS, YS = fm.datasets.moons(40, 0.1, seed=0)


def mlp(activation="relu", sizes=(16, 16, 1), seed=0):
    return fm.nn.MLP.init(2, list(sizes), key=fm.random.key(seed), activation=activation)


def fm_loss(model, xs=XS, ys=YS):  # the README's: mean hinge + 1e-4 L2
    return fm.losses.hinge([model(x) for x in xs], ys) + 1e-4 * fm.losses.l2(model)


def torch_loss(module, xs=XS, ys=YS):
    scores = module(torch.tensor(xs, dtype=torch.float64))
    data = torch.relu(1.0 - torch.tensor(ys, dtype=torch.float64) * scores).mean()
    return data + 1e-4 * (module.flat() ** 2).sum()


def flat_grads(module):
    return torch.cat([torch.cat([d.weight.grad, d.bias.grad[:, None]], dim=1).reshape(-1)
                      for d in module.layers]).tolist()


def assert_close(a, b, tol=1e-12):
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst <= tol, f"largest difference {worst:.3g}"


@pytest.mark.parametrize("model", [
    mlp(), mlp("tanh", (5, 3), seed=1), fm.nn.Layer.init(2, 3, key=fm.random.key(2)),
    fm.nn.Neuron.init(2, key=fm.random.key(3), activation="sigmoid")])
def test_round_trip_is_exact_and_the_module_computes_the_model(model):
    module = fm.nn.to_torch_module(model)
    assert all(isinstance(p, torch.nn.Parameter) and p.dtype == torch.float64
               for p in module.parameters())
    assert sum(p.numel() for p in module.parameters()) == fm.nn.count_params(model)
    assert fm.nn.from_torch_module(module, like=model) == model
    out = module(torch.tensor(XS, dtype=torch.float64))
    want = [model(x) for x in XS]
    if isinstance(want[0], tuple):
        assert out.shape == (len(XS), len(want[0]))
        assert_close(out.reshape(-1).tolist(), [v for row in want for v in row])
    else:
        assert out.shape == (len(XS),)
        assert_close(out.tolist(), want)
    one = module(torch.tensor(XS[0], dtype=torch.float64))
    # one example is a batch of one through torch's matmul, whose BLAS (MKL on Intel
    # CPUs) picks another kernel for one row than for eight: the last bits may differ,
    # as torch.nn.Linear's do; equal to the model's numbers, as the batch
    assert one.shape == out[0].shape
    assert_close(one.reshape(-1).tolist(), out[0].reshape(-1).tolist())


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_torch_gradients_equal_fmicrograd_gradients(activation):
    model = mlp(activation)
    module = fm.nn.to_torch_module(model)
    value = torch_loss(module)
    value.backward()
    want_value, want_grads = fm.value_and_grad(fm_loss)(model)
    assert abs(value.item() - want_value) <= 1e-12
    assert_close(flat_grads(module), fm.nn.parameters(want_grads))


def test_training_in_torch_then_coming_back_matches_training_in_fmicrograd():
    model = mlp(seed=4)
    module = fm.nn.to_torch_module(model)
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        torch_loss(module).backward()
        opt.step()
    trained, _ = fm.train.fit(lambda m, b: fm_loss(m, *b), model,
                              fm.optim.sgd(0.1, momentum=0.9), [(XS, YS)], epochs=5)
    back = fm.nn.from_torch_module(module, like=model)
    assert fm.tree.structure(back) == fm.tree.structure(model)
    assert_close(fm.nn.parameters(back), fm.nn.parameters(trained))
    assert back != model and model == mlp(seed=4)  # the original is untouched


def test_misuse_is_a_clear_error():
    model = mlp(sizes=(4, 1))
    module = fm.nn.to_torch_module(model)
    with pytest.raises(ValueError, match=r"shape \(B, 2\) or \(2,\), got \(3, 5\)"):
        module(torch.zeros(3, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="expected a Neuron, Layer or MLP, got dict"):
        fm.nn.to_torch_module({"w": 1.0})
    with pytest.raises(TypeError, match="1 layer"):
        fm.nn.from_torch_module(module, like=fm.nn.Layer.init(2, 4, key=fm.random.key(0)))
    with pytest.raises(ValueError, match=r"layers.0.weight has shape \(4, 2\) but the model "
                                         r"passed as like needs \(8, 2\)"):
        fm.nn.from_torch_module(module, like=mlp(sizes=(8, 1)))
    with pytest.raises(TypeError, match="expected the module to_torch_module made"):
        fm.nn.from_torch_module(torch.nn.Linear(2, 1), like=model)


def test_importing_fm_nn_does_not_import_torch():
    code = "import sys, fmicrograd.nn; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_from_torch_module_refuses_a_model_of_another_activation():
    # the shapes matched, so a relu model came back holding a tanh module's weights
    tanh = fm.nn.MLP.init(2, [3, 2], key=fm.random.key(0), activation="tanh")
    relu = fm.nn.MLP.init(2, [3, 2], key=fm.random.key(0), activation="relu")
    module = fm.nn.to_torch_module(tanh)
    assert fm.nn.from_torch_module(module, like=tanh) == tanh
    with pytest.raises(ValueError, match="another model than the one passed as like"):
        fm.nn.from_torch_module(module, like=relu)
    with pytest.raises(ValueError, match=r"module MLP\(Layer\(2->3, tanh\), Layer\(3->2, "
                                         r"linear\)\), like MLP\(Layer\(2->3, relu\), "):
        fm.nn.from_torch_module(module, like=relu)  # (the treedefs' text showed no activation)


@pytest.mark.parametrize("outputs", [[3, 1], [3, 2]])
def test_a_module_takes_an_empty_batch_and_names_a_numpy_input(outputs):
    # an empty batch raised fm.vmap's "empty sequence"; a numpy array an AttributeError
    import numpy as np

    module = fm.nn.to_torch_module(fm.nn.MLP.init(2, outputs, key=fm.random.key(0)))
    full = module(torch.ones(4, 2, dtype=torch.float64))
    empty = module(torch.ones(0, 2, dtype=torch.float64))
    assert empty.shape == (0,) + tuple(full.shape[1:])
    with pytest.raises(TypeError, match="expected a torch.Tensor .* got ndarray; pass "
                                        "torch.as_tensor"):
        module(np.ones((3, 2)))
