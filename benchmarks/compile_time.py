"""Compile time of ``fm.jit``'s first call per row of ``scale.py``, each row in a
fresh process (nothing compiled before it), CPU and wall seconds.

    python benchmarks/compile_time.py                         # every row, best of 2
    python benchmarks/compile_time.py --rows 2-64-64-1x100 --repeat 3
    python benchmarks/compile_time.py --against /path/to/other/checkout

With ``--against`` the rows run alternately in this checkout and in the other
one (its ``fmicrograd`` and its ``benchmarks/scale.py``), so both see the same
machine load, and the table gives the ratio new / old. On a loaded machine
take the CPU columns, and the best of several repeats.
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
    args = parser.parse_args()
    rows = args.rows or [r.name for r in scale.ROWS]
    roots = {"new": HERE} if args.against is None else {"old": args.against, "new": HERE}
    print(f"load average {os.getloadavg()[0]:.2f}; compile (first call), best of {args.repeat}")
    cols = [f"{tag} {kind}" for tag in roots for kind in ("CPU s", "wall s")]
    extra = ["new / old CPU", "new / old wall"] if len(roots) == 2 else []
    print("| row | " + " | ".join(cols + extra) + " |")
    print("|---" * (1 + len(cols) + len(extra)) + "|")
    for row in rows:
        best: dict = {tag: (float("inf"), float("inf")) for tag in roots}
        for _ in range(args.repeat):
            for tag, root in roots.items():
                wall, cpu = last_floats(root, ONE_ROW, row)
                best[tag] = (min(best[tag][0], wall), min(best[tag][1], cpu))
        cells = [f"{best[tag][k]:.2f}" for tag in roots for k in (1, 0)]
        if len(roots) == 2:
            cells += [f"{best['new'][1] / best['old'][1]:.2f}",
                      f"{best['new'][0] / best['old'][0]:.2f}"]
        print(f"| {row} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
