"""The README's loss with the batch unrolled in Python against the same loss
over ``fm.vmap``: the whole compiled Adam step, in one process.

    PYTHONPATH=. python benchmarks/unrolled.py                 # the default rows
    PYTHONPATH=. python benchmarks/unrolled.py --rows 64x200 16x100

A row ``WxN`` is an ``fm.nn.MLP`` 2-[W, W, 1] on ``fm.datasets.moons(N)``;
the step is ``fm.jit`` of value_and_grad + ``fm.optim.adam(0.01)`` update
with parameters and optimizer state in and out. The two losses:

    unrolled: fm.losses.hinge([m(x) for x in xs], ys) + 1e-4 * fm.losses.l2(m)
    vmap:     fm.mean(fm.vmap(lambda x, y: fm.relu(1.0 - y * m(x)))(xs, ys)) + 1e-4 * l2

Printed per row and form: the first call (trace + compile), the median step
(wall) of the best of three rounds that alternate the two forms, the same in
CPU time of this process, and the ratio unrolled / vmap of each (the ratios
are what to read on a loaded machine). The two forms are checked to give the
same loss and parameters after the timed steps (1e-9 relative).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import fmicrograd as fm

ROWS = ("16x100", "64x200", "16x1000")


def make_step(width: int, n: int, unrolled: bool) -> tuple[Callable, tuple]:
    """``(step, state)``: ``step(state) -> state`` runs one compiled Adam step
    of the row's model; ``state = (loss, params, opt_state, batch)``."""
    xs, ys = fm.datasets.moons(n, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [width, width, 1], key=fm.random.key(0))

    def loss(m: fm.nn.MLP, batch: tuple) -> fm.Expr:
        xs, ys = batch
        if unrolled:
            return fm.losses.hinge([m(x) for x in xs], ys) + 1e-4 * fm.losses.l2(m)
        hinge = fm.vmap(lambda x, y: fm.relu(1.0 - y * m(x)))(xs, ys)
        return fm.mean(hinge) + 1e-4 * fm.losses.l2(m)

    opt = fm.optim.adam(0.01)
    vg = fm.value_and_grad(loss)

    @fm.jit
    def step(p: fm.nn.MLP, s: object, batch: tuple) -> tuple:
        v, g = vg(p, batch)
        u, s = opt.update(g, s, p)
        return v, fm.optim.apply_updates(p, u), s

    def run(state: tuple) -> tuple:
        _, p, s, batch = state
        v, p, s = step(p, s, batch)
        return v, p, s, batch

    return run, (None, model, opt.init(model), (xs, ys))


def rounds(steps: dict, states: dict, reps: int) -> dict:
    """name -> (wall, cpu) seconds per step: medians over ``reps`` steps, the
    best of three rounds alternating the forms; ``states`` advance in place."""
    best = {name: [float("inf"), float("inf")] for name in steps}
    for _ in range(3):
        for name, step in steps.items():
            walls, cpus = [], []
            state = states[name]
            for _ in range(reps):
                t0, c0 = time.perf_counter(), time.process_time()
                state = step(state)
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
            states[name] = state
            best[name][0] = min(best[name][0], statistics.median(walls))
            best[name][1] = min(best[name][1], sum(cpus) / reps)
    return best


def row(spec: str, reps: int) -> None:
    width, n = map(int, spec.split("x"))
    steps, states, first = {}, {}, {}
    for name in ("unrolled", "vmap"):
        steps[name], state = make_step(width, n, name == "unrolled")
        t0 = time.perf_counter()
        states[name] = steps[name](state)
        first[name] = time.perf_counter() - t0
    best = rounds(steps, states, reps)
    a, b = states["unrolled"], states["vmap"]
    same = np.allclose(fm.tree.leaves(a[1]), fm.tree.leaves(b[1]), rtol=1e-9, atol=1e-12)
    same = same and abs(float(a[0]) - float(b[0])) <= 1e-9 * abs(float(b[0]))
    for name in steps:
        wall, cpu = best[name]
        print(f"| 2-{width}-{width}-1 x {n} | {name} | {first[name]:.2f} s | "
              f"{wall * 1e3:.2f} ms | {cpu * 1e3:.2f} ms | "
              f"{wall / best['vmap'][0]:.2f} | {cpu / best['vmap'][1]:.2f} | "
              f"{'yes' if same else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), help="rows WxN")
    parser.add_argument("--reps", type=int, default=30, help="steps per round")
    args = parser.parse_args()
    print("| MLP x batch | loss | first call | step (wall) | step (CPU) "
          "| / vmap (wall) | / vmap (CPU) | same numbers |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.rows:
        row(spec, args.reps)


if __name__ == "__main__":
    main()
