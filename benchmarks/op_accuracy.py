"""Worst error of every op of ``fm.testing.OPS`` against torch float64.

    python benchmarks/op_accuracy.py            # 2001 points per op (~1 minute)
    python benchmarks/op_accuracy.py --quick    # 201 points per op

For each op, on an even grid over its domain (the test domain of ``OPS``,
widened below to nearly the whole domain where the op has one; n-ary ops:
every argument stepping through its own interval, at shifted phases), the value, the
gradient and the Hessian from fmicrograd are compared with torch's
(``torch.autograd``) on the same inputs. The error is in units of the
reference: ``|fm - torch| / max(|torch|, 1)``, the worst over the grid and over
the gradient's and Hessian's entries. Also: the array ``erf``/``erfc`` (which
``vmap`` and the batched ``jit`` backend use) against torch's on a wider grid.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

import fmicrograd as fm
from fmicrograd.core import numeric as num
from fmicrograd.testing import OPS

_U = (-0.9999, 0.9999)
WIDE = {"tan": [(-1.57, 1.57)], "sinh": [(-700.0, 700.0)], "cosh": [(-700.0, 700.0)],
        "asin": [_U], "acos": [_U], "atanh": [_U], "acosh": [(1.0001, 1e3)],
        "atan": [(-1e3, 1e3)], "asinh": [(-1e3, 1e3)], "erf": [(-6.0, 6.0)],
        "erfc": [(-6.0, 26.0)], "log1p": [(-0.9999, 1e6)], "expm1": [(-700.0, 700.0)],
        "log2": [(1e-6, 1e6)], "log10": [(1e-6, 1e6)], "softplus": [(-700.0, 700.0)],
        "log_sigmoid": [(-700.0, 700.0)], "hypot": [(-1e3, 1e3), (-1e3, 1e3)],
        "atan2": [(-10.0, 10.0), (-10.0, 10.0)],
        "logsumexp": [(-700.0, 700.0)] * 3, "softmax": [(-700.0, 700.0)] * 3,
        "log_softmax": [(-700.0, 700.0)] * 3}


def _error(got: float, want: float) -> float:
    if math.isnan(want) and math.isnan(got):
        return 0.0
    return abs(got - want) / max(abs(want), 1.0)


def _torch(case: fm.testing.OpCase, args: tuple) -> tuple[float, list, list]:
    ts = tuple(torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args)
    out = case.torch(torch, *ts)
    grads = torch.autograd.grad(out, ts, create_graph=True, allow_unused=True)
    hess = []
    for g in grads:
        if g is None or not g.requires_grad:
            hess.append([0.0] * len(ts))
            continue
        row = torch.autograd.grad(g, ts, retain_graph=True, allow_unused=True)
        hess.append([0.0 if h is None else h.item() for h in row])
    return out.item(), [0.0 if g is None else g.item() for g in grads], hess


def worst(op: str, points: int) -> tuple[float, float, float]:
    case = OPS[op]
    n = len(case.domain)
    nums = tuple(range(n))
    grad = fm.grad(case.call, argnums=nums)
    hess = fm.hessian(case.call, argnums=nums)
    errs = [0.0, 0.0, 0.0]
    domain = WIDE.get(op, case.domain)
    for s in np.linspace(0.0, 1.0, points):
        args = tuple(float(lo + (hi - lo) * ((s + 0.37 * i) % 1.0))
                     for i, (lo, hi) in enumerate(domain))
        value, g, h = _torch(case, args)
        errs[0] = max(errs[0], _error(case.call(*args), value))
        errs[1] = max([errs[1]] + [_error(a, b) for a, b in zip(grad(*args), g)])
        errs[2] = max([errs[2]] + [_error(a, b) for ra, rb in zip(hess(*args), h)
                                   for a, b in zip(ra, rb)])
    return errs[0], errs[1], errs[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="201 points per op")
    args = parser.parse_args()
    points = 201 if args.quick else 2001
    print(f"{'op':<14} {'value':>9} {'gradient':>9} {'Hessian':>9}  domain")
    for op in sorted(OPS):
        v, g, h = worst(op, points)
        domain = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in WIDE.get(op, OPS[op].domain))
        print(f"{op:<14} {v:>9.1e} {g:>9.1e} {h:>9.1e}  {domain}")
    xs = np.linspace(-30.0, 30.0, 200001)
    ref = torch.tensor(xs, dtype=torch.float64)
    for name, mine, theirs in (("erf", num.erf, torch.erf), ("erfc", num.erfc, torch.erfc)):
        want = theirs(ref).numpy()
        rel = np.abs(mine(xs) - want) / np.maximum(np.abs(want), np.finfo(float).tiny)
        print(f"array {name} on [-30, 30]: worst relative error {rel.max():.1e} "
              f"(absolute {np.abs(mine(xs) - want).max():.1e})")


if __name__ == "__main__":
    main()
