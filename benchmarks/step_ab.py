"""fm's compiled step per row of ``scale.py``, this checkout against another:
the rows run in fresh processes, alternately in each checkout, so both see the
same machine load.

    python benchmarks/step_ab.py --against /path/to/other/checkout
    python benchmarks/step_ab.py --against ../old --rows 16-128-128-1x1000 --repeat 5
    python benchmarks/step_ab.py --against . --env OPENBLAS_CORETYPE=SkylakeX
        # this checkout against itself, the "new" processes with that variable set
    python benchmarks/step_ab.py --against . --unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
        # the "new" processes without them: numpy's OpenBLAS on the kernels it picks
        # itself, where the machine's environment sets others

Each process times the step of ``scale.fm_step`` (the jitted SGD step, the
parameter pytree in and out) and its compiled program alone (``run`` on the
input vector, as ``fm.jit`` calls it), medians over about a second each. The
table gives, per checkout, the best and worst of ``--repeat`` processes, and
the ratio new / old of the best ones; a machine whose speed drifts shows as a
wide best-worst range in both columns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402
from checkout import HERE, last_floats  # noqa: E402

ONE_ROW = """
import sys
sys.path.insert(0, "benchmarks")
import scale
from run import median_step
from fmicrograd.compiler.compile import _inputs
from fmicrograd.compiler.threads import single_thread
row = [r for r in scale.ROWS if r.name == sys.argv[1]][0]
step, _, _ = scale.fm_step(row)
step_s = median_step(step, 20, 1.0)
x, y, layers = scale.data(row)
update, params = scale.fm_update(row), scale.fm_params(layers)
update(params, x, y)
entry = update._entries.order[0]
run, _, vector, _ = entry.variants[0]
inputs = _inputs(*entry.match((params, x, y), {}))
arg = inputs if vector else inputs.tolist()
program_s = median_step(lambda: single_thread(run, arg), 20, 1.0)
print(step_s, program_s)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="*", help="row names (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="processes per row and checkout")
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="environment variables for this checkout's processes only")
    parser.add_argument("--unset", nargs="*", default=[], metavar="NAME",
                        help="environment variables this checkout's processes run without")
    args = parser.parse_args()
    env: dict = dict(item.split("=", 1) for item in args.env)
    env.update(dict.fromkeys(args.unset))
    rows = args.rows or [r.name for r in scale.ROWS]
    roots = {"old": args.against, "new": HERE}
    print(f"load average {os.getloadavg()[0]:.2f}; ms, best-worst of {args.repeat} processes"
          + "".join(f"; new: {k}={v}" if v is not None else f"; new: {k} unset"
                    for k, v in env.items()))
    print("| row | old step | new step | old program | new program | new / old step "
          "| new / old program |")
    print("|---" * 7 + "|")
    for row in rows:
        seen: dict = {tag: [] for tag in roots}
        for _ in range(args.repeat):
            for tag, root in roots.items():
                seen[tag].append(last_floats(root, ONE_ROW, row,  # step, program
                                             env=env if tag == "new" else None))
        cells = []
        for k in (0, 1):
            for tag in roots:
                times = [t[k] * 1e3 for t in seen[tag]]
                cells.append(f"{min(times):.3f}-{max(times):.3f}")
        for k in (0, 1):
            best = {tag: min(t[k] for t in seen[tag]) for tag in roots}
            cells.append(f"{best['new'] / best['old']:.2f}")
        print(f"| {row} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
