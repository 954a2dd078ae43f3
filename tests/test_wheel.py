"""The built wheel, installed into a fresh environment, works on its own: the
command line and a transform run from it (not from this checkout), and it
ships py.typed, the license and numpy as a dependency."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(*cmd, cwd, env=None):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    src = tmp_path / "src"  # build from a copy: nothing is written into the checkout
    shutil.copytree(ROOT / "fmicrograd", src / "fmicrograd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    dist = tmp_path / "dist"
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
       "-w", dist, src, cwd=tmp_path)
    (wheel,) = dist.glob("fmicrograd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fmicrograd/py.typed" in names and "fmicrograd/tree_ops.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith("/LICENSE")
               for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"Requires-Dist: numpy" in metadata

    venv = tmp_path / "venv"  # deps come from the system site; fmicrograd from the wheel
    sh(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv,
       cwd=tmp_path)
    py = venv / "bin" / "python"
    sh(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
       "--force-reinstall", wheel, cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run_dir = tmp_path / "elsewhere"
    run_dir.mkdir()
    code = ("import pathlib, fmicrograd as fm; p = pathlib.Path(fm.__file__).parent; "
            "print(p); print((p / 'py.typed').exists()); "
            "print(fm.jit(fm.grad(lambda x: fm.tanh(x) * x))(0.5)); "
            "print(fm.vmap(lambda x: x * 2.0)((1.0, 2.0)))")
    out = sh(py, "-c", code, cwd=run_dir, env=env).splitlines()
    site = Path(out[0])
    assert site.is_relative_to(venv) and not site.is_relative_to(ROOT), out[0]
    assert out[1] == "True"
    assert abs(float(out[2]) - 0.8553) < 1e-3 and out[3] == "(2.0, 4.0)"

    info = sh(venv / "bin" / "fmicrograd", "info", cwd=run_dir, env=env)
    assert "fmicrograd 0.1.0" in info
    trained = sh(py, "-m", "fmicrograd", "train", "--dataset", "xor", "--steps", "5",
                 "--hidden", "4", "--quiet", "--save", "m.json", cwd=run_dir, env=env)
    assert "accuracy" in trained and (run_dir / "m.json").exists()


def test_editable_install_in_compat_mode_is_visible_to_static_tools(tmp_path):
    """The README's editable install for editors: a plain path in a .pth file,
    which mypy and pyright follow (setuptools' default import hook they cannot)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "fmicrograd", src / "fmicrograd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv,
       cwd=tmp_path)
    py = venv / "bin" / "python"
    sh(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
       "--no-build-isolation", "-e", src, "--config-settings", "editable_mode=compat",
       cwd=tmp_path)
    (pth,) = venv.glob("lib/python*/site-packages/__editable__.fmicrograd*.pth")
    assert pth.read_text().split() == [str(src)]
    assert (src / "fmicrograd" / "py.typed").exists()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = sh(py, "-c", "import fmicrograd; print(fmicrograd.__file__)", cwd=tmp_path, env=env)
    assert Path(out.strip()).is_relative_to(src)
