"""Each example runs as a script and does what its docstring says."""

import os
import re
import subprocess
import sys
from pathlib import Path

import fmicrograd as fm

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name, *args, cwd, path=None):
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_micrograd_demo_reaches_100_percent(tmp_path):
    r = run("micrograd_demo.py", tmp_path, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    steps = re.findall(r"^step (\d+) loss (\S+), accuracy (\S+)%$", r.stdout, re.M)
    assert [int(k) for k, _, _ in steps] == list(range(100))
    losses = [float(v) for _, v, _ in steps]
    assert losses[-1] < losses[0] / 10
    assert float(steps[-1][2]) == 100.0
    assert "MLP(Layer(2->16, relu), Layer(16->16, relu), Layer(16->1, linear)): 337 parameters" \
        in r.stdout
    assert "final training accuracy 100.0% after 100 steps" in r.stdout
    assert (tmp_path / "moons.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tiny_net_loss_falls_well_under_0_1(tmp_path):
    r = run("tiny_net.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "41 parameters" in r.stdout and r.stdout.count("tanh") == 3
    losses = [float(v) for v in re.findall(r"^step +\d+ loss (\S+)$", r.stdout, re.M)]
    final = float(re.search(r"^final loss (\S+)$", r.stdout, re.M).group(1))
    assert len(losses) == 10 and losses == sorted(losses, reverse=True)
    assert losses[0] > 1.0 and final < 0.02
    preds = [float(p) for p in re.search(r"predictions \[(.*?)\]", r.stdout).group(1).split(",")]
    assert [p > 0 for p in preds] == [True, False, False, True]


def test_draw_neuron_writes_dot_without_graphviz_binary(tmp_path):
    r = run("draw_neuron.py", tmp_path, cwd=tmp_path, path=os.path.dirname(sys.executable))
    assert r.returncode == 0, r.stderr
    for name, grad in (("x1", "-1.5000"), ("w1", "1.0000"), ("x2", "0.5000"),
                       ("w2", "0.0000"), ("b", "0.5000")):
        assert f"d o / d {name} = {grad}" in r.stdout
    dot = (tmp_path / "neuron.dot").read_text()
    assert dot == fm.viz.to_dot(_neuron())
    assert "dot program is not installed" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neuron.dot"]


def test_draw_neuron_renders_when_dot_exists(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "dot"  # stands in for Graphviz: writes <source>.<format> like dot -O
    fake.write_text('#!/bin/sh\nfor last; do :; done\nprintf "<svg/>" > "$last.svg"\n')
    fake.chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    r = run("draw_neuron.py", out, cwd=tmp_path,
            path=f"{bin_dir}{os.pathsep}{os.path.dirname(sys.executable)}")
    assert r.returncode == 0, r.stderr
    assert "rendered" in r.stdout
    assert (out / "neuron.svg").read_text() == "<svg/>"
    assert sorted(p.name for p in out.iterdir()) == ["neuron.dot", "neuron.svg"]


def _neuron():
    V = fm.Var
    x1, x2, w1, w2 = V(2.0, name="x1"), V(0.0, name="x2"), V(-3.0, name="w1"), V(1.0, name="w2")
    return (x1 * w1 + x2 * w2 + V(6.8813735870195432, name="b")).tanh()
