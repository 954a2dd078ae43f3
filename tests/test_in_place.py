"""Compiled array code writes into arrays nothing reads again, with the same bits.

``compiler/reuse.py`` rewrites ``g9 = g8 + b`` as ``_np.add(g8, b, out=g8)``
when ``g8`` is dead after that line. Each test compares the rewritten program with the one
``in_place=False`` builds (the code before the rewrite), bit for bit, and
checks that the input vector is never written."""

import numpy as np
import pytest
from helpers import mlp_params, relu_mlp_step
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.compiler import autobatch
from fmicrograd.compiler.compile import _inputs
from fmicrograd.compiler.reuse import reuse
from fmicrograd.testing import programs


def _jitted(fn, args, in_place):
    """``fn`` jitted and called on ``args`` with the rewrite on or off; its
    output, its program's source and a check that the program leaves its
    input vector as it found it."""
    real = autobatch.batched_program
    with pytest.MonkeyPatch.context() as m:
        m.setattr(autobatch, "batched_program",
                  lambda p, *a, **k: real(p, *a, **k, in_place=in_place))
        f = fm.jit(fn)
        out = f(*args)
    entry = f._entries.order[0]
    run, _, vector, _ = entry.variants[0]
    assert vector, "expected batched array code"
    inputs = _inputs(*entry.match(args, {}))
    kept = [np.copy(a) for a in (inputs if isinstance(inputs, tuple) else (inputs,))]
    run(inputs)
    now = inputs if isinstance(inputs, tuple) else (inputs,)
    untouched = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(kept, now))
    return out, run.__fm_source__, untouched


def _bits(tree):
    leaves = fm.tree.leaves(tree)
    return [np.asarray(x, dtype=np.float64).view(np.int64).tolist() for x in leaves]


def test_a_relu_step_writes_in_place_and_keeps_its_bits():
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(40, 3)), np.where(rng.random(40) < 0.5, -1.0, 1.0)
    args = (mlp_params((3, 8, 8, 1), 1), xs, ys)
    new, text, untouched = _jitted(relu_mlp_step, args, True)
    old, old_text, _ = _jitted(relu_mlp_step, args, False)
    assert "out=" in text and "out=" not in old_text
    assert untouched and _bits(new) == _bits(old)
    eager = fm.tree.leaves(relu_mlp_step(*args))  # eager sums in another order: 1e-12
    np.testing.assert_allclose(fm.tree.leaves(new), eager, rtol=1e-12, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(programs(max_inputs=3, max_steps=8, ops=("+", "-", "*", "/", "relu", "tanh", "exp",
                                                 "maximum", "abs")),
       st.integers(2, 30), st.integers(0, 2**31))
def test_random_per_example_gradients_keep_their_bits(fn, batch, seed):
    # per-example values and gradients under vmap: groups of (k, batch) arrays,
    # many dead after one use
    n = fn.n_inputs
    cols = tuple(np.random.default_rng(seed).uniform(-2, 2, size=(n, batch)))

    def per_example(*x):
        v, g = fm.value_and_grad(fn, argnums=tuple(range(n)))(*x)
        return (v, *g)

    def f(*c):
        return fm.vmap(per_example)(*c)

    new, _, untouched = _jitted(f, cols, True)
    old, _, _ = _jitted(f, cols, False)
    assert untouched
    assert [np.asarray(x).dtype for x in new] == [np.asarray(x).dtype for x in old]
    assert _bits(new) == _bits(old)


def test_a_mask_the_caller_sees_is_float():
    # relu's derivative (a 0/1 mask) as an output and summed: floats, never written over
    def f(xs):
        d = fm.vmap(fm.grad(fm.relu))(xs)
        return d, fm.sum(d * xs)

    xs = np.array([-1.5, 0.0, 2.0, 3.0, -0.5])
    (new, total), text, untouched = _jitted(f, (xs,), True)
    assert untouched and np.asarray(new).dtype == np.float64
    assert np.asarray(new).tolist() == [0.0, 0.0, 1.0, 1.0, 0.0] and total == 5.0


def test_the_rewrite_keeps_a_line_whose_array_is_read_later():
    lines = ["    g0 = I[0:4] * (2.0)", "    g1 = g0 + (1.0)", "    g2 = g1 * g0",
             "    return _out(g2)"]
    plans = [(0, "*", ["I[0:4]", "(2.0)"]), (1, "+", ["g0", "(1.0)"]),
             (2, "*", ["g1", "g0"])]
    reuse(lines, plans, [(4,)] * 3, {})
    # g0 is read again by g2: g1 may not overwrite it; g2 may overwrite g1
    assert lines[1] == "    g1 = g0 + (1.0)"
    assert lines[2] == "    g2 = _np.multiply(g1, g0, out=g1)"


def test_an_array_read_later_through_a_view_is_not_overwritten():
    # g1 is a view of g0 (a slice, reshaped): writing g2 into g0 changed what g3 read
    # (jit(vmap(grad(g))) with a one-example inner vmap gave a wrong gradient)
    lines = ["    g0 = I[0:4] * (2.0)", "    g1 = g0[0:2].reshape((1, 2))", "    g2 = g0 + (1.0)",
             "    g3 = g1 * (3.0)", "    g4 = g2[2:4] + g3[0]", "    return _out(g4)"]
    plans = [(0, "*", ["I[0:4]", "(2.0)"]), (1, None, None), (2, "+", ["g0", "(1.0)"]),
             (3, "*", ["g1", "(3.0)"]), (4, "+", ["g2[2:4]", "g3[0]"])]
    reuse(lines, plans, [(4,), (1, 2), (4,), (1, 2), (2,)], {})
    assert lines[2] == "    g2 = g0 + (1.0)"
    env = {"I": np.arange(4.0), "_np": np}
    exec("def run(I):\n" + "\n".join(lines[:-1]) + "\n    return g4", env)
    assert env["run"](np.arange(4.0)).tolist() == [5.0 + 0.0, 7.0 + 6.0]


def test_a_compiled_gradient_through_a_one_example_vmap_matches_the_uncompiled_one():
    ps = (1.332, 0.666)

    def g(th):
        spec = lambda x: fm.exp(0.3 * x) - (th * 0.8 + 0.1) * x
        x = th * 0.45 + 0.2
        return fm.sin(fm.vmap(spec)((x,))[0]) + fm.sin(spec(x) * spec(x))

    assert fm.jit(fm.vmap(fm.grad(g)))(ps) == fm.vmap(fm.grad(g))(ps)


def test_the_input_vector_and_views_are_never_targets():
    lines = ["    g0 = I[0:4].reshape((2, 2))", "    g1 = g0 + (1.0)", "    g2 = I[i0]",
             "    g3 = g2 * (2.0)", "    return _out(g3)"]
    plans = [(0, None, None), (1, "+", ["g0", "(1.0)"]), (2, None, None),
             (3, "*", ["g2", "(2.0)"])]
    before = list(lines)
    reuse(lines, plans, [(2, 2), (2, 2), (4,), (4,)], {"i0": np.arange(4)})
    assert lines == before


@pytest.mark.parametrize("constant", [np.array([1.0, 2.0], dtype=np.longdouble),
                                      np.array([1j, 2.0])])
def test_wider_than_float64_constants_turn_the_rewrite_off(constant):
    lines = ["    g0 = I[0:2] * c0", "    g1 = g0 + (1.0)", "    return _out(g1)"]
    plans = [(0, "*", ["I[0:2]", "c0"]), (1, "+", ["g0", "(1.0)"])]
    before = list(lines)
    reuse(lines, plans, [(2,), (2,)], {"c0": constant})
    assert lines == before



def test_relu_against_an_array_of_zeros_keeps_maximums_bits():
    special = [np.nan, -0.0, 0.0, -1.0, 2.0, np.inf, -np.inf, 5e-324, -5e-324]
    for shape in [(9,), (3, 3), (128, 7), (2, 5, 9)]:
        rng = np.random.default_rng(len(shape))
        x = rng.normal(size=shape)
        x.reshape(-1)[:9] = special
        want = np.maximum(x, 0.0)
        got = autobatch._relu(x)
        assert got.dtype == want.dtype and np.array_equal(got.view(np.int64), want.view(np.int64))
        assert autobatch._relu(x) is not got  # a new array each call, never the cached zeros
    x32 = np.array([-1.0, 3.0], dtype=np.float32)
    assert autobatch._relu(x32).dtype == np.maximum(x32, 0.0).dtype == np.float32
    assert autobatch._relu(-2.5) == 0.0
    big = np.full(autobatch._MOST_ZEROS + 1, -1.0)  # past the cache's size: the scalar path
    assert not autobatch._relu(big).any() and big.shape not in {k[0] for k in autobatch._ZEROS}
    assert all(not z.flags.writeable and not z.any() for z in autobatch._ZEROS.values())


def test_a_comparisons_booleans_become_the_same_floats_through_their_bytes():
    x = np.random.default_rng(0).normal(size=(64, 33))
    x[0, :4] = [np.nan, -0.0, 0.0, np.inf]
    for b in (x > 0, x[:, ::2] > 0, x.T > 0, np.float64(2.0) > 0):
        got = autobatch._tofloat(b)
        assert got.dtype == np.float64 and np.array_equal(got, b.astype(float))
