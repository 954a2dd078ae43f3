"""fm's compiled step with the batch cut in two halves on two cores
(``compiler/split.py``) against the same step uncut, in one process.

    python benchmarks/halves.py                       # the rows of scale.py
    python benchmarks/halves.py --rows 16-128-128-1x1000 --rounds 5
    python benchmarks/halves.py --load                # one core kept busy meanwhile

Per row, both versions of ``scale.fm_update`` are compiled (the uncut one
with ``split.MIN_WORK`` out of reach), checked to agree (1e-12), and timed in
alternating rounds (median per step within a round, about ``--budget``
seconds each): the table gives the best and worst round of each, wall time
and process CPU time per step (both threads), and the ratio cut / uncut of the
best rounds. Also the first call (trace + compile) of each.
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


def timed(step, seconds: float) -> tuple[float, float]:
    """Median wall seconds per call and mean CPU seconds per call."""
    step()
    walls = []
    cpu = time.process_time()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(walls) < 10:
        t0 = time.perf_counter()
        step()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls), (time.process_time() - cpu) / len(walls)


def row_result(row: scale.Row, rounds: int, budget: float) -> str:
    import numpy as np

    from fmicrograd.compiler import split

    x, y, layers = scale.data(row)
    params = scale.fm_params(layers)
    versions, first = {}, {}
    for name, limit in (("uncut", 10**18), ("cut", split.MIN_WORK)):
        before = split.MIN_WORK
        split.MIN_WORK = limit
        try:
            update = scale.fm_update(row)
            start = time.perf_counter()
            out = update(params, x, y)
            first[name] = time.perf_counter() - start
        finally:
            split.MIN_WORK = before
        versions[name] = (update, out)
    a = np.array(versions["cut"][1][0]), np.array(versions["uncut"][1][0])
    if not np.allclose(*a, rtol=1e-12, atol=1e-12):
        raise SystemExit(f"{row.name}: cut and uncut disagree: {a}")
    state = {name: params for name in versions}

    def stepper(name: str):
        update = versions[name][0]

        def step() -> None:
            state[name] = update(state[name], x, y)[1]
        return step

    results: dict = {name: [] for name in versions}
    for _ in range(rounds):
        for name in versions:
            results[name].append(timed(stepper(name), budget))
    cells = []
    for name in ("uncut", "cut"):
        walls = sorted(w for w, _ in results[name])
        cpus = sorted(c for _, c in results[name])
        cells += [f"{walls[0] * 1e3:.3f}-{walls[-1] * 1e3:.3f}", f"{cpus[0] * 1e3:.3f}",
                  f"{first[name]:.2f}"]
    best = {n: min(w for w, _ in results[n]) for n in results}
    return (f"| {row.name} | " + " | ".join(cells) +
            f" | {best['cut'] / best['uncut']:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", help="row names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per round")
    parser.add_argument("--load", action="store_true", help="keep one core busy meanwhile")
    args = parser.parse_args()
    rows = [r for r in scale.ROWS if not args.rows or r.name in args.rows
            or r.name.split()[0] in args.rows]
    with scale.one_core_busy(args.load) as busy:
        print(f"load average {os.getloadavg()[0]:.2f}"
              f"{' (one core kept busy)' if busy else ''}; ms per step, best-worst of "
              f"{args.rounds} rounds; CPU: best round, all threads; first call in s")
        print("| row | uncut | uncut CPU | uncut first | cut | cut CPU | cut first | "
              "cut / uncut |")
        print("|---|---|---|---|---|---|---|---|")
        for row in rows:
            print(row_result(row, args.rounds, args.budget), flush=True)


if __name__ == "__main__":
    main()
