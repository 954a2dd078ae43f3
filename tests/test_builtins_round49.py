"""What a review of Python's and numpy's builtins on nodes found (round 49):
a comparison's per-example truths negated or times a negative int were -0.0
on their False examples (the loop's bool gives the int 0), a formatted
value's text under ``vmap`` answered one length or prefix for every example,
numpy's masked constant was dropped, and a jitted function could not be
copied or pickled."""

import copy
import math
import pickle

import numpy as np
import pytest

import fmicrograd as fm

XS = (0.7, 2.6)  # the comparison x > 1.0 disagrees between them


def _loop(f, xs=XS):
    return tuple(f(fm.Var(x)).value for x in xs)


@pytest.mark.parametrize("f", [
    lambda x: fm.atan2(-(x > 1.0), -1.0) + x * 0.0,        # -False: 0, not -0.0
    lambda x: fm.atan2((x > 1.0) * -2, -1.0) + x * 0.0,
    lambda x: fm.atan2(+(x > 1.0) * 1.0, -1.0) + x * 0.0 + round(x > 1.0),
])
def test_signed_zeros_of_a_comparison_follow_the_loop(f):
    want = _loop(f)
    assert want[0] == math.pi  # (the False example: atan2(+0.0, -1))
    assert fm.vmap(f)(XS) == want
    assert fm.jit(fm.vmap(f))(np.array(XS)) == want
    assert fm.vmap(fm.grad(lambda x: x * f(x)))(XS) == tuple(fm.grad(lambda x: x * f(x))(x)
                                                             for x in XS)


@pytest.mark.parametrize("times", [-3, np.int64(-3), True])
def test_an_int_times_a_comparison_is_an_unsigned_zero_where_false(times):
    f = lambda x: times * (x > 1.0)  # noqa: E731
    got, want = fm.vmap(f)(XS), tuple(float(f(fm.Var(x))) for x in XS)  # (the loop's ints)
    assert got == want and [math.copysign(1.0, v) for v in got] == \
        [math.copysign(1.0, v) for v in want]


def test_a_float_times_a_comparison_keeps_the_float_products_sign():
    f = lambda x: fm.atan2((x > 1.0) * -1.0, -1.0) + x * 0.0  # noqa: E731  False * -1.0: -0.0
    assert fm.vmap(f)(XS) == _loop(f) and _loop(f)[0] == -math.pi


@pytest.mark.parametrize("f", [
    lambda x: fm.atan2(-(+(x > 1.0)), -1.0) + x * 0.0,   # +True is the int 1
    lambda x: fm.atan2(round(x > 1.0) * -2, -1.0) + x * 0.0,
    lambda x: fm.atan2(x > 1.0, -1.0) + fm.hypot(x > 1.0, 1.0) + fm.exp(x > 1.0) + x * 0.0,
])
def test_a_comparison_through_pos_round_and_fm_functions_follows_the_loop(f):
    # (atan2, hypot, exp of a disagreeing comparison: a bare AttributeError before)
    assert fm.vmap(f)(XS) == _loop(f)


def test_numpys_numbers_divided_by_a_comparison_give_inf_as_in_the_loop():
    f = lambda x: fm.atan2(np.float64(2.0) / (x > 1.0), 1.0) + x * 0.0  # noqa: E731
    with np.errstate(divide="ignore"):
        assert fm.vmap(f)(XS) == _loop(f) == (math.pi / 2, math.atan(2.0))


def test_a_fill_character_is_not_a_batch():
    # "[" as the fill: read as vmap's text, refused with no vmap running
    assert len(f"{fm.Var(1.3):[>8.2f}") == 8
    assert fm.grad(lambda x: x * len(f"{x:[>8.2f}"))(1.3) == 8.0


def test_dividing_by_a_comparison_false_on_some_examples_raises_as_the_loop_does():
    with pytest.raises(ZeroDivisionError):
        fm.Var(0.7) and 1.0 / (fm.Var(0.7) > 1.0)
    with pytest.raises(ZeroDivisionError, match="False on some examples"):
        fm.vmap(lambda x: 1.0 / (x > 1.0))(XS)  # gave (inf, 1.0)
    assert fm.vmap(lambda x: 2.0 / (x > 0.5))((0.7, 2.6)) == (2.0, 2.0)
    for f in (lambda x: (x > 0.0) / (x > 1.0), lambda x: (x > 1.0) / 0):
        with pytest.raises(ZeroDivisionError):
            fm.vmap(f)(XS)


@pytest.mark.parametrize("f", [
    lambda x: x * (2.0 if f"{x:.2f}".startswith("1") else 1.0),
    lambda x: len(f"{x:.3f}") * x,
    lambda x: x * ("7" in f"{x:.1f}"),
    lambda x: x * (f"{x:.1f}" == "1.3"),
])
def test_reading_a_formatted_value_under_vmap_is_refused(f):
    assert fm.jit(f)(1.3) == f(1.3)  # (jit runs it as Python: right)
    with pytest.raises(TypeError, match="holds every example's value"):
        fm.vmap(f)((1.3, 1.7))  # gave one answer for both examples


def test_printing_a_formatted_value_under_vmap_still_works(capsys):
    out = fm.vmap(lambda x: (print(f"loss {x:.2f}", "v=" + f"{x:.1f}"), x * 2.0)[1])((1.3, 1.7))
    assert out == (2.6, 3.4)
    assert capsys.readouterr().out == "loss [1.30, 1.70] v=[1.3, 1.7]\n"


@pytest.mark.parametrize("masked", [np.ma.masked, np.ma.array(2.0, mask=True)])
def test_a_masked_array_operand_is_refused(masked):
    for call in (lambda: fm.vmap(lambda x: x + masked)((1.5, 2.5)),  # gave (1.5, 2.5)
                 lambda: fm.grad(lambda x: x * masked)(1.5),
                 lambda: fm.Var(1.0) * masked,
                 lambda: fm.Var(masked)):
        with pytest.raises(TypeError, match="masked array"):
            call()
    assert (fm.Var(1.0) * np.ma.array(2.0).filled(0.0)).value == 2.0


@fm.jit
def _decorated(x):
    return x * x


class _Scaler:
    def __init__(self, w):
        self.w = w
        self.f = fm.jit(self.g)

    def g(self, x):
        return self.w * x


def test_a_deep_copy_of_an_object_holding_a_jitted_method_is_bound_to_the_copy():
    original = _Scaler(2.0)
    assert original.f(3.0) == 6.0
    twin = copy.deepcopy(original)
    twin.w = 5.0
    assert twin.f(3.0) == 15.0 == twin.g(3.0)  # (6.0: the copy's f ran on the original)
    assert original.f(3.0) == 6.0


def _step(x, n):
    return fm.sum([x * x] * n)


def test_a_jitted_function_copies_as_a_function_and_pickles_as_its_jit():
    jitted = fm.jit(_step, static_argnums=1)
    assert jitted(2.0, 3) == 12.0
    assert copy.copy(jitted) is jitted and copy.deepcopy({"step": jitted})["step"] is jitted
    assert pickle.loads(pickle.dumps(_decorated)) is _decorated  # (by name: its global)
    assert pickle.loads(pickle.dumps(_decorated))(3.0) == 9.0
    again = pickle.loads(pickle.dumps(jitted))
    assert again is not jitted and again.static_argnums == (1,) and again(2.0, 3) == 12.0
    named = pickle.loads(pickle.dumps(fm.jit(_step, static_argnames="n")))
    assert named(2.0, n=4) == 16.0 and named.__name__ == "_step"


def test_np_round_of_a_node_names_the_fix():
    # numpy's own "loop of ufunc does not support ... rint method" before
    for call in (lambda: np.round(fm.Var(1.5), 1), lambda: np.around(fm.Var(1.5))):
        with pytest.raises(TypeError, match="np.(round|around) on an fm node"):
            call()


def test_numpys_functions_on_a_comparison_follow_numpys_bools():
    # (the review of this round's fixes: numpy's divide raised Python's ZeroDivisionError,
    # np.add of two truths gave 2 where numpy's bools give True, x == (x > 0) the `if` error)
    xs = (1.5, -0.5, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        for f in (lambda x: np.true_divide(2.0, x > 0.0),
                  lambda x: np.divide(x > 0.0, x > 1.0) + x * 0.0,
                  lambda x: np.add(x > 0.0, x > 0.0) * 1.0,
                  lambda x: (np.bool_(True) + (x > 0.0)) * 1.0,
                  lambda x: np.logical_and(x > 0.0, x > -1.0) * 1.0,
                  lambda x: (x == (x > 0.0)) * 1.0 + x * 0.0,
                  lambda x: fm.atan2(abs(x > 0.0) * -1, -1.0) + x * 0.0):
            got, want = fm.vmap(f)(xs), tuple(float(f(fm.Var(x))) for x in xs)
            assert [math.copysign(1.0, v) if v == v else 0.0 for v in got] == \
                [math.copysign(1.0, v) if v == v else 0.0 for v in want]
            assert [v if v == v else "nan" for v in got] == [v if v == v else "nan" for v in want]
    with pytest.raises(TypeError, match="boolean subtract"):
        fm.vmap(lambda x: np.subtract(x > 0.0, x > 1.0))(xs)
