"""A batch unrolled in Python (micrograd's style: ``[model(x) for x in xs]``)
compiles its weight gradients to matrix products plus their few terms of
their own (an L2 penalty's), as the same loss over ``vmap`` does, and gives
the scalar graph's numbers (compiler.contract)."""

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.compiler import autobatch, ir
from fmicrograd.compiler.codegen import Source
from fmicrograd.compiler.contract import contract, outer_columns
from fmicrograd.compiler.gather import Rows


def loss(m, xs, ys):
    return fm.losses.hinge([m(x) for x in xs], ys) + 1e-4 * fm.losses.l2(m)


def step(m, xs, ys):
    value, g = fm.value_and_grad(loss)(m, xs, ys)
    return value, fm.tree.map(lambda p, d: p - 0.1 * d, m, g)


def reshapes(text):
    """The entries of each ``.reshape((a, b, ...))`` in ``text``."""
    return [int(np.prod([int(v) for v in shape.split(",") if v.strip()]))
            for shape in re.findall(r"\.reshape\(\(([\d, ]+)\)\)", text)]


def test_an_unrolled_mlp_batch_has_matrix_products_and_the_scalar_graphs_numbers():
    width, batch = 8, 30
    model = fm.nn.MLP.init(2, [width, width, 1], key=fm.random.key(0))
    xs, ys = fm.datasets.moons(batch, 0.1, seed=0)
    jitted = fm.jit(step)
    text = jitted.lower(model, xs, ys).as_text()
    lines = text.splitlines()
    # the hidden layer's weight gradient: one (width, batch) x (batch, width) product
    assert any("@" in line and f"({width}, {batch})" in line for line in lines)
    # no contraction row by row, and no read of batch x weights entries (the old
    # program gathered (width * width, batch + 2) operands twice)
    assert "einsum" not in text
    assert max(reshapes(text)) < batch * width * width
    # a hidden layer's bias added in each example, and the output cotangent times
    # each output weight, broadcast from a row or a column: not gathered
    assert sum(f".reshape((1, {width}))).reshape(-1)" in line for line in lines) >= 2
    assert any(re.search(rf"\.reshape\(\((1, {batch}|{batch}, 1)\)\) \* ", line)
               for line in lines)
    # each bias gradient: the examples' terms read from where they live and summed,
    # the L2 terms added (not all batch + 2 terms concatenated and permuted first)
    sums = [line for line in lines if f"reshape(({width}, {batch})).sum(1) + " in line]
    assert len(sums) == 2 and not any("_cat" in line for line in sums)
    params, eager = model, model
    for _ in range(3):  # the parameters jit returned come back as the next input
        value, params = jitted(params, xs, ys)
        ref, eager = step(eager, xs, ys)
        assert abs(value - ref) <= 1e-12 * abs(ref)
        got, want = fm.tree.leaves(params), fm.tree.leaves(eager)
        assert len(got) == len(want) == 3 * width + (width + 1) * width + width + 1
        for a, b in zip(got, want):
            assert abs(a - b) <= 1e-12 * max(1.0, abs(b)), (a, b)


@st.composite
def contractions(draw):
    """A group of contractions ``sum_r x[r] * y[r]``: an ``(ni, nj)`` grid of
    rows (some cells missing, members shuffled) over ``m`` columns, and
    ``extra`` columns of each member's own at random positions (inputs or a
    constant)."""
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    ni, nj = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    m, extra = draw(st.integers(1, 8)), draw(st.integers(0, 3))
    cells = [(i, j) for i in range(ni) for j in range(nj)]
    keep = draw(st.integers(max(1, (ni * nj + 1) // 2), ni * nj))
    cells = [cells[c] for c in rng.permutation(len(cells))[:keep]]
    k = len(cells)
    p = ir.Program()
    size = (ni + nj) * m + 2 * k * extra
    nodes = [p.add("in", (), q, ()) for q in range(size)]
    p.n_inputs = size
    const = p.const(float(rng.normal()))
    xrow = np.array(nodes[:ni * m]).reshape(ni, m)
    yrow = np.array(nodes[ni * m:(ni + nj) * m]).reshape(nj, m)
    own = np.array(nodes[(ni + nj) * m:]).reshape(k, 2, extra)
    at = sorted(rng.choice(m + extra, extra, replace=False).tolist())  # own columns
    lists = []
    for c, (i, j) in enumerate(cells):
        xs, ys = list(xrow[i]), list(yrow[j])
        for e, pos in enumerate(at):
            xs.insert(pos, const if rng.random() < 0.5 else own[c, 0, e])
            ys.insert(pos, own[c, 1, e])
        lists.append((tuple(int(a) for a in xs), tuple(int(a) for a in ys)))
    rows = Rows(p, Source())
    members = [int(v) for v in rng.permutation(k) + 10**6]  # names only
    xs = np.array([x for x, _ in lists], dtype=np.intp).reshape(k, m + extra)
    ys = np.array([y for _, y in lists], dtype=np.intp).reshape(k, m + extra)
    return rows, rng.normal(size=size), members, xs, ys


@settings(max_examples=60, deadline=None)
@given(contractions())
def test_a_contraction_group_gives_every_members_sum(case):
    rows, inputs, members, xs, ys = case
    order, text = contract(rows, members, xs, ys, (), (), ())
    assert sorted(order) == sorted(members)
    got = eval(text, dict(autobatch.NUMPY, **rows.src.names, I=inputs))  # noqa: S307
    value = dict(enumerate(inputs.tolist()))
    value.update({i: rows.p.params[i] for i in range(len(rows.p.ops)) if rows.p.ops[i] == "const"})
    of = {m: r for r, m in enumerate(members)}
    for r, m in enumerate(order):
        terms = [value[a] * value[b] for a, b in zip(xs[of[m]], ys[of[m]])]
        assert abs(got[r] - sum(terms)) <= 1e-12 * sum(map(abs, terms))


def test_the_outer_columns_are_those_that_follow_a_row_and_a_column():
    # member (i, j): x = (a[i] for 4 columns, then the constant 100), y = (b[j] ..., w[i][j])
    lists = [((10 + i, 20 + i, 30 + i, 40 + i, 100),
              (50 + j, 60 + j, 70 + j, 80 + j, 200 + 8 * i + j))
             for i in range(6) for j in range(8)]
    xs, ys = (np.array([lst[s] for lst in lists]) for s in (0, 1))
    outer, rest = outer_columns(xs, ys)
    assert outer.tolist() == [0, 1, 2, 3] and rest.tolist() == [4]
    moved = [4, 0, 1, 2, 3]  # own column first
    outer, rest = outer_columns(xs[:, moved], ys[:, moved])
    assert outer.tolist() == [1, 2, 3, 4] and rest.tolist() == [0]
    # every column a member's own: nothing to share
    own = np.arange(48)[:, None] + np.zeros(5, dtype=int)
    assert outer_columns(own, own + 100) is None


def test_arguments_that_repeat_with_a_period_or_in_runs_are_broadcast():
    def f(a, b):
        return [fm.tanh(x * y + x) for x in a for y in b]

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40).tolist(), rng.normal(size=30).tolist()
    jitted = fm.jit(f)
    text = jitted.lower(a, b).as_text()
    # x * y: a in runs of 30 as a column, b repeating every 30 as a row; then + x
    assert "I[0:40].reshape((40, 1)) * I[40:70].reshape((1, 30))" in text
    assert "[i" not in text  # no index gathers: each operand read once
    for got, want in zip(jitted(a, b), f(a, b)):
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want))
