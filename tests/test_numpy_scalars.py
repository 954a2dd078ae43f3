"""Plain numbers of other types than float (numpy scalars of every kind,
``Fraction``, ``Decimal``, complex) in fm's functions and transforms: each is
computed in float64 and returned as a Python float, as ``jit`` computes it, or
(complex) refused with a ``TypeError`` naming the function. Found by an outside
probe; references are computed with ``math`` and float64 numpy."""

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.transforms.autodiff import widened_leaves

UNARY = ("exp log sqrt tanh sigmoid relu sin cos tan sinh cosh asin acos atan asinh acosh "
         "atanh erf erfc log1p expm1 log2 log10 softplus log_sigmoid sign square").split()
BINARY = "maximum minimum atan2 hypot greater greater_equal less less_equal div power".split()
REDUCTIONS = ("sum", "mean", "logsumexp")
TUPLE_REDUCTIONS = ("softmax", "log_softmax")

F32 = np.full(100_000, 0.1, np.float32)  # 0.1 rounded to float32: 0.10000000149011612
F64 = F32.astype(np.float64).tolist()    # the same numbers as Python floats


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


# --- 1. sum, mean and dot of numpy float32 scalars accumulate in float64 -----------------

def test_sum_mean_dot_of_float32_items_are_float64_python_floats():
    want_sum = sum(F64, 0.0)  # float64, in order: 10000.000149011612
    want_dot = sum((x * x for x in F64), 0.0)
    got = fm.sum(list(F32)), fm.mean(list(F32)), fm.dot(list(F32), list(F32))
    assert [type(r) for r in got] == [float, float, float]
    assert got == (want_sum, want_sum / len(F64), want_dot)
    assert abs(want_sum - 10000.000149011612) < 1e-9  # not float32's 9998.557
    # the same numbers as for the float64 items, and as jit's
    assert got == (fm.sum(F64), fm.mean(F64), fm.dot(F64, F64))
    assert fm.sum(list(F32)) == fm.jit(lambda a: fm.sum(list(a)))(F32)
    assert fm.mean(list(F32)) == fm.jit(lambda a: fm.mean(list(a)))(F32)
    # jit's dot sums pairwise (numpy), the eager one in order: 1e5 terms differ by 2.5e-12
    jit_dot = fm.jit(lambda a: fm.dot(list(a), list(a)))(F32)
    assert math.isclose(got[2], jit_dot, rel_tol=1e-11)


def test_sum_and_dot_widen_every_kind_of_item():
    items = [np.float16(0.1), np.float32(0.1), np.float64(0.1), np.int64(3), np.True_,
             np.longdouble(0.25), Fraction(1, 3), Decimal("0.5"), 2, True, 0.1]
    as_floats = [float(x) for x in items]
    assert fm.sum(items) == sum(as_floats, 0.0) and type(fm.sum(items)) is float
    assert fm.mean(items) == sum(as_floats, 0.0) / len(items)
    assert fm.dot(items, items) == sum((x * x for x in as_floats), 0.0)
    assert type(fm.dot(items, items)) is float
    assert fm.sum([10 ** 400, 1.0]) == math.inf  # an int beyond float64, as fm.exp reads it
    assert fm.sum([]) == 0.0 and fm.dot([], []) == 0.0


def test_grad_through_a_sum_of_float32_constants_is_float64():
    want = sum(F64, 0.0)
    got = fm.grad(lambda w: w * fm.sum(list(F32)))(1.0)
    assert type(got) is float and got == want
    assert got == fm.jit(fm.grad(lambda w, a: w * fm.sum(list(a))))(1.0, F32)


def test_sum_mean_dot_of_nodes_and_arrays_behave_as_before():
    x = fm.Var(2.0)
    s = fm.sum([x, np.float32(0.1), np.True_])
    assert s.op == "sum" and s.value == 2.0 + float(np.float32(0.1)) + 1.0
    assert [type(c.value) for c in s.children] == [float, float, float]
    d = fm.dot([x, np.float32(0.5)], [np.float16(3.0), x])
    assert d.value == 2.0 * 3.0 + 0.5 * 2.0
    assert fm.grad(lambda x: fm.dot([x, np.float32(0.5)], [np.float16(3.0), x]))(2.0) == 3.5
    arrays = [np.array([1.0, 2.0]), np.array([0.5, 0.25])]
    total = fm.sum(arrays)
    assert isinstance(total, np.ndarray) and total.tolist() == [1.5, 2.25]
    assert fm.dot(arrays, arrays).tolist() == [1.25, 4.0625]
    assert fm.vmap(lambda x: fm.sum([x, np.float32(0.5)]))((1.0, 2.0)) == (1.5, 2.5)
    assert fm.vmap(lambda x: fm.dot([x, x], [x, 1.0]))((1.0, 2.0)) == (2.0, 6.0)


def test_losses_with_float32_targets_return_python_floats():
    preds = [0.3 + i * 1e-3 for i in range(100)]
    targets = np.full(100, 0.1, np.float32)
    labels = np.where(np.arange(100) % 2, 1.0, -1.0).astype(np.float32)
    assert type(fm.losses.mse(preds, list(targets))) is float
    assert type(fm.losses.hinge(preds, list(labels))) is float


def test_losses_with_float32_targets_equal_the_jit_result():
    preds = [0.3 + i * 1e-3 for i in range(100)]
    targets = np.full(100, 0.1, np.float32)
    labels = np.where(np.arange(100) % 2, 1.0, -1.0).astype(np.float32)
    want_mse = sum(((p - float(t)) ** 2 for p, t in zip(preds, targets)), 0.0) / 100
    assert fm.losses.mse(preds, list(targets)) == want_mse
    assert fm.losses.hinge(preds, list(labels)) == fm.jit(
        lambda p, y: fm.losses.hinge(p, list(y)))(preds, labels)


def test_softmax_family_of_float32_items_is_float64():
    items = [np.float32(0.1), np.float32(0.7)]
    floats = [float(x) for x in items]
    assert fm.logsumexp(items) == fm.logsumexp(floats)
    assert fm.softmax(items) == fm.softmax(floats)
    got = fm.log_softmax(items)
    assert got == fm.log_softmax(floats) and {type(p) for p in got} == {float}
    assert {type(p) for p in fm.log_softmax([np.True_, np.False_])} == {float}
    assert fm.softmax([Decimal("0.5"), Fraction(1, 2)]) == (0.5, 0.5)


# --- 2. numpy bools are Python bools -------------------------------------------------------

@pytest.mark.parametrize("name", UNARY)
@pytest.mark.parametrize("flag", [True, False])
def test_unary_of_a_numpy_bool_is_that_of_the_python_bool(name, flag):
    f = getattr(fm, name)
    got = f(np.bool_(flag))
    assert type(got) is float and _same(got, f(flag)) and _same(got, f(float(flag)))


@pytest.mark.parametrize("name", BINARY)
def test_binary_of_numpy_bools_is_that_of_python_bools(name):
    f = getattr(fm, name)
    for a, b in [(True, False), (False, True), (True, True)]:
        got = f(np.bool_(a), np.bool_(b))
        assert type(got) is float and _same(got, f(a, b)), (a, b)
        assert _same(f(np.bool_(a), 0.5), f(a, 0.5))


def test_reductions_where_clip_of_numpy_bools_are_those_of_python_bools():
    np_bools, bools = [np.True_, np.False_, np.True_], [True, False, True]
    for name in REDUCTIONS:
        got = getattr(fm, name)(np_bools)
        assert type(got) is float and got == getattr(fm, name)(bools), name
    for name in TUPLE_REDUCTIONS:
        assert getattr(fm, name)(np_bools) == getattr(fm, name)(bools)
    assert {type(p) for p in fm.softmax(np_bools)} == {float}
    assert fm.logsumexp([np.True_, np.False_]) == math.log(math.e + 1.0)
    assert fm.sigmoid(np.True_) == 1.0 / (1.0 + math.exp(-1.0))
    assert fm.dot(np_bools, np_bools) == 2.0
    assert fm.where(True, np.True_, 0.0) == 1.0 and type(fm.where(np.True_, np.True_, 0.0)) is float
    assert fm.clip(np.True_, 0.0, 0.5) == 0.5
    assert fm.maximum(fm.Var(0.5), np.True_).value == 1.0
    assert fm.grad(lambda x: fm.maximum(x, np.True_))(2.0) == 1.0


def test_var_refuses_a_numpy_bool_as_it_refuses_a_bool():
    with pytest.raises(TypeError, match="expected a number, got bool"):
        fm.Var(True)
    with pytest.raises(TypeError, match="expected a number"):
        fm.Var(np.True_)


# --- 3. long doubles (``.item()`` keeps them long doubles) ----------------------------------

@pytest.mark.parametrize("name", UNARY)
def test_unary_of_a_longdouble_is_the_float64_result(name):
    f = getattr(fm, name)
    got = f(np.longdouble(0.5))
    assert type(got) is float and _same(got, f(0.5))


def test_binary_reductions_and_grad_of_longdoubles():
    half = np.longdouble(0.5)
    for name in BINARY:
        got = getattr(fm, name)(half, 0.25)
        assert type(got) is float and got == getattr(fm, name)(0.5, 0.25), name
    assert fm.atan2(half, 1.0) == math.atan2(0.5, 1.0)
    assert fm.maximum(half, np.longdouble(0.25)) == 0.5
    assert fm.softmax([half, 0.1]) == fm.softmax([0.5, 0.1])
    assert fm.logsumexp([half, 0.1]) == fm.logsumexp([0.5, 0.1])
    assert fm.grad(lambda x: x * fm.sin(np.longdouble(0.5)))(1.0) == math.sin(0.5)
    with np.errstate(over="ignore"):
        huge = np.longdouble(1e308) * 10  # (inf where a long double is a double)
    assert fm.exp(huge) == math.inf  # beyond float64: inf, as an int is


# --- 4. Fraction and Decimal: real numbers, read as their float ---------------------------

@pytest.mark.parametrize("x", [Fraction(1, 2), Decimal("0.5")], ids=["Fraction", "Decimal"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_of_fraction_and_decimal_is_that_of_the_float(name, x):
    f = getattr(fm, name)
    got = f(x)
    assert type(got) is float and _same(got, f(0.5))


def test_fraction_and_decimal_in_binary_functions_and_reductions():
    assert fm.sin(Fraction(1, 2)) == math.sin(0.5)
    assert fm.exp(Decimal("0.5")) == math.exp(0.5) and type(fm.exp(Decimal("0.5"))) is float
    for name in BINARY:
        got = getattr(fm, name)(Fraction(1, 2), Decimal("0.25"))
        assert type(got) is float and got == getattr(fm, name)(0.5, 0.25), name
    assert fm.sum([Decimal("0.5"), Fraction(1, 4)]) == 0.75
    assert fm.softmax([Fraction(1, 2), Fraction(1, 2)]) == (0.5, 0.5)
    assert fm.maximum(fm.Var(0.0), Decimal("0.5")).value == 0.5


# --- 5. complex numbers are refused --------------------------------------------------------

COMPLEX = [1 + 2j, np.complex128(1.0), np.complex64(0.5j)]


@pytest.mark.parametrize("z", COMPLEX, ids=["complex", "complex128", "complex64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_of_a_complex_number_is_a_type_error(name, z):
    with pytest.raises(TypeError, match=rf"fm\.{name}: got complex.*works on real numbers"):
        getattr(fm, name)(z)


@pytest.mark.parametrize("z", COMPLEX, ids=["complex", "complex128", "complex64"])
def test_binary_and_reductions_of_complex_numbers_are_type_errors(z):
    for name in BINARY:
        with pytest.raises(TypeError, match="real numbers"):
            getattr(fm, name)(0.5, z)
        with pytest.raises(TypeError, match="real numbers"):
            getattr(fm, name)(z, 0.5)
    with pytest.raises(TypeError, match=r"fm\.maximum: got complex"):
        fm.maximum(fm.Var(1.0), z)
    for name in REDUCTIONS + TUPLE_REDUCTIONS:
        with pytest.raises(TypeError, match="real numbers"):
            getattr(fm, name)([0.5, z])
    with pytest.raises(TypeError, match=r"fm\.dot: got complex"):
        fm.dot([0.5, 1.0], [1.0, z])
    with pytest.raises(TypeError, match=r"fm\.sum: got complex"):
        fm.sum([fm.Var(1.0), z])
    with pytest.raises(TypeError, match=r"fm\.where: got complex"):
        fm.where(True, z, 0.0)
    with pytest.raises(TypeError, match=r"fm\.clip: got complex"):
        fm.clip(z, 0.0, 1.0)


def test_complex_constants_are_refused_under_grad_and_jit():
    with pytest.raises(TypeError, match=r"fm\.sin: got complex.*real numbers"):
        fm.grad(lambda x: x * fm.sin(1j))(1.0)
    with pytest.raises(TypeError, match=r"fm\.sin: got complex.*real numbers"):
        fm.jit(lambda x: x * fm.sin(np.complex128(1j)))(1.0)


def test_floats_and_ints_keep_their_results():
    assert fm.sin(0.5) == math.sin(0.5) and type(fm.sin(0.5)) is float
    assert fm.relu(3) == 3.0 and type(fm.relu(3)) is float
    assert fm.exp(-10 ** 400) == 0.0 and fm.power(2, 3) == 8.0 and fm.div(1, 4) == 0.25
    assert fm.where(True, 1, 2) == 1.0 and type(fm.where(False, 1, 2)) is float
    assert fm.sin(np.float32(0.5)) == math.sin(float(np.float32(0.5)))
    assert fm.div(np.float32(1.0), np.float32(3.0)) == 1.0 / 3.0
    assert fm.power(np.float16(2.0), np.float32(0.5)) == math.sqrt(2.0)
    assert fm.sin(np.array([0.5])).tolist() == [math.sin(0.5)]  # arrays (vmap) as they were


# --- 6. float16 / float32 tangents and cotangents are read as float64 ----------------------

def _s(x):
    return x * x + fm.sin(x)


DS = 2.0 * 2.0 + math.cos(2.0)  # s'(2) in float64: 3.5838531634528574


@pytest.mark.parametrize("t", [np.float16(1.0), np.float32(1.0), np.float64(1.0), 1,
                               np.longdouble(1.0)])
def test_jvp_and_vjp_with_a_numpy_scalar_seed_give_the_float64_result(t):
    out, tan = fm.jvp(_s, (2.0,), (t,))
    assert out == 4.0 + math.sin(2.0) and tan == DS and type(tan) is float
    (ct,) = fm.vjp(_s, 2.0)[1](t)
    assert ct == DS and type(ct) is float
    assert fm.jit(lambda x, t: fm.jvp(_s, (x,), (t,))[1])(2.0, t) == DS


def test_jvp_vjp_with_structured_float32_seeds():
    f = lambda p: (p["a"] * p["b"], fm.sin(p["a"]))  # noqa: E731
    primals = {"a": 0.5, "b": 3.0}
    tangents = {"a": np.float32(0.1), "b": np.float16(0.2)}
    ta, tb = float(np.float32(0.1)), float(np.float16(0.2))
    _, (t0, t1) = fm.jvp(f, (primals,), (tangents,))
    assert (t0, t1) == (ta * 3.0 + tb * 0.5, math.cos(0.5) * ta)
    (g,) = fm.vjp(f, primals)[1]((np.float32(0.1), np.float16(0.2)))
    assert g["a"] == ta * 3.0 + tb * math.cos(0.5) and g["b"] == ta * 0.5
    assert type(g["a"]) is float


def test_widened_leaves_makes_float64_seeds():
    leaves = widened_leaves((np.float32(0.1), [np.array([0.5], np.float16)], fm.Var(1.0), 2),
                            "jvp")
    assert leaves[0] == float(np.float32(0.1)) and type(leaves[0]) is float
    assert leaves[1].dtype == np.float64 and leaves[1].tolist() == [0.5]
    assert isinstance(leaves[2], fm.Expr) and leaves[3] == 2.0
    kept = np.array([1.0])
    assert widened_leaves([kept], "jvp")[0] is kept  # float64 arrays as they are
    with pytest.raises(TypeError, match=r"fm\.vjp: got complex"):
        fm.vjp(_s, 2.0)[1](1j)


def test_linearize_with_a_float32_tangent_gives_the_float64_result():
    tan = fm.linearize(_s, 2.0)[1](np.float32(1.0))
    assert tan == DS and type(tan) is float


# --- 7. a numpy array argument: an error that names the fix --------------------------------

@pytest.mark.parametrize("call, who", [
    (lambda x: fm.grad(lambda v: v[0])(x), "grad"),
    (lambda x: fm.value_and_grad(lambda v: v[0])(x), "value_and_grad"),
    (lambda x: fm.jacfwd(lambda v: v[0])(x), "jacfwd"),
    (lambda x: fm.jacrev(lambda v: v[0])(x), "jacrev"),
    (lambda x: fm.jvp(lambda v: v[0], (x,), (x,)), "jvp"),
    (lambda x: fm.vjp(lambda v: v[0], x), "vjp"),
])
def test_a_numpy_array_argument_names_the_fix(call, who):
    x = np.array([1.0, 2.0], np.float32)
    with pytest.raises(TypeError) as err:
        call(x)
    msg = str(err.value)
    assert msg.startswith(f"{who}: argument 0 has a leaf at <root> that is a numpy array of "
                          "shape (2,) and dtype float32;")
    assert "tuple(x)" in msg and "x.tolist()" in msg and "fm.vmap" in msg
    if who in ("grad", "value_and_grad", "jacfwd", "jacrev"):
        assert f"fm.vmap(fm.{who}(f))(x)" in msg


def test_a_numpy_array_leaf_keeps_its_path():
    with pytest.raises(TypeError, match=r"leaf at \['w'\]\[1\] that is a numpy array of shape "
                       r"\(2, 3\) and dtype float64.*tuple\(x\)"):
        fm.grad(lambda p: p["w"][0])({"w": (1.0, np.zeros((2, 3)))})


def test_under_jit_the_array_is_described_as_the_one_passed():
    with pytest.raises(TypeError) as err:
        fm.jit(fm.grad(lambda v: fm.sum(list(v))))(np.array([1.0, 2.0]))
    msg = str(err.value)
    assert "a numpy array of shape (2,)" in msg and "fm.jit" in msg and "tuple(x)" in msg
    assert "Var(" not in msg and "dtype=object" not in msg


def test_other_bad_leaves_keep_their_message():
    with pytest.raises(TypeError, match=r"leaf at <root> that is str 'a'; expected a float"):
        fm.grad(lambda v: v)("a")


# round 28: numpy scalars mapped by an eager vmap, 0-d arrays closed over, tangents


def test_eager_vmap_of_numpy_scalars_computes_in_float64():
    """A tuple of numpy scalars (``tuple(arr)``) mapped eagerly was stacked in
    their own dtype: int64 squares wrapped to 0.0, uint8 to 36.0, float16 overflowed."""
    big = tuple(np.array([2 ** 40, 3]))
    assert fm.vmap(lambda x: x * x)(big) == (2.0 ** 80, 9.0)
    assert fm.grad(lambda w: fm.sum(fm.vmap(lambda x: x * x * w)(big)))(1.0) == 2.0 ** 80 + 9.0
    assert fm.vmap(lambda x: x * x)((np.uint8(250), np.uint8(10))) == (62500.0, 100.0)
    assert fm.vmap(fm.exp)((np.float16(300.0), np.float16(2.0))) == (math.exp(300.0),
                                                                       math.exp(2.0))
    f32 = tuple(np.array([0.1, 0.2], np.float32))
    assert fm.vmap(lambda x: x * x)(f32) == fm.jit(fm.vmap(lambda x: x * x))(f32)
    assert fm.vmap(lambda x: x * x)(f32)[0] == float(np.float32(0.1)) ** 2
    assert fm.vmap(fm.exp)((Fraction(1, 2), 0.5)) == (math.exp(0.5), math.exp(0.5))
    assert fm.vmap(lambda p: p[0] * p[1])(((np.int8(100), 2.0), (np.int8(3), 4.0))) == (
        200.0, 12.0)


def test_a_closed_over_0d_float16_array_computes_in_float64():
    c = np.array(0.1, np.float16)
    g = fm.grad(lambda x: x * x * 70000.0 * c)(1.0)
    assert type(g) is float and g == 2 * 70000.0 * float(c)
    h = fm.hessian(lambda x: x * x * np.array(1.0, np.float32))(3.0)
    assert type(h) is float and h == 2.0
    f = lambda x: (x * np.array(1.0, np.float32) + 1e-9) - x * np.array(1.0, np.float32)  # noqa
    assert fm.value_and_grad(f)(0.5)[0] == (0.5 + 1e-9) - 0.5
    assert fm.vmap(f)((0.5,))[0] == fm.jit(f)(0.5) == (0.5 + 1e-9) - 0.5


def test_tangents_that_are_bools_or_inexact_ints_are_refused_and_0d_arrays_are_floats():
    for t in (True, np.True_):
        with pytest.raises(TypeError, match=r"tangent at \[0\] is the bool"):
            fm.jvp(lambda x: 3.0 * x, (1.0,), (t,))
    with pytest.raises(TypeError, match="cotangent at <root> is the bool"):
        fm.vjp(lambda x: 3.0 * x, 1.0)[1](True)
    with pytest.raises(ValueError, match=r"tangent at \[0\] is an int beyond 2\*\*53"):
        fm.jvp(lambda x: 3.0 * x, (1.0,), (2 ** 60,))
    out = fm.jvp(lambda x: 3.0 * x, (1.0,), (np.array(2.0),))
    assert out == (3.0, 6.0) and type(out[1]) is float
    assert fm.jvp(lambda x: 3.0 * x, (1.0,), (3,)) == (3.0, 9.0)


def test_jit_static_argnums_takes_numpy_ints_as_grad_takes_argnums():
    f = fm.jit(lambda x, n: x * n, static_argnums=np.int64(1))
    assert f(2.0, 3) == 6.0 and f(2.0, 4) == 8.0
    assert fm.jit(lambda x, n: x * n, static_argnums=(np.int64(1),))(2.0, 3) == 6.0
    for bad in (1.0, np.array(1), True, (True,)):
        with pytest.raises(ValueError, match="static_argnums must be an int or a tuple"):
            fm.jit(lambda x, n: x * n, static_argnums=bad)
