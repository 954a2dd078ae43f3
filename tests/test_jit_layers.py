"""The batched backend at layer level: the matrix products it finds give the
scalar graph's numbers, parameters round-trip through jit, and the program
can be shown (``lower().as_text()``)."""

import numpy as np
import pytest

import fmicrograd as fm


def mlp(p, x, act):
    for i, layer in enumerate(p):
        x = [fm.dot(w, x) + b for w, b in layer]
        if i < len(p) - 1:
            x = [act(v) for v in x]
    return x


def make(sizes, batch, seed, classes=False):
    rng = np.random.default_rng(seed)
    params = tuple(tuple((tuple(rng.uniform(-1, 1, a).tolist()), float(rng.uniform(-0.1, 0.1)))
                         for _ in range(b)) for a, b in zip(sizes, sizes[1:]))
    x = rng.normal(size=(batch, sizes[0]))
    y = (np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)] if classes
         else np.where(rng.random(batch) < 0.5, -1.0, 1.0))
    return params, x, y


def loss_fn(act):
    def per_example(p, x, y):
        out = mlp(p, x, act)
        if len(out) == 1:
            return fm.relu(1.0 - y * out[0])
        return fm.losses.softmax_cross_entropy(out, y)

    def vmapped(p, X, Y):
        return fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, X, Y)) + 1e-4 * fm.losses.l2(p)

    def looped(p, X, Y):
        data = fm.mean([per_example(p, tuple(x), tuple(y) if np.ndim(y) else float(y))
                        for x, y in zip(X.tolist(), Y.tolist())])
        return data + 1e-4 * fm.losses.l2(p)

    return vmapped, looped


def assert_close(a, b, tol=1e-12):
    la, lb = fm.tree.leaves(a), fm.tree.leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        assert abs(u - v) <= tol * max(1.0, abs(v)), (u, v)


@pytest.mark.parametrize("sizes,batch,act,classes", [
    ((2, 8, 8, 1), 30, fm.relu, False),
    ((3, 12, 5, 1), 17, fm.tanh, False),
    ((4, 9, 7, 3), 25, fm.tanh, True),
])
def test_layer_batched_step_equals_scalar_graph(sizes, batch, act, classes):
    params, x, y = make(sizes, batch, 1, classes)
    vmapped, looped = loss_fn(act)

    @fm.jit
    def update(p, X, Y):
        value, g = fm.value_and_grad(vmapped)(p, X, Y)
        return value, fm.tree.map(lambda a, d: a - 0.1 * d, p, g)

    text = update.lower(params, x, y).as_text()
    assert "batched backend" in text and ("@" in text or "matmul" in text)
    eager = params
    for _ in range(3):  # the parameters jit returned come back as the next input
        value, params = update(params, x, y)
        ref_value, g = fm.value_and_grad(looped)(eager, x, y)
        eager = fm.tree.map(lambda a, d: a - 0.1 * d, eager, g)
        assert abs(value - ref_value) <= 1e-12 * max(1.0, abs(ref_value))
        assert_close(params, eager)
        assert type(params) is tuple and type(params[0][0][0]) is tuple


def test_lower_shows_one_matmul_per_layer_product():
    params, x, _ = make((3, 16, 1), 50, 2)
    f = fm.jit(lambda p, X: fm.vmap(lambda p, x: mlp(p, x, fm.relu)[0], in_axes=(None, 0))(p, X))
    low = f.lower(params, x)
    text = low.as_text()
    assert low.backend == "batched"
    products = [line for line in text.splitlines() if "@" in line or "matmul" in line]
    assert len(products) == 2  # the hidden layer and the output layer
    assert low.n_inputs == 81 + 150 and low.n_outputs == 1  # one batched output
    assert low.n_operations < 15  # groups, not the ~2,000 scalar nodes of the trace


def test_lower_of_a_scalar_program_lists_its_operations():
    text = fm.jit(lambda a, b: fm.tanh(a * b) + a).lower(0.5, 2.0).as_text()
    assert "scalar backend" in text
    assert sum("_tanh(" in line for line in text.splitlines()) == 1


def test_lower_of_a_function_that_cannot_compile_says_so():
    outer = fm.Var(2.0)
    low = fm.jit(lambda x: x * outer).lower(3.0)
    assert low.source is None and "not compiled" in low.as_text()


def test_returned_parameters_are_reread_when_another_object_comes_in():
    f = fm.jit(lambda p, k: tuple(v * k for v in p))
    out = f((1.0, 2.0, 3.0), 2.0)
    assert f(out, 2.0) == (4.0, 8.0, 12.0)
    fresh = (1.0, 1.0, 1.0)
    assert f(fresh, 3.0) == (3.0, 3.0, 3.0)
    assert f(out, 1.0) == out  # the known object again, after another one


def test_arrays_changed_in_place_are_read_again():
    f = fm.jit(lambda x: (x[0] * 2.0, x[1] * 2.0))
    x = np.array([1.0, 2.0])
    assert f(x) == (2.0, 4.0)
    x[0] = 5.0
    assert f(x) == (10.0, 4.0)


def test_mutable_outputs_are_not_taken_on_trust():
    f = fm.jit(lambda p: [v + 1.0 for v in p])
    out = f([1.0, 2.0])
    out[0] = 10.0  # a list the caller owns and may change
    assert f(out) == [11.0, 4.0]


def test_integer_and_other_leaves_still_match():
    f = fm.jit(lambda a, b: a * b)
    assert f(2.0, 3.0) == 6.0
    assert f(2, 3) == 6.0
    assert f(np.float64(2.0), 4.0) == 8.0
    with pytest.raises(TypeError):
        f("2", 3.0)


def _counted_box(immutable):
    """A frozen dataclass registered as a pytree node whose flatten counts
    its calls (how often fm.jit walks an instance)."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Box:
        v: tuple

    calls = []

    def flatten(b):
        calls.append(1)
        return (b.v,), None

    fm.tree.register(Box, flatten, lambda _, ch: Box(ch[0]), immutable=immutable)
    return Box, calls


def test_a_registered_immutable_node_jit_returned_is_not_walked_again():
    Box, calls = _counted_box(immutable=True)
    f = fm.jit(lambda b, k: Box(tuple(x * k for x in b.v)))
    out = f(Box((1.0, 2.0)), 2.0)
    before = len(calls)
    again = f(out, 2.0)  # recognised by identity: its floats are the program's own
    assert again == Box((4.0, 8.0)) and len(calls) == before
    assert f(Box((1.0, 2.0)), 3.0) == Box((3.0, 6.0)) and len(calls) > before


def test_an_immutable_argument_passed_again_is_not_walked_again():
    Box, calls = _counted_box(immutable=True)
    f = fm.jit(lambda k, data: sum(x * k for x in data.v))  # data is never returned
    data = Box((1.0, 2.0, 3.0))
    assert f(2.0, data) == 12.0  # traced
    assert f(3.0, data) == 18.0  # matched: walked once, and remembered
    before = len(calls)
    assert f(4.0, data) == 24.0 and len(calls) == before  # the same object: not walked
    assert f(1.0, Box((1.0, 1.0, 1.0))) == 3.0 and len(calls) > before  # another one is
    assert f(1.0, data) == 6.0  # and the first again after it


def test_a_list_argument_changed_in_place_is_read_again():
    f = fm.jit(lambda k, data: sum(x * k for x in data))
    data = [1.0, 2.0]
    assert f(1.0, data) == 3.0 and f(1.0, data) == 3.0
    data[0] = 10.0  # a list may change between calls: never taken on trust
    assert f(1.0, data) == 12.0


def test_a_registered_node_not_declared_immutable_is_read_again():
    Box, calls = _counted_box(immutable=False)
    f = fm.jit(lambda b, k: Box(tuple(x * k for x in b.v)))
    out = f(Box((1.0, 2.0)), 2.0)
    object.__setattr__(out, "v", (5.0, 6.0))  # changed behind the frozen front
    before = len(calls)
    assert f(out, 2.0) == Box((10.0, 12.0)) and len(calls) > before


def test_an_mlp_and_its_adam_state_round_trip_through_a_jitted_step():
    xs, ys = fm.datasets.moons(40, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [8, 8, 1], key=fm.random.key(0))
    opt = fm.optim.adam(0.01)

    def loss(m, batch):
        return fm.losses.hinge([m(x) for x in batch[0]], batch[1]) + 1e-4 * fm.losses.l2(m)

    def step(p, s, batch):
        v, g = fm.value_and_grad(loss)(p, batch)
        u, s = opt.update(g, s, p)
        return v, fm.optim.apply_updates(p, u), s

    jitted = fm.jit(step)
    p, s = model, opt.init(model)
    q, t = model, opt.init(model)
    for _ in range(4):  # from the second step on, p and s are the ones jit returned
        v, p, s = jitted(p, s, (xs, ys))
        w, q, t = step(q, t, (xs, ys))
        assert abs(v - w) <= 1e-12 * max(1.0, abs(w))
        for a, b in zip(fm.tree.leaves((p, s)), fm.tree.leaves((q, t))):
            assert abs(a - b) <= 1e-12 * max(1.0, abs(b))
    assert type(p) is fm.nn.MLP and type(p.layers[0].neurons[0]) is fm.nn.Neuron
    assert p.layers[0].neurons[0].activation == model.layers[0].neurons[0].activation
    known = jitted._entries.order[0].known
    assert known[0][0] is p and known[1][0] is s  # kept in the compiled layout
