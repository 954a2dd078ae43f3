"""A dense layer's bias inside its matrix product (compiler.layers): the
fused programs give the bits of the unfused ones and eager's values at
1e-12, read ``[W | b]`` as a view, write the layer's inputs above a row of
ones, and leave alone what they cannot fuse."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.compiler import layers, split


def mlp(p, x, act=fm.relu):
    for k, layer in enumerate(p):
        x = [fm.dot(w, x) + b for w, b in layer]
        if k < len(p) - 1:
            x = [act(v) for v in x]
    return x[0]


def params(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(tuple((tuple(rng.normal(size=a).tolist()), float(rng.normal()))
                       for _ in range(b)) for a, b in zip(sizes, sizes[1:]))


def step_of(act):
    def loss(p, xs, ys):
        per = fm.vmap(lambda x, y: fm.relu(1.0 - y * mlp(p, x, act)), in_axes=(0, 0))(xs, ys)
        return fm.mean(per) + 1e-3 * fm.losses.l2(p)

    def step(p, xs, ys):
        value, g = fm.value_and_grad(loss)(p, xs, ys)
        return value, fm.tree.map(lambda a, d: a - 0.1 * d, p, g)

    return step


def data(batch, width, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, width)), np.where(rng.random(batch) < 0.5, -1.0, 1.0)


def run(fn, args, fuse=True, cut=False, steps=2):
    """``steps`` calls of ``fm.jit(fn)`` carrying its parameters, and its text."""
    with pytest.MonkeyPatch.context() as m:
        if not fuse:
            m.setattr(layers, "plan", lambda *args: None)
        m.setattr(split, "MIN_WORK", 0 if cut else 10**18)
        f = fm.jit(fn)
        p, out = args[0], []
        for _ in range(steps):
            value, p = f(p, *args[1:])
            out.append(value)
        return out + fm.tree.leaves(p), f.lower(*args).as_text()


@pytest.mark.parametrize("act", [fm.relu, fm.tanh])
@pytest.mark.parametrize("cut", [False, True])
def test_fused_layers_give_the_unfused_bits_and_eager_values(act, cut):
    sizes = (3, 16, 16, 1)
    args = (params(sizes), *data(64, 3))
    got, text = run(step_of(act), args, cut=cut)
    want, plain = run(step_of(act), args, fuse=False, cut=cut)
    assert got == want  # the bias summed last, as the addition after the product did
    p, eager = args[0], []
    for _ in range(2):
        value, p = step_of(act)(p, *args[1:])
        eager.append(value)
    np.testing.assert_allclose(got, eager + fm.tree.leaves(p), rtol=1e-12, atol=1e-12)
    # [W | b] of each layer as a view of the input vector; the hidden layers'
    # outputs made above a row of ones, the data concatenated with one
    assert text.count("_ones_below((16, ") == 2 and plain.count("_ones_below") == 0
    assert ".reshape((16, 17)) @ g" in text and ".reshape((1, 17)) @ g" in text
    assert ".reshape((16, 4)) @ _cat((" in text  # the data: 4 rows against 16
    assert text.count("@") == plain.count("@")


def test_data_inputs_are_concatenated_with_ones_where_the_copy_is_small():
    sizes = (2, 32, 1)  # 3 rows (2 inputs and the ones) against 32 biased ones
    args = (params(sizes), *data(50, 2))
    got, text = run(step_of(fm.relu), args)
    want, _ = run(step_of(fm.relu), args, fuse=False)
    assert got == want
    assert ".reshape((32, 3)) @ _cat((" in text
    narrow = (params((8, 16, 1)), *data(50, 8))  # 9 rows against 16: the addition stays
    _, text = run(step_of(fm.relu), narrow)
    assert ".reshape((16, 9)) @" not in text and ".reshape((1, 17)) @ g" in text


def test_products_read_elsewhere_or_biased_together_are_not_fused():
    def twice(p, xs):
        def per(x):
            pre = [fm.dot(w, x) for w, _ in p[0]]  # an output too: its biases stay apart
            h = [fm.relu(v + b) for v, (_, b) in zip(pre, p[0])]
            out = [fm.relu(fm.dot(w, h) + b) for w, b in p[1]]
            back = [fm.tanh(fm.dot(w, h[::-1][:11]) + b) for w, b in p[2]]
            return pre[0] * out[0] + out[1] * back[0] + back[1]
        return fm.mean(fm.vmap(per)(xs))

    p = params((2, 12, 2)) + params((11, 3), seed=2)
    xs = data(30, 2)[0]
    f = fm.jit(fm.value_and_grad(twice))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(layers, "plan", lambda *args: None)
        plain = fm.jit(fm.value_and_grad(twice))(p, xs)
    got = f(p, xs)
    want = fm.value_and_grad(twice)(p, xs)
    np.testing.assert_allclose(fm.tree.leaves(got), fm.tree.leaves(want), rtol=1e-12,
                               atol=1e-12)
    assert fm.tree.leaves(got) == fm.tree.leaves(plain)
    text = f.lower(p, xs).as_text()
    # the first layer's products are read before their biases: added after; the heads'
    # biases are one addition over both heads' products (two groups): added after too
    assert ".reshape((12, 3)) @" not in text and "_ones_below" not in text


def test_export_keeps_the_unfused_program():
    # torch's namespace has no ``_ones_below``: export's programs are not fused
    torch = pytest.importorskip("torch")
    p = params((3, 16, 1))
    xs = data(20, 3)[0]
    g = fm.to_torch(lambda p, x: fm.tanh(mlp(p, x)), in_axes=(None, 0))
    got = g(p, torch.tensor(xs)).tolist()
    want = [float(fm.tanh(mlp(p, x.tolist()))) for x in xs]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def _both_ways(fn, *args):
    """``fm.jit(fn)`` fused and unfused, and eager: the three results' leaves."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(layers, "plan", lambda *args: None)
        plain = fm.tree.leaves(fm.jit(fn)(*args))
    f = fm.jit(fn)
    return fm.tree.leaves(f(*args)), plain, fm.tree.leaves(fn(*args)), f.lower(*args).as_text()


@pytest.mark.parametrize("form", ["b + w.x", "x.w + b", "shared", "constant bias", "inf bias"])
def test_layer_forms_fuse_with_the_unfused_bits(form):
    rng = np.random.default_rng(3)
    w = rng.normal(size=(20, 4)).tolist()
    b = rng.normal(size=20).tolist()
    if form == "inf bias":
        b[3] = float("inf")
    xs = rng.normal(size=(40, 4))
    if form == "inf bias":
        xs[5, 1] = float("nan")

    def neuron(p, j, x):
        wj, bj = p[0][j], p[1][j]
        if form == "b + w.x":
            return bj + fm.dot(wj, x)
        if form == "x.w + b":
            return fm.dot(x, wj) + bj
        if form == "shared":  # every neuron has neuron 0's weights
            return fm.dot(p[0][0], x) + bj
        if form == "constant bias":
            return fm.dot(wj, x) + 0.25 * (j + 1)
        return fm.dot(wj, x) + bj

    def f(p, xs):
        out = fm.vmap(lambda x: [fm.tanh(neuron(p, j, x)) for j in range(20)])(xs)
        return fm.mean([fm.mean(o) for o in out])

    p = (tuple(map(tuple, w)), tuple(b))
    fused, plain, eager, text = _both_ways(fm.value_and_grad(f), p, xs)
    assert fused == plain or np.array_equal(fused, plain, equal_nan=True)
    np.testing.assert_allclose(fused, eager, rtol=1e-12, atol=1e-12)
    if form == "shared":  # one product (the same node for every neuron), then the biases
        assert ".reshape((1, 4)) @ g0" in text and ".reshape((20, 1))" in text
    else:  # [W | b] gathered (the biases are not beside the weights) against [X; 1]
        assert ".reshape((20, 5)) @ _cat((g0, c" in text


def test_a_layer_reading_the_first_rows_of_an_augmented_array_gets_its_own_ones():
    # ``out`` reads all 16 hidden units (made above a row of ones); ``wide`` reads the
    # first 8, in order, with 40 neurons: its [X; 1] is the 8 rows and ones, not the array
    rng = np.random.default_rng(4)
    first = tuple((tuple(rng.normal(size=2).tolist()), float(rng.normal())) for _ in range(16))
    out = tuple((tuple(rng.normal(size=16).tolist()), float(rng.normal())) for _ in range(2))
    wide = tuple((tuple(rng.normal(size=8).tolist()), float(rng.normal())) for _ in range(40))
    xs = rng.normal(size=(30, 2))

    def f(p, xs):
        def per(x):
            h = [fm.relu(fm.dot(w, x) + b) for w, b in p[0]]
            a = [fm.tanh(fm.dot(w, h) + b) for w, b in p[1]]
            c = [fm.tanh(b + fm.dot(w, h[:8])) for w, b in p[2]]
            return fm.dot(a, a) + fm.dot(c, c)
        return fm.mean(fm.vmap(per)(xs))

    fused, plain, eager, text = _both_ways(fm.value_and_grad(f), (first, out, wide), xs)
    assert fused == plain
    np.testing.assert_allclose(fused, eager, rtol=1e-12, atol=1e-12)
    assert "_ones_below((16, 30))" in text and ".reshape((2, 17)) @ g" in text
    assert ".reshape((40, 9)) @ _cat((g" in text


_ACTS = [fm.relu, fm.tanh, lambda v: v * 1.5, lambda v: v + 0.5, fm.exp, lambda v: -v, abs]


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.integers(1, 5), st.lists(st.tuples(st.sampled_from([1, 2, 5, 16, 20]),
                                             st.integers(0, len(_ACTS) - 1),
                                             st.sampled_from(["all", "prefix", "rev", "skip"]),
                                             st.booleans()), min_size=1, max_size=3),
       st.sampled_from([3, 40]))
def test_random_networks_fused_agree_with_unfused_and_eager(n_in, specs, batch):
    # layers of random widths and activations reading all, the first half, every other
    # or the reversed units of the layer before, the bias on either side
    rng = np.random.default_rng(len(specs) * 100 + n_in)
    p, width = [], n_in
    pick = {"all": lambda h: h, "prefix": lambda h: h[:max(1, len(h) // 2)],
            "rev": lambda h: h[::-1], "skip": lambda h: h[::2]}
    for w, _, sel, _ in specs:
        k = len(pick[sel](list(range(width))))
        p.append(tuple((tuple(rng.normal(size=k).tolist()), float(rng.normal()))
                       for _ in range(w)))
        width = w

    def loss(p, xs):
        def per(x):
            h, total = list(x), 0.0
            for (_, act, sel, first), layer in zip(specs, p):
                src = pick[sel](h)
                h = [_ACTS[act](fm.dot(w, src) + b if first else b + fm.dot(w, src))
                     for w, b in layer]
                total = total + h[0]
            return total
        return fm.mean(fm.vmap(per)(xs))

    xs = rng.normal(size=(batch, n_in))
    fused, plain, eager, _ = _both_ways(fm.value_and_grad(loss), tuple(p), xs)
    np.testing.assert_allclose(fused, plain, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(fused, eager, rtol=1e-12, atol=1e-12)
