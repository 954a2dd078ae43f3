"""The training step with an ``fm.optim`` optimizer, as ``fit(jit=True)`` runs
it, per row of ``scale.py``: its first call (trace + compile) and its step.

    python benchmarks/optimizer_step.py --rows 16-128-128-1x1000 --optimizers adam sgd
    python benchmarks/optimizer_step.py --against /path/to/other/checkout --repeat 3
    python benchmarks/optimizer_step.py --rows 16-128-128-1x1000 --optimizers adam --batch 10000

Each row runs in a fresh process: ``value_and_grad`` of the row's loss, the
optimizer's ``update`` and ``apply_updates``, jitted together and called
through ``.deferred`` (parameters and optimizer state stay the program's
vectors between steps, as ``fit`` keeps them). Printed: the first call's wall
seconds and the median step in milliseconds, the best of ``--repeat``
processes; with ``--against`` the two checkouts alternate and the ratios are
new / old. The step's code uses only the public API, so any checkout runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402
from checkout import HERE, last_floats  # noqa: E402

OPTIMIZERS = {
    "sgd": "fm.optim.sgd(0.01)",
    "momentum": "fm.optim.sgd(0.01, momentum=0.9)",
    "rmsprop": "fm.optim.rmsprop(1e-3)",
    "adam": "fm.optim.adam(1e-3)",
    "adamw": "fm.optim.adamw(1e-3, weight_decay=1e-4)",
}

ONE_ROW = """
import sys, time
sys.path.insert(0, "benchmarks")
import fmicrograd as fm
import scale
from run import median_step
row = [r for r in scale.ROWS if r.name == sys.argv[1]][0]
if len(sys.argv) > 3:  # another batch size
    row = row._replace(batch=int(sys.argv[3]))
opt = eval(sys.argv[2], {"fm": fm})
x, y, layers = scale.data(row)
params = scale.fm_params(layers)
vg = fm.value_and_grad(scale.fm_loss(row))

@fm.jit
def step(p, s, xs, ys):
    value, g = vg(p, xs, ys)
    u, s = opt.update(g, s, p)
    return value, fm.optim.apply_updates(p, u), s

wall = time.perf_counter()
state = [step.deferred(params, opt.init(params), x, y)]
first = time.perf_counter() - wall

def one():
    _, p, s = state[0]
    state[0] = step.deferred(p, s, x, y)

print(first, median_step(one, 20, 1.0))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", help="row names (default: all)")
    parser.add_argument("--optimizers", nargs="*", default=["sgd", "adam"],
                        choices=sorted(OPTIMIZERS), help="default: sgd adam")
    parser.add_argument("--repeat", type=int, default=2, help="processes per row and checkout")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--batch", type=int, help="run the rows at this batch size instead")
    args = parser.parse_args()
    batch = () if args.batch is None else (str(args.batch),)
    rows = args.rows or [r.name for r in scale.ROWS]
    roots = {"new": HERE} if args.against is None else {"old": args.against, "new": HERE}
    print(f"load average {os.getloadavg()[0]:.2f}; first call (s) and step (ms), best of "
          f"{args.repeat} processes")
    cols = [f"{tag} {kind}" for kind in ("first call", "step") for tag in roots]
    extra = ["new / old first call", "new / old step"] if len(roots) == 2 else []
    print("| row | optimizer | " + " | ".join(cols + extra) + " |")
    print("|---" * (2 + len(cols) + len(extra)) + "|")
    for row in rows:
        for name in args.optimizers:
            best: dict = {tag: [float("inf"), float("inf")] for tag in roots}
            for _ in range(args.repeat):
                for tag, root in roots.items():
                    first, step = last_floats(root, ONE_ROW, row, OPTIMIZERS[name], *batch)
                    best[tag] = [min(best[tag][0], first), min(best[tag][1], step)]
            cells = [f"{best[tag][0]:.2f}" for tag in roots] + \
                [f"{best[tag][1] * 1e3:.3f}" for tag in roots]
            if len(roots) == 2:
                cells += [f"{best['new'][k] / best['old'][k]:.2f}" for k in (0, 1)]
            label = row if not batch else f"{row} at batch {args.batch}"
            print(f"| {label} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
