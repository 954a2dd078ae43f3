"""A long scalar chain under ``fm.jit``: first call (trace + compile), a later
call, and the process's peak memory, each size in a fresh process.

    python benchmarks/jit_chain.py                          # 10,000 and 30,000 steps
    python benchmarks/jit_chain.py --steps 30000 --against /path/to/other/checkout

A step is ``x = fm.sin(x) * 0.999 + 0.001`` (three operations): nothing to
batch, so since round 31 it compiles to straight-line float code, where array
code made one numpy call per operation. With ``--against`` the two checkouts
run alternately, as in ``compile_time.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from checkout import HERE, last_floats  # noqa: E402

ONE_SIZE = """
import resource, sys, time
import fmicrograd as fm
n = int(sys.argv[1])
def f(x):
    for _ in range(n):
        x = fm.sin(x) * 0.999 + 0.001
    return x
j = fm.jit(f)
start = time.perf_counter(); first = j(0.5); first_s = time.perf_counter() - start
assert first == f(0.5)
calls = []
for k in range(5):
    start = time.perf_counter(); j(0.5 + k / 100); calls.append(time.perf_counter() - start)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(first_s, min(calls) * 1e3, peak)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="*", type=int, default=[10000, 30000])
    parser.add_argument("--repeat", type=int, default=2, help="best of this many processes")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    roots = {"new": HERE} if args.against is None else {"old": args.against, "new": HERE}
    print("| steps (operations) | " + " | ".join(
        f"{tag} first call s | {tag} later call ms | {tag} peak MB" for tag in roots) + " |")
    print("|---" * (1 + 3 * len(roots)) + "|")
    for n in args.steps:
        best = {tag: [float("inf")] * 3 for tag in roots}
        for _ in range(args.repeat):
            for tag, root in roots.items():
                got = last_floats(root, ONE_SIZE, str(n))
                best[tag] = [min(a, b) for a, b in zip(best[tag], got)]
        cells = [f"{best[t][0]:.2f} | {best[t][1]:.1f} | {best[t][2]:.0f}" for t in roots]
        print(f"| {n:,} ({3 * n:,}) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
