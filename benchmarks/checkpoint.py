"""Peak memory of reverse mode with and without ``fm.checkpoint``.

    python benchmarks/checkpoint.py            # depth 200 x 50 (~20 s)
    python benchmarks/checkpoint.py --quick    # depth 40 x 50

Workloads, all float64, peaks measured with ``tracemalloc`` (Python heap
allocations, the graph's nodes included) from a collected heap:

1. ``grad`` of a deep chain: ``segments`` blocks of ``block_len`` steps
   ``x = tanh(x * w + 0.1)``, plain, and with each block ``fm.checkpoint``-ed.
2. The Hessian (reverse over reverse, 2 x 2) of the same chain, shorter.

The checkpointed chain keeps one node per block while the forward graph is
alive, and each block's inner nodes only while the reverse sweep is inside
it; the price is one more forward pass of each block per sweep (time shown).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import fmicrograd as fm


def block(x: Any, w: Any, length: int) -> Any:
    for _ in range(length):
        x = fm.tanh(x * w + 0.1)
    return x


def chain(segments: int, length: int, remat: bool) -> Callable:
    step = fm.checkpoint(block, static_argnums=(2,)) if remat else block

    def f(x: Any, w: Any) -> Any:
        for _ in range(segments):
            x = step(x, w, length)
        return x * x

    return f


def peak(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(peak MiB, seconds, result) of one call, from a collected heap."""
    gc.collect()
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()
        seconds = time.perf_counter() - start
        return tracemalloc.get_traced_memory()[1] / 2 ** 20, seconds, result
    finally:
        tracemalloc.stop()


def row(name: str, plain: tuple, remat: tuple) -> str:
    return (f"{name:<34} {plain[0]:>9.2f} {remat[0]:>9.2f} {plain[0] / remat[0]:>7.1f}x "
            f"{plain[1]:>8.2f} {remat[1]:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter chain")
    args = parser.parse_args()
    segments, length = (40, 50) if args.quick else (200, 50)
    x, w = 0.3, 1.2
    print(f"{'workload':<34} {'MiB':>9} {'MiB ckpt':>9} {'saved':>8} {'s':>8} {'s ckpt':>8}")
    results = []
    for remat in (False, True):
        f = chain(segments, length, remat)
        results.append(peak(lambda f=f: fm.grad(f, argnums=(0, 1))(x, w)))
    assert results[0][2] == results[1][2], "checkpointing changed the gradient"
    print(row(f"grad, chain of {segments * length} steps", *results))
    h_segments = max(segments // 10, 2)
    results = []
    for remat in (False, True):
        f = chain(h_segments, length, remat)
        results.append(peak(lambda f=f: fm.hessian(f, argnums=(0, 1))(x, w)))
    for a, b in zip(results[0][2], results[1][2]):
        assert all(abs(p - q) <= 1e-12 * max(1.0, abs(p)) for p, q in zip(a, b)), (a, b)
    print(row(f"hessian, chain of {h_segments * length} steps", *results))


if __name__ == "__main__":
    main()
