"""``fm.jit`` of a gradient by a list of examples' tuples (a batch given as
``[(a, b, c), ...]`` under ``fm.vmap``, the softmax cross-entropy of 3
logits each): first call, a later call and eager ``fm.grad``, and the
largest difference from eager.

    python benchmarks/tuple_batch.py                 # 10,000 and 20,000 examples
    python benchmarks/tuple_batch.py --sizes 4000

Round 48: each per-entry cotangent had gathered a whole batch row first
(members x batch entries), 0.63 s a call at 10,000 examples.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fmicrograd as fm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10000, 20000])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print("| examples | jit first call | jit later call | eager grad | max diff |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        z = [tuple(r) for r in rng.normal(0, 3, (n, 3)).tolist()]
        y = rng.integers(0, 3, n)

        def loss(z, y, n=n):
            per = fm.vmap(lambda a, b: fm.losses.softmax_cross_entropy(a, b))(z, y)
            return fm.sum(per) / n

        compiled = fm.jit(fm.grad(loss))
        t0 = time.perf_counter()
        compiled(z, y)
        t1 = time.perf_counter()
        got = compiled(z, y)
        t2 = time.perf_counter()
        want = fm.grad(loss)(z, y)
        t3 = time.perf_counter()
        diff = float(np.abs(np.array(got) - np.array(want)).max())
        print(f"| {n:,} | {t1 - t0:.2f} s | {t2 - t1:.3f} s | {t3 - t2:.3f} s | {diff:.1e} |",
              flush=True)


if __name__ == "__main__":
    main()
