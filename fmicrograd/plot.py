"""Pictures of training: a 2-D classifier's decision boundary over its data,
and the curves of a training ``history``.

Each function returns the matplotlib ``Figure`` (shown inline when it is the
last value of a notebook cell), draws into the user's axes when given
``ax=``, and writes a PNG atomically when given a path. matplotlib is an
optional extra (``pip install 'fmicrograd[plot]'``), imported on first use.
A new figure gets its own Agg canvas, never ``pyplot``, so plotting changes
no global state (a notebook's backend, open figures) and needs no display.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> xs, ys = fm.datasets.xor()
>>> fig = fm.plot.decision_boundary(lambda p: p[0] - p[1], xs, ys, out / "b.png", resolution=20)
>>> type(fig).__name__, (out / "b.png").exists()
('Figure', True)
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .files import image_format
from .io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["decision_boundary", "loss_curve", "layer_stats", "image_format"]

_PLOT_HINT = "fm.plot needs matplotlib: pip install 'fmicrograd[plot]'"


def _figure(**kwargs: Any) -> Any:
    """A matplotlib Figure on its own Agg canvas, shown inline by notebooks."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(_PLOT_HINT) from e
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)

    def png() -> bytes:  # what Jupyter calls to show the figure
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

    fig._repr_png_ = png  # type: ignore[attr-defined]
    return fig


def _save(fig: Any, path: str | os.PathLike | None, dpi: int) -> Any:
    """Write ``fig`` to ``path`` in the format its suffix names (PNG without
    one), whole or not at all."""
    if path is not None:
        kind = image_format(path)
        atomic_write(path, lambda f: fig.savefig(f, format=kind, dpi=dpi))
    return fig


def _check_axes(ax: Any, who: str) -> Any:
    """``ax`` if it is a matplotlib Axes (something with a figure to draw on)."""
    if getattr(ax, "figure", None) is None or not hasattr(ax, "plot"):
        raise TypeError(f"fm.plot.{who}: ax must be a matplotlib Axes (fig.add_subplot(), "
                        f"plt.subplots()'s), got {type(ax).__name__} {ax!r:.60}")
    return ax


def _floats(values: Sequence, what: str, who: str) -> list[float]:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise TypeError(f"fm.plot.{who}: {what}[{i}] is {type(v).__name__} {v!r:.60}, "
                            "not a number") from None
    return out


def _label_of(score: Any) -> Any:
    """Class of a prediction: the sign of one score, the argmax of several."""
    if isinstance(score, Sequence):
        values = [float(s) for s in score]
        return max(range(len(values)), key=values.__getitem__)
    return 1.0 if float(score) > 0 else -1.0


def _class_colours(classes: list[float]) -> tuple[Any, Any, list[float]]:
    """One Spectral colour per class, the same for regions and points."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    spectral = colormaps["Spectral"]
    k = len(classes)
    cmap = ListedColormap([spectral(i / max(k - 1, 1)) for i in range(k)])
    levels = ([classes[0] - 0.5] + [(a + b) / 2 for a, b in zip(classes, classes[1:])]
              + [classes[-1] + 0.5])
    return cmap, BoundaryNorm(levels, k), levels


def decision_boundary(predict: Callable[[tuple[float, float]], Any], xs: Sequence, ys: Sequence,
                      path: str | os.PathLike | None = None, *, ax: Any = None,
                      resolution: int = 80, title: str | None = None, dpi: int = 100) -> Figure:
    """Colour the plane by ``predict``'s class and scatter the data on top, as
    micrograd's demo does. ``predict`` maps a point ``(x0, x1)`` to a score
    (class by its sign: an ``fm.nn`` model works as is) or to a tuple of
    scores (class by argmax). ``resolution`` is the grid size per axis.
    Draws into ``ax`` if given (else a new figure), writes a PNG to ``path``
    if given, and returns the Figure.

    >>> xs, ys = fm.datasets.moons(40, 0.1, seed=0)
    >>> model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0))
    >>> fig = fm.plot.decision_boundary(model, xs, ys, resolution=30, title="untrained")
    >>> fig.axes[0].get_title()
    'untrained'
    """
    if len(xs) == 0 or len(xs) != len(ys) or any(len(x) != 2 for x in xs):
        raise ValueError(f"fm.plot.decision_boundary: expected as many labels as points and "
                         f"2-D points, got {len(xs)} points, {len(ys)} labels")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"fm.plot.decision_boundary: resolution must be an int >= 2, "
                         f"got {resolution!r}")
    fig = _figure(figsize=(5.5, 5.0)) if ax is None else \
        _check_axes(ax, "decision_boundary").figure
    import numpy as np

    pts = np.array([_floats(x, f"xs[{i}]", "decision_boundary") for i, x in enumerate(xs)])
    bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
    if len(bad):
        point = tuple(pts[bad[0]].tolist())
        raise ValueError(f"fm.plot.decision_boundary: point xs[{bad[0]}] = {point} is not "
                         "finite; the plot's extent comes from the points")
    lo, hi = pts.min(axis=0) - 1.0, pts.max(axis=0) + 1.0
    gx, gy = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    zs = np.array([[_label_of(predict((float(a), float(b)))) for a in gx] for b in gy],
                  dtype=float)
    cmap, norm, levels = _class_colours(sorted({float(y) for y in ys} | set(zs.flat)))
    ax = fig.add_subplot() if ax is None else ax
    ax.contourf(gx, gy, zs, levels=levels, cmap=cmap, norm=norm, alpha=0.5)
    ax.scatter(pts[:, 0], pts[:, 1], c=[float(y) for y in ys], s=40, cmap=cmap, norm=norm,
               edgecolors="k", linewidths=0.5)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    if title:
        ax.set_title(title)
    return _save(fig, path, dpi)


def loss_curve(history: Mapping[str, Sequence[float]], path: str | os.PathLike | None = None,
               *, ax: Any = None, title: str | None = None, dpi: int = 100) -> Figure:
    """One panel per metric of ``history`` (such as ``fm.train.fit``'s
    ``{"loss": [...], "accuracy": [...]}``) against the epoch; a positive
    loss is drawn on a log scale. ``ax`` is one Axes per metric (a sequence),
    or one Axes for all metrics as labelled lines. Writes a PNG to ``path``
    if given and returns the Figure.

    >>> fig = fm.plot.loss_curve({"loss": [1.0, 0.5, 0.2], "accuracy": [0.5, 0.8, 1.0]})
    >>> [a.get_ylabel() for a in fig.axes]
    ['loss', 'accuracy']
    """
    order = sorted(history, key=lambda k: (k != "loss", "loss" not in k, k))  # losses first
    metrics = {name: _floats(history[name], f"history[{name!r}]", "loss_curve") for name in order
               if len(history[name]) and name != "events"}  # (fit's detector events: records)
    if not metrics:
        raise ValueError(f"fm.plot.loss_curve: the history has no values to plot "
                         f"(metrics: {sorted(history)})")
    if ax is None:
        fig = _figure(figsize=(4.5 * len(metrics), 3.5), layout="tight")
        axes = list(fig.subplots(1, len(metrics), squeeze=False)[0])
    else:
        many = isinstance(ax, Sequence) or getattr(ax, "ndim", 0) > 0  # (plt.subplots' array)
        axes = [_check_axes(a, "loss_curve") for a in getattr(ax, "flat", ax)] if many \
            else [_check_axes(ax, "loss_curve")] * len(metrics)
        if len(axes) != len(metrics):
            raise ValueError(f"fm.plot.loss_curve: got {len(axes)} axes for {len(metrics)} "
                             f"metrics {list(metrics)}; pass one Axes, or one per metric")
        fig = axes[0].figure
    from matplotlib.ticker import MaxNLocator

    shared = len(metrics) > 1 and axes[0] is axes[-1]  # all metrics on one Axes
    for a, (name, values) in zip(axes, metrics.items()):
        a.plot(range(len(values)), values, marker="." if len(values) < 50 else None, label=name)
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_ylabel("value" if shared else name)
        if "loss" in name and min(values) > 0 and not shared:
            a.set_yscale("log")
        a.grid(True, alpha=0.3)
    if shared:
        axes[0].legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


def layer_stats(inspection: Any, path: str | os.PathLike | None = None, *, ax: Any = None,
                title: str | None = None, dpi: int = 100) -> Any:
    """Draw ``fm.train.inspect``'s report: per layer, the gradient norm (bars,
    log scale) and, on the right axis, the fractions of saturated outputs and
    dead units, so a layer that passes no gradient stands out. Draws on
    ``ax`` if given, else on a new figure; writes a PNG to ``path`` if given.
    Returns the matplotlib Figure.

    >>> xs, ys = fm.datasets.xor()
    >>> model = fm.nn.MLP.init(2, [4, 4, 1], key=fm.random.key(0))
    >>> report = fm.train.inspect(model, lambda m, b: fm.losses.mse([m(x) for x in b[0]], b[1]),
    ...                           (xs, ys))
    >>> fig = fm.plot.layer_stats(report, title="xor")
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['layers[0]', 'layers[1]', 'layers[2]']
    """
    rows = getattr(inspection, "layers", None)
    if not rows:
        raise TypeError(f"fm.plot.layer_stats: expected fm.train.inspect's report, got "
                        f"{type(inspection).__name__}")
    if ax is None:
        fig = _figure(figsize=(1.6 * len(rows) + 3.0, 3.5), layout="tight")
        ax = fig.add_subplot()
    fig = _check_axes(ax, "layer_stats").figure
    names = [r["name"] for r in rows]
    where = list(range(len(rows)))
    norms = [max(float(r["grad_norm"]), 1e-300) for r in rows]
    ax.bar(where, norms, color="tab:blue", alpha=0.7, label="gradient norm")
    ax.set_yscale("log")
    ax.set_ylabel("gradient norm")
    ax.set_xticks(where, names)
    right = ax.twinx()
    right.plot(where, [r["saturated"] for r in rows], "o-", color="tab:orange",
               label="saturated outputs")
    right.plot(where, [r["dead"] for r in rows], "s--", color="tab:red", label="dead units")
    right.set_ylim(-0.05, 1.05)
    right.set_ylabel("fraction")
    right.legend(loc="upper right", fontsize="small")
    if title:
        ax.set_title(title)
    if path is not None:
        _save(fig, path, dpi)
    return fig
