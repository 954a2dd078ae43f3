"""What ``fit(jit=True)`` costs per epoch on micrograd's demo (100 moons points,
2-16-16-1, the README's loss, one full-batch step per epoch, monitoring on),
early and late in a long run: a cost that grows with the run's length is work
repeated over the whole history.

    python benchmarks/fit_epochs.py                     # this checkout, 4,000 epochs
    python benchmarks/fit_epochs.py --against /path/to/other/checkout --repeat 2

Each figure is the median epoch (between two calls of a ``callback``, which
also builds the parameters every epoch) over 500 epochs starting at epoch 0,
1,000, 2,000 and 3,000 of one run, in a fresh process; with ``--against`` the
two checkouts run alternately, each in its own process, and the table gives
each one's best of ``--repeat``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkout import HERE, last_floats  # noqa: E402

ONE_RUN = """
import statistics, sys, time
import fmicrograd as fm
xs, ys = fm.datasets.moons(100, 0.1, seed=0)
model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(0))
def loss(m, batch):
    bx, by = batch
    return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)
out = []
for opt in (fm.optim.sgd(0.1), fm.optim.adam(0.01)):
    marks = []
    fm.train.fit(loss, model, opt, [(xs, ys)], epochs=4001, jit=True,
                 callback=lambda e, p, row: marks.append(time.perf_counter()))
    d = [b - a for a, b in zip(marks, marks[1:])]
    out += [statistics.median(d[i:i + 500]) * 1e3 for i in map(int, sys.argv[1:])]
print(*out)
"""
STARTS = (0, 1000, 2000, 3000)  # the first epoch of each 500 timed, in a 4,000-epoch run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="best of this many processes")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    roots = {"new": HERE} if args.against is None else {"old": args.against, "new": HERE}
    cols = [f"{opt} from epoch {n:,}" for opt in ("sgd", "adam") for n in STARTS]
    best = {tag: [float("inf")] * len(cols) for tag in roots}
    for _ in range(args.repeat):
        for tag, root in roots.items():
            got = last_floats(root, ONE_RUN, *map(str, STARTS))
            best[tag] = [min(a, b) for a, b in zip(best[tag], got)]
    print(f"load average {os.getloadavg()[0]:.2f}; ms per epoch, best of {args.repeat}")
    print("| checkout | " + " | ".join(cols) + " |")
    print("|---" * (1 + len(cols)) + "|")
    for tag in roots:
        print(f"| {tag} | " + " | ".join(f"{v:.3f}" for v in best[tag]) + " |")


if __name__ == "__main__":
    main()
