"""Data-parallel training: seconds per step with 1 process and with P processes.

    python benchmarks/parallel.py                  # 16-128-128-1 MLP, 20,000 points
    python benchmarks/parallel.py --procs 1,2,3 --steps 4 --jit

The workload: 20,000 points with 16 standard-normal features and labels
``sign(x0 * x1)``, an MLP 16-128-128-1 (ReLU, He init, 18,945 parameters),
mean hinge loss (through ``fm.vmap``) plus 1e-4 L2, full-batch SGD, float64.
The 1-process row is a plain ``fm.train.fit``; a P-process row starts P
processes on the loopback address (gloo, as torchrun would) that run
``fit(..., data_parallel=True)``. Every process gets OMP/BLAS threads = 1, so
P processes use at most P cores. The first epoch (with ``--jit`` the compile)
is not timed; the table shows the median of the others, the speedup over one
process, and the largest difference of the final parameters from the
1-process run. The last column is the speedup P processes could reach with P
free cores and free communication: one process's step time on all points over
its step time on 1/P of them (the part of a step that does not shrink with
the shard, such as updating the parameters, is paid by every process). The
machine's load average is printed: on a shared machine the speedup is bounded
by the cores actually free.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import numpy as np

import fmicrograd as fm

THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def workload(n: int, sizes: tuple) -> tuple:
    """``(model, (xs, ys), loss)``: the same on every process (fixed keys)."""
    k_data, k_model = fm.random.split(fm.random.key(0))
    xs = np.array(fm.random.normal(k_data, n * sizes[0])).reshape(n, sizes[0])
    ys = np.where(xs[:, 0] * xs[:, 1] > 0, 1.0, -1.0)
    model = fm.nn.MLP.init(sizes[0], list(sizes[1:]), key=k_model, init="he")

    def margin(m: fm.nn.MLP, x: object, y: object) -> object:
        return fm.relu(1.0 - y * m(x))

    def loss(m: fm.nn.MLP, batch: tuple) -> object:
        bx, by = batch
        hinge = fm.mean(fm.vmap(margin, in_axes=(None, 0, 0))(m, bx, by))
        return hinge + 1e-4 * fm.losses.l2(m)

    return model, (xs, ys), loss


def worker(args: argparse.Namespace) -> None:
    """One process: train ``args.steps + 1`` epochs, print timings as JSON (rank 0)."""
    parallel = "RANK" in os.environ
    if parallel:
        fm.distributed.init_from_env()
    model, data, loss = workload(args.n, args.sizes)
    stamps = [time.perf_counter()]
    model, history = fm.train.fit(loss, model, fm.optim.sgd(0.05), [data],
                                  epochs=args.steps + 1, jit=args.jit, data_parallel=parallel,
                                  callback=lambda *_: stamps.append(time.perf_counter()))
    if fm.distributed.is_writer():
        print(json.dumps({"seconds": [b - a for a, b in zip(stamps, stamps[1:])],
                          "params": fm.nn.parameters(model), "loss": list(history["loss"])}))
    if parallel:
        import torch.distributed

        torch.distributed.destroy_process_group()


def run(procs: int, args: argparse.Namespace, n: int) -> dict:
    """Start ``procs`` worker processes on ``n`` points (plain fit for 1) and
    return rank 0's report."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, __file__, "--worker", "--n", str(n), "--steps", str(args.steps),
           "--sizes", ",".join(map(str, args.sizes))] + (["--jit"] if args.jit else [])
    envs = [{**os.environ, **THREADS} for _ in range(procs)]
    if procs > 1:
        for rank, env in enumerate(envs):
            env.update(RANK=str(rank), WORLD_SIZE=str(procs), MASTER_ADDR="127.0.0.1",
                       MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True,
                                start_new_session=True) for env in envs]
    try:
        outs = [w.communicate(timeout=args.timeout)[0] for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    if any(w.returncode for w in workers):
        raise SystemExit(f"a worker of the {procs}-process run failed")
    return json.loads(outs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="number of points")
    parser.add_argument("--sizes", default="16,128,128,1", help="MLP layer sizes")
    parser.add_argument("--steps", type=int, default=3, help="timed full-batch steps")
    parser.add_argument("--procs", default="1,2", help="process counts to compare")
    parser.add_argument("--jit", action="store_true", help="fit(jit=True) (compile untimed)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.worker:
        return worker(args)
    cpus = len(os.sched_getaffinity(0))
    print(f"MLP {'-'.join(map(str, args.sizes))}, {args.n} points, full batch, "
          f"{'jit' if args.jit else 'eager'}, {args.steps} timed steps; {cpus} cores, load "
          f"average {os.getloadavg()[0]:.2f} (other programs share these cores)")
    print(f"{'processes':>9} | {'s / step':>8} | {'speedup':>7} | {'max |params - 1 proc|':>21} "
          f"| {'bound':>6}")
    base = None
    for procs in map(int, args.procs.split(",")):
        report = run(procs, args, args.n)
        step = median_step(report)
        base = base or (step, report["params"])
        diff = max(abs(a - b) for a, b in zip(report["params"], base[1]))
        bound = base[0] / median_step(run(1, args, args.n // procs)) if procs > 1 else 1.0
        print(f"{procs:>9} | {step:8.3f} | {base[0] / step:6.2f}x | {diff:21.2e} | "
              f"{bound:5.2f}x", flush=True)


def median_step(report: dict) -> float:
    """Median seconds per step, the first (warm-up, compile) left out."""
    return statistics.median(report["seconds"][1:])


if __name__ == "__main__":
    main()
