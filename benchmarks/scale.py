"""Scale sweep: the whole compiled SGD step as the MLP and the batch grow.

    python benchmarks/scale.py                     # every row (a few minutes)
    python benchmarks/scale.py --quick             # shorter timing budget per row
    python benchmarks/scale.py --rows 2-16-16-1x100 12-160-160-1x300
    python benchmarks/scale.py --quick --load      # with one core kept busy meanwhile
    python benchmarks/scale.py --quick --user-path # also jit(value_and_grad) + tree.map,
                                                   # and the step as fit(jit=True) runs it
    python benchmarks/scale.py --quick --rows 16-128-128-1x1000 --batch 10000 100000
        # the rows at other batch sizes: the step, and the first call, as the batch grows
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scale.py --quick
        # numpy's OpenBLAS on the kernels it picks itself, where the machine's
        # environment sets others (``python -m fmicrograd info`` says so; the
        # header line names the kernels and the setting)

Each row is one training step (value_and_grad + SGD update, float64, full
batch) from the same data and weights in three systems, in this one process:
fmicrograd (``fm.jit`` of the step with the parameter pytree in and out, the
loss over ``fm.vmap``), torch eager (autograd) and ``jax.jit`` of the same
step. Losses: mean hinge + 1e-4 L2 for one output (as micrograd's demo),
softmax cross-entropy + 1e-4 L2 for several. Printed per row: median time per
step (the best of three alternating rounds per system), the first call (trace
+ compile), the peak of Python/numpy memory allocated during one fm step
(tracemalloc; the weights are not counted), and
the ratios fm / torch and fm / jax, of wall time and of CPU time (all threads
of the process; on a loaded machine a process that computes without pause is
kept waiting far more than one that sleeps between short bursts, so the CPU
ratios are the ones to compare there). Rows are checked to agree on the initial
loss (1e-9) before they are timed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import median_step  # noqa: E402

ALPHA = 1e-4
LR = 0.01


class Row(NamedTuple):
    sizes: tuple
    batch: int
    activation: str = "relu"

    @property
    def name(self) -> str:
        return "-".join(map(str, self.sizes)) + f"x{self.batch}" + (
            "" if self.activation == "relu" else f" {self.activation}")

    @property
    def params(self) -> int:
        return sum((a + 1) * b for a, b in zip(self.sizes, self.sizes[1:]))


ROWS = (Row((2, 16, 16, 1), 100), Row((2, 16, 16, 1), 1000), Row((2, 64, 64, 1), 100),
        Row((2, 64, 64, 1), 1000), Row((12, 160, 160, 1), 300, "tanh"),
        Row((16, 128, 128, 1), 1000), Row((16, 128, 128, 1), 1000, "tanh"),
        Row((64, 256, 256, 10), 1000))


def data(row: Row) -> tuple:
    """Inputs, targets (+-1 for one output, one-hot otherwise) and layers
    ``[(W, b), ...]`` as float64 numpy arrays, from a fixed seed."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(row.batch, row.sizes[0]))
    if row.sizes[-1] == 1:
        y = np.where(rng.random(row.batch) < 0.5, -1.0, 1.0)
    else:
        y = np.eye(row.sizes[-1])[rng.integers(0, row.sizes[-1], row.batch)]
    layers = [(rng.uniform(-1, 1, size=(b, a)) / np.sqrt(a), np.zeros(b))
              for a, b in zip(row.sizes, row.sizes[1:])]
    return x, y, layers


def _array_loss(np: Any, relu: Callable, act: Callable, log_softmax: Callable) -> Callable:
    def loss(ps: list, x: Any, y: Any) -> Any:
        h = x
        for i, (w, b) in enumerate(ps):
            h = h @ w.T + b
            if i < len(ps) - 1:
                h = act(h)
        if h.shape[1] == 1:
            data = np.mean(relu(1 - y * h[:, 0]))
        else:
            data = -np.mean(np.sum(y * log_softmax(h), axis=1))
        return data + ALPHA * sum(np.sum(w * w) + np.sum(b * b) for w, b in ps)

    return loss


def torch_step(row: Row) -> tuple[Callable, float, float]:
    import torch

    x, y, layers = data(row)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    ps = [(torch.from_numpy(w.copy()).requires_grad_(), torch.from_numpy(b.copy())
           .requires_grad_()) for w, b in layers]
    flat = [p for wb in ps for p in wb]
    act = torch.relu if row.activation == "relu" else torch.tanh
    loss = _array_loss(torch, torch.relu, act, lambda h: torch.log_softmax(h, dim=1))

    def step() -> float:
        total = loss(ps, x, y)
        grads = torch.autograd.grad(total, flat)
        with torch.no_grad():
            for p, g in zip(flat, grads):
                p -= LR * g
        return total.item()

    return step, loss(ps, x, y).item(), 0.0


def jax_step(row: Row) -> tuple[Callable, float, float]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x, y, layers = data(row)
    act = jax.nn.relu if row.activation == "relu" else jnp.tanh
    loss = _array_loss(jnp, jax.nn.relu, act, lambda h: jax.nn.log_softmax(h, axis=1))

    @jax.jit
    def update(ps: list, x: Any, y: Any) -> tuple:
        value, grads = jax.value_and_grad(loss)(ps, x, y)
        return value, jax.tree_util.tree_map(lambda p, g: p - LR * g, ps, grads)

    state = [[(jnp.asarray(w), jnp.asarray(b)) for w, b in layers]]
    x, y = jnp.asarray(x), jnp.asarray(y)
    start = time.perf_counter()
    value0, _ = update(state[0], x, y)
    value0.block_until_ready()
    compile_s = time.perf_counter() - start

    def step() -> float:
        value, state[0] = update(state[0], x, y)
        value.block_until_ready()
        return value

    return step, float(value0), compile_s


def fm_loss(row: Row) -> Callable:
    """``loss(params, xs, ys)``: the row's mean loss over ``fm.vmap`` plus L2."""
    import fmicrograd as fm

    act = fm.relu if row.activation == "relu" else fm.tanh

    def mlp(p: Any, x: Any) -> Any:
        for i, layer in enumerate(p):
            x = [fm.dot(w, x) + b for w, b in layer]
            if i < len(p) - 1:
                x = [act(v) for v in x]
        return x

    def per_example(p: Any, x: Any, y: Any) -> Any:
        out = mlp(p, x)
        if len(out) == 1:
            return fm.relu(1.0 - y * out[0])
        return fm.losses.softmax_cross_entropy(out, y)

    def loss(p: Any, xs: Any, ys: Any) -> Any:
        data = fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, xs, ys))
        return data + ALPHA * fm.losses.l2(p)

    return loss


def fm_update(row: Row) -> Callable:
    """The step as a user writes it: a pytree of float parameters (layers of
    ``(weights, bias)`` neurons) in and out, the loss over ``fm.vmap``."""
    import fmicrograd as fm

    loss = fm_loss(row)
    vg = fm.value_and_grad(loss)

    @fm.jit
    def update(p: Any, xs: Any, ys: Any) -> tuple:
        value, g = vg(p, xs, ys)
        return value, fm.tree.map(lambda a, d: a - LR * d, p, g)

    return update


def fm_params(layers: list) -> tuple:
    return tuple(tuple((tuple(w_row), b_i) for w_row, b_i in zip(w.tolist(), b.tolist()))
                 for w, b in layers)


def fm_step(row: Row, deferred: bool = False) -> tuple[Callable, float, float]:
    """fm's row: the jitted update, the parameter pytree in and out; with
    ``deferred``, called through ``.deferred`` as ``fit(jit=True)`` does."""
    x, y, layers = data(row)
    update = fm_update(row)
    call = update.deferred if deferred else update
    params = fm_params(layers)
    start = time.perf_counter()
    value0, _ = call(params, x, y)
    compile_s = time.perf_counter() - start
    state = [params]

    def step() -> float:
        value, state[0] = call(state[0], x, y)
        return value

    return step, value0, compile_s


def fm_fit_step(row: Row) -> tuple[Callable, float, float]:
    """The step as ``fit(jit=True)`` runs it: the parameters stay the
    program's flat vector from one step to the next."""
    return fm_step(row, deferred=True)


def fm_grad_step(row: Row) -> tuple[Callable, float, float]:
    """The other user path: ``fm.jit(fm.value_and_grad(loss))``, the SGD
    update outside with ``fm.tree.map``."""
    import fmicrograd as fm

    x, y, layers = data(row)
    vg = fm.jit(fm.value_and_grad(fm_loss(row)))
    params = fm_params(layers)
    start = time.perf_counter()
    value0, _ = vg(params, x, y)
    compile_s = time.perf_counter() - start
    state = [params]

    def step() -> float:
        value, g = vg(state[0], x, y)
        state[0] = fm.tree.map(lambda a, d: a - LR * d, state[0], g)
        return value

    return step, value0, compile_s


def cpu_per_step(step: Callable, seconds: float) -> tuple[float, float]:
    """Mean CPU seconds (this process, all threads) per call: unlike wall time,
    it does not count the time a loaded machine keeps the process waiting; and
    the minor page faults per call (NaN where ``resource`` is missing)."""
    n, start, cpu, faults = 0, time.perf_counter(), time.process_time(), _faults()
    while n < 5 or time.perf_counter() - start < seconds:
        step()
        n += 1
    return (time.process_time() - cpu) / n, (_faults() - faults) / n


def _faults() -> float:
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)


def peak_bytes(step: Callable) -> int:
    """Peak bytes allocated (Python objects and numpy buffers) during one call."""
    step()
    gc.collect()
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SYSTEMS = (("fm jit+vmap", fm_step), ("torch eager", torch_step), ("jax.jit", jax_step))


ROUNDS = 3  # each system timed in this many alternating rounds (see ``measure``)


def measure(row: Row, budget: float, systems: tuple = SYSTEMS) -> dict:
    """Every system's ``(median step, first call, CPU per step)`` for ``row``.

    The systems are timed in ``ROUNDS`` alternating rounds of ``budget /
    ROUNDS`` seconds each, and each keeps its best round's median: the first
    system timed in a process ran measurably slower (0.13 against 0.07 ms per
    demo step, the CPU still warming up), which one pass in a fixed order
    charged to fm, always timed first."""
    out: dict[str, Any] = {}
    steps: dict[str, tuple] = {}
    loss0 = None
    for name, factory in systems:
        try:
            step, value0, compile_s = factory(row)
        except ImportError as e:
            out[name] = f"skipped ({e})"
            continue
        loss0 = value0 if loss0 is None else loss0
        if abs(value0 - loss0) > 1e-9 * max(1.0, abs(loss0)):
            raise AssertionError(f"{row.name}: {name} starts at loss {value0!r}, "
                                 f"fm at {loss0!r}")
        steps[name] = (step, compile_s)
    best: dict[str, float] = {}
    for _ in range(ROUNDS):
        for name, (step, _c) in steps.items():
            gc.collect()
            t = median_step(step, 20, budget / ROUNDS)
            best[name] = min(t, best.get(name, t))
    for name, (step, compile_s) in steps.items():
        out[name] = (best[name], compile_s, *cpu_per_step(step, budget / 2))
        if name == "fm jit+vmap":
            out["fm peak"] = peak_bytes(step)
    return out


def fmt_time(t: float) -> str:
    return f"{t * 1e3:.3f} ms" if t < 1 else f"{t:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budget per row")
    parser.add_argument("--user-path", action="store_true",
                        help="also time jit(value_and_grad) with the update outside, and the "
                        "step as fit(jit=True) runs it")
    parser.add_argument("--load", action="store_true",
                        help="keep one core busy with another process while timing (to see "
                        "how the ratios move under load)")
    parser.add_argument("--rows", nargs="*", help="row names to run (default: all), e.g. "
                        + " ".join(r.name.split()[0] for r in ROWS[:2]))
    parser.add_argument("--batch", nargs="*", type=int, metavar="N",
                        help="run the rows at these batch sizes instead (the step and the "
                        "first call as the batch grows), e.g. --batch 10000 100000")
    args = parser.parse_args()
    rows = ROWS
    if args.rows:
        wanted = set(args.rows)
        rows = tuple(r for r in ROWS if r.name in wanted or r.name.split()[0] in wanted)
        if not rows:
            parser.error(f"no row named {args.rows}; rows: {[r.name for r in ROWS]}")
    if args.batch:
        if any(n < 1 for n in args.batch):
            parser.error(f"--batch takes positive batch sizes, not {args.batch}")
        rows = tuple(r._replace(batch=n) for r in rows for n in args.batch)
    budget = 0.5 if args.quick else 1.5
    with one_core_busy(args.load) as loaded:
        sweep(rows, budget, args.user_path, loaded)


@contextlib.contextmanager
def one_core_busy(on: bool = True) -> Iterator[bool]:
    """Another process spinning on one core meanwhile (``--load``), if ``on``;
    yields whether one does."""
    if not on:
        yield False
        return
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(1.0)
    try:
        yield True
    finally:
        busy.kill()
        busy.wait()


def sweep(rows: tuple, budget: float, user_path: bool, loaded: bool) -> None:
    """Time every row and print the table."""
    from fmicrograd.compiler.threads import blas, cpu

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    b = blas()
    print(f"{cpu()}; Python {sys.version.split()[0]}, load average {load:.2f}"
          f"{' (one core kept busy by another process)' if loaded else ''}; whole SGD step, "
          "float64, median per step (best of 3 alternating rounds); numpy's BLAS: "
          f"{b['name'] or 'not OpenBLAS'} {b['version']} ({b['core'] or '?'} kernels"
          f"{', OPENBLAS_CORETYPE=' + b['forced'] + ' set' if b['forced'] else ''})\n")
    if b["advice"]:  # (the kernels move the wide rows more than anything in fm)
        print(f"note: {b['advice']}\n")
    print("| MLP, batch | params | fm jit+vmap | fm compile | fm peak | torch eager | "
          "jax.jit | jax compile | fm / torch | fm / jax | CPU: fm / torch | CPU: fm / jax |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    systems = SYSTEMS
    if user_path:
        systems += (("fm jit(vg) + tree.map", fm_grad_step), ("fm fit's step", fm_fit_step))
    for row in rows:
        r = measure(row, budget, systems)
        fm_t, fm_c, fm_cpu, _ = r["fm jit+vmap"]
        cells = [row.name, f"{row.params:,}", fmt_time(fm_t), f"{fm_c:.2f} s",
                 f"{r['fm peak'] / 1e6:.1f} MB"]
        for name in ("torch eager", "jax.jit"):
            cells.append(fmt_time(r[name][0]) if not isinstance(r[name], str) else r[name])
        cells.append(f"{r['jax.jit'][1]:.2f} s" if not isinstance(r["jax.jit"], str) else "-")
        print("| " + " | ".join(cells + ratios(r, fm_t, 0) + ratios(r, fm_cpu, 2)) + " |",
              flush=True)
        faults = r["fm jit+vmap"][3]
        if faults >= 10:  # glibc returning the heap's top to the OS and faulting it back in
            print(f"|   fm step: {faults:.0f} page faults per step | | | | | | | | | | | |",
                  flush=True)
        if user_path:
            t, c, cpu, _ = r["fm jit(vg) + tree.map"]
            print(f"|   jit(value_and_grad) + tree.map update | | {fmt_time(t)} | {c:.2f} s | "
                  "| | | | " + " | ".join(ratios(r, t, 0) + ratios(r, cpu, 2)) + " |",
                  flush=True)
            t, c, cpu, _ = r["fm fit's step"]
            print(f"|   the step as fit(jit=True) runs it (.deferred) | | {fmt_time(t)} | "
                  f"{c:.2f} s | | | | | " + " | ".join(ratios(r, t, 0) + ratios(r, cpu, 2))
                  + " |", flush=True)


def ratios(r: dict, t: float, k: int) -> list:
    """``t`` over torch's and jax's figure ``k`` (0 wall time, 2 CPU time)."""
    return [f"{t / r[name][k]:.2f}" if not isinstance(r[name], str) else "-"
            for name in ("torch eager", "jax.jit")]


if __name__ == "__main__":
    main()
