"""The pytree boundary: ``fm.tree.flatten`` / ``unflatten`` / ``map`` on MLP
parameters as nested tuples of floats (``scale.fm_params``), and the user path
of ``scale.py`` split into its compiled ``value_and_grad`` call and its
``fm.tree.map`` update.

    python benchmarks/pytree.py                 # 337, 4,417, 18,817, 85,002 leaves
    python benchmarks/pytree.py --reps 100

Times are process CPU time per call (not counting the time a loaded machine
keeps the process waiting), minimum and median over ``--reps`` calls; the
user path's two parts alternate, so load hits them alike. To compare two
versions, run this file in each checkout (it uses the public API only).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402 -- next to this file

import fmicrograd as fm  # noqa: E402

SIZES = ((2, 16, 16, 1), (2, 64, 64, 1), (16, 128, 128, 1), (64, 256, 256, 10))
USER_ROWS = (scale.Row((2, 16, 16, 1), 100), scale.Row((16, 128, 128, 1), 1000))


def cpu_ms(calls: dict[str, Callable[[], object]], reps: int) -> dict[str, tuple[float, float]]:
    """name -> (min, median) CPU milliseconds per call, the calls taken in turn."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(reps):
        for name, call in calls.items():
            start = time.process_time()
            call()
            times[name].append(time.process_time() - start)
    return {k: (min(v) * 1e3, statistics.median(v) * 1e3) for k, v in times.items()}


def tree_calls(sizes: tuple) -> tuple[int, dict[str, Callable[[], object]]]:
    """The leaf count and the three calls on an MLP's parameters."""
    _, _, layers = scale.data(scale.Row(sizes, 1))
    params = scale.fm_params(layers)
    grads = fm.tree.map(lambda a: 0.5 * a, params)
    leaves, treedef = fm.tree.flatten(params)
    return len(leaves), {"flatten": lambda: fm.tree.flatten(params),
                         "unflatten": lambda: fm.tree.unflatten(treedef, leaves),
                         "map": lambda: fm.tree.map(lambda a, d: a - 0.1 * d, params, grads)}


def user_calls(row: scale.Row) -> dict[str, Callable[[], object]]:
    """The compiled gradient call and the update of ``scale.fm_grad_step``."""
    x, y, layers = scale.data(row)
    vg = fm.jit(fm.value_and_grad(scale.fm_loss(row)))
    params = scale.fm_params(layers)
    _, grads = vg(params, x, y)
    return {"call": lambda: vg(params, x, y),
            "map": lambda: fm.tree.map(lambda a, d: a - scale.LR * d, params, grads)}


def tree_ops(reps: int) -> None:
    print("| leaves | flatten | unflatten | map (2 trees) |\n|---|---|---|---|")
    for sizes in SIZES:
        n, calls = tree_calls(sizes)
        cells = " | ".join(f"{lo:.3f} / {mid:.3f} ms" for lo, mid in cpu_ms(calls, reps).values())
        print(f"| {n:,} | {cells} |", flush=True)


def user_path(reps: int) -> None:
    print("\n| row | jit(value_and_grad) call | tree.map update |\n|---|---|---|")
    for row in USER_ROWS:
        found = cpu_ms(user_calls(row), reps)
        cells = " | ".join(f"{lo:.2f} / {mid:.2f} ms" for lo, mid in found.values())
        print(f"| {row.name} | {cells} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=40, help="calls per measurement")
    args = parser.parse_args()
    print("CPU time per call, min / median\n")
    tree_ops(args.reps)
    user_path(args.reps)


if __name__ == "__main__":
    main()
