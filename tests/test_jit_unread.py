"""A large array argument of ``fm.jit`` traced with placeholders until the
function reads an entry (``compiler/unread.py``): the same numbers either
way, no variable per entry where only ``vmap`` maps the array, and a second
trace with variables where the function reads entries itself."""

import inspect

import numpy as np
import pytest
import test_jit_data_columns as data_columns

import fmicrograd as fm
from fmicrograd.compiler import compile as jit_compile
from fmicrograd.compiler import unread


@pytest.fixture
def small_most(monkeypatch):
    """Placeholders for arrays of 4 entries or more (``MOST`` is 65,536)."""
    monkeypatch.setattr(unread, "MOST", 4)


@pytest.fixture
def entry_variables(monkeypatch):
    """How many array arguments got a variable per entry (``jit_io.variables``)."""
    made = []
    real = jit_compile.variables

    def counted(a, level, inputs):
        made.append(a.shape)
        return real(a, level, inputs)

    monkeypatch.setattr(jit_compile, "variables", counted)
    return made


W = (0.5, -1.25)


def _mapped(w, xs):
    return fm.sum(fm.vmap(lambda x: fm.tanh(fm.dot(w, x)))(xs))


def _close(a, b):
    assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


def test_a_function_that_only_maps_the_array_gets_no_variable_per_entry(small_most,
                                                                         entry_variables):
    traces = []

    def step(w, xs):
        traces.append(1)
        value, g = fm.value_and_grad(_mapped)(w, xs)
        return value, fm.tree.map(lambda a, d: a - 0.1 * d, w, g)

    f = fm.jit(step)
    rng = np.random.default_rng(0)
    for _ in range(3):  # each call's data, one trace
        xs = rng.normal(size=(6, 2))
        (v, w), (v0, w0) = f(W, xs), step(W, xs)
        _close(v, v0)
        np.testing.assert_allclose(w, w0, rtol=1e-12)
    assert len(traces) == 1 + 3  # one trace, and the three uncompiled calls
    assert entry_variables == []


def test_below_most_entries_the_array_gets_its_variables(entry_variables):
    xs = np.arange(12.0).reshape(6, 2)
    _close(fm.jit(_mapped)(W, xs), _mapped(W, xs))
    assert entry_variables == [(6, 2)]


def test_a_function_reading_an_entry_is_traced_again_with_variables(small_most,
                                                                    entry_variables):
    traces = []

    def f(w, xs):
        traces.append(1)
        return _mapped(w, xs) + xs[1, 0] * xs[2, 1]

    g = fm.jit(f)
    xs = np.arange(1.0, 13.0).reshape(6, 2)
    _close(g(W, xs), _mapped(W, xs) + 3.0 * 6.0)
    assert len(traces) == 2 and entry_variables == [(6, 2)]  # placeholders, then variables
    _close(g(W, xs * 2.0), _mapped(W, xs * 2.0) + 6.0 * 12.0)
    assert len(traces) == 2  # compiled: the structure remembers that f reads entries


def _outcome(f, *args):
    """``f(*args)``, or the type and text of the error it raises."""
    try:
        with np.errstate(all="ignore"):
            return f(*args)
    except Exception as e:  # noqa: BLE001 -- compared, not handled
        return type(e), str(e)


@pytest.mark.parametrize("read", [
    lambda xs: float(xs[0, 0]),
    lambda xs: xs[0, 0] > 0,
    lambda xs: fm.relu(xs[0, 0]),
    lambda xs: fm.exp(xs[0, 0]),
    lambda xs: np.exp(xs[:2]),
    lambda xs: sum(xs[0]),
    lambda xs: np.asarray(xs, dtype=float),
    lambda xs: f"{xs[0, 0]}",
    lambda xs: xs[0, 0].value,
    lambda xs: xs[0, 0].op,
    lambda xs: {xs[0, 0]: 1} == {xs[0, 1]: 1},
], ids=["float", "compare", "fm-op", "fm-exp", "np-exp", "sum", "asarray", "format", "value",
        "op", "dict-eq"])
def test_what_the_function_catches_is_what_it_would_catch_with_variables(monkeypatch, read):
    def f(w, xs):
        try:
            read(xs)
            caught = 0.0
        except Exception:  # (not the placeholders' EntriesRead: a BaseException)
            caught = 1.0
        return _mapped(w, xs) + caught

    xs = np.arange(1.0, 13.0).reshape(6, 2)
    monkeypatch.setattr(unread, "MOST", 4)
    with_placeholders = _outcome(fm.jit(f), W, xs)
    monkeypatch.setattr(unread, "MOST", 1 << 16)
    assert with_placeholders == _outcome(fm.jit(f), W, xs)  # as traced with variables


_INNER = fm.jit(_mapped)


@pytest.mark.parametrize("f", [
    lambda w, xs: _INNER(w, xs) * 2.0,
    lambda w, xs: fm.sum(fm.grad(_mapped)(w, xs)),
    lambda w, xs: _mapped(w, xs[1:4]),
    lambda w, xs: fm.sum(fm.vmap(lambda c: fm.sum(list(c)))(xs.T)),
    lambda w, xs: _mapped(w, np.concatenate([xs[:, ::-1], xs])),
    lambda w, xs: _mapped(w, fm.tree.map(lambda a: a, xs)),
    lambda w, xs: _mapped(w, xs) * float(len(xs) + xs.shape[1]),
    lambda w, xs: fm.sum([fm.dot(w, row) for row in xs]),
    lambda w, xs: fm.sum(fm.vmap(lambda x: fm.where(x[0] > 0, x[1], -x[1]))(xs)),
], ids=["nested-jit", "grad", "slice", "transpose", "concatenate", "tree-map", "len-shape",
        "rows", "where"])
def test_the_same_numbers_as_with_variables_and_as_python(monkeypatch, f):
    xs = np.linspace(-1.0, 2.0, 12).reshape(6, 2)
    monkeypatch.setattr(unread, "MOST", 4)
    with_placeholders = fm.jit(f)(W, xs)
    monkeypatch.setattr(unread, "MOST", 1 << 16)
    _close(with_placeholders, fm.jit(f)(W, xs))
    _close(with_placeholders, f(W, xs))


def test_an_entry_replaced_in_place_is_mapped_as_replaced(small_most):
    def f(w, xs):
        xs[0, 1] = xs[3, 0]  # no arithmetic: the placeholder moves, the column changes
        return _mapped(w, xs)

    xs = np.arange(1.0, 13.0).reshape(6, 2)
    changed = xs.copy()
    changed[0, 1] = xs[3, 0]
    _close(fm.jit(f)(W, xs), _mapped(W, changed))
    assert xs[0, 1] == 2.0  # the caller's array as it was


def test_returning_the_array_or_a_slice_gives_its_numbers(small_most):
    xs = np.arange(1.0, 13.0).reshape(6, 2)
    out = fm.jit(lambda w, xs: (xs[2:4], _mapped(w, xs)))(W, xs)
    np.testing.assert_array_equal(np.asarray(out[0], dtype=float), xs[2:4])
    _close(out[1], _mapped(W, xs))


def test_placeholders_refuse_every_read():
    a = unread.placeholders(np.zeros((2, 2)))
    x = a[0, 1]
    for use in (lambda: x + 1.0, lambda: 2.0 * x, lambda: -x, lambda: x < 1.0, lambda: x == x,
                lambda: bool(x), lambda: float(x), lambda: repr(a), lambda: a.sum(),
                lambda: fm.exp(x), lambda: np.exp(a), lambda: x.value,
                lambda: np.asarray(a, dtype=float)):
        with pytest.raises(unread.EntriesRead):
            use()
    assert a[0, 0] is not a[1, 1] and len({a[0, 0], a[1, 1]}) == 2  # one each, as variables


_COLUMN_TESTS = [name for name, f in vars(data_columns).items()
                 if name.startswith("test_") and not inspect.signature(f).parameters]


@pytest.mark.parametrize("name", _COLUMN_TESTS)
def test_the_data_column_tests_hold_with_placeholders(small_most, name):
    getattr(data_columns, name)()  # (their arrays, of 4 entries or more, take placeholders)


@pytest.mark.parametrize("shape", [(8,), (8, 2), (8, 2, 3)])
def test_the_trace_leaves_no_cycle_holding_the_arrays_placeholders(small_most, monkeypatch,
                                                                   shape):
    # the collector off, as a compile has it: a cycle through the trace's record of its
    # array arguments kept it and a million placeholders alive until the next collection
    import gc
    import weakref

    made = []

    class Recorded(jit_compile.TracedArrays):
        def __init__(self, level):
            super().__init__(level)
            made.append(weakref.ref(self))

    monkeypatch.setattr(jit_compile, "TracedArrays", Recorded)
    xs = np.arange(float(np.prod(shape))).reshape(shape) / 10.0

    def loss(xs):
        each = fm.vmap(lambda x: fm.sum([fm.tanh(v) for v in fm.tree.leaves(x)]))
        return fm.sum(each(xs))

    was = gc.isenabled()
    gc.disable()
    try:
        v = fm.jit(loss)(xs)
        assert made and all(r() is None for r in made)
        assert not any(type(o) is unread.Unread for o in gc.get_objects())
    finally:
        if was:
            gc.enable()
    _close(v, loss(xs))


@pytest.fixture
def lowered(monkeypatch):
    """The programs ``fm.jit`` lowers, as ``ir.lower`` returns them."""
    made = []
    real = jit_compile.ir.lower

    def keep(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(jit_compile.ir, "lower", keep)
    return made


def test_a_placeholder_arrays_entries_are_not_nodes_of_the_program(small_most, lowered):
    # a large array's columns are ``col`` nodes reading the input vector: no input node
    # per entry, so that a compile does not grow with the batch
    xs = np.arange(12.0).reshape(6, 2) / 7.0
    v = fm.jit(_mapped)(W, xs)
    _close(v, _mapped(W, xs))
    p = lowered[-1]
    assert (p.n_inputs, p.extra, p.width) == (2, 12, 14)
    assert p.ops[:2] == ["in", "in"] and "stack" not in p.ops
    assert sorted(p.params[i][:3] for i, op in enumerate(p.ops) if op == "col") == [
        (2, 2, 6), (3, 2, 6)]


def _three(w, big, small, other):
    pairs = fm.vmap(lambda x, y: fm.tanh(fm.dot(w, x)) * y)(big, small)
    return fm.sum(pairs) + fm.sum(fm.vmap(lambda z: z[0] * z[2])(other))


@pytest.mark.parametrize("most", [4, 7, 13, 10 ** 9])
def test_large_arrays_come_after_the_others_in_the_input_vector(monkeypatch, lowered, most):
    # a large array (placeholders, no input nodes) given before a smaller one: the input
    # vector puts it after, at every call; with both large, or neither, as they come
    monkeypatch.setattr(unread, "MOST", most)
    rng = np.random.default_rng(7)
    f, g = fm.jit(_three), fm.jit(fm.grad(_three))
    for _ in range(3):
        big, small, other = (rng.normal(size=(6, 2)), rng.normal(size=6),
                             rng.normal(size=(5, 3)))
        _close(f(W, big, small, other), _three(W, big, small, other))
        np.testing.assert_allclose(g(W, big, small, other), fm.grad(_three)(W, big, small, other),
                                   rtol=1e-12)
    p = lowered[0]
    # (12, 6 and 15 entries: at 7, the first and last are large, the second not)
    assert p.n_inputs == {4: 2, 7: 2 + 6, 13: 2 + 12 + 6, 10 ** 9: 2 + 12 + 6 + 15}[most]
    assert p.width == 2 + 12 + 6 + 15


def test_variants_traced_with_and_without_placeholders_share_one_input_vector(monkeypatch,
                                                                             lowered):
    # one input structure, two branches on a parameter: the first traced with placeholders
    # (``col`` nodes), the second reads an entry (so with a variable per entry); both read
    # the large array after the smaller one in the input vector, whichever ran first
    monkeypatch.setattr(unread, "MOST", 8)  # xs (12 entries) is large, ys (6) is not

    def f(w, xs, ys):
        mapped = fm.sum(fm.vmap(lambda x, y: fm.tanh(fm.dot(w, x)) * y)(xs, ys))
        if w[0] > 0:
            return mapped
        return mapped + xs[2, 1] * w[1]

    rng = np.random.default_rng(11)
    jf = fm.jit(f)
    for w in ((0.5, -1.25), (-0.5, 0.75), (0.25, 2.0), (-1.5, 0.5)):
        xs, ys = rng.normal(size=(6, 2)), rng.normal(size=6)
        _close(jf(w, xs, ys), f(w, xs, ys))
    assert [(p.n_inputs, p.extra) for p in lowered] == [(2 + 6, 12), (2 + 6 + 12, 0)]
