"""The package as a whole: the contract's names, a light import, lint."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CONTRACT_NAMES = """
Expr Var Const trace exp log sqrt tanh sigmoid relu sin cos maximum minimum
sum mean dot grad value_and_grad vjp jvp jacrev jacfwd jacobian hessian
stop_gradient custom_vjp jit vmap debug_nans
tree.map tree.leaves tree.flatten tree.unflatten tree.structure tree.register
nn.MLP nn.Layer nn.Neuron nn.apply nn.parameters nn.count_params
random.key random.split
losses.mse losses.hinge losses.binary_cross_entropy_with_logits
losses.softmax_cross_entropy losses.l2
optim.GradientTransformation optim.apply_updates optim.sgd optim.adam
optim.chain optim.clip_by_global_norm
train.fit datasets.moons datasets.circles datasets.xor
viz.to_dot viz.draw_dot testing.check_grads io.save io.load to_torch
""".split()


@pytest.mark.parametrize("dotted", CONTRACT_NAMES)
def test_contract_name_is_offered(dotted):
    obj = importlib.import_module("fmicrograd")
    for part in dotted.split("."):
        obj = getattr(obj, part)
    assert callable(obj) or isinstance(obj, type)


def test_import_is_light_and_needs_no_numpy():
    code = ("import sys, fmicrograd as fm; assert fm.grad(lambda x: fm.tanh(x) * x)(0.0) == 0.0;"
            " print('numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    cmd = [ruff] if ruff else [sys.executable, "-m", "ruff"]
    out = subprocess.run(cmd + ["check", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_an_editable_install_is_a_path_that_static_tools_follow():
    """``pip install -e .`` (the README's commands) writes a ``.pth`` naming the
    checkout, which mypy and pyright read, not an import hook they cannot
    follow (``package-dir`` in pyproject.toml picks that)."""
    import importlib.metadata
    import json

    # (the checkout's own fmicrograd.egg-info, on the path too, has no direct_url.json)
    installed = [d for d in importlib.metadata.distributions(name="fmicrograd")
                 if d.read_text("direct_url.json")]
    dist = installed[0] if installed else importlib.metadata.distribution("fmicrograd")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if not direct.get("dir_info", {}).get("editable"):
        pytest.skip("fmicrograd is installed from a wheel here, not editable")
    pth = [f for f in dist.files or () if f.name.endswith(".pth")]
    assert len(pth) == 1, pth
    lines = Path(dist.locate_file(pth[0])).read_text().split()
    assert lines and not any(line.startswith("import") for line in lines), lines
    assert Path(lines[0]).resolve() == ROOT
    assert not any(name.startswith("__editable__") for name in sys.modules)
