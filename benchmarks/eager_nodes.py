"""Eager cost per graph node: first-order sweep against higher-order sweeps.

    python benchmarks/eager_nodes.py            # ~1 minute
    python benchmarks/eager_nodes.py --quick    # fewer repeats

For the two workloads of ``benchmarks/hessian.py`` (sum_ij tanh(x_i x_j) at
n = 30, and the MSE of a 2-16-16-1 tanh MLP on 16 points) this times, in one
process, each stage of eager differentiation and divides by the number of
graph nodes the stage builds or visits:

- ``forward build``: running the function on variables (nodes built);
- ``reverse, floats``: the first-order sweep (nodes swept, floats out);
- ``reverse, on graph``: the same sweep when an enclosing transform needs the
  gradient as a graph (nodes swept; and per node it builds, with the count of
  built nodes per op: each node's contributions become one ``dot`` for the
  products and one ``sum`` for the rest, see ``fmicrograd/core/accumulate.py``);
- ``outer forward`` / ``outer reverse``: the sweeps of the enclosing
  transform over that gradient graph (HVP = jvp of grad; a Hessian row);

beside the CPython floor (building a slots object with the constructor the
graph uses, a tuple, a dict store) and the end-to-end rows of
``benchmarks/hessian.py`` with torch's time for the same workload. Nodes are
counted by walking the graph iteratively. Each figure is the median of
repeated runs with the spread (min-max over the repeats) beside it; the
machine may be loaded, so compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hessian as hb  # noqa: E402

import fmicrograd as fm  # noqa: E402
from fmicrograd.core import sweep  # noqa: E402
from fmicrograd.core.expr import Expr, next_level, node, variable  # noqa: E402


def count_nodes(roots: list, stop: set | None = None) -> set:
    """Every node reachable from ``roots`` (iteratively), not entering ``stop``."""
    stop = stop or set()
    seen: set = set()
    stack = [r for r in roots if isinstance(r, Expr)]
    while stack:
        n = stack.pop()
        if n in seen or n in stop:
            continue
        seen.add(n)
        stack.extend(n.children)
    return seen


def timed(fn: Callable[[], Any], repeats: int, inner: int = 1) -> tuple[float, float, float]:
    """(median, min, max) seconds per call over ``repeats`` batches of ``inner``."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times), min(times), max(times)


def _row(label: str, t: tuple, count: int, what: str) -> None:
    med, lo, hi = (1e9 * s / max(count, 1) for s in t)
    print(f"  {label:<34} {count:>7} {what:<7} {med:8.0f} ns/node  "
          f"[{lo:.0f}-{hi:.0f}]  ({t[0] * 1e3:.2f} ms)")


def stages(name: str, f: Callable[[list], Any], values: list, tangents: list,
           repeats: int) -> None:
    """Per-node costs of ``f``'s first-order and higher-order eager sweeps."""
    print(f"{name}: {len(values)} inputs")
    # first order: the function's graph and a float sweep over it
    lv = next_level()
    xs = [variable(v, lv) for v in values]
    out = f(xs)
    fwd = count_nodes([out], set(xs))
    plan = sweep.order([out], xs)
    _row("forward build", timed(lambda: f(xs), repeats), len(fwd), "built")
    _row("reverse, floats (first order)", timed(lambda: sweep.reverse([out], [1.0], xs),
                                               repeats), len(plan[0]), "swept")
    # higher order: inputs stand for an enclosing transform's variables, so the
    # sweep builds the gradient as a graph
    outer_lv = next_level()
    outer = [variable(v, outer_lv) for v in values]
    inner_lv = next_level()
    inner = [variable(v.value, inner_lv, source=v) for v in outer]
    out2 = f(inner)
    grads = sweep.reverse([out2], [1.0], inner)[0]
    plan2 = sweep.order([out2], inner)
    built = count_nodes(grads, count_nodes([out2]) | set(outer))
    t = timed(lambda: sweep.reverse([out2], [1.0], inner), repeats)
    _row("reverse, on graph (swept)", t, len(plan2[0]), "swept")
    _row("reverse, on graph (built)", t, len(built), "built")
    # the enclosing transform's sweeps over the gradient graph
    fplan = sweep.order(grads, outer)
    _row("outer forward (HVP column)", timed(
        lambda: sweep.forward(grads, outer, tangents, fplan), repeats), len(fplan[0]), "swept")
    rplan = sweep.order([grads[0]], outer)
    _row("outer reverse (Hessian row 0)", timed(
        lambda: sweep.reverse([grads[0]], [1.0], outer), repeats), len(rplan[0]), "swept")
    print(f"  built by the on-graph sweep per forward node: {len(built) / len(fwd):.2f} "
          f"({_by_op(built)})")
    links = sum(len(n.children) for n in fplan[0])
    print(f"  child links the outer forward sweep follows: {links} "
          f"({links / len(fplan[0]):.1f} per node; an n-ary node costs per link)")


def _by_op(nodes: set) -> str:
    counts = Counter(n.op for n in nodes)
    return ", ".join(f"{op} {k}" for op, k in counts.most_common())


def floor(repeats: int) -> None:
    """CPython's own cost of the steps a node needs, for scale."""
    a, b = fm.Var(1.0), fm.Var(2.0)
    n = 10_000
    d: dict = {}
    rows = [
        ("node(): slots object + 3 fields", lambda: [node("+", 1.0, (a, b)) for _ in range(n)]),
        ("tuple of two", lambda: [(a, b) for _ in range(n)]),
        ("dict store", lambda: [d.__setitem__(i, a) for i in range(n)]),
        ("a * b on nodes (operator)", lambda: [a * b for _ in range(n)]),
        ("1.0 * 2.0 floats, loop", lambda: [1.0 * 2.0 for _ in range(n)]),
    ]
    print("CPython floor (per item, in a list comprehension of 10k):")
    for label, fn in rows:
        med, lo, hi = (1e9 * s / n for s in timed(fn, repeats))
        print(f"  {label:<34} {med:8.0f} ns  [{lo:.0f}-{hi:.0f}]")


def end_to_end(seconds: float) -> None:
    """The eager and torch rows of ``benchmarks/hessian.py``, same process."""
    print("End to end (benchmarks/hessian.py workloads):")
    for name, systems in (("hessian tanh-sum n=30", hb.tanh_hessian_systems(30)),
                          ("MLP 2-16-16-1 loss HVP", hb.hvp_systems())):
        chosen = [(label, fn) for label, fn in systems
                  if (label.startswith("fmicrograd") and "jit" not in label)
                  or label.startswith("torch")]
        times = {label: hb.median_time(fn, seconds) for label, fn in chosen}
        torch_t = next((t for label, t in times.items() if label.startswith("torch")), None)
        for label, t in times.items():
            ratio = f"{t / torch_t:7.1f}x torch" if torch_t else ""
            print(f"  {name:<24} {label:<42} {t * 1e3:8.2f} ms {ratio}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 15
    try:
        import jax

        jax.config.update("jax_enable_x64", True)  # float64, as benchmarks/hessian.py
    except ImportError:
        pass
    gc.collect()
    gc.freeze()  # imported modules are not rescanned by each collection
    if hasattr(os, "getloadavg"):
        print(f"load average: {os.getloadavg()[0]:.1f}\n")
    floor(repeats)
    print()
    n = 30
    x = [0.1 + 0.8 * i / n for i in range(n)]
    stages("tanh-sum n=30", hb.tanh_sum, x, [1.0] + [0.0] * (n - 1), repeats)
    print()
    params = hb.init_mlp()
    xs, ys = hb.make_data()
    leaves, treedef = fm.tree.flatten(params)
    loss = lambda flat: hb.mse(fm.tree.unflatten(treedef, flat), xs, ys)
    v = [0.01 * hb.math.cos(3.0 * p) for p in leaves]
    stages("MLP 2-16-16-1 MSE", loss, leaves, v, repeats)
    print()
    end_to_end(0.5 if args.quick else 2.0)


if __name__ == "__main__":
    main()
