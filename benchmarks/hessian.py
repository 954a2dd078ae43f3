"""Hessian benchmark: fmicrograd against torch, jax (with and without jit) and HIPS autograd.

    python benchmarks/hessian.py            # full run (~1 minute)
    python benchmarks/hessian.py --quick    # shorter timing budgets

Workloads, all float64, every system checked against fmicrograd's answer first:

1. The full Hessian of f(x) = sum_ij tanh(x_i x_j) for n = 10 and n = 30.
   fmicrograd's ``hessian`` (reverse over reverse) is shown next to the other
   compositions it could have used (forward over reverse, ``jacfwd(grad)``),
   which is how its choice was made.
2. A Hessian-vector product of the mean squared error of a 2-16-16-1 tanh MLP
   (337 parameters) on 16 points: fmicrograd's plain-tuple MLP (layers are
   tuples of ``(w_tuple, b)`` neurons), in three compositions, against
   ``torch.autograd.functional.hvp`` and ``jax.jvp(jax.grad)``.

Times are medians of repeated calls in one process; ratios are taken against
torch and against jax.jit in the same run (compare ratios, not absolute times
across machines).
"""

from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import fmicrograd as fm

HIDDEN = 16
N_POINTS = 16


def median_time(fn: Callable[[], Any], seconds: float, min_calls: int = 3) -> float:
    """Median seconds per call of ``fn`` after one warm-up call."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < min_calls or (time.perf_counter() < deadline and len(times) < 5000):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _flat(tree: Any) -> list[float]:
    """Nested tuples (or arrays) of numbers -> a flat list of floats."""
    if hasattr(tree, "tolist"):
        tree = tree.tolist()
    if isinstance(tree, (list, tuple)):
        return [v for item in tree for v in _flat(item)]
    return [float(tree)]


def _max_diff(a: Any, b: Any) -> float:
    fa, fb = _flat(a), _flat(b)
    if len(fa) != len(fb):
        return math.inf
    return max((abs(x - y) for x, y in zip(fa, fb)), default=0.0)


# ---------------------------------------------------------------- workload 1


def tanh_sum(x: tuple) -> Any:
    """sum_ij tanh(x_i x_j) on fmicrograd scalars."""
    return fm.sum([fm.tanh(a * b) for a in x for b in x])


def _jitted(f: Callable, *args: Any) -> Callable[[], Any]:
    """``fm.jit(f)`` called on ``args``, compiled before timing (the first call)."""
    compiled = fm.jit(f)
    compiled(*args)
    return lambda: compiled(*args)


def tanh_hessian_systems(n: int) -> list[tuple[str, Callable[[], Any]]]:
    x = tuple(0.1 + 0.8 * i / n for i in range(n))
    systems: list[tuple[str, Callable[[], Any]]] = [
        ("fmicrograd hessian (rev over rev)", lambda: fm.hessian(tanh_sum)(x)),
        ("fmicrograd jacfwd(grad) (fwd over rev)", lambda: fm.jacfwd(fm.grad(tanh_sum))(x)),
        ("fmicrograd jit(hessian)", _jitted(fm.hessian(tanh_sum), x)),
    ]
    try:
        import torch

        tx = torch.tensor(x, dtype=torch.float64)
        tf = lambda v: torch.tanh(torch.outer(v, v)).sum()
        systems.append(("torch.autograd.functional.hessian",
                        lambda: torch.autograd.functional.hessian(tf, tx)))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        jx = jnp.array(x, dtype=jnp.float64)
        jh = jax.hessian(lambda v: jnp.tanh(jnp.outer(v, v)).sum())
        jjh = jax.jit(jh)
        systems.append(("jax.hessian (no jit)", lambda: jh(jx).block_until_ready()))
        systems.append(("jax.jit(jax.hessian)", lambda: jjh(jx).block_until_ready()))
    except ImportError:
        pass
    try:
        import autograd
        import autograd.numpy as anp

        ax = anp.array(x)
        ah = autograd.hessian(lambda v: anp.sum(anp.tanh(anp.outer(v, v))))
        systems.append(("HIPS autograd.hessian", lambda: ah(ax)))
    except ImportError:
        pass
    return systems


# ---------------------------------------------------------------- workload 2


def _mlp_shapes() -> list[tuple[int, int]]:
    return [(2, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 1)]


def init_mlp(seed: int = 0) -> tuple:
    """Deterministic plain-tuple MLP: layers of ``(w_tuple, b)`` neurons."""
    layers, k = [], seed
    for nin, nout in _mlp_shapes():
        neurons = []
        for _ in range(nout):
            w = tuple(math.sin(1.7 * (k := k + 1)) / math.sqrt(nin) for _ in range(nin))
            neurons.append((w, 0.1 * math.cos(k := k + 1)))
        layers.append(tuple(neurons))
    return tuple(layers)


def mlp(params: tuple, x: tuple) -> Any:
    for i, layer in enumerate(params):
        x = [fm.dot(w, x) + b for w, b in layer]
        if i < len(params) - 1:
            x = [fm.tanh(v) for v in x]
    return x[0]


def make_data() -> tuple[tuple, tuple]:
    xs = tuple((math.cos(0.4 * i), math.sin(0.7 * i)) for i in range(N_POINTS))
    ys = tuple(1.0 if i % 2 else -1.0 for i in range(N_POINTS))
    return xs, ys


def mse(params: tuple, xs: tuple, ys: tuple) -> Any:
    return fm.mean([(mlp(params, x) - y) ** 2 for x, y in zip(xs, ys)])


def _to_arrays(params: tuple, xp: Any) -> list:
    """Plain-tuple MLP -> [W1, b1, W2, b2, W3, b3] arrays of module ``xp``."""
    out = []
    for layer in params:
        out.append(xp.asarray([list(w) for w, _ in layer], dtype=xp.float64))
        out.append(xp.asarray([b for _, b in layer], dtype=xp.float64))
    return out


def _array_loss(xp: Any, flat: Any, X: Any, Y: Any) -> Any:
    ws, k = [], 0
    for nin, nout in _mlp_shapes():
        W = flat[k:k + nin * nout].reshape(nout, nin)
        k += nin * nout
        b = flat[k:k + nout]
        k += nout
        ws.append((W, b))
    h = X
    for i, (W, b) in enumerate(ws):
        h = h @ W.T + b
        if i < len(ws) - 1:
            h = xp.tanh(h)
    return ((h[:, 0] - Y) ** 2).mean()


def _flatten_params(params: tuple) -> list[float]:
    # order per layer: all weights (row-major, neuron by neuron), then the biases
    flat: list[float] = []
    for layer in params:
        flat += [v for w, _ in layer for v in w]
        flat += [b for _, b in layer]
    return flat


def _tree_dot(a: Any, b: Any) -> Any:
    return fm.dot(fm.tree.leaves(a), fm.tree.leaves(b))


def hvp_systems() -> list[tuple[str, Callable[[], Any]]]:
    params = init_mlp()
    xs, ys = make_data()
    v = fm.tree.map(lambda p: 0.01 * math.cos(3.0 * p), params)
    loss = lambda p: mse(p, xs, ys)
    # reorder fmicrograd's answer like the flat arrays: (W1, b1, W2, b2, W3, b3)
    as_flat = lambda hv: _flatten_params(hv)
    systems: list[tuple[str, Callable[[], Any]]] = [
        ("fmicrograd jvp(grad) (fwd over rev)",
         lambda: as_flat(fm.jvp(fm.grad(loss), (params,), (v,))[1])),
        ("fmicrograd grad(jvp) (rev over fwd)",
         lambda: as_flat(fm.grad(lambda p: fm.jvp(loss, (p,), (v,))[1])(params))),
        ("fmicrograd grad(<grad, v>) (rev over rev)",
         lambda: as_flat(fm.grad(lambda p: _tree_dot(fm.grad(loss)(p), v))(params))),
        ("fmicrograd jit(jvp(grad))",
         _jitted(lambda p, t: as_flat(fm.jvp(fm.grad(loss), (p,), (t,))[1]), params, v)),
    ]
    flat_p, flat_v = _flatten_params(params), _flatten_params(v)
    try:
        import torch

        tp = torch.tensor(flat_p, dtype=torch.float64)
        tv = torch.tensor(flat_v, dtype=torch.float64)
        TX, TY = torch.tensor(xs, dtype=torch.float64), torch.tensor(ys, dtype=torch.float64)
        tl = lambda p: _array_loss(torch, p, TX, TY)
        systems.append(("torch.autograd.functional.hvp",
                        lambda: torch.autograd.functional.hvp(tl, tp, tv)[1]))
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        jp, jv = jnp.array(flat_p), jnp.array(flat_v)
        JX, JY = jnp.array(xs), jnp.array(ys)
        jl = lambda p: _array_loss(jnp, p, JX, JY)
        jhvp = lambda p, t: jax.jvp(jax.grad(jl), (p,), (t,))[1]
        jjhvp = jax.jit(jhvp)
        systems.append(("jax.jvp(jax.grad) (no jit)", lambda: jhvp(jp, jv).block_until_ready()))
        systems.append(("jax.jit(jvp(grad))", lambda: jjhvp(jp, jv).block_until_ready()))
    except ImportError:
        pass
    return systems


# ---------------------------------------------------------------- report


def run(name: str, systems: list, seconds: float) -> list[tuple[str, str, float, float]]:
    # Objects that exist now (imported frameworks, jax caches: ~10^5 of them) would be
    # rescanned by every full collection triggered while a graph is being built; freeze
    # them so each system pays only for the objects it creates itself.
    gc.collect()
    gc.freeze()
    reference = systems[0][1]()
    rows = []
    for label, fn in systems:
        diff = _max_diff(fn(), reference)
        if diff > 1e-9:
            raise AssertionError(f"{name}: {label} disagrees with fmicrograd by {diff:.3g}")
        rows.append((name, label, median_time(fn, seconds), diff))
    return rows


def print_table(rows: list) -> None:
    print(f"{'workload':<26} {'system':<42} {'time':>11} {'x torch':>9} {'x jax.jit':>10}")
    for workload in dict.fromkeys(r[0] for r in rows):
        group = [r for r in rows if r[0] == workload]
        torch_t = next((t for _, s, t, _ in group if s.startswith("torch")), None)
        jit_t = next((t for _, s, t, _ in group if s.startswith("jax.jit")), None)
        for _, system, t, _ in group:
            rt = f"{t / torch_t:9.2f}" if torch_t else f"{'-':>9}"
            rj = f"{t / jit_t:10.1f}" if jit_t else f"{'-':>10}"
            print(f"{workload:<26} {system:<42} {_fmt(t):>11} {rt} {rj}")
        print()


def _fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budgets")
    args = parser.parse_args(argv)
    try:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 everywhere, like the others
    except ImportError:
        pass
    seconds = 0.5 if args.quick else 2.0
    rows = []
    for n in (10, 30):
        rows += run(f"hessian tanh-sum n={n}", tanh_hessian_systems(n), seconds)
    rows += run("MLP 2-16-16-1 loss HVP", hvp_systems(), seconds)
    print("All systems agree with fmicrograd to 1e-9 (max abs difference checked first).\n")
    print_table(rows)


if __name__ == "__main__":
    main()
