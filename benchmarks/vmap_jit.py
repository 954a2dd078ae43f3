"""Time per call of ``vmap(jit(f))`` against ``vmap(f)`` for an MLP's
per-example loss (2-16-16-1), values and the gradient of the mean loss.

    PYTHONPATH=. python benchmarks/vmap_jit.py

Both rows of a size run in one process, so their ratio is what to read on a
noisy machine; times are CPU time of this process (``time.process_time``),
less sensitive to other processes than wall time, best of five rounds
that alternate the two calls.
"""

from __future__ import annotations

import time

import numpy as np

import fmicrograd as fm


def per_example(model: fm.nn.MLP, x: fm.Expr, y: fm.Expr) -> fm.Expr:
    return fm.relu(1.0 - y * model(x))


def seconds(a, b, reps: int) -> tuple[float, float]:  # noqa: ANN001 -- two calls
    """CPU seconds per call of ``a`` and of ``b``, best of five rounds that
    alternate them (so both see the same machine)."""
    a(), b()  # compile / warm up
    best = [float("inf"), float("inf")]
    for _ in range(5):
        for k, fn in enumerate((a, b)):
            t0 = time.process_time()
            for _ in range(reps):
                fn()
            best[k] = min(best[k], (time.process_time() - t0) / reps)
    return best[0], best[1]


def rows(model: fm.nn.MLP, n: int) -> dict:
    """name -> (jit-free call, call with jit inside vmap), over ``n`` points."""
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 2))
    Y = np.sign(rng.normal(size=n))
    plain = fm.vmap(per_example, in_axes=(None, 0, 0))
    jitted = fm.vmap(fm.jit(per_example), in_axes=(None, 0, 0))
    return {
        "values": (lambda: plain(model, X, Y), lambda: jitted(model, X, Y)),
        "grad of mean": (lambda: fm.grad(lambda m: fm.mean(plain(m, X, Y)))(model),
                         lambda: fm.grad(lambda m: fm.mean(jitted(m, X, Y)))(model)),
        "jit(grad of mean)": (jit_grad(plain, X, Y, model), jit_grad(jitted, X, Y, model)),
    }


def jit_grad(mapped, X, Y, model):  # noqa: ANN001, ANN201, N803 -- a benchmark helper
    step = fm.jit(fm.grad(lambda m, x, y: fm.mean(mapped(m, x, y))))
    return lambda: step(model, X, Y)


def main() -> None:
    model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(0))
    print("| points | call | vmap(f) | vmap(jit(f)) | ratio |")
    print("|---|---|---|---|---|")
    for n in (100, 1000):
        for name, (a, b) in rows(model, n).items():
            ta, tb = seconds(a, b, 20)
            print(f"| {n} | {name} | {ta * 1e3:.2f} ms | {tb * 1e3:.2f} ms | {tb / ta:.2f} |")


if __name__ == "__main__":
    main()
