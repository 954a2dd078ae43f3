"""The cost of fit's monitoring (history statistics and detectors) on
micrograd's moons demo under ``jit``: seconds per epoch (one full-batch step
each) with ``monitor=True`` against ``monitor=False``, in one process,
runs interleaved, compile time excluded (the first epoch is not timed). On a
shared machine the mean is dominated by preemptions and collector pauses, so
the figure is the median epoch (the mean is printed too).
Usage: python benchmarks/monitoring.py [--runs N] [--epochs E]
"""

from __future__ import annotations

import argparse
import statistics
import time

import fmicrograd as fm
from fmicrograd.cli import accuracy


def loss(model, batch):
    xs, ys = batch
    return fm.losses.hinge([model(x) for x in xs], ys) + 1e-4 * fm.losses.l2(model)


def epoch_seconds(monitor: bool, epochs: int, data: dict, model: fm.nn.MLP,
                  metrics: dict) -> list[float]:
    """The duration of every epoch but the first (which compiles)."""
    marks: list[float] = []
    fm.train.fit(loss, model, fm.optim.sgd(fm.optim.micrograd_schedule(1.0, 0.9, epochs)),
                 epochs=epochs, **data, jit=True, monitor=monitor, metrics=metrics,
                 callback=lambda epoch, p, row: marks.append(time.perf_counter()))
    return [b - a for a, b in zip(marks, marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="minibatches (several steps per epoch) instead of the full batch")
    parser.add_argument("--accuracy", action="store_true",
                        help="also compute the training accuracy each epoch, as the command "
                        "line's demo does")
    args = parser.parse_args()
    metrics = {"accuracy": accuracy} if args.accuracy else {}
    xs, ys = fm.datasets.moons(100, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(0))
    data = ({"data": [(xs, ys)]} if args.batch_size is None else
            {"data": (xs, ys), "batch_size": args.batch_size, "key": fm.random.key(1)})
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.runs):
        for monitor in (False, True):
            times[monitor] += epoch_seconds(monitor, args.epochs, data, model, metrics)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    steps = 1 if args.batch_size is None else -(-100 // args.batch_size)
    print(f"moons demo, jit, {args.runs} runs x {args.epochs} epochs, {steps} step(s) each"
          f"{', accuracy metric' if args.accuracy else ''}")
    for name, t in (("monitor=False", times[False]), ("monitor=True ", times[True])):
        print(f"  {name}: median {1e3 * statistics.median(t):.3f} ms/epoch, "
              f"mean {1e3 * statistics.fmean(t):.3f}")
    print(f"  overhead (medians): {100 * (on / off - 1):+.1f}%")


if __name__ == "__main__":
    main()
