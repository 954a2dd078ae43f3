"""A dataset of points as a tuple of ``(x1, x2)`` rows, matched by a loop
over the rows (round 47: unrolled, each row was a line of generated code, 12
KB and 50 us of ``compile`` per point, a ``MemoryError`` at 250,000)."""

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.compiler import jit_io


def _loss(w, points, labels):
    return fm.mean(fm.vmap(lambda p, y: (w[0] * p[0] + w[1] * p[1] - y) ** 2)(points, labels))


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(map(tuple, rng.normal(size=(n, 2)).tolist())), tuple(rng.normal(size=n).tolist())


def test_rows_of_numbers_are_matched_by_a_loop():
    points, labels = _data(3000)
    leaves, td = fm.tree.flatten((((0.5, -0.25), points, labels), {}))
    match = jit_io.matcher(td, [jit_io.SCALAR] * len(leaves), {}, 3)
    assert len(match.__fm_source__.splitlines()) < 100  # (unrolled: a line or two a row)
    segments, _ = match(((0.5, -0.25), points, labels), {})
    np.testing.assert_array_equal(np.concatenate(segments), np.array(leaves, dtype=float))
    # a row of another length or container, or a point that is no number, is no match
    for bad in (points[:7] + ((1.0, 2.0, 3.0),) + points[8:],
                points[:7] + ([1.0, 2.0],) + points[8:],
                points[:7] + ((1.0, "x"),) + points[8:]):
        assert match(((0.5, -0.25), bad, labels), {}) is None
    assert match(((0.5, -0.25), points[:-1], labels), {}) is None


def test_a_jitted_loss_over_rows_gives_eagers_numbers_and_reads_new_ones():
    f = fm.jit(fm.value_and_grad(_loss))
    w = (0.5, -0.25)
    for seed in (0, 1, 1):
        points, labels = _data(500, seed)
        value, g = f(w, points, labels)
        want_value, want_g = fm.value_and_grad(_loss)(w, points, labels)
        assert value == pytest.approx(want_value, rel=1e-12)
        np.testing.assert_allclose(g, want_g, rtol=1e-12)
    # rows that hold an array are matched unrolled, as before
    arrays = tuple((np.array([1.0]), 2.0) for _ in range(100))
    leaves, td = fm.tree.flatten(((arrays,), {}))
    match = jit_io.matcher(td, [jit_io.classify(x) for x in leaves], {}, 1)
    assert len(match.__fm_source__.splitlines()) > 100


def test_code_too_large_to_compile_says_what_to_do(monkeypatch):
    import builtins

    from fmicrograd.compiler import codegen

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(builtins, "compile", out_of_memory)
    src = codegen.Source()
    src.emit("return 1")
    with pytest.raises(MemoryError, match=r"generated code \(1 lines\).*jit one step"):
        src.build("x")
