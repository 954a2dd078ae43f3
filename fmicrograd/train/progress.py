"""Progress of a training run: a bar redrawn in place on a terminal, one
line per epoch anywhere else (a log file, a pipe, a notebook cell), each
with the elapsed time, the rate and the time left.

Metrics print in a fixed order: ``loss`` first, then in the order the
history holds them, never in a mapping's hash order.

>>> import io
>>> log = io.StringIO()
>>> p = Progress(2, log, clock=iter([0.0, 1.0, 2.0]).__next__)
>>> p.update(1, {"loss": 0.5}); p.update(2, {"loss": 0.25}); p.close()
>>> print(log.getvalue(), end="")
epoch 1/2 [############------------] loss 0.5000  1.0s elapsed, 1.00 epoch/s, ETA 1.0s
epoch 2/2 [########################] loss 0.2500  2.0s elapsed, 1.00 epoch/s, ETA 0.0s
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

__all__ = ["progress_bar", "Progress", "format_metrics", "history_order", "format_history"]

_FIRST = ("loss", "grad_norm", "update_norm", "param_norm")


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """``name value`` pairs of the numeric metrics, ``loss`` first.

    >>> format_metrics({"accuracy": 0.5, "loss": 1.25, "events": ()})
    'loss 1.2500  accuracy 0.5000'
    """
    names = sorted(metrics, key=lambda k: k != "loss")  # stable: keeps the given order
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in names
                     if isinstance(metrics[k], (int, float)) and not isinstance(metrics[k], bool))


def progress_bar(epoch: int, epochs: int, metrics: Mapping[str, float], width: int = 24) -> str:
    """One line of the text progress bar ``fit`` draws with ``progress=True``.

    >>> fm.train.progress_bar(3, 4, {"loss": 0.25})
    'epoch 3/4 [##################------] loss 0.2500'
    """
    filled = width * epoch // max(epochs, 1)
    return (f"epoch {epoch}/{epochs} [{'#' * filled}{'-' * (width - filled)}] "
            f"{format_metrics(metrics)}")


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}m{s:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


class Progress:
    """Reports epochs ``1..total`` on ``stream``: redrawn in place (``\\r``)
    when ``stream`` is a terminal, else one line per epoch (``every``-th
    epochs, and the first and last). ``clock`` is for tests.

    >>> import io
    >>> fm.train.Progress(3, io.StringIO()).terminal
    False
    """

    def __init__(self, total: int, stream: IO[str], *, every: int = 1,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.total, self.stream, self.every, self.clock = total, stream, every, clock
        isatty = getattr(stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.start = clock()
        self.drawn = False
        self.first: int | None = None  # the first epoch reported (a resumed run's is > 1)

    def line(self, epoch: int, metrics: Mapping[str, Any]) -> str:
        """The bar for ``epoch`` done with these metrics, timings included."""
        elapsed = self.clock() - self.start
        if self.first is None:
            self.first = epoch
        rate = (epoch - self.first + 1) / elapsed if elapsed > 0 else math.inf
        eta = (self.total - epoch) / rate if rate > 0 else math.inf
        return (f"{progress_bar(epoch, self.total, metrics)}  {_duration(elapsed)} elapsed, "
                f"{rate:.2f} epoch/s, ETA {_duration(eta)}")

    def update(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        """Report that ``epoch`` (1-based) is done."""
        if self.terminal:
            self.stream.write("\r\033[K" + self.line(epoch, metrics))
            self.drawn = True
        elif epoch in (1, self.total) or epoch % self.every == 0:
            self.stream.write(self.line(epoch, metrics) + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        """Print ``text`` on its own line without breaking the bar."""
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the bar (on a terminal) so other output starts on a clean line."""
        if self.terminal and self.drawn:
            self.stream.write("\r\033[K")
            self.drawn = False

    def close(self) -> None:
        """End the bar's line."""
        if self.terminal and self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.flush()


def history_order(names: Any) -> list[str]:
    """Metric names in a fixed order, whatever the mapping's hash order:
    ``loss``, the norms, per-layer norms, counts, the user's metrics, then
    the validation ones, each group sorted; ``events`` last.

    >>> fm.train.history_order(["val_loss", "accuracy", "events", "grad_norm", "loss"])
    ['loss', 'grad_norm', 'accuracy', 'val_loss', 'events']
    """
    def rank(k: str) -> tuple:
        if k in _FIRST:
            return (0, _FIRST.index(k), k)
        group = (1 if k.startswith("grad_norm.") else 2 if k.startswith("nonfinite_")
                 else 5 if k == "events" else 4 if k.startswith("val_") else 3)
        return (group, 0, k)

    return sorted(names, key=rank)


def format_history(history: Mapping[str, Any]) -> str:
    """``fit``'s history as text in a stable order (see ``history_order``):
    per metric its first, best (lowest) and last value; then the events.

    >>> print(fm.train.format_history({"accuracy": [0.5, 1.0], "loss": [0.8, 0.1], "events": []}))
    loss      first 0.8  min 0.1  last 0.1  (2 epochs)
    accuracy  first 0.5  min 0.5  last 1  (2 epochs)
    events    none
    """
    names = history_order(history)
    width = max(map(len, names), default=0) + 2
    lines = []
    for k in names:
        values = list(history[k])
        if k == "events":
            lines.append(f"{k:<{width}}" + ("none" if not values else ""))
            lines += [f"  epoch {e['epoch'] + 1}: {e['kind']}: {e['message']}" for e in values]
        elif values:
            lines.append(f"{k:<{width}}first {values[0]:.6g}  min {min(values):.6g}  "
                         f"last {values[-1]:.6g}  ({len(values)} epochs)")
    return "\n".join(lines)
