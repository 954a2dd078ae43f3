"""micrograd's neuron o = tanh(x1*w1 + x2*w2 + b), drawn with every node's
value and gradient d o / d node (what micrograd shows after o.backward()).

Writes OUTPUT_DIR/neuron.dot, and renders OUTPUT_DIR/neuron.svg when the
Graphviz ``dot`` program and the ``graphviz`` package are installed.

Run: python examples/draw_neuron.py [OUTPUT_DIR]
"""

import shutil
import sys
from pathlib import Path

import fmicrograd as fm
from fmicrograd import Var


def main(out_dir: Path) -> None:
    x1, x2 = Var(2.0, name="x1"), Var(0.0, name="x2")
    w1, w2 = Var(-3.0, name="w1"), Var(1.0, name="w2")
    b = Var(6.8813735870195432, name="b")  # makes the output a round 0.7071
    o = (x1 * w1 + x2 * w2 + b).tanh()

    grads = fm.viz.node_grads(o)
    for v in (x1, w1, x2, w2, b):
        print(f"d o / d {v.name} = {grads[v]:.4f}")

    dot = fm.viz.to_dot(o)
    path = out_dir / "neuron.dot"
    fm.io.atomic_write(path, lambda f: f.write(dot.encode()))
    print(f"wrote {path} ({len(dot.splitlines())} lines of DOT)")

    if shutil.which("dot") is None:
        print("Graphviz's dot program is not installed; render with: "
              f"dot -Tsvg {path} -o neuron.svg")
        return
    try:
        graph = fm.viz.draw_dot(o)
    except ImportError as e:
        print(f"not rendered: {e}")
        return
    svg = graph.render(out_dir / "neuron", format="svg", cleanup=True)
    print(f"rendered {svg}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))
