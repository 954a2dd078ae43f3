"""``fm.jit``'s deferred call: output items that come back as arguments stay in
the program's flat layout (``Deferred``) and are built only when asked, which
``fit(jit=True)`` uses for the parameters and optimizer state between steps.
Each test checks the numbers bit for bit against plain calls."""

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.compiler import compile as C

XS = np.linspace(-2.0, 2.0, 301)


def _step(p, xs):
    def loss(w):
        return fm.mean(fm.vmap(lambda x: (fm.tanh(w[0] * x) - w[1] * x) ** 2)(xs))

    value, g = fm.value_and_grad(loss)(p)
    return tuple(a - 0.1 * d for a, d in zip(p, g)), value


def _bits(tree):
    return [np.float64(v).tobytes() for v in fm.tree.leaves(tree)]


def test_deferred_steps_give_the_plain_calls_bits():
    plain, lazy = fm.jit(_step), fm.jit(_step)
    p = q = (0.5, -0.3)
    values = []
    for _ in range(6):
        p, v = plain(p, XS)
        q, w = lazy.deferred(q, XS)
        values.append(v == w and np.float64(v).tobytes() == np.float64(w).tobytes())
    assert isinstance(q, C.Deferred) and all(values)
    assert _bits(q.get()) == _bits(p) and q.get() is q.get()


def test_a_built_item_is_recognised_in_its_place():
    # after get(), passing the pytree (not the Deferred) back is not walked again
    f = fm.jit(_step)
    p, _ = f.deferred((0.5, -0.3), XS)
    p, _ = f.deferred(p, XS)
    tree = p.get()
    entry = f._entries.order[0]
    assert entry.known[0][0] is tree
    walked = []
    real = entry.match

    def match(args, kwargs):
        found = real(args, kwargs)
        walked.append(found is not None and found[0][0] is entry.known[0][1])
        return found

    entry.match = match
    q, _ = f.deferred(tree, XS)
    entry.match = real
    assert walked == [True] and isinstance(q, C.Deferred)
    r, _ = f(tree, XS)
    assert _bits(q.get()) == _bits(r)


def test_a_deferred_item_given_to_another_structure_is_built_first():
    f = fm.jit(_step)
    p, _ = f.deferred((0.5, -0.3), XS)
    p, _ = f.deferred(p, XS)
    assert isinstance(p, C.Deferred)
    q, v = f.deferred(p, XS[:100])  # a new structure (100 examples): traced from the pytree
    r, w = f(p.get(), XS[:100])
    assert _bits(q if not isinstance(q, C.Deferred) else q.get()) == _bits(r) and v == w


def test_fit_with_jit_keeps_the_plain_jit_trajectory_bit_for_bit(monkeypatch):
    # several batches per epoch, the last one shorter (its own structure)
    xs, ys = fm.datasets.moons(260, 0.1, seed=3)
    model = fm.nn.MLP.init(2, [8, 8, 1], key=fm.random.key(5))

    def loss(m, batch):
        bx, by = batch
        per = fm.vmap(lambda x, y: fm.relu(1.0 - y * m(x)))(np.array(bx), np.array(by))
        return fm.mean(per) + 1e-4 * fm.losses.l2(m)

    seen = []

    def run(**kw):
        return fm.train.fit(loss, model, fm.optim.adam(0.05), (xs, ys), epochs=4,
                            batch_size=100, key=fm.random.key(1), jit=True,
                            callback=lambda e, p, row: seen.append(p), **kw)

    made = []
    real = C.Deferred.__init__
    monkeypatch.setattr(C.Deferred, "__init__", lambda self, *a: made.append(1) or real(self, *a))
    lazy, h1 = run()
    # 4 epochs of 3 batches (100, 100, 60): parameters and adam's state are
    # deferred on the 100-example steps after the first (7 of them)
    assert len(made) >= 2 * 7
    assert seen and not any(isinstance(p, C.Deferred) for p in seen)
    assert isinstance(lazy, fm.nn.MLP)
    monkeypatch.setattr(C._Jitted, "deferred", C._Jitted.__call__)
    plain, h2 = run()
    assert _bits(lazy) == _bits(plain)
    assert list(h1["loss"]) == list(h2["loss"])
    assert list(h1["grad_norm"]) == list(h2["grad_norm"])


def test_fit_metrics_see_built_parameters():
    xs, ys = fm.datasets.moons(40, 0.1, seed=3)
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(2))
    kinds = []

    def loss(m, batch):
        bx, by = batch
        return fm.losses.hinge([m(x) for x in bx], by)

    def metric(m, batch):
        kinds.append(type(m))
        return 0.0

    fm.train.fit(loss, model, fm.optim.sgd(0.1), (xs, ys), epochs=2, batch_size=10,
                 jit=True, metrics={"m": metric})
    assert kinds and set(kinds) == {fm.nn.MLP}


@pytest.mark.parametrize("value", [(1.0, 2.0), 3.0])
def test_built_passes_anything_else_through(value):
    assert C.built(value) is value


def test_item_builders_go_with_their_variant():
    # a branch on a parameter: each new side is a new variant; the oldest are
    # dropped past MAX_VARIANTS, and their item builders with them
    def step(p, xs):
        new, value = _step(p, xs)
        k = sum(1 for t in np.arange(-4.5, 5.0) if p[0] > t)
        return (new[0] * 1.0, new[1] + float(k)), value

    f = fm.jit(step)
    for start in np.arange(-5.0, 5.5).tolist():
        p, _ = f.deferred((start, 0.1), XS)
        q, _ = f.deferred(p, XS)
        assert q.get()[1] == pytest.approx(step(step((start, 0.1), XS)[0], XS)[0][1],
                                          rel=1e-12)
    entry = f._entries.order[0]
    assert len(entry.variants) == C.MAX_VARIANTS
    assert set(entry.items) == {v[1] for v in entry.variants}


def _moons_fit(monkeypatch=None, **kw):
    xs, ys = fm.datasets.moons(60, 0.1, seed=4)
    model = fm.nn.MLP.init(2, [6, 6, 1], key=fm.random.key(6))

    def loss(m, batch):
        bx, by = batch
        return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)

    return fm.train.fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], jit=True, **kw)


def test_fit_builds_the_pytrees_only_where_they_are_read(monkeypatch):
    # one step per epoch: parameters and adam's state stay deferred from epoch to
    # epoch, and only the result is built, with the plain calls' bits
    gets = []
    real = C.Deferred.get
    monkeypatch.setattr(C.Deferred, "get", lambda self: gets.append(1) or real(self))
    lazy, h1 = _moons_fit(epochs=12)
    assert isinstance(lazy, fm.nn.MLP) and len(gets) <= 2  # the result (its best, its last)
    monkeypatch.setattr(C._Jitted, "deferred", C._Jitted.__call__)
    plain, h2 = _moons_fit(epochs=12)
    assert _bits(lazy) == _bits(plain) and list(h1["loss"]) == list(h2["loss"])
    seen = []
    _moons_fit(epochs=3, callback=lambda e, p, row: seen.append(p))
    assert len(seen) == 3 and all(isinstance(p, fm.nn.MLP) for p in seen)


def test_fit_under_jit_resumes_from_its_checkpoints_bit_for_bit(tmp_path):
    whole, h1 = _moons_fit(epochs=6, checkpoint_dir=tmp_path / "a", checkpoint_every=2)
    _moons_fit(epochs=3, checkpoint_dir=tmp_path / "b")  # stopped after 3 epochs
    resumed, h2 = _moons_fit(epochs=6, checkpoint_dir=tmp_path / "b", resume=tmp_path / "b")
    assert _bits(resumed) == _bits(whole) and list(h1["loss"]) == list(h2["loss"])


def test_a_deferred_argument_meeting_a_new_branch_is_traced_as_its_pytree():
    # it was taken for a static leaf: every later number went to the wrong input, and the
    # variant compiled so was kept for plain calls too
    xs = np.linspace(0.0, 2.0, 201)

    def f(a, b, xs):
        s = fm.mean(fm.vmap(lambda x: x * b[0])(xs))
        if b[0] > 0.0:
            return tuple(ai - 0.1 for ai in a), s
        return (s, s), s

    jf = fm.jit(f)
    a = (-1.0, -2.0)
    for _ in range(3):
        a, _ = jf.deferred(a, (1.0, 5.0, 7.0), xs)
    got = jf(a, (-3.0, 5.0, 7.0), xs)
    assert fm.tree.leaves(got) == pytest.approx([-3.0] * 3, rel=1e-15)
    assert fm.tree.leaves(jf((-0.5, 0.5), (-3.0, 5.0, 7.0), xs)) == pytest.approx([-3.0] * 3,
                                                                                   rel=1e-15)


def test_fit_compiled_with_a_schedule_whose_branch_flips_matches_eager():
    # TypeError: value_and_grad: argument 0 has a leaf ... that is Deferred
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    y = np.sign(x[:, 0])
    loss = lambda m, b: fm.mean(fm.vmap(lambda x, y: (m(x) - y) ** 2)(*b))
    model = fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0))
    runs = [fm.train.fit(loss, model, fm.optim.sgd(fm.optim.linear_schedule(0.1, 0.01, 3)),
                         [(x, y)], epochs=6, jit=jit) for jit in (True, False)]
    assert list(runs[0][1]["loss"]) == pytest.approx(list(runs[1][1]["loss"]), rel=1e-12)
    assert fm.tree.leaves(runs[0][0]) == pytest.approx(fm.tree.leaves(runs[1][0]), rel=1e-12,
                                                        abs=1e-15)


def test_two_outputs_of_one_structure_come_back_at_their_own_positions():
    # a step's new parameters and new velocity have the structure of both arguments:
    # both were remembered for the first one, so neither was known when passed back
    # (each step walked both again: 3.9 ms for 0.8 ms through .deferred)
    @fm.jit
    def step(p, v, xs):
        g = fm.grad(lambda q: fm.sum(fm.vmap(lambda x: (q[0] * x + q[1]) ** 2)(xs)))(p)
        v = tuple(0.9 * a + b for a, b in zip(v, g))
        return fm.sum(g), tuple(a - 0.01 * b for a, b in zip(p, v)), v

    xs = np.linspace(-1.0, 1.0, 8)
    p, v = (0.5, -0.25), (0.0, 0.0)
    _, p, v = step(p, v, xs)
    entry = step._entries.order[0]
    assert [c[:2] for c in entry.variants[0][3]] == [(1, 0), (2, 1)]
    assert entry.known[0][0] is p and entry.known[1][0] is v


def test_a_deferred_inside_a_container_names_get():
    xs = np.linspace(0.0, 2.0, 201)

    def step(p, xs):
        g = fm.grad(lambda w: fm.mean(fm.vmap(lambda x: (w[0] * x - w[1]) ** 2)(xs)))(p)
        return tuple(a - 0.1 * d for a, d in zip(p, g)), g[0]

    f = fm.jit(step)
    p, _ = f.deferred((1.0, 0.0), xs)
    p, _ = f.deferred(p, xs)
    assert type(p).__name__ == "Deferred"
    with pytest.raises(TypeError, match=r"\.deferred output inside a container: pass it as a "):
        fm.jit(lambda state, xs: step(state["p"], xs))({"p": p}, xs)
