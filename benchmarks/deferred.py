"""A jitted training step called plainly against ``jitted.deferred``, in one
process: the parameter pytree rebuilt on every step, or kept as the program's
flat vector between steps (what ``fit(jit=True)`` does).

    python benchmarks/deferred.py                        # the wide rows of scale.py
    python benchmarks/deferred.py --rows 2-64-64-1x1000 --rounds 5

Per row, ``scale.fm_update`` is compiled once and timed in alternating rounds
(median ms per step of 300 steps); the table gives the best and worst round
of each and the ratio of the best ones. Both ways are checked to end at the
same bits.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402

WIDE = ("2-64-64-1x1000", "12-160-160-1x300 tanh", "16-128-128-1x1000", "64-256-256-10x1000")


def rounds(row: scale.Row, n: int, steps: int) -> dict:
    import numpy as np

    import fmicrograd as fm

    x, y, layers = scale.data(row)
    params = scale.fm_params(layers)
    update = scale.fm_update(row)
    update(params, x, y)
    ends = {}
    times: dict = {"plain": [], "deferred": []}
    for _ in range(n):
        for name, call in (("plain", update), ("deferred", update.deferred)):
            p = call(params, x, y)[1]
            ts = []
            for _ in range(steps):
                t0 = time.perf_counter()
                p = call(p, x, y)[1]
                ts.append(time.perf_counter() - t0)
            times[name].append(statistics.median(ts))
            ends[name] = fm.tree.leaves(p.get() if hasattr(p, "get") else p)
    if not np.array_equal(ends["plain"], ends["deferred"]):
        raise SystemExit(f"{row.name}: plain and deferred steps end at different numbers")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=list(WIDE))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; ms per step, best-worst of {args.rounds} "
          "rounds")
    print("| row | plain | deferred | deferred / plain |")
    print("|---|---|---|---|")
    for name in args.rows:
        row = next(r for r in scale.ROWS if r.name == name or r.name.split()[0] == name)
        t = rounds(row, args.rounds, args.steps)
        cells = [f"{min(v) * 1e3:.3f}-{max(v) * 1e3:.3f}" for v in (t["plain"], t["deferred"])]
        print(f"| {row.name} | {cells[0]} | {cells[1]} | "
              f"{min(t['deferred']) / min(t['plain']):.2f} |", flush=True)


if __name__ == "__main__":
    main()
