"""Where a compiled step's time goes, against what this machine's Python and
numpy cannot go below: the floors behind ``scale.py``'s ratios.

    python benchmarks/floor.py                            # three rows
    python benchmarks/floor.py --rows "12-160-160-1x300 tanh"

Per row, in one process:

- **compile:** the first call of ``scale.fm_update`` (trace + compile), the
  traced graph's nodes and edges, and a bare Python walk over that graph (a
  stack and a set of ids, nothing else): the least any one compile pass over
  the scalar graph can cost here. A compile makes about four such passes
  (trace, reverse sweep, lowering, batching).
- **step:** the compiled program (uncut: one thread), each generated line timed
  on its own over repeated calls, summed by kind: matrix products (``@``),
  transcendental ufuncs (``tanh``, ``exp``, ``log``), and the rest (each a
  numpy call on a small array).

Then this machine's numpy: the cost of one ufunc call on a 16 x 100 array, and
``tanh`` and ``exp`` per entry of a 160 x 300 array (numpy vectorizes ``exp``
with AVX2 but calls the C library's ``tanh`` entry by entry unless it has
AVX-512). These move fm's ratios to jax.jit, whose XLA code has neither cost,
more than anything in fmicrograd.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402

DEFAULT_ROWS = ["2-16-16-1x100", "12-160-160-1x300 tanh", "64-256-256-10x1000"]
_KINDS = (("matmul", re.compile(r"@")), ("tanh/exp/log", re.compile(r"_np\.(tanh|exp|log)\(")))


def bare_walk(roots: list) -> tuple[float, int, int]:
    """Seconds to visit every node under ``roots`` once, and the nodes and edges."""
    start = time.perf_counter()
    seen: set = set()
    stack = list(roots)
    edges = 0
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        edges += len(n.children)
        stack.extend(n.children)
    return time.perf_counter() - start, len(seen), edges


def compile_row(row: scale.Row) -> tuple[dict, object, object]:
    """The first call's seconds and the graph's figures; the compiled run
    function (uncut) and its input vector."""
    from fmicrograd.compiler import compile as C
    from fmicrograd.compiler import ir, split

    found: dict = {}
    walk, single = ir._walk, C.single_thread

    def counting_walk(p, roots, *rest):  # type: ignore[no-untyped-def]
        found["walk_s"], found["nodes"], found["edges"] = bare_walk(roots)
        return walk(p, roots, *rest)

    def capture(run, flat):  # type: ignore[no-untyped-def]
        if hasattr(run, "__fm_source__"):  # (a later call may run ``run.fill``)
            found["run"], found["inputs"] = run, flat
        return single(run, flat)

    ir._walk, C.single_thread, before = counting_walk, capture, split.MIN_WORK
    split.MIN_WORK = 10**18  # one thread: the program's own lines
    try:
        x, y, layers = scale.data(row)
        update, params = scale.fm_update(row), scale.fm_params(layers)
        start = time.perf_counter()
        update(params, x, y)
        first = time.perf_counter() - start
        update(params, x, y)  # (the compiled path, to capture its input vector)
    finally:
        ir._walk, C.single_thread, split.MIN_WORK = walk, single, before
    found["first_s"] = first - found["walk_s"]  # (the extra walk is not the compile's)
    return found, found["run"], found["inputs"]


def line_times(run: object, inputs: object, calls: int) -> tuple[dict, float]:
    """Milliseconds per call by kind of line, and the plain call's."""
    source: str = run.__fm_source__  # type: ignore[attr-defined]
    lines = source.splitlines()
    body = [x.strip() for x in lines[2:] if x.strip() and not x.strip().startswith("return")]
    timed = ["def timed(I, T, clock):", "    with _errstate(all='ignore'):"]
    for k, line in enumerate(body):
        timed += ["        t = clock()", "        " + line, f"        T[{k}] += clock() - t"]
    from fmicrograd.compiler.autobatch import NUMPY

    namespace = NUMPY | dict(run.__globals__)  # type: ignore[attr-defined]
    for cell in getattr(run, "__closure__", None) or ():  # (``hoist.held``: the body's names)
        body_fn = cell.cell_contents
        if callable(body_fn) and "_np" in getattr(body_fn, "__globals__", {}):
            namespace |= body_fn.__globals__
    exec("\n".join(timed), namespace)
    from fmicrograd.compiler.threads import single_thread  # (one BLAS thread, as compiled)

    totals = [0.0] * len(body)
    for _ in range(3):
        single_thread(lambda i: namespace["timed"](i, [0.0] * len(body), time.perf_counter),
                      inputs)
    for _ in range(calls):
        single_thread(lambda i: namespace["timed"](i, totals, time.perf_counter), inputs)
    kinds = {name: 0.0 for name, _ in _KINDS} | {"other": 0.0}
    counts = dict.fromkeys(kinds, 0)
    for line, t in zip(body, totals):
        kind = next((name for name, pattern in _KINDS if pattern.search(line)), "other")
        kinds[kind] += t / calls * 1e3
        counts[kind] += 1
    start = time.perf_counter()
    for _ in range(calls):
        single_thread(run, inputs)  # type: ignore[arg-type]
    whole = (time.perf_counter() - start) / calls * 1e3
    return {k: (kinds[k], counts[k]) for k in kinds}, whole


def numpy_floor() -> str:
    import numpy as np

    small = np.random.default_rng(0).standard_normal((16, 100))
    wide = np.random.default_rng(1).standard_normal((160, 300))
    out = np.empty_like(wide)

    def best(f: object, n: int) -> float:
        return min(timeit.repeat(f, number=n, repeat=5)) / n  # type: ignore[arg-type]

    call = best(lambda: np.multiply(small, small), 2000) * 1e6
    tanh = best(lambda: np.tanh(wide, out=out), 50) / wide.size * 1e9
    exp = best(lambda: np.exp(wide, out=out), 50) / wide.size * 1e9
    return (f"numpy here: one ufunc call on 16 x 100 {call:.2f} us; tanh {tanh:.1f} ns and exp "
            f"{exp:.1f} ns per entry of 160 x 300")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", default=DEFAULT_ROWS)
    parser.add_argument("--calls", type=int, default=30, help="timed calls of each program")
    args = parser.parse_args()
    from fmicrograd.compiler.threads import cpu

    print(f"{cpu()}; Python {sys.version.split()[0]}")
    print(numpy_floor())
    print("| row | nodes | edges | bare walk | compile | compile / walk | step (1 thread) | "
          "matmul | tanh/exp/log | other lines |")
    print("|---" * 10 + "|")
    for name in args.rows:
        row = next(r for r in scale.ROWS if r.name == name)
        found, run, inputs = compile_row(row)
        calls = max(3, args.calls if row.params < 50_000 else args.calls // 3)
        kinds, whole = line_times(run, inputs, calls)
        cells = [f"{kinds[k][0]:.3f} ms ({kinds[k][1]})" for k in ("matmul", "tanh/exp/log",
                                                                    "other")]
        print(f"| {name} | {found['nodes']:,} | {found['edges']:,} | {found['walk_s']:.2f} s | "
              f"{found['first_s']:.2f} s | {found['first_s'] / found['walk_s']:.1f} | "
              f"{whole:.3f} ms | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
