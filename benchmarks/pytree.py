"""The pytree boundary: ``fm.tree.flatten`` / ``unflatten`` / ``map`` on MLP
parameters as nested tuples of floats (``scale.fm_params``), and the user path
of ``scale.py`` split into its compiled ``value_and_grad`` call and its
``fm.tree.map`` update, and a jitted adam step on an ``fm.nn.MLP`` (what
``fit(jit=True)`` compiles) split into the program and the boundary around it
(matching the arguments, rebuilding the output model and optimizer state).

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
from typing import Any

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


MODEL_ROWS = ((2, 16, 16, 1, 100), (2, 64, 64, 1, 200), (16, 128, 128, 1, 1000))


def model_calls(sizes: tuple) -> tuple[int, dict[str, Callable[[], object]]]:
    """A jitted adam step on an ``fm.nn.MLP`` fed its own outputs, and its
    compiled program alone on the same input vector."""
    from fmicrograd.compiler.compile import _inputs

    *widths, n = sizes
    x, y, _ = scale.data(scale.Row(tuple(widths), n))
    model = fm.nn.MLP.init(widths[0], list(widths[1:]), key=fm.random.key(0))
    opt = fm.optim.adam(0.01)

    def loss(m: Any, xs: Any, ys: Any) -> Any:
        hinge = fm.vmap(lambda v, t: fm.relu(1.0 - t * m(v)))(xs, ys)
        return fm.mean(hinge) + 1e-4 * fm.losses.l2(m)

    vg = fm.value_and_grad(loss)

    @fm.jit
    def step(p: Any, s: Any) -> tuple:
        value, g = vg(p, x, y)
        u, s = opt.update(g, s, p)
        return value, fm.optim.apply_updates(p, u), s

    state = list(step(model, opt.init(model))[1:])

    def whole() -> None:
        _, state[0], state[1] = step(*state)

    whole()
    entry = step._entries.order[0]  # the compiled program, for the split
    run, _, vector, _ = entry.variants[0]
    flat = _inputs(*entry.match(tuple(state), {}))
    return fm.nn.count_params(model), {
        "step": whole, "program": lambda: run(flat if vector else flat.tolist())}


def model_step(reps: int) -> None:
    print("\n| fm.nn.MLP, batch | params | jitted adam step | program | boundary |\n"
          "|---|---|---|---|---|")
    for sizes in MODEL_ROWS:
        n, calls = model_calls(sizes)
        found = cpu_ms(calls, reps)
        (lo, mid), (plo, pmid) = found["step"], found["program"]
        name = "-".join(map(str, sizes[:-1])) + f" x{sizes[-1]}"
        print(f"| {name} | {n:,} | {lo:.3f} / {mid:.3f} ms | {plo:.3f} / {pmid:.3f} ms | "
              f"{mid - pmid:.3f} ms |", flush=True)


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
    model_step(args.reps)


if __name__ == "__main__":
    main()
