"""``vmap(jit(f))`` traces ``f`` once per input structure and runs compiled
array code over the whole batch, with the numbers of the jit-free
``vmap(f)``; derivatives through it (grad of a vmapped loss, jacfwd, jacrev,
hessian, nested vmap, an enclosing jit) too."""

import math

import numpy as np
import pytest
from helpers import counted
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.testing.strategies import programs
from fmicrograd.transforms.autodiff import per_example


def close(a, b, tol=1e-12):
    la, lb = fm.tree.leaves(a), fm.tree.leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
        assert u.shape == v.shape
        assert np.all(np.abs(u - v) <= tol * np.maximum(1.0, np.abs(v))), (u, v)


def loss(model, x, y):
    return fm.relu(1.0 - y * model(x))


MODEL = fm.nn.MLP.init(2, [8, 8, 1], key=fm.random.key(3))
RNG = np.random.default_rng(0)
X = [RNG.normal(size=(20, 2)) for _ in range(3)]
Y = [np.sign(RNG.normal(size=20)) for _ in range(3)]


def test_values_trace_once_and_match():
    f, calls = counted(loss)
    jitted = fm.vmap(fm.jit(f), in_axes=(None, 0, 0))
    plain = fm.vmap(loss, in_axes=(None, 0, 0))
    for x, y in zip(X, Y):
        close(jitted(MODEL, x, y), plain(MODEL, x, y))
    assert len(calls) == 1
    other = fm.tree.map(lambda w: w * 0.5, MODEL)  # new numbers, same structure
    close(jitted(other, X[0], Y[0]), plain(other, X[0], Y[0]))
    assert len(calls) == 1
    jitted(MODEL, X[0][:7], Y[0][:7])  # another batch size: another structure
    assert len(calls) == 2


def test_grad_of_vmapped_loss_traces_once_and_matches():
    f, calls = counted(loss)
    jitted = fm.vmap(fm.jit(f), in_axes=(None, 0, 0))
    plain = fm.vmap(loss, in_axes=(None, 0, 0))
    step = fm.value_and_grad(lambda m, x, y: fm.mean(jitted(m, x, y)))
    want = fm.value_and_grad(lambda m, x, y: fm.mean(plain(m, x, y)))
    close(step(MODEL, X[0], Y[0]), want(MODEL, X[0], Y[0]))
    first = len(calls)
    for x, y in zip(X[1:], Y[1:]):
        close(step(MODEL, x, y), want(MODEL, x, y))
    assert len(calls) == first <= 2  # the forward program and the compiled VJP


def g2(x, w):
    return fm.tanh(x[0] * w) + x[1] ** 2 / (1.0 + w * w) + fm.sin(x[0] * x[1])


POINTS = np.array([[0.3, -1.2], [1.5, 0.7], [-2.0, 0.1], [0.9, 2.5]])


@pytest.mark.parametrize("transform", [
    lambda f: (lambda w: fm.jacfwd(lambda v: fm.vmap(f, in_axes=(0, None))(POINTS, v))(w)),
    lambda f: (lambda w: fm.jacrev(lambda v: fm.vmap(f, in_axes=(0, None))(POINTS, v))(w)),
    lambda f: (lambda w: fm.jvp(lambda v: fm.vmap(f, in_axes=(0, None))(POINTS, v),
                                (w,), (0.7,))),
    lambda f: (lambda w: fm.hessian(lambda v: fm.sum(fm.vmap(f, in_axes=(0, None))(POINTS, v)))(w)),
    lambda f: (lambda w: fm.vmap(fm.grad(f, argnums=1), in_axes=(0, None))(POINTS, w)),
    lambda f: (lambda w: fm.vmap(fm.grad(fm.grad(f, argnums=1), argnums=1),
                                 in_axes=(0, None))(POINTS, w)),
    lambda f: (lambda w: fm.vmap(fm.vmap(f, in_axes=(0, None)), in_axes=(None, 0))(
        POINTS, (w, 2.0 * w, -w))),
    lambda f: (lambda w: fm.grad(lambda v: fm.sum([fm.sum(row) for row in fm.vmap(
        fm.vmap(f, in_axes=(0, None)), in_axes=(None, 0))(POINTS, (v, v * v))]))(w)),
    lambda f: fm.jit(lambda w: fm.vmap(f, in_axes=(0, None))(POINTS, w)),
    lambda f: fm.jit(fm.grad(lambda w: fm.mean(fm.vmap(f, in_axes=(0, None))(POINTS, w)))),
])
def test_transforms_of_vmap_of_jit_trace_once_and_match(transform):
    f, calls = counted(g2)
    compiled = transform(fm.jit(f))
    reference = transform(g2)
    close(compiled(0.4), reference(0.4))
    first = len(calls)
    for w in (-1.3, 0.25, 2.0):
        close(compiled(w), reference(w))
    assert len(calls) == first  # no call traced f again
    assert first <= 4


def test_vmap_result_inside_the_jitted_function_under_grad():
    def inner(x, w):  # a vmap inside f: each output leaf is one array over both batches
        return fm.vmap(lambda p: g2(p, x * w))(POINTS)

    def total(jit):
        f, calls = counted(inner)
        mapped = fm.vmap(jit(f), in_axes=(0, None))
        xs = np.array([0.5, -1.0, 2.0])
        return fm.value_and_grad(lambda w: fm.sum([fm.sum(r) for r in mapped(xs, w)])), calls

    compiled, _ = total(fm.jit)  # differentiated, it runs f (its outputs have an axis
    reference, _ = total(lambda f: f)  # the arguments lack, so no per-example partials)
    for w in (0.3, -0.8):
        close(compiled(w), reference(w))
    f, calls = counted(inner)
    mapped = fm.vmap(fm.jit(f), in_axes=(0, None))
    for w in (0.3, -0.8):  # values only: compiled, traced once
        close(mapped(np.array([0.5, 2.0]), w),
              fm.vmap(inner, in_axes=(0, None))(np.array([0.5, 2.0]), w))
    assert len(calls) == 1


def test_branch_on_unbatched_argument_is_guarded():
    f, calls = counted(lambda x, w: x * w if w > 0.0 else x - w)
    jitted = fm.vmap(fm.jit(f), in_axes=(0, None))
    xs = np.array([1.0, 2.0, 3.0])
    assert jitted(xs, 2.0) == (2.0, 4.0, 6.0)
    assert jitted(xs, -1.0) == (2.0, 3.0, 4.0)
    assert jitted(xs, 3.0) == (3.0, 6.0, 9.0)
    assert jitted(xs, -2.0) == (3.0, 4.0, 5.0)
    assert len(calls) == 2  # one trace per branch


def test_branch_on_per_example_values_behaves_as_vmap():
    f, calls = counted(lambda x: x * 2.0 if x > 0.0 else -x)
    jitted, plain = fm.vmap(fm.jit(f)), fm.vmap(f)
    with pytest.raises(ValueError, match="fm.where"):
        plain(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="fm.where"):
        jitted(np.array([1.0, -1.0]))
    # when every example agrees the branch is taken for all, as vmap(f) does,
    # and never reused for a batch that would branch otherwise
    assert jitted(np.array([1.0, 2.0])) == plain(np.array([1.0, 2.0])) == (2.0, 4.0)
    assert jitted(np.array([-1.0, -2.0])) == plain(np.array([-1.0, -2.0])) == (1.0, 2.0)
    with pytest.raises(ValueError, match="fm.where"):
        jitted(np.array([-1.0, 2.0]))


def test_where_compiles_per_example_choice():
    f, calls = counted(lambda x: fm.where(x > 0.0, x * 2.0, -x))
    jitted, plain = fm.vmap(fm.jit(f)), fm.vmap(lambda x: fm.where(x > 0.0, x * 2.0, -x))
    for xs in (np.array([1.0, -1.0, 0.5]), np.array([-3.0, 2.0, 0.0])):
        close(jitted(xs), plain(xs))
        close(fm.grad(lambda s, xs=xs: fm.sum(jitted([x * s for x in xs])))(1.5),
              fm.grad(lambda s, xs=xs: fm.sum(plain([x * s for x in xs])))(1.5))
    assert len(calls) <= 2


def test_float_of_an_argument_still_runs():
    def f(x, w):
        return x * float(w)

    jitted, plain = fm.vmap(fm.jit(f), in_axes=(0, None)), fm.vmap(f, in_axes=(0, None))
    assert jitted(np.array([1.0, 2.0]), 3.0) == plain(np.array([1.0, 2.0]), 3.0) == (3.0, 6.0)


def test_lowered_program_size_does_not_grow_with_the_batch():
    from fmicrograd.compiler import autobatch

    sizes = []
    for n in (10, 1000):
        f = fm.jit(lambda x, w: fm.tanh(x * w) * w)
        seen = []
        original = autobatch.batched_program

        def spy(p, *rest, _seen=seen, _original=original):
            _seen.append(p.size)
            return _original(p, *rest)

        autobatch.batched_program = spy
        try:
            fm.vmap(f, in_axes=(0, None))(np.linspace(-1.0, 1.0, n), 0.5)
        finally:
            autobatch.batched_program = original
        sizes += seen
    assert len(sizes) == 2 and sizes[0] == sizes[1]


@settings(max_examples=30, deadline=None)
@given(programs(min_inputs=1, max_inputs=2, max_steps=4), st.data())
def test_random_programs_under_vmap_of_jit(prog, data):
    point = st.tuples(*[st.floats(-2.0, 2.0)] * prog.n_inputs)
    batch = np.array([data.draw(point) for _ in range(3)])
    jitted = fm.vmap(fm.jit(lambda *x: prog(*x)))
    plain = fm.vmap(lambda *x: prog(*x))
    cols = [batch[:, i] for i in range(prog.n_inputs)]
    want = plain(*cols)
    got = jitted(*cols)
    for g, w in zip(fm.tree.leaves(got), fm.tree.leaves(want)):
        assert (math.isnan(g) and math.isnan(w)) or math.isclose(g, w, rel_tol=1e-12,
                                                                  abs_tol=1e-12)
    def scaled(s):
        return [[x * s for x in c] for c in cols]

    gw = fm.grad(lambda s: fm.sum(fm.tree.leaves(per_example(plain(*scaled(s))))))(1.0)
    gg = fm.grad(lambda s: fm.sum(fm.tree.leaves(per_example(jitted(*scaled(s))))))(1.0)
    assert (math.isnan(gg) and math.isnan(gw)) or math.isclose(gg, gw, rel_tol=1e-9,
                                                                abs_tol=1e-9)


def test_a_jitted_function_with_no_outputs_under_vmap():
    # numpy's bare "need at least one array to stack" from the compiled program's gather
    assert fm.vmap(fm.jit(lambda x: ()))((1.0, 2.0)) == ((), ())
    assert fm.vmap(fm.jit(lambda x: (x, ())))((1.0, 2.0)) == ((1.0, ()), (2.0, ()))
