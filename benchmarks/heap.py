"""fm's compiled step after other compiles in the same process: median time
and minor page faults per step.

    python benchmarks/heap.py                              # the default sequence
    python benchmarks/heap.py --against /path/to/other/checkout
    python benchmarks/heap.py --rows 2-64-64-1x1000 2-64-64-1x1000

Each row of ``scale.py`` in the sequence is compiled and timed in turn, in one
process, as a script that compiles several functions would. A step whose
arrays sit at the top of glibc's heap can give them back to the OS when it
frees them (the heap is trimmed) and fault them in again on the next step:
hundreds of page faults per step, and a step 2-2.5x slower, depending only on
what the process allocated before. With ``--against`` the same sequence runs
in the other checkout too (one fresh process each), for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkout import HERE, run_in  # noqa: E402

# 2-64-64-1 x1000 twice: in the commit before the in-place rewrite, its second
# compile in such a process left its step at ~590 faults and ~4 ms instead of 1.6-2.0
DEFAULT = ("2-16-16-1x1000", "2-64-64-1x100", "2-64-64-1x1000", "2-64-64-1x1000",
           "12-160-160-1x300 tanh", "2-64-64-1x1000")

SEQUENCE = """
import resource, sys
sys.path.insert(0, "benchmarks")
import scale
from run import median_step

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

for name in sys.argv[1:]:
    row = [r for r in scale.ROWS if r.name == name][0]
    step, _, _ = scale.fm_step(row)
    start, calls = faults(), [0]

    def counted():
        calls[0] += 1
        step()

    t = median_step(counted, 20, 0.7)
    print(f"{name}|{t * 1e3:.3f}|{(faults() - start) / calls[0]:.1f}", flush=True)
"""


def run_sequence(root: Path, rows: list) -> list:
    """``(row, ms per step, faults per step)`` for each row, in one process."""
    out = run_in(root, SEQUENCE, *rows)
    return [line.split("|") for line in out.splitlines() if line.count("|") == 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(DEFAULT),
                        help="row names, compiled and timed in this order in one process")
    parser.add_argument("--against", type=Path, help="another checkout to run the same sequence")
    args = parser.parse_args()
    roots = {"this": HERE} if args.against is None else {"other": args.against, "this": HERE}
    print(f"load average {os.getloadavg()[0]:.2f}; one process per checkout, rows in order")
    found = {tag: run_sequence(root, args.rows) for tag, root in roots.items()}
    cols = " | ".join(f"{tag}: ms per step | {tag}: faults per step" for tag in roots)
    print(f"| # | row | {cols} |")
    print("|---" * (2 + 2 * len(roots)) + "|")
    for k, name in enumerate(args.rows):
        cells = " | ".join(f"{found[tag][k][1]} | {found[tag][k][2]}" for tag in roots)
        print(f"| {k + 1} | {name} | {cells} |")


if __name__ == "__main__":
    main()
