"""str(expr): a readable formula, bounded for huge graphs; repr stays short."""

import time

import fmicrograd as fm

x, w, b = fm.Var(1.0, name="x"), fm.Var(0.5, name="w"), fm.Var(0.0, name="b")


def test_formulas_read_like_the_code():
    assert str(fm.tanh(w * x + b)) == "tanh(w*x + b)"
    assert str(fm.tanh(fm.dot([w, b], [x, x]) + 1.0)) == "tanh(w*x + b*x + 1.0)"
    assert str((x - (w - b)) / (x + w)) == "(x - (w - b))/(x + w)"
    assert str(-(x + w) * 2.0) == "-(x + w)*2.0"
    assert str((x ** 2.0) ** w) == "(x**2.0)**w" and str(x ** w ** 2.0) == "x**w**2.0"
    assert str(fm.where(fm.greater(x, 0.0), x, 0.0)) == "where(greater(x, 0.0), x, 0.0)"
    traced = fm.trace(lambda p, x: fm.relu(p[0] * x + p[1]))((2.0, 1.0), 3.0)
    assert str(traced) == "relu(args[0][0]*args[1] + args[0][1])"


def test_large_graphs_are_abbreviated_without_recursion():
    y = x
    for _ in range(300_000):  # 300 times the recursion limit; printing cost is bounded
        y = fm.tanh(y)
    start = time.perf_counter()
    text = str(y)
    assert time.perf_counter() - start < 0.5
    assert text.startswith("tanh(tanh(") and "…" in text and len(text) < 500
    z = x
    for _ in range(200):  # 2**200 paths: printed as a tree, abbreviated
        z = z * z + z
    assert "…" in str(z) and len(str(z)) < 1000
    assert str(fm.sum([x] * 100)).endswith("x + … + x")


def test_repr_stays_short():
    y = x
    for _ in range(1000):
        y = y + x
    assert repr(y) == "Expr(op='+', value=1001.0, children=2)"
    assert repr(x) == "Var(1.0, name='x')"
