"""Batched code's reads (compiler.gather): slices, strided and reversed views,
grids of rows read as matrix operands, and the row orders groups take. Each
read is checked against plain indexing; whole programs against the scalar
graph at 1e-12."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.compiler import autobatch, ir
from fmicrograd.compiler import gather as gather_module
from fmicrograd.compiler.codegen import Source
from fmicrograd.compiler.gather import Rows

N_INPUTS, GROUPS, TAILS = 30, (12, 7), ((), (3,))


def setup(tail, seed):
    """Rows over inputs ``I`` and two groups ``g0``, ``g1`` placed in shuffled
    orders (node values: their arrays' rows), plus the value of every node."""
    rng = np.random.default_rng(seed)
    p = ir.Program()
    size = N_INPUTS + sum(GROUPS)
    nodes = [p.add("in", (), k, tail) for k in range(size)]
    p.n_inputs = N_INPUTS
    consts = [p.const(np.full(tail, v) if tail else v) for v in (0.5, -2.0)]
    rows = Rows(p, Source())
    arrays = {"I": rng.normal(size=(N_INPUTS,) + tail)}
    value = {i: arrays["I"][i] for i in range(N_INPUTS)}
    start = N_INPUTS
    for j, k in enumerate(GROUPS):
        order = list(rng.permutation(nodes[start:start + k]))
        start += k
        var = f"g{j}"
        arrays[var] = rng.normal(size=(k,) + tail)
        rows.place(var, [int(m) for m in order])
        value.update({int(m): arrays[var][r] for r, m in enumerate(order)})
    for c in consts:
        value[c] = p.params[c]
    return rows, arrays, value, consts


def run(rows, arrays, text):
    return eval(text, dict(autobatch.NUMPY, **rows.src.names, **arrays))  # noqa: S307


def var_rows(rows, var):
    v = rows.names.index(var)
    return sorted((int(rows.row_of[i]), i) for i in np.flatnonzero(rows.var_of == v))


@st.composite
def reads(draw):
    """Lists of node ids: progressions (any step, either direction) over one
    array's rows, joined with others, with picks and constants mixed in."""
    tail = draw(st.sampled_from(TAILS))
    seed = draw(st.integers(0, 2**16))
    rows, arrays, value, consts = setup(tail, seed)
    ids = []
    for _ in range(draw(st.integers(1, 3))):
        var = draw(st.sampled_from(["I", "g0", "g1"]))
        by_row = [i for _, i in var_rows(rows, var)]
        kind = draw(st.sampled_from(["range", "range", "pick", "const"]))
        if kind == "const":
            ids.append(draw(st.sampled_from(consts)))
        elif kind == "pick":
            ids += draw(st.lists(st.sampled_from(by_row), min_size=1, max_size=6))
        else:
            step = draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
            start = draw(st.integers(0, len(by_row) - 1))
            stop = start + step * draw(st.integers(1, len(by_row)))
            ids += [by_row[r] for r in range(start, stop, step) if 0 <= r < len(by_row)]
    return rows, arrays, value, ids


@settings(max_examples=60, deadline=None)
@given(reads())
def test_a_read_gives_the_rows_it_names_and_its_cost_says_whether_it_copies(case):
    rows, arrays, value, ids = case
    want = np.stack([value[i] for i in ids])
    for steps in (True, False):
        got = run(rows, arrays, rows.gather(ids, steps=steps))
        assert got.shape == want.shape and np.array_equal(got, want)
    text = rows.gather(ids)
    if text.startswith(("I", "g", "_rev")) and "_cat" not in text and "[i" not in text:
        got = run(rows, arrays, text)  # a view of one array: cheap
        assert any(np.shares_memory(got, a) for a in arrays.values())
        assert rows.cost(ids) < 1.0
    elif not text.startswith("c"):  # an index, a concatenation: a copy
        assert rows.cost(ids) >= 1.0


@st.composite
def grids(draw):
    """Node ids laid out as an (R, C) grid of one array's rows with steps
    (s1, s0), or shuffled."""
    tail = draw(st.sampled_from(TAILS))
    rows, arrays, value, _ = setup(tail, draw(st.integers(0, 2**16)))
    var = draw(st.sampled_from(["I", "g0"]))
    by_row = [i for _, i in var_rows(rows, var)]
    nr, nc = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s0 = draw(st.sampled_from([1, 1, 2, -1]))
    s1 = draw(st.integers(-8, 12))
    base = draw(st.integers(0, len(by_row) - 1))
    at = [base + r * s1 + c * s0 for r in range(nr) for c in range(nc)]
    if not all(0 <= a < len(by_row) for a in at) or len(set(at)) < len(at):
        at = list(draw(st.permutations(range(len(by_row)))))[:nr * nc]
        nr, nc = 1, len(at)
    return rows, arrays, value, [by_row[a] for a in at], (nr, nc), tail


@settings(max_examples=60, deadline=None)
@given(grids())
def test_a_matrix_operand_is_its_rows_and_a_view_only_with_a_blas_layout(case):
    rows, arrays, value, ids, lead, tail = case
    want = np.stack([value[i] for i in ids]).reshape(lead + tail)
    got = run(rows, arrays, rows.matrix(ids, lead, tail))
    assert got.shape == want.shape and np.array_equal(got, want)
    if any(np.shares_memory(got, a) for a in arrays.values()):
        assert all(s > 0 for s in got.strides[:len(lead)])
        assert got.strides[-1] == got.itemsize  # unit inner stride: BLAS sees a copy's layout


def test_grids_of_rows_are_read_as_strided_views():
    rows, arrays, value, _ = setup((), 0)
    # every third input from 1, two at a time: the first 2 columns of a (4, 3) reshape
    ids = [1 + 3 * r + c for r in range(4) for c in range(2)]
    text = rows.matrix(ids, (4, 2), ())
    assert text == "I[1:13].reshape((4, 3))[:, 0:2]"
    assert np.array_equal(run(rows, arrays, text), arrays["I"][ids].reshape(4, 2))
    assert rows.gather([9, 6, 3]) == "_rev(I[3:10:3])"
    assert rows.gather([2, 4, 6]) == "I[2:7:2]"
    assert rows.matrix([2, 4, 6, 8], (2, 2), ()).startswith("I[i")  # inner step 2: a copy


def test_a_weight_matrix_read_by_columns_is_copied_from_a_transposed_view():
    rows, arrays, value, _ = setup((), 0)
    # the first 3 of every 4 inputs from 1, read column by column: a (3, 4) view's transpose
    ids = [1 + 4 * r + c for c in range(3) for r in range(4)]
    text = rows.matrix(ids, (3, 4), ())
    assert text == "I[1:17].reshape((4, 4))[:, 0:3].T.copy()"
    got = run(rows, arrays, text)
    # the copy an index read makes: C order, the same numbers, so a product has the same bits
    assert got.flags.c_contiguous and not np.shares_memory(got, arrays["I"])
    assert np.array_equal(got, arrays["I"][ids].reshape(3, 4))
    rows.views = False  # (export: index reads only)
    assert rows.matrix(ids, (3, 4), ()).startswith("I[i")


def mlp_loss(params, x, y):
    h = x
    for k, layer in enumerate(params):
        h = [fm.dot(w, h) + b for w, b in layer]
        if k < len(params) - 1:
            h = [fm.tanh(v) for v in h]
    return fm.relu(1.0 - y * h[0])


def loss(params, xs, ys):
    return fm.mean(fm.vmap(mlp_loss, in_axes=(None, 0, 0))(params, xs, ys))


def step(params, xs, ys):
    value, grads = fm.value_and_grad(loss)(params, xs, ys)
    return value, fm.tree.map(lambda p, g: p - 0.1 * g, params, grads)


@pytest.mark.parametrize("sizes", [(2, 5, 1), (3, 4, 4, 2)])
def test_a_compiled_step_reads_views_and_matches_the_scalar_graph(sizes):
    rng = np.random.default_rng(1)
    params = tuple(tuple((tuple(rng.normal(size=a).tolist()), float(rng.normal()))
                         for _ in range(b)) for a, b in zip(sizes, sizes[1:]))
    xs = rng.normal(size=(20, sizes[0]))
    ys = np.where(rng.random(20) < 0.5, -1.0, 1.0)
    jitted = fm.jit(step)
    got = fm.tree.leaves(jitted(params, xs, ys))
    want = fm.tree.leaves(step(params, xs, ys))
    assert len(got) == len(want) == 1 + sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    assert max(abs(a - b) for a, b in zip(got, want)) <= 1e-12
    source = jitted.lower(params, xs, ys).as_text()
    products = [line for line in source.splitlines() if "@" in line]
    assert len(products) >= 2 * (len(sizes) - 1)  # each layer forward and its weight gradient
    assert any("reshape((" in line and ")[:, " in line for line in products)  # a strided view
    assert "[i" not in source.split("return ")[-1]  # the outputs need no index to gather
    # index reads left: the data's columns and the updates interleaving each neuron's
    # bias with its weights (21 before views and row orders for (3, 4, 4, 2)); a hidden
    # layer's weights, read column by column in the backward pass, are copied from a view
    assert len(set(re.findall(r"\bi\d+\b", source))) <= len(sizes) - 1
    assert sum(".T.copy() @ " in line for line in products) == len(sizes) - 3
    # every layer's update, p - 0.1 * g, in one subtraction (schedule.merge_later)
    assert sum(" = I[" in line and " - " in line for line in source.splitlines()) == 1


def test_reversed_and_strided_outputs_are_views_and_export_agrees():
    torch = pytest.importorskip("torch")

    def f(xs):
        return [fm.exp(xs[i]) * xs[i] for i in range(len(xs) - 1, -1, -2)]

    xs = list(np.linspace(-1.0, 1.0, 9))
    jitted = fm.jit(f)
    assert jitted(xs) == pytest.approx(f(xs), rel=1e-12, abs=0)
    one = fm.to_torch(lambda x: f(list(x)), in_axes=None)(torch.tensor(xs, dtype=torch.float64))
    assert [float(v) for v in one] == pytest.approx(f(xs), rel=1e-12, abs=0)


def _contract_rows_by_dicts(rows, members, lists, flat):
    """``contract.contract_rows`` as it was written first (dicts of first
    uses, a dict of cells): the array version must give the same program."""
    k = len(members)
    as_of, bs_of = {}, {}
    for (a,), (b,) in lists:
        as_of.setdefault(a, len(as_of))
        bs_of.setdefault(b, len(bs_of))
    ni, nj = len(as_of), len(bs_of)
    if ni * nj > 2 * k:
        A = rows.gather([a for (a,), _ in lists], steps=False)
        B = rows.gather([b for _, (b,) in lists], steps=False)
        return members, f"_np.einsum('kb,kb->k', {A}.reshape({(k, flat)}), " \
                        f"{B}.reshape({(k, flat)}))"

    def by_keys(index):
        items = list(index)
        return {items[j]: pos for pos, j in enumerate(
            np.argsort(rows.keys(items), kind="stable"))}

    if rows.views:
        as_of, bs_of = by_keys(as_of), by_keys(bs_of)
    A = rows.matrix(list(as_of), (ni,), (flat,))
    B = rows.matrix(list(bs_of), (nj,), (flat,))
    cell = {(as_of[a], bs_of[b]): m for m, ((a,), (b,)) in zip(members, lists)}
    if rows.views:
        text = f"({A} @ {B}.T).reshape(-1)"
        order = [cell.get((i, j)) for i in range(ni) for j in range(nj)]
        at = [as_of[a] * nj + bs_of[b] for (a,), (b,) in lists]
    else:
        text = f"({B} @ {A}.T).reshape(-1)"
        order = [cell.get((i, j)) for j in range(nj) for i in range(ni)]
        at = [bs_of[b] * ni + as_of[a] for (a,), (b,) in lists]
    if len(cell) == ni * nj and len(cell) == k:
        return order, text
    return members, f"{text}[{rows.src.name(np.array(at, dtype=np.intp), 'i')}]"


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**16), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from(["grid", "part", "twice", "any"]), st.booleans())
def test_contract_rows_reads_each_row_once_and_computes_each_members_product(
        seed, na, nb, kind, views):
    from fmicrograd.compiler.contract import contract_rows
    rng = np.random.default_rng(seed)
    made = [setup((3,), seed) for _ in range(2)]
    nodes = [i for _, i in var_rows(made[0][0], "g0")] + list(range(N_INPUTS))
    picked = rng.choice(nodes, na + nb, replace=False).tolist()
    pairs = [(a, b) for a in picked[:na] for b in picked[na:]]
    if kind == "part" and len(pairs) > 1:
        pairs = pairs[:-1]
    elif kind == "twice":
        pairs.append(pairs[0])
    elif kind == "any":
        pairs = [(int(rng.choice(picked[:na])), int(rng.choice(picked[na:])))
                 for _ in range(int(rng.integers(1, 8)))]
    pairs = [pairs[j] for j in rng.permutation(len(pairs))]
    members = list(range(1000, 1000 + len(pairs)))
    (rows, arrays, value, _), (old_rows, _, _, _) = made
    rows.views = old_rows.views = views
    a, b = np.array(pairs, dtype=np.intp).T
    order, text = contract_rows(rows, members, a, b, 3)
    want = _contract_rows_by_dicts(old_rows, members, [((x,), (y,)) for x, y in pairs], 3)
    assert (order, text) == want
    assert sorted(order) == members
    got = run(rows, arrays, text)
    product = {m: value[x] @ value[y] for m, (x, y) in zip(members, pairs)}
    np.testing.assert_allclose(got, [product[m] for m in order], rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**16), st.integers(2, 12))
def test_a_groups_argument_grid_follows_its_rows_when_they_are_reordered(seed, k):
    rng = np.random.default_rng(seed)
    rows, _, _, consts = setup((), seed)
    p = rows.p
    inputs = list(range(N_INPUTS))
    members = [p.add("*", (int(rng.choice(inputs)), int(rng.choice(inputs + consts))), None, ())
               for _ in range(k)]
    members = list(dict.fromkeys(members))  # identical nodes merge
    rows = Rows(p, Source())  # over the grown program
    grid = rows.arg_grid(members)
    assert grid.tolist() == [list(p.args[m]) for m in members]
    order, moved = rows.arrange(members, [0, 1], grid)
    assert order == rows.order(members, [0, 1]) and sorted(order) == sorted(members)
    assert moved.tolist() == [list(p.args[m]) for m in order]


def _on_arrays(rows, method, *args):
    """``rows.method(*args)`` with every read worked out on numpy arrays
    (``_SMALL`` 0: the path for large reads)."""
    small = gather_module._SMALL
    gather_module._SMALL = 0
    try:
        return getattr(rows, method)(*args)
    finally:
        gather_module._SMALL = small


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**16))
def test_small_reads_worked_out_on_lists_agree_with_the_array_path(seed):
    """Small reads and row orders are worked out on Python lists that mirror
    ``var_of`` and ``row_of`` (``place`` keeps them in step): the same texts,
    costs and orders as on arrays, group after group."""
    rng = np.random.default_rng(seed)
    p = ir.Program()
    p.n_inputs = len([p.add("in", (), k, ()) for k in range(N_INPUTS)])
    sources = list(range(N_INPUTS)) + [p.const(v) for v in (0.5, -2.0)]
    layers = []
    for _ in range(4):
        k = int(rng.integers(2, 14))
        layers.append(list(dict.fromkeys(
            p.add(str(rng.choice(["*", "+"])), (int(rng.choice(sources)), int(rng.choice(sources))),
                  None, ()) for _ in range(k))))
        sources += layers[-1]
    p.outputs = [int(o) for o in rng.choice(sources[N_INPUTS + 2:], 4)]
    through = frozenset({"*", "+"})
    lists, arrays = Rows(p, Source(), True, through), Rows(p, Source(), True, through)
    for j, members in enumerate(layers):
        order, grid = lists.arrange(members, [0, 1], lists.arg_grid(members))
        want, want_grid = _on_arrays(arrays, "arrange", members, [0, 1], arrays.arg_grid(members))
        assert order == want and np.array_equal(grid, want_grid)
        placed = [i for i in range(p.size) if lists.var_of[i] >= 0 or p.ops[i] == "const"]
        for _ in range(6):
            ids = [int(i) for i in rng.choice(placed, int(rng.integers(1, 9)))]
            if rng.random() < 0.5:  # a run of rows of one array, maybe reversed or strided
                var, row = lists.var_list[ids[0]], lists.row_list[ids[0]]
                by_row = sorted((lists.row_list[i], i) for i in placed if lists.var_list[i] == var)
                step = int(rng.choice([1, 2, -1]))
                ids = [i for r, i in by_row[row::step]] or ids
            assert lists.cost(ids) == _on_arrays(arrays, "cost", ids)
            for steps in (True, False):
                assert lists.gather(ids, steps) == _on_arrays(arrays, "gather", ids, steps)
            assert lists.column(ids, 1) == _on_arrays(arrays, "column", ids, 1)
        lists.place(f"g{j}", order)
        arrays.place(f"g{j}", order)
        assert lists.var_list == lists.var_of.tolist() and lists.row_list == lists.row_of.tolist()
