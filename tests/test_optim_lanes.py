"""An optimizer's update over many leaves under ``fm.jit``, in a function that
maps with ``fm.vmap`` (a loss over a batch): its step runs once under
``fm.vmap`` (``optim.base.leafwise(..., lanes=True)``), with the numbers of
the eager update leaf by leaf (its bits where the step is elementwise
operations only). Elsewhere (a function without ``vmap``, whose program may
be float code in eager's order; few leaves; a batch of parameters under
``vmap``; another transform's trace) the step runs leaf by leaf as before."""

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.optim import base

optim = fm.optim

OPTIMIZERS = {
    "adam": lambda: optim.adam(1e-3),
    "adamw": lambda: optim.adamw(1e-3, weight_decay=0.01),
    "rmsprop": lambda: optim.rmsprop(1e-2),
    "momentum": lambda: optim.sgd(0.01, momentum=0.9),
    "nesterov": lambda: optim.sgd(0.01, momentum=0.9, nesterov=True),
}


@pytest.fixture
def lanes_used(monkeypatch):
    """How many times the update ran its step under ``vmap``."""
    calls = []
    real = base._lanes

    def counted(*args):
        calls.append(len(args[2][0]))
        return real(*args)

    monkeypatch.setattr(base, "_lanes", counted)
    return calls


def _tree(rng, n):
    return {"w": tuple(rng.normal(size=n).tolist()), "b": (0.5, -0.25, 1e-300)}


XS = (0.5, 1.5, -2.0)


def _with_a_batch(update):
    """``update`` beside a mean over ``vmap``: the function maps, as a step's loss does."""
    def f(g, state, p, xs):
        mean = fm.mean(fm.vmap(lambda x: x * x)(xs))  # (first, as a loss comes first)
        return update(g, state, p), mean

    return f


def _steps(opt, g, p, k, update):
    state = opt.init(p)
    out = []
    for _ in range(k):
        (u, state), mean = update(g, state, p, XS)
        assert mean == pytest.approx(13 / 6, rel=1e-15)
        p = optim.apply_updates(p, u)
        out.append((u, state, p))
    return out


def _flat(x):
    return np.array(fm.tree.leaves(x), dtype=float)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_the_compiled_update_over_many_leaves_gives_the_eager_numbers(name, lanes_used):
    rng = np.random.default_rng(3)
    p, g = _tree(rng, 150), _tree(rng, 150)
    opt = OPTIMIZERS[name]()
    eager = _steps(opt, g, p, 3, _with_a_batch(opt.update))
    compiled = _steps(opt, g, p, 3, fm.jit(_with_a_batch(opt.update)))
    for (u0, s0, p0), (u1, s1, p1) in zip(eager, compiled):
        for a, b in ((u0, u1), (s0, s1), (p0, p1)):
            if name.startswith("adam"):  # its ``(1 - b1) * g + b1 * m`` is a matrix product
                # (``[1 - b1, b1] @ [g; m]``), whose kernels may fuse the multiply-adds:
                # the last bit (docs/sharp-bits.md, "Compiled results agree to the last bits")
                np.testing.assert_allclose(_flat(b), _flat(a), rtol=1e-15, atol=0)
            else:  # elementwise operations only: eager's bits
                np.testing.assert_array_equal(_flat(b), _flat(a))
    assert lanes_used and set(lanes_used) == {153}  # traced once, over every leaf


def test_the_first_adam_step_from_zero_state_made_inside_jit(lanes_used):
    # the state's leaves are floats (zeros_like) next to the traced gradient's nodes
    rng = np.random.default_rng(4)
    p, g = _tree(rng, 100), _tree(rng, 100)
    opt = optim.adam(1e-2)

    def first(g, p):
        return _with_a_batch(opt.update)(g, opt.init(p), p, XS)[0]

    u0, s0 = first(g, p)
    u1, s1 = fm.jit(first)(g, p)
    np.testing.assert_allclose(_flat(u1), _flat(u0), rtol=1e-15, atol=0)
    np.testing.assert_allclose(_flat(s1), _flat(s0), rtol=1e-15, atol=0)
    assert lanes_used


def test_few_leaves_a_function_without_vmap_and_eager_updates_run_leaf_by_leaf(lanes_used):
    opt = optim.adam(1e-2)
    p = tuple(float(i) for i in range(base.MIN_LANES - 1))
    g = tuple(0.5 * i - 3.0 for i in range(base.MIN_LANES - 1))
    s = opt.init(p)
    f = _with_a_batch(opt.update)
    assert fm.jit(f)(g, s, p, XS)[0][0] == pytest.approx(f(g, s, p, XS)[0][0], rel=1e-15)
    big = tuple(float(i) for i in range(200))
    opt.update(big, opt.init(big), big)  # eager: no trace running
    fm.jit(opt.update)(big, opt.init(big), big)  # no vmap: a program of scalars
    assert lanes_used == []


def test_a_batch_of_parameter_sets_under_vmap_runs_leaf_by_leaf(lanes_used):
    # each leaf is one number per example there, not a number: not stacked as one
    rng = np.random.default_rng(5)
    opt = optim.adam(1e-2)
    ps = rng.normal(size=(3, 80))
    gs = rng.normal(size=(3, 80))

    def step(g, p):
        u, _ = opt.update(tuple(g), opt.init(tuple(p)), tuple(p))
        return optim.apply_updates(tuple(p), u)

    want = [step(g, p) for g, p in zip(gs, ps)]
    got = fm.jit(fm.vmap(step))(gs, ps)
    np.testing.assert_array_equal(np.array(got), np.array(want))
    assert lanes_used == []


def test_differentiating_through_the_update_under_jit(lanes_used):
    # a meta-gradient: d/dlr of the loss after two Adam steps, through the vmapped step
    rng = np.random.default_rng(6)
    target = rng.normal(size=90).tolist()

    def sq(q):  # the squared error over vmap
        return fm.sum(fm.vmap(lambda a, t: (a - t) ** 2)(q, target))

    def after_two(lr):
        opt = optim.adam(lr)
        p = tuple(0.0 for _ in target)
        state = opt.init(p)
        for _ in range(2):
            g = fm.grad(sq)(p)
            u, state = opt.update(g, state, p)
            p = optim.apply_updates(p, u)
        return sq(p)

    want = fm.value_and_grad(after_two)(0.1)
    got = fm.jit(fm.value_and_grad(after_two))(0.1)
    assert got[0] == pytest.approx(want[0], rel=1e-14)
    assert got[1] == pytest.approx(want[1], rel=1e-12)
    assert lanes_used


def test_to_torch_traces_the_update_leaf_by_leaf(lanes_used):
    opt = optim.sgd(0.1, momentum=0.9)
    p = tuple(float(i) for i in range(70))

    def moved(p):
        u, _ = opt.update(p, opt.init(p), p)
        return fm.sum(fm.vmap(lambda a: 2.0 * a)(optim.apply_updates(p, u)))

    import torch

    fn = fm.to_torch(moved, in_axes=None)  # the tensor: a sequence of 70 numbers
    assert float(fn(torch.tensor(p, dtype=torch.float64))) == pytest.approx(moved(p), rel=1e-15)
    assert lanes_used == []


def test_debug_nans_inside_jit_names_the_leaf_a_nan_reaches(lanes_used):
    # sqrt'(0) is inf: Adam's update of leaf 40 is inf / inf. Under vmap the NaN is
    # one entry of the update's vector, and the error named the first leaf taken
    # out of it ([1][0], finite); leaf by leaf it names the leaf (round 44's review)
    opt = optim.adam(0.01)

    def step(p, s, xs):
        v, g = fm.value_and_grad(lambda p: fm.mean(fm.vmap(lambda x: (x * p[0]) ** 2)(xs))
                                 + fm.sum(fm.sqrt(w) for w in p))(p)
        u, s = opt.update(g, s, p)
        return v, optim.apply_updates(p, u), s

    p = tuple(0.0 if i == 40 else 0.5 for i in range(70))
    for checked in (fm.debug_nans(step), fm.jit(fm.debug_nans(step))):
        with pytest.raises(FloatingPointError, match=r"reaches the output at \[1\]\[40\]$"):
            checked(p, opt.init(p), XS)
    assert lanes_used == []
    assert [i for i, v in enumerate(fm.jit(step)(p, opt.init(p), XS)[1]) if v != v] == [40]
    assert lanes_used == [70]  # (without debug_nans: the update under vmap)


def _mlp_loss(p, batch):
    def out(x):
        h = [fm.tanh(fm.dot(w, x) + b) for w, b in p[0]]
        return fm.dot(p[1][0][0], h) + p[1][0][1]

    xs, ys = batch
    return fm.mean(fm.vmap(lambda x, t: fm.relu(1.0 - t * out(x)))(xs, ys))


@pytest.mark.parametrize("name", ["adam", "rmsprop", "momentum"])
def test_fit_with_jit_follows_eager_over_many_parameters(name, lanes_used):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(40, 3))
    y = np.sign(x[:, 0] * x[:, 1] + 0.1)
    params = (tuple((tuple(rng.normal(size=3).tolist()), 0.1) for _ in range(16)),
              ((tuple(rng.normal(size=16).tolist()), 0.0),))  # 81 parameters
    opt = OPTIMIZERS[name]()
    eager, h0 = fm.train.fit(_mlp_loss, params, opt, [(x, y)], epochs=4, monitor=False)
    compiled, h1 = fm.train.fit(_mlp_loss, params, opt, [(x, y)], epochs=4, monitor=False,
                                jit=True)
    np.testing.assert_allclose(_flat(compiled), _flat(eager), rtol=1e-12, atol=1e-12)
    assert list(h1["loss"]) == pytest.approx(list(h0["loss"]), rel=1e-12)
    assert lanes_used


def test_a_step_with_the_update_under_vmap_is_still_cut_in_two_halves(monkeypatch, lanes_used):
    # the update's arrays (one entry per parameter) are not the batch (one per example):
    # the step's examples are still cut in two halves on two threads (compiler.split)
    from fmicrograd.compiler import split

    monkeypatch.setattr(split, "MIN_WORK", 0)
    rng = np.random.default_rng(8)
    x = rng.normal(size=(256, 3))
    y = np.sign(x[:, 0] - x[:, 2] + 0.05)
    params = (tuple((tuple(rng.normal(size=3).tolist()), 0.1) for _ in range(16)),
              ((tuple(rng.normal(size=16).tolist()), 0.0),))
    opt = optim.adam(1e-2)
    vg = fm.value_and_grad(_mlp_loss)

    def step(p, s, batch):
        value, g = vg(p, batch)
        u, s = opt.update(g, s, p)
        return value, optim.apply_updates(p, u), s

    jitted = fm.jit(step)
    assert "two halves of 128 examples" in jitted.lower(params, opt.init(params), (x, y)).as_text()
    a = b = (None, params, opt.init(params))
    for _ in range(3):
        a = step(a[1], a[2], (x, y))
        b = jitted(b[1], b[2], (x, y))
        assert b[0] == pytest.approx(a[0], rel=1e-12)
        np.testing.assert_allclose(_flat(b[1:]), _flat(a[1:]), rtol=1e-12, atol=1e-15)
    assert lanes_used


def test_a_large_batch_traced_without_its_numbers_is_traced_once(lanes_used):
    # 65,536 data entries: jit traces with values without numbers (core/shaped.py), and the
    # update's stack and its outputs take them too, rather than tracing again with the values
    rng = np.random.default_rng(9)
    x = rng.normal(size=(8192, 8))
    y = np.sign(rng.normal(size=8192))
    params = tuple((tuple(rng.normal(size=8).tolist()), 0.0) for _ in range(12))  # 108
    opt = optim.adam(1e-2)

    def loss(p, xs, ys):
        def point(xi, yi):
            return fm.relu(1.0 - yi * fm.tanh(fm.dot(p[0][0], xi) + p[0][1]))

        return fm.mean(fm.vmap(point)(xs, ys)) + 1e-4 * fm.losses.l2(p)

    vg = fm.value_and_grad(loss)
    runs = []

    def step(p, s, xs, ys):
        runs.append(1)
        value, g = vg(p, xs, ys)
        u, s = opt.update(g, s, p)
        return value, optim.apply_updates(p, u), s

    got = fm.jit(step)(params, opt.init(params), x, y)
    assert len(runs) == 1 and lanes_used
    want = step(params, opt.init(params), x, y)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(_flat(got[1:]), _flat(want[1:]), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("examples", [256, 16384])  # 16,384 x 4: the data as columns (col)
def test_a_vmap_over_the_parameters_beside_a_vmap_over_the_batch(monkeypatch, examples):
    # two array lengths in one step, neither an optimizer's: 130 parameters (a length the
    # halves could take) and the examples; cut or not, the numbers are eager's
    from fmicrograd.compiler import split

    monkeypatch.setattr(split, "MIN_WORK", 0)
    rng = np.random.default_rng(10)
    x = rng.normal(size=(examples, 4))
    p = tuple(rng.normal(size=130).tolist())

    def loss(p, xs):
        fit = fm.mean(fm.vmap(lambda xi: (fm.dot(p[:4], xi) - 1.0) ** 2)(xs))
        return fit + 1e-3 * fm.sum(fm.vmap(lambda w: w * w)(p))

    want = fm.value_and_grad(loss)(p, x)
    got = fm.jit(fm.value_and_grad(loss))(p, x)
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-15)
