"""Compile time of ``fm.jit``'s first call per row of ``scale.py``, each row in a
fresh process (nothing compiled before it), CPU and wall seconds.

    python benchmarks/compile_time.py                         # every row, best of 2
    python benchmarks/compile_time.py --rows 2-64-64-1x100 --repeat 3
    python benchmarks/compile_time.py --against /path/to/other/checkout
    python benchmarks/compile_time.py --rows 16-128-128-1x1000 --batches 100 1000 30000

With ``--against`` the rows run alternately in this checkout and in the other
one (its ``fmicrograd`` and its ``benchmarks/scale.py``), so both see the same
machine load, and the table gives the ratio new / old. On a loaded machine
take the CPU columns, and the best of several repeats. ``--batches`` runs each
row at those batch sizes instead (the program is the same at any batch: how
much of a compile grows with it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402
from checkout import HERE, last_floats  # noqa: E402

ONE_ROW = """
import sys, time
sys.path.insert(0, "benchmarks")
import scale
row = [r for r in scale.ROWS if r.name == sys.argv[1]][0]
if len(sys.argv) > 2:  # another batch size
    row = row._replace(batch=int(sys.argv[2]))
x, y, layers = scale.data(row)
update, params = scale.fm_update(row), scale.fm_params(layers)
wall, cpu = time.perf_counter(), time.process_time()
update(params, x, y)
print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", help="row names (default: all)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    parser.add_argument("--batches", nargs="*", type=int,
                        help="run each row at these batch sizes instead")
    args = parser.parse_args()
    names = args.rows or [r.name for r in scale.ROWS]
    rows = [(n, ()) for n in names] if not args.batches else \
        [(n, (str(b),)) for n in names for b in args.batches]
    roots = {"new": HERE} if args.against is None else {"old": args.against, "new": HERE}
    print(f"load average {os.getloadavg()[0]:.2f}; compile (first call), best of {args.repeat}")
    cols = [f"{tag} {kind}" for tag in roots for kind in ("CPU s", "wall s")]
    extra = ["new / old CPU", "new / old wall"] if len(roots) == 2 else []
    print("| row | " + " | ".join(cols + extra) + " |")
    print("|---" * (1 + len(cols) + len(extra)) + "|")
    for row, batch in rows:
        best: dict = {tag: (float("inf"), float("inf")) for tag in roots}
        for _ in range(args.repeat):
            for tag, root in roots.items():
                wall, cpu = last_floats(root, ONE_ROW, row, *batch)
                best[tag] = (min(best[tag][0], wall), min(best[tag][1], cpu))
        cells = [f"{best[tag][k]:.2f}" for tag in roots for k in (1, 0)]
        if len(roots) == 2:
            cells += [f"{best['new'][1] / best['old'][1]:.2f}",
                      f"{best['new'][0] / best['old'][0]:.2f}"]
        label = row if not batch else f"{row} at batch {batch[0]}"
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
