"""fm.plot: real PNG files, the right colours on each side of a boundary,
atomic writes, and a clear error without matplotlib."""

import math
import struct
import sys

import pytest
from pyrsistent import pmap, pvector

import fmicrograd as fm

PNG = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 1000
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_decision_boundary_png(tmp_path):
    xs, ys = fm.datasets.moons(30, 0.1, seed=1)
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
    fig = fm.plot.decision_boundary(model, xs, ys, tmp_path / "b.png", resolution=10, dpi=50)
    assert type(fig).__name__ == "Figure"
    path = tmp_path / "b.png"
    assert png_size(path) == (275, 250)  # 5.5 x 5 inches at 50 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["b.png"]


def test_regions_are_coloured_by_predicted_class(tmp_path):
    from matplotlib.image import imread

    xs = ((-1.0, 0.0), (1.0, 0.0), (-1.0, 1.0), (1.0, 1.0))
    ys = (-1.0, 1.0, -1.0, 1.0)
    # class by the sign of x0: the left half is one colour, the right the other
    path = tmp_path / "half.png"
    fm.plot.decision_boundary(lambda p: p[0], xs, ys, path, resolution=40)
    img = imread(path)
    h, w = img.shape[:2]
    row = int(h * 0.8)  # below the points, inside the axes
    left, right = img[row, int(w * 0.3)], img[row, int(w * 0.75)]
    assert (abs(left - right) > 0.1).any()
    assert (abs(img[row, int(w * 0.25)] - left) < 1e-6).all()  # each side uniform
    assert (abs(img[row, int(w * 0.8)] - right) < 1e-6).all()


def test_several_scores_colour_by_argmax(tmp_path):
    xs, ys = fm.datasets.blobs(30, 3, seed=2)
    fm.plot.decision_boundary(lambda p: (p[0], -p[0], p[1]), xs, ys,
                              tmp_path / "multi.png", resolution=12, dpi=40)
    assert png_size(tmp_path / "multi.png") == (220, 200)


def test_loss_curve_png_from_a_history(tmp_path):
    history = pmap({"loss": pvector([0.9, 0.5, 0.1, 0.05]),
                    "accuracy": pvector([0.5, 0.75, 1.0, 1.0])})
    fm.plot.loss_curve(history, tmp_path / "loss.png", title="moons", dpi=40)
    assert png_size(tmp_path / "loss.png") == (360, 140)  # two panels of 4.5 x 3.5 inches
    fm.plot.loss_curve({"loss": [1.0, -1.0]}, tmp_path / "one.png", dpi=40)
    assert png_size(tmp_path / "one.png") == (180, 140)


def test_bad_inputs_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="as many labels as points"):
        fm.plot.decision_boundary(lambda p: p[0], ((0.0, 1.0),), (1.0, -1.0), tmp_path / "x.png")
    with pytest.raises(ValueError, match="2-D points"):
        fm.plot.decision_boundary(lambda p: p[0], ((0.0, 1.0, 2.0),), (1.0,), tmp_path / "x.png")
    with pytest.raises(ValueError, match="resolution"):
        fm.plot.decision_boundary(lambda p: p[0], ((0.0, 1.0),), (1.0,), tmp_path / "x.png",
                                  resolution=1)
    with pytest.raises(ValueError, match="no values"):
        fm.plot.loss_curve({"loss": []}, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_old_picture(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    path = tmp_path / "loss.png"
    path.write_bytes(b"old picture")

    def broken(self, f, **kwargs):
        f.write(b"\x89PNG half")
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer failed"):
        fm.plot.loss_curve({"loss": [1.0, 0.5]}, path)
    assert path.read_bytes() == b"old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_missing_matplotlib_says_how_to_install(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'fmicrograd\[plot\]'"):
        fm.plot.loss_curve({"loss": [1.0]}, tmp_path / "x.png")
    with pytest.raises(ImportError, match=r"pip install 'fmicrograd\[plot\]'"):
        fm.plot.decision_boundary(lambda p: p[0], ((0.0, 1.0),), (1.0,), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_plots_return_the_figure_and_draw_into_given_axes(tmp_path):
    from matplotlib.figure import Figure

    xs, ys = fm.datasets.xor()
    fig = fm.plot.decision_boundary(lambda p: p[0] * p[1], xs, ys, resolution=8)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    assert fig._repr_png_()[:8] == PNG  # how a notebook shows it inline
    assert list(tmp_path.iterdir()) == []  # no path, no file

    mine = Figure()
    left, right = mine.subplots(1, 2)
    assert fm.plot.decision_boundary(lambda p: p[0], xs, ys, ax=left, resolution=8,
                                     title="mine") is mine
    assert left.get_title() == "mine" and len(left.collections) > 0
    assert fm.plot.loss_curve({"loss": [3.0, 1.0], "acc": [0.1, 0.9]}, ax=right) is mine
    assert [line.get_label() for line in right.get_lines()] == ["loss", "acc"]
    assert right.get_legend() is not None and len(mine.axes) == 2

    a, b = Figure().subplots(1, 2)
    fig = fm.plot.loss_curve({"loss": [3.0, 1.0], "acc": [0.1, 0.9]}, ax=[a, b])
    assert (a.get_ylabel(), b.get_ylabel(), a.get_yscale()) == ("loss", "acc", "log")
    with pytest.raises(ValueError, match="3 axes for 2 metrics"):
        fm.plot.loss_curve({"loss": [3.0, 1.0], "acc": [0.1, 0.9]}, ax=[a, b, a])


@pytest.mark.parametrize("name, magic", [("c.jpg", b"\xff\xd8\xff"), ("c.svg", b"<?xml"),
                                         ("c.pdf", b"%PDF"), ("c.PNG", PNG), ("c", PNG)])
def test_the_suffix_picks_the_format(tmp_path, name, magic):
    fm.plot.loss_curve({"loss": [3.0, 2.0, 1.0]}, tmp_path / name, dpi=30)
    assert (tmp_path / name).read_bytes().startswith(magic)


def test_an_unknown_suffix_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"no '\.xyz' format; use one of .*\.png"):
        fm.plot.loss_curve({"loss": [3.0, 2.0]}, tmp_path / "c.xyz")
    assert list(tmp_path.iterdir()) == []


def test_bad_axes_points_and_values_are_named():
    # they were "'int' object has no attribute 'figure'", matplotlib's "Axis limits cannot
    # be NaN or Inf" and "could not convert string to float"
    history = {"loss": [1.0, 0.5], "accuracy": [0.5, 1.0]}
    with pytest.raises(TypeError, match="loss_curve: ax must be a matplotlib Axes.*int 3"):
        fm.plot.loss_curve(history, ax=3)
    with pytest.raises(TypeError, match="loss_curve: ax must be a matplotlib Axes.*int 4"):
        fm.plot.loss_curve(history, ax=[fm.plot._figure().add_subplot(), 4])
    with pytest.raises(TypeError, match=r"loss_curve: history\['loss'\]\[1\] is str 'b'"):
        fm.plot.loss_curve({"loss": [1.0, "b"]})
    with pytest.raises(TypeError, match="decision_boundary: ax must be a matplotlib Axes"):
        fm.plot.decision_boundary(lambda x: x[0], [(0.0, 0.0), (1.0, 1.0)], [1.0, -1.0], ax=3)
    with pytest.raises(ValueError, match=r"point xs\[1\] = \(nan, 1.0\) is not finite"):
        fm.plot.decision_boundary(lambda x: x[0], [(0.0, 0.0), (math.nan, 1.0)], [1.0, -1.0])
    with pytest.raises(TypeError, match=r"xs\[1\]\[0\] is str 'a'"):
        fm.plot.decision_boundary(lambda x: x[0], [(0.0, 0.0), ("a", 1.0)], [1.0, -1.0])
    # a diverged run's NaN losses are still drawn
    assert fm.plot.loss_curve({"loss": [1.0, math.nan]}).axes[0].get_ylabel() == "loss"
