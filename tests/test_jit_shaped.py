"""A large batch traced with values that have a shape and no numbers
(``core/shaped.py``): the same program and the same numbers as a trace with
the values, one trace where the function only maps its data, and a second
trace with the values wherever the function needs a number."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.batching import traced_arrays
from fmicrograd.compiler import ir, unread
from fmicrograd.core.shaped import Shaped, ValuesRead
from fmicrograd.testing import programs


@pytest.fixture
def small_most(monkeypatch):
    """Placeholders, and values without numbers, for arrays of 4 entries or
    more (``MOST`` is 65,536)."""
    monkeypatch.setattr(unread, "MOST", 4)


@pytest.fixture
def traced_with(monkeypatch):
    """The class of the values each trace gave an array argument's columns."""
    seen = []
    real = traced_arrays.TracedArrays.add

    def add(self, arr, start, variables, values=None, **kw):
        seen.append(type(values).__name__)
        return real(self, arr, start, variables, values, **kw)

    monkeypatch.setattr(traced_arrays.TracedArrays, "add", add)
    return seen


def _close(a, b):
    assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------- the values


def test_arithmetic_gives_shapes_and_dtypes():
    v, s = Shaped((5,)), Shaped(())
    assert (v * 2.0 + s).shape == (5,) and (s / 3.0).shape == ()
    assert (2.0 - v).shape == (5,) and (np.ones((3, 1)) * v).shape == (3, 5)
    assert (v > 0).dtype == np.bool_ and ((v > 0) * v).dtype == np.float64
    assert np.tanh(v).shape == (5,) and np.maximum(v, 0.0).shape == (5,)
    assert np.add.reduce(Shaped((5, 3)), axis=0).shape == (3,)
    assert Shaped((5, 3)).sum(axis=(0, 1)).shape == ()
    assert Shaped((5, 3)).sum(axis=1, keepdims=True).shape == (5, 1)
    assert (np.ones(3) @ Shaped((3, 4))).shape == (4,) and (Shaped((4, 3)) @ v[:3]).shape == (4,)
    assert np.stack([v, v]).shape == (2, 5) and np.where(v > 0, v, 0.0).shape == (5,)
    assert v.reshape((5, 1)).T.shape == (1, 5) and v[1:3].shape == (2,)
    assert Shaped((5,), np.float32).astype(float).dtype == np.float64
    assert (Shaped((2,), np.float32) * 2.0).dtype == np.float32  # (a Python float is weak)


def test_each_numpy_operation_gives_the_shape_numpy_gives():
    a = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
    s = Shaped(a.shape)
    for op in [lambda x: x * 2.0, lambda x: 1.0 / (x + 3.0), lambda x: -x, lambda x: abs(x),
               lambda x: x ** 2.0, lambda x: np.exp(x), lambda x: x >= 0.5,
               lambda x: x.sum(axis=0), lambda x: x.T @ np.ones(5), lambda x: x[:, 1],
               lambda x: x.reshape(15), lambda x: np.add.reduce(x, axis=None),
               lambda x: np.ones(3) * x, lambda x: x[None, 2:]]:
        real, shaped = op(a), op(s)
        assert (np.shape(real), np.asarray(real).dtype) == (shaped.shape, shaped.dtype)


@pytest.mark.parametrize("read", [
    bool, float, int, list, np.asarray, repr and (lambda v: f"{v:.3f}"),
    lambda v: v.tolist(), lambda v: v.item(), lambda v: v.argmax(), lambda v: np.sort(v),
    lambda v: v[np.array([0, 1])], lambda v: np.add(v, 1.0, out=np.zeros(4)),
    lambda v: np.where(v > 0), lambda v: np.multiply.outer(v, v), lambda v: v @ 2.0,
    lambda v: range(4)[v[0]], lambda v: np.float64(1.0) < v[0] or 0,
    lambda v: v * np.array([object()] * 4), lambda v: v + "a",
], ids=["bool", "float", "int", "list", "asarray", "format", "tolist", "item", "argmax",
        "sort", "fancy", "out", "where1", "outer", "matmul-scalar", "index", "truth",
        "object-array", "text"])
def test_every_look_at_the_numbers_raises(read):
    with pytest.raises(ValuesRead):
        read(Shaped((4,)))


def test_values_read_is_not_an_exception_a_function_catches():
    assert not issubclass(ValuesRead, Exception) and issubclass(ValuesRead, BaseException)


def test_a_value_without_numbers_frozen_into_a_constant_is_refused():
    with pytest.raises(ValuesRead):
        ir.Program().const(Shaped((3,)))


# ---------------------------------------------------------------- traces


def _mlp_loss(act, classes=1, checked=False):
    def mlp(p, x):
        for i, layer in enumerate(p):
            x = [fm.dot(w, x) + b for w, b in layer]
            if i < len(p) - 1:
                x = [act(v) for v in x]
        return x

    def per_example(p, x, y):
        out = mlp(p, x)
        if classes == 1:
            return fm.losses.hinge(out[0], y) if checked else fm.relu(1.0 - y * out[0])
        return fm.losses.softmax_cross_entropy(out, y)

    def loss(p, xs, ys):
        return fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, xs, ys)) + \
            1e-4 * fm.losses.l2(p)

    return loss


def _params(sizes, seed):
    rng = np.random.default_rng(seed)
    return tuple(tuple((tuple(rng.normal(size=a).tolist()), float(rng.normal()))
                       for _ in range(b)) for a, b in zip(sizes, sizes[1:]))


def _sgd(loss):
    def step(p, xs, ys):
        value, g = fm.value_and_grad(loss)(p, xs, ys)
        return value, fm.tree.map(lambda a, d: a - 0.1 * d, p, g)
    return step


def _adam(loss):
    opt = fm.optim.adam(0.01)

    def step(p, state, xs, ys):
        value, g = fm.value_and_grad(loss)(p, xs, ys)
        updates, state = opt.update(g, state, p)
        return value, fm.optim.apply_updates(p, updates), state
    return step, opt


STEPS = {
    "relu": (_sgd(_mlp_loss(fm.relu)), (2, 5, 4, 1), 1),
    "tanh": (_sgd(_mlp_loss(fm.tanh)), (3, 4, 1), 1),
    "hinge": (_sgd(_mlp_loss(fm.relu, checked=True)), (2, 4, 1), 1),
}
SOFTMAX = (_sgd(_mlp_loss(fm.relu, 3)), (2, 4, 3), 3)


def _data(sizes, classes, n=8, seed=1):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, sizes[0]))
    ys = rng.integers(0, classes, n).astype(float) if classes > 1 else \
        np.where(rng.normal(size=n) > 0, 1.0, -1.0)
    return xs, ys


def test_labels_are_checked_at_every_call(small_most, traced_with):
    step, sizes, classes = STEPS["hinge"]
    p = _params(sizes, 0)
    xs, ys = _data(sizes, classes)
    f = fm.jit(step)
    _close(f(p, xs, ys)[0], step(p, xs, ys)[0])
    assert traced_with == ["Shaped", "Shaped"]  # (checked by the program, not the trace)
    bad = ys.copy()
    bad[5] = 0.0
    with pytest.raises(ValueError, match=r"hinge: the label at batch index 5 is 0.0"):
        f(p, xs, bad)
    _close(f(p, xs, ys)[0], step(p, xs, ys)[0])


@pytest.mark.parametrize("steps", [STEPS["hinge"], SOFTMAX], ids=["hinge", "softmax"])
def test_a_bad_label_at_the_first_call_raises_the_loss_error(small_most, steps):
    step, sizes, classes = steps
    xs, ys = _data(sizes, classes)
    ys[2] = 7.0
    with pytest.raises(ValueError, match="batch index 2 is 7.0"):
        fm.jit(step)(_params(sizes, 0), xs, ys)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_a_step_that_maps_its_data_is_traced_once_without_numbers(small_most, traced_with,
                                                                  name, monkeypatch):
    step, sizes, classes = STEPS[name]
    calls = []

    def counted(*args):
        calls.append(1)
        return step(*args)

    p = _params(sizes, 0)
    f = fm.jit(counted)
    for seed in (1, 2, 3):
        xs, ys = _data(sizes, classes, seed=seed)
        (v, q), (v0, q0) = f(p, xs, ys), step(p, xs, ys)
        _close(v, v0)
        np.testing.assert_allclose(fm.tree.leaves(q), fm.tree.leaves(q0), rtol=1e-12, atol=1e-15)
    assert len(calls) == 1 and traced_with == ["Shaped", "Shaped"]
    # the same program as traced with the numbers
    text = f.lower(p, xs, ys).as_text()
    monkeypatch.setattr(unread, "SHAPED", False)
    assert fm.jit(counted).lower(p, xs, ys).as_text() == text


def test_an_optimizer_step_gives_the_program_traced_with_numbers(small_most, monkeypatch):
    step, opt = _adam(_mlp_loss(fm.tanh))
    p = _params((2, 3, 1), 4)
    state = opt.init(p)
    xs, ys = _data((2, 3, 1), 1)
    f = fm.jit(step)
    out, want = f(p, state, xs, ys), step(p, state, xs, ys)
    np.testing.assert_allclose(fm.tree.leaves(out), fm.tree.leaves(want), rtol=1e-12, atol=1e-15)
    text = f.lower(p, state, xs, ys).as_text()
    monkeypatch.setattr(unread, "SHAPED", False)
    assert fm.jit(step).lower(p, state, xs, ys).as_text() == text


def _branchy(p, xs, ys):
    loss = _mlp_loss(fm.relu)(p, xs, ys)
    return loss * 2.0 if loss > 0.5 else loss - 1.0  # a guard on a value of the batch


@pytest.mark.parametrize("f, sizes, classes", [
    (_branchy, (2, 5, 4, 1), 1),
    (lambda p, xs, ys: fm.where(_mlp_loss(fm.relu)(p, xs, ys) > 0.5, 1.0, 2.0), (2, 5, 4, 1), 1),
    (lambda p, xs, ys: max(_mlp_loss(fm.relu)(p, xs, ys), 0.75), (2, 5, 4, 1), 1),
    # (softmax cross-entropy's gradient follows the class each label picks, by its value)
    (lambda p, xs, ys: SOFTMAX[0](p, xs, ys)[0], SOFTMAX[1], SOFTMAX[2]),
], ids=["guard", "where", "max", "softmax"])
def test_a_function_that_needs_a_number_is_traced_again_with_them(small_most, traced_with, f,
                                                                 sizes, classes):
    p = _params(sizes, 0)
    g = fm.jit(f)
    for seed in (1, 2):
        xs, ys = _data(sizes, classes, seed=seed)
        _close(g(p, xs, ys), f(p, xs, ys))
    assert traced_with[:2] == ["Shaped", "Shaped"] and "ndarray" in traced_with


def _outcome(f, *args):
    try:
        return f(*args)
    except Exception as e:  # noqa: BLE001 -- compared, not handled
        return type(e), str(e)


@pytest.mark.parametrize("look", [
    lambda v: float(v), lambda v: v.value, lambda v: f"{v:.3f}", lambda v: v > 0.0,
    lambda v: np.asarray(v), lambda v: int(v),
], ids=["float", "value", "format", "compare", "asarray", "int"])
def test_what_the_function_catches_is_what_it_catches_with_numbers(monkeypatch, look):
    def f(p, xs, ys):
        loss = _mlp_loss(fm.relu)(p, xs, ys)
        try:
            seen = look(loss)
            caught = 0.0 if seen is not None else 2.0
        except Exception:  # (never ValuesRead: a BaseException)
            caught = 1.0
        return loss + caught

    p = _params((2, 5, 4, 1), 0)
    xs, ys = _data((2, 5, 4, 1), 1)
    want = _outcome(fm.jit(f), p, xs, ys)  # (8 x 2 entries: traced with the numbers)
    monkeypatch.setattr(unread, "MOST", 4)
    got = _outcome(fm.jit(f), p, xs, ys)
    if isinstance(want, float):
        _close(got, want)
    else:
        assert got == want


@settings(max_examples=40, deadline=None)
@given(programs(min_inputs=2, max_inputs=3, max_steps=8), st.integers(0, 2**31))
def test_random_programs_give_the_program_traced_with_numbers(fn, seed):
    # every op of fm.testing's table, mapped over a batch and differentiated: traced
    # without numbers (or again with them, where an op needs them), the program and
    # its bits are those of the trace with the numbers
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-2.0, 2.0, size=64)
    shared = tuple(rng.uniform(0.25, 2.0, size=fn.n_inputs - 1).tolist())

    def step(ps, xs):
        def loss(*ps):
            return fm.mean(fm.vmap(lambda x: fn(x, *ps))(xs))
        return fm.value_and_grad(loss, argnums=tuple(range(len(ps))))(*ps)

    runs = []
    with pytest.MonkeyPatch.context() as m:
        m.setattr(unread, "MOST", 4)
        for shaped in (True, False):
            m.setattr(unread, "SHAPED", shaped)
            f = fm.jit(step)
            with np.errstate(all="ignore"):
                out = f(shared, xs)
                runs.append((f.lower(shared, xs).as_text(),
                             np.array(fm.tree.leaves(out), dtype=float).tobytes()))
    assert runs[0] == runs[1]
