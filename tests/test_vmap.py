"""fm.vmap: the same values as a Python loop, composed with grad, jit and itself."""

import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pyrsistent import PVector

import fmicrograd as fm
from fmicrograd.batching.vectorize import Batched
from fmicrograd.testing import dags
from fmicrograd.testing.strategies import Dag, Program

TOL = 1e-12


def close(a, b):
    la, ta = fm.tree.flatten(a)
    lb, tb = fm.tree.flatten(b)
    assert len(la) == len(lb), (ta, tb)
    for x, y in zip(la, lb):
        x = x.value if isinstance(x, fm.Expr) else x
        y = y.value if isinstance(y, fm.Expr) else y
        np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=TOL,
                                   atol=TOL, equal_nan=True)


batches = st.integers(1, 6).flatmap(
    lambda b: st.lists(st.floats(-3.0, 3.0), min_size=b, max_size=b))


# --- values --------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(dags(max_inputs=3, max_steps=8), batches)
def test_random_graphs_match_the_loop(dag, shifts):
    fn, n, xs = dag
    examples = [tuple(x + s * (i + 1) for i, x in enumerate(xs)) for s in shifts]
    loop = tuple(fn(*e) for e in examples)
    mapped = fm.vmap(lambda e: fn(*e))(examples)
    assert isinstance(mapped, tuple) and len(mapped) == len(shifts)
    close(mapped, loop)
    # unmapped arguments broadcast; an array argument is a batch of examples
    columns = np.array(examples)
    close(fm.vmap(lambda first, *rest: fn(first, *rest), in_axes=(0,) + (None,) * (n - 1))(
        columns[:, 0], *xs[1:]), tuple(fn(e[0], *xs[1:]) for e in examples))


# sigmoid's slope out * (1 - out) lost 4 digits at into(cosh(3)) (a 1-ulp difference in out
# between the batched and scalar sigmoid became 2.6e-12 in the gradient); see test_ops.py
_SATURATED_SIGMOID = Dag(Program(1, (("cosh", (0,)), ("*", (0, 0)), ("exp", (1,)), ("*", (0, 0)),
                                     ("*", (3, 3)), ("sum", (2, 4, 5))), (6,)), 1, (0.0,))


@settings(max_examples=30, deadline=None)
@given(dags(max_inputs=3, max_steps=8), batches)
@example(_SATURATED_SIGMOID, [3.0])
def test_grad_of_vmap_and_vmap_of_grad_match_the_loop(dag, shifts):
    fn, n, xs = dag
    examples = [tuple(x + s for x in xs) for s in shifts]
    nums = tuple(range(n))

    def batch_loss(*params):  # params shared by all examples, each example shifts them
        out = fm.vmap(lambda e: fn(*[p * e for p in params]))(tuple(shifts))
        return fm.mean(out)

    def loop_loss(*params):
        return fm.mean([fn(*[p * s for p in params]) for s in shifts])

    close(fm.grad(batch_loss, argnums=nums)(*xs), fm.grad(loop_loss, argnums=nums)(*xs))
    per_example = fm.vmap(lambda e: fm.grad(fn, argnums=nums)(*e))(examples)
    close(per_example, tuple(fm.grad(fn, argnums=nums)(*e) for e in examples))


def test_pytrees_per_example_and_batched_results():
    items = [{"x": (float(i), 2.0 * i), "y": -float(i)} for i in range(5)]
    out = fm.vmap(lambda d: {"s": d["x"][0] + d["x"][1] * d["y"], "c": 1.0})(items)
    assert out == tuple({"s": i + 2.0 * i * -i, "c": 1.0} for i in range(5))

    w = fm.Var(2.0)
    b = fm.vmap(lambda x: (x * w, w))(np.arange(4.0))
    assert isinstance(b, Batched) and len(b) == 4
    assert b[1][0].value == 2.0 and b[-1][0].value == 6.0 and b[2][1].value == 2.0
    assert [e[0].value for e in b] == [0.0, 2.0, 4.0, 6.0]
    assert len(b[1:3]) == 2
    with pytest.raises(IndexError, match="out of range for 4 examples"):
        b[4]
    with pytest.raises(TypeError, match="one number per example"):
        fm.sum(b)
    s = fm.vmap(lambda x: x * w)(np.arange(4.0))
    assert fm.sum(s).value == 12.0 and fm.mean(s).value == 3.0
    assert fm.grad(lambda w: fm.mean(fm.vmap(lambda x: x * w)(np.arange(4.0))))(2.0) == 1.5


def test_mlp_loss_and_gradients_match_the_loop():
    rng = np.random.default_rng(0)
    layers = tuple(tuple((tuple(rng.uniform(-1, 1, nin).tolist()), 0.1) for _ in range(nout))
                   for nin, nout in ((2, 6), (6, 1)))
    X = rng.normal(size=(30, 2))
    Y = np.sign(rng.normal(size=30))

    def per(params, x, y):
        h = [fm.relu(fm.dot(w, x) + b) for w, b in params[0]]
        return fm.relu(1.0 - y * (fm.dot(params[1][0][0], h) + params[1][0][1]))

    def batched(params):
        return fm.mean(fm.vmap(per, in_axes=(None, 0, 0))(params, X, Y))

    def loop(params):
        return fm.mean([per(params, tuple(x), y) for x, y in zip(X, Y)])

    close(fm.value_and_grad(batched)(layers), fm.value_and_grad(loop)(layers))
    close(fm.jit(fm.value_and_grad(batched))(layers), fm.value_and_grad(loop)(layers))


# --- nesting -----------------------------------------------------------------------------------

def test_vmap_of_vmap():
    xs, ys = (1.0, -2.0, 3.0), (0.5, 4.0)
    table = fm.vmap(lambda x: fm.vmap(lambda y: fm.tanh(x * y) + y)(ys))(xs)
    expected = tuple(tuple(float(np.tanh(x * y) + y) for y in ys) for x in xs)
    close(table, expected)
    sums = fm.vmap(lambda x: fm.sum(fm.vmap(lambda y: x * y)(ys)))(xs)
    close(sums, tuple(x * sum(ys) for x in xs))
    m = np.arange(6.0).reshape(2, 3)
    close(fm.vmap(lambda row: fm.vmap(lambda v: v * v)(row))(m), tuple(map(tuple, m * m)))


def test_grad_through_nested_vmaps_and_hessians_per_example():
    xs, ys = (1.0, -2.0, 3.0), (0.5, 4.0)

    def nested(w):
        return fm.sum(fm.vmap(lambda x: fm.sum(fm.vmap(lambda y: fm.sin(w * x * y))(ys)))(xs))

    def loop(w):
        return fm.sum([fm.sin(w * x * y) for x in xs for y in ys])

    close(fm.grad(nested)(0.3), fm.grad(loop)(0.3))
    close(fm.jit(fm.grad(nested))(0.3), fm.grad(loop)(0.3))
    g2 = fm.grad(fm.grad(lambda x: x ** 3 * fm.tanh(x)))
    close(fm.vmap(g2)(xs), tuple(g2(x) for x in xs))
    close(fm.vmap(fm.vmap(g2))((xs, ys + (1.0,))),
          tuple(tuple(g2(x) for x in row) for row in (xs, ys + (1.0,))))


def test_vmap_over_a_vmap_result():
    w = fm.Var(3.0)
    first = fm.vmap(lambda x: x * w)((1.0, 2.0))
    second = fm.vmap(lambda v: v + 1.0)(first)
    assert [e.value for e in second] == [4.0, 7.0]


# --- errors ------------------------------------------------------------------------------------

def test_clear_errors():
    f = fm.vmap(lambda a, b: a * b, in_axes=(0, 0))
    with pytest.raises(ValueError, match="argument 0 has 3 examples but argument 1 has 2"):
        f((1.0, 2.0, 3.0), (1.0, 2.0))
    with pytest.raises(ValueError, match="in_axes\\[1\\] must be 0 or None"):
        fm.vmap(lambda a, b: a, in_axes=(0, 1))((1.0,), (2.0,))
    with pytest.raises(ValueError, match="2 entries but the function got 1"):
        fm.vmap(lambda a: a, in_axes=(0, None))((1.0,))
    with pytest.raises(ValueError, match="maps no argument"):
        fm.vmap(lambda a: a, in_axes=None)((1.0,))
    with pytest.raises(ValueError, match="argument 0 is mapped .* but is float"):
        fm.vmap(lambda a: a)(1.0)
    with pytest.raises(ValueError, match="empty sequence"):
        fm.vmap(lambda a: a)(())
    with pytest.raises(ValueError, match="example 1 differs from example 0"):
        fm.vmap(lambda a: a[0])([(1.0, 2.0), (1.0,)])
    with pytest.raises(ValueError, match="out_axes must be 0"):
        fm.vmap(lambda a: a, out_axes=1)
    for axis in (0.0, False, None):  # (0.0 was taken for 0, as in_axes does not)
        with pytest.raises(ValueError, match="out_axes must be 0"):
            fm.vmap(lambda a: a, out_axes=axis)
    assert fm.vmap(lambda a: a, out_axes=np.int64(0))((1.0, 2.0)) == (1.0, 2.0)
    with pytest.raises(ValueError, match="control flow cannot depend on a per-example value"):
        fm.vmap(lambda a: a if a > 0 else -a)((1.0, -1.0))


def test_gradient_with_respect_to_mapped_data():
    def batched(xs, w):
        return fm.sum(fm.vmap(lambda x: fm.tanh(w * x[0]) * x[1], in_axes=0)(xs))

    def loop(xs, w):
        return fm.sum([fm.tanh(w * x[0]) * x[1] for x in xs])

    xs = ((0.5, 1.0), (-1.0, 2.0), (2.0, -0.5))
    expected = fm.grad(loop, argnums=(0, 1))(xs, 0.7)
    close(fm.grad(batched, argnums=(0, 1))(xs, 0.7), expected)
    close(fm.jit(fm.grad(batched, argnums=(0, 1)))(xs, 0.7), expected)
    picked = fm.grad(lambda xs: fm.vmap(lambda x: x * x)(xs)[1] * 10.0)((1.0, 2.0, 3.0))
    assert picked == (0.0, 40.0, 0.0)
    assert fm.jit(fm.grad(lambda xs: fm.vmap(lambda x: x * x)(xs)[1] * 10.0))(
        (1.0, 2.0, 3.0)) == (0.0, 40.0, 0.0)


def test_squares_of_zeros_under_vmap_and_grad_raise_no_warning():
    # x ** 2 where x == 0: the exponent's masked partial 0 * log(0) used to warn
    xs = np.linspace(-1.0, 1.0, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        g = fm.grad(lambda w: fm.mean(fm.vmap(lambda x: fm.relu(w * x) ** 2)(xs)))(0.5)
        h = fm.grad(lambda w: fm.mean(fm.vmap(lambda x: (w - x) ** 2)(xs)))(0.5)
    assert g == pytest.approx(0.25, rel=1e-15) and h == pytest.approx(1.0, rel=1e-15)


XS_MASK = (1.0, 3.0, -1.0, 0.0, 2.0)


@pytest.mark.parametrize("f", [
    lambda x: fm.where((x > 0) == (x > 2), x, -x),  # == of two masks was identity: one bool
    lambda x: fm.where((x > 0) != (x > 2), x, -x),
    lambda x: fm.where((x > 0) == True, x, -x),  # noqa: E712 -- as a user writes it
    lambda x: fm.where((x > 0) & (x < 2), x, -x),
    lambda x: fm.where((x > 2) | (x < 0), x, -x),
    lambda x: fm.where((x > 0) ^ (x > 2), x, -x),
    lambda x: (x > 0) * 1.0 + x,  # a bool is 0 / 1 in arithmetic
    lambda x: 1.0 - (x > 0),
    lambda x: (x > 0) + (x > 2),
    lambda x: fm.where(((x > 0) * 2.0) > 1.0, x, 0.5 * x),
])
def test_combined_comparisons_inside_vmap_answer_as_the_loop(f):
    loop = tuple(f(x) for x in XS_MASK)
    assert fm.vmap(f)(XS_MASK) == loop
    assert fm.jit(fm.vmap(f))(XS_MASK) == loop
    assert fm.vmap(fm.grad(f))(XS_MASK) == tuple(fm.grad(f)(x) for x in XS_MASK)


def test_a_mask_refuses_what_has_no_per_example_meaning():
    with pytest.raises(TypeError, match="~ of a comparison"):
        fm.vmap(lambda x: fm.where(~(x > 0), x, -x))(XS_MASK)
    with pytest.raises(TypeError, match="float\\(\\) of a comparison"):
        fm.vmap(lambda x: float(x > 0))(XS_MASK)


def test_jit_of_jacfwd_of_a_function_that_maps_the_differentiated_argument():
    # ValueError: the truth value of an array ... (reach_graph's lanes held numpy arrays)
    f = lambda ws: fm.vmap(lambda w: w * w)(ws)
    assert fm.jit(fm.jacfwd(f))((1.0, 2.0)) == fm.jacfwd(f)((1.0, 2.0)) == ((2.0, 0.0),
                                                                         (0.0, 4.0))


def test_inner_transform_results_inside_vmap_stay_per_example_for_numpy_code():
    # fm.grad inside a plain vmap returned numpy arrays of the whole batch: np.sum over a
    # gradient's leaves added the examples together (DP-SGD's per-example norm, a log-det)
    loss = lambda p, x: (p["w"] * x + p["b"]) ** 2
    total = lambda p, x: np.sum(fm.tree.leaves(fm.grad(loss)(p, x)))
    params, xs = {"w": 0.5, "b": 0.1}, (0.1, 3.0)
    loop = tuple(total(params, x) for x in xs)
    assert fm.vmap(total, in_axes=(None, 0))(params, xs) == pytest.approx(loop, rel=1e-15)
    clip = lambda p, x: fm.where(fm.optim.global_norm(fm.grad(loss)(p, x)) > 1.0, 1.0, 0.0)
    assert fm.vmap(clip, in_axes=(None, 0))(params, xs) == (0.0, 1.0)
    with pytest.raises(TypeError):  # numpy cannot take them whole: an error, not a mixture
        fm.vmap(lambda p, x: np.linalg.norm(fm.tree.leaves(fm.grad(loss)(p, x))),
                in_axes=(None, 0))(params, xs)
    assert fm.vmap(fm.grad(loss), in_axes=(None, 0))(params, xs)[1] == {"w": 9.600000000000001,
                                                                       "b": 3.2}


def test_an_empty_batch_is_the_same_clear_error_eager_and_compiled():
    # an empty array gave () eagerly and an error under jit
    double = lambda x: x * 2.0
    for call in (lambda: fm.vmap(double)(np.zeros(0)), lambda: fm.vmap(double)(()),
                 lambda: fm.jit(fm.vmap(double))(np.zeros(0))):
        with pytest.raises(ValueError, match="no examples to map over"):
            call()


def test_an_unbatched_output_keeps_a_negative_zero():
    # broadcast to the batch by adding zeros, -0.0 became 0.0 (until round 22) where
    # the loop keeps it: sqrt(-0.0) is -0.0, and 1 / it is -inf
    f = lambda x, y: (x, fm.sqrt(y), fm.power(fm.sqrt(y), -1.0))  # noqa: E731
    g = lambda c: fm.vmap(f, in_axes=(0, None))([c, 0.25], -0.0)  # noqa: E731
    loop = lambda c: tuple(f(x, -0.0) for x in (c, 0.25))  # noqa: E731
    got, want = fm.jvp(g, (0.5,), (1.0,)), fm.jvp(loop, (0.5,), (1.0,))
    assert repr(got) == repr(want)
    assert repr(fm.jit(lambda c: fm.jvp(g, (c,), (1.0,)))(0.5)) == repr(want)
    assert repr(fm.vmap(lambda x: (x, fm.sqrt(-0.0) + x * 0.0))([-1.0, 2.0])) == \
        "((-1.0, -0.0), (2.0, 0.0))"


def test_a_branch_without_a_tangent_on_an_example_gives_that_example_zero():
    # a plain where's branch taken on an example where it has no tangent gives a zero
    # tangent there, as in the loop (it gave the -0.0 that stands for "no tangent")
    def f(x, y):
        c = fm.less(abs(x), 1.0)
        return fm.where(c, fm.sqrt(1.0 - x * x), 0.0), fm.where(c, y, fm.log(x))

    got = fm.jvp(lambda c: fm.vmap(f)([c, 1.0], [0.0, c]), (1.0,), (1.0,))
    want = fm.jvp(lambda c: (f(c, 0.0), f(1.0, c)), (1.0,), (1.0,))
    assert repr(got) == repr(want)


def test_a_keyword_argument_jax_would_map_is_refused_and_others_pass_whole():
    f = lambda x, y: x * fm.sum(y) if isinstance(y, tuple) else x * y  # noqa: E731
    xs, ys = (1.0, 2.0, 3.0), (10.0, 20.0, 30.0)
    # every x met all of ys: (60.0, 120.0, 180.0), where jax.vmap gives (10, 40, 90)
    for mapped in (fm.vmap(f), fm.jit(fm.vmap(f))):
        with pytest.raises(TypeError, match=r"keyword argument 'y' is a tuple .*never maps "
                                            r"keyword arguments.*Pass it positionally"):
            mapped(xs, y=ys)
    with pytest.raises(TypeError, match="keyword argument 'y' is an array"):
        fm.vmap(f)(xs, y=np.array(ys))
    with pytest.raises(TypeError, match="keyword argument 'y' is a pytree holding arrays"):
        fm.vmap(lambda x, y: x * y["a"][0])(xs, y={"a": np.array(ys)})
    assert fm.vmap(f)(xs, ys) == (10.0, 40.0, 90.0)
    assert fm.vmap(f, in_axes=(0, None))(xs, ys) == (60.0, 120.0, 180.0)
    assert fm.vmap(lambda x, scale: x * scale)(xs, scale=2.0) == (2.0, 4.0, 6.0)
    model = fm.nn.MLP.init(1, [2, 1], key=fm.random.key(0))
    assert fm.vmap(lambda x, m: m((x,)))(xs, m=model) == tuple(model((x,)) for x in xs)


def test_a_numpy_array_inside_an_example_is_refused_not_mixed_across_examples():
    """Stacked, an array leaf of an example became a (B, n) value whose axis n
    was read as another batch: example 0's numbers times example 1's (round 28)."""
    examples = [(np.array([1.0, 2.0]), 3.0), (np.array([4.0, 5.0]), 6.0)]
    with pytest.raises(TypeError, match=r"argument 0's examples hold a numpy array of shape "
                                        r"\(2,\)"):
        fm.vmap(lambda p: p[0] * p[1])(examples)
    with pytest.raises(TypeError, match="numpy array of shape"):
        fm.jit(fm.vmap(lambda p: p[1]))(examples)
    members = [{"w": np.array([1.0, 2.0]), "b": 0.5}] * 2
    with pytest.raises(TypeError, match="tuple"):
        fm.vmap(lambda m, x: m["b"] * x, in_axes=(0, None))(members, 1.0)
    # the numbers as tuples, or a 0-d array, are examples' numbers as before
    ok = [(tuple(a.tolist()), b) for a, b in examples]
    assert fm.vmap(lambda p: p[0][1] * p[1])(ok) == (6.0, 30.0)
    assert fm.vmap(lambda p: p[0] * p[1])([(np.array(2.0), 3.0)]) == (6.0,)


def test_an_array_returned_by_the_mapped_function_is_refused_not_split():
    """An unmapped array returned from f was split across the examples
    (``((1, 10), (2, 20), (3, 30))`` for the loop's whole array per example),
    or a raw numpy broadcast error at another length; jit refused it."""
    g = fm.vmap(lambda x, a: (x, a), in_axes=(0, None))
    a = np.array([10.0, 20.0, 30.0])
    for b in (a, a[:2]):
        with pytest.raises(TypeError, match=r"returns, at \[1\], the numpy array of shape "
                                            r"\(\d,\) of an argument it does not map"):
            g((1.0, 2.0, 3.0), b)
    with pytest.raises(TypeError):
        fm.jit(g)((1.0, 2.0, 3.0), a)
    # an array of another length than the batch: not numpy's broadcast error
    with pytest.raises(ValueError, match=r"array of shape \(2,\), not one value for each "
                                         r"of the 3 examples"):
        fm.vmap(lambda x: np.array([1.0, 2.0]))((1.0, 2.0, 3.0))
    # numbers, numpy scalars and 0-d arrays are one value for every example, as before
    assert fm.vmap(lambda x: (x, np.float64(3.0), np.array(4.0)))((1.0, 2.0)) == (
        (1.0, 3.0, 4.0), (2.0, 3.0, 4.0))


def test_a_number_mapped_under_jit_is_named_as_a_number_not_an_internal_class():
    for arg in (0.5, np.array(0.5)):
        with pytest.raises(ValueError, match=r"is mapped \(in_axes 0\) but is a single "
                                             r"number \(a node\)"):
            fm.jit(fm.vmap(fm.exp))(arg)


_ODD_CONSTANTS = (2 ** 53 + 1, 2 ** 60, -(2 ** 53) - 3, 10 ** 400, np.float32(0.1),
                  np.float16(0.1), np.float32(3.4028235e38), np.float32(np.inf))


@pytest.mark.parametrize("b", _ODD_CONSTANTS, ids=repr)
def test_comparisons_with_big_ints_and_float32_under_vmap_answer_as_the_floats(b):
    """Under vmap the examples' float64 values were compared with numpy,
    which rounds an int beyond 2**53 (or overflows) and compares a float32 in
    float64: a silent wrong branch, where the plain call compares exactly (an
    int) or in float32 (NEP 50). Round 28."""
    near = float(b) if not isinstance(b, int) or abs(b) < 1e308 else 1e308
    xs = [near, float(np.nextafter(near, np.inf)), float(np.nextafter(near, -np.inf)),
          float(np.float32(0.1)), 0.1, 1.0, np.inf, np.nan]
    ops = {"<": lambda x: x < b, "<=": lambda x: x <= b, ">": lambda x: x > b,
           ">=": lambda x: x >= b, "==": lambda x: x == b, "!=": lambda x: x != b}
    with np.errstate(over="ignore"):
        for name, cond in ops.items():
            want = [2.0 * x if cond(x) else 3.0 * x for x in xs]
            pick = fm.vmap(lambda x, c=cond: fm.where(c(x), 2.0 * x, 3.0 * x))(np.array(xs))
            assert np.array_equal(pick, want, equal_nan=True), (name, pick, want)
            for x in xs[:3]:  # a Python branch, every example the same
                branch = fm.vmap(lambda v, c=cond: 2.0 * v if c(v) else 3.0 * v)((x, x))
                assert np.array_equal(branch, [2.0 * x if cond(x) else 3.0 * x] * 2,
                                      equal_nan=True), (name, x)


def test_a_derivative_under_vmap_of_a_value_that_ignores_the_variable_is_zero():
    """``vmap(grad(hessian(f), argnums=1))`` with ``f`` ignoring ``y``: the
    inner hessian's per-example value reached grad as an array, a TypeError
    ("must return a scalar, got ndarray"); the loop gives 0.0 (round 28)."""
    f = lambda x, y: x * x * x  # noqa: E731
    xs, ys = [-0.9, 0.3, 0.5], [0.2, 0.1, -0.4]
    loop = tuple(fm.grad(fm.hessian(f), argnums=1)(x, y) for x, y in zip(xs, ys))
    assert loop == (0.0, 0.0, 0.0)
    assert fm.vmap(fm.grad(fm.hessian(f), argnums=1))(xs, ys) == loop
    assert fm.vmap(fm.jacfwd(fm.hessian(f), argnums=1))(xs, ys) == loop
    assert fm.vmap(fm.jacfwd(fm.jacrev(fm.grad(f)), argnums=1), in_axes=(0, None))(xs, 0.2) == loop
    g = lambda x, y: x ** 3 * y  # noqa: E731
    assert fm.vmap(fm.jacfwd(fm.hessian(g), argnums=1))(xs, ys) == tuple(
        fm.jacfwd(fm.hessian(g), argnums=1)(x, y) for x, y in zip(xs, ys))


def test_vmap_over_jvp_tangents_of_an_indexed_inner_vmap_result():
    # (round 29's forward-mode probe: numpy's broadcast ValueError from the take's forward)
    f = lambda x: fm.vmap(lambda a: a * a)([x, 2.0])[0]  # noqa: E731
    loop = tuple(fm.jvp(f, (3.0,), (t,))[1] for t in (1.0, 2.0))
    assert loop == (6.0, 12.0)
    assert fm.vmap(lambda t: fm.jvp(f, (3.0,), (t,))[1])([1.0, 2.0]) == loop
    assert fm.jit(fm.vmap(lambda t: fm.jvp(f, (3.0,), (t,))[1]))([1.0, 2.0]) == loop
    assert fm.vmap(lambda t: fm.jvp(fm.jit(f), (3.0,), (t,))[1])([1.0, 2.0]) == loop


def test_a_bool_array_is_refused_with_the_fix_as_jit_does():
    # (it was read as 0.0 and 1.0: True + True gave 2.0 where the loop's numpy bools give
    # True, and -True gave -1.0 where the loop raises; jit(vmap(f)) refused it already)
    mask = np.array([True, False, True])
    for f in (fm.vmap(lambda m: m + m), fm.jit(fm.vmap(lambda m: m + m))):
        with pytest.raises(TypeError, match=r"dtype bool.*mask\.astype\(float\)"):
            f(mask)
    assert fm.vmap(lambda m: m + m)(mask.astype(float)) == (2.0, 0.0, 2.0)


def test_a_row_taken_for_a_number_is_told_what_it_is():
    rows = np.array([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"can't multiply sequence.*each row of a 2-d array"):
        fm.vmap(lambda x: x * 2.0)(rows)
    assert fm.vmap(lambda x: fm.sum(x) * 2.0)(rows) == (6.0, 14.0)


def test_lists_in_examples_reach_f_as_lists_and_mixed_containers_are_refused():
    # examples of equal-length lists of numbers were read as rows of one array and came to
    # f as tuples: vmap(grad) gave tuples where the loop (and jit(vmap)) give pvectors; and
    # a tuple example beside a list one passed (a helper's fuzzing against JAX, round 46)
    f = lambda x: x[0][0] * x[0][1]  # noqa: E731
    xs = [([1.0, 2.0],), ([3.0, 4.0],)]
    assert fm.vmap(fm.grad(f))(xs) == tuple(fm.grad(f)(x) for x in xs) \
        == fm.jit(fm.vmap(fm.grad(f)))(xs)
    assert isinstance(fm.vmap(fm.grad(f))(xs)[0][0], PVector)
    assert fm.vmap(lambda x: 1.0 if isinstance(x[1], list) else 0.0)(
        [((1.0, 2.0), [5.0, 6.0]), ((3.0, 4.0), [7.0, 8.0])]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="example 1 differs from example 0 in structure"):
        fm.vmap(fm.grad(lambda x: x[0] * x[1]))([(1.0, 2.0), [3.0, 4.0]])
    # plain tuples of numbers still take the one-array path
    assert fm.vmap(lambda x: x[1][0] * x[0][1])(
        [((1.0, 2.0), (5.0, 6.0)), ((3.0, 4.0), (7.0, 8.0))]) == (10.0, 28.0)
