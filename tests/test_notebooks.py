"""The example notebooks run top to bottom (nbclient, a real kernel) and show
what their text promises, so they never rot."""

import re
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(name, tmp_path):
    nb = nbformat.read(EXAMPLES / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit notebooks without outputs"
    NotebookClient(nb, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    return outputs, text


def test_moons_notebook_trains_to_100_percent_and_shows_figures(tmp_path):
    outputs, text = run("micrograd_demo", tmp_path)
    assert "number of parameters 337" in text
    losses = [float(v) for v in re.findall(r"^step \d+ loss (\S+),", text, re.M)]
    assert len(losses) == 10 and losses[-1] < losses[0] / 10
    assert "final training accuracy 100%" in text
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 2  # the decision boundary and the loss curve, shown inline
    assert list(tmp_path.iterdir()) == []  # shown, not written to files


def test_traced_neuron_notebook_shows_micrograds_gradients_and_the_graph(tmp_path):
    outputs, text = run("traced_neuron", tmp_path)
    assert "o = 0.7071" in text
    for name, grad in (("x1", "-1.5000"), ("w1", "1.0000"), ("x2", "0.5000"),
                       ("w2", "0.0000"), ("b", "0.5000")):
        assert f"d o / d {name} = {grad}" in text
    graph = outputs[-1].get("data", {})
    if "image/svg+xml" in graph:  # the Graphviz program is installed
        assert "<svg" in graph["image/svg+xml"]
    else:
        assert "apt install graphviz" in graph["text/plain"]
        assert "{ x1 | data 2.0000 | grad -1.5000 }" in graph["text/plain"]
