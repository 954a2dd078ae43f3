"""debug_nans: the first op making a NaN, forward or backward, raises; otherwise nothing changes."""

import math

import numpy as np
import pytest
from pyrsistent import PMap

import fmicrograd as fm


def test_forward_nan_names_the_op_and_its_inputs():
    f = fm.debug_nans(lambda x: fm.log(-x) * 2.0 + x)
    with pytest.raises(FloatingPointError, match=r"'log' produced nan from inputs \(-2\.0,\)"):
        f(2.0)
    assert f(-1.0) == -1.0


def test_backward_only_nan_sqrt_at_zero_times_zero():
    f = lambda x: fm.sqrt(x) * 0.0
    assert f(0.0) == 0.0  # the forward pass is clean
    assert math.isnan(fm.grad(f)(0.0))  # without the wrapper NaNs flow as IEEE says
    with pytest.raises(FloatingPointError, match=r"'/' produced nan from inputs \(0\.0, 0\.0\)") \
            as info:
        fm.debug_nans(fm.grad(f))(0.0)
    assert "sqrt(args[0])" in str(info.value)  # the formula shows where the 0 came from
    assert fm.debug_nans(fm.grad(f))(4.0) == 0.0


def test_no_nan_returns_what_f_returns():
    f = lambda p: fm.tanh(p["w"]) * p["b"][0] + p["b"][1]
    p = {"w": 0.5, "b": [2.0, 1.0]}
    assert fm.debug_nans(f)(p) == f(p)
    g = fm.debug_nans(fm.grad(f))(p)
    assert isinstance(g, PMap) and g == fm.grad(f)(p)
    assert fm.debug_nans(fm.value_and_grad(f))(p) == fm.value_and_grad(f)(p)
    assert fm.debug_nans(lambda x: (x * 2.0, "label", 3))(1.5) == (3.0, "label", 3)
    assert p == {"w": 0.5, "b": [2.0, 1.0]}


def test_every_kind_of_transform_inside():
    f = lambda x: fm.sqrt(x) * 0.0
    for wrapped in (
        fm.debug_nans(fm.grad(f)),
        fm.debug_nans(fm.jacrev(f)),
        fm.debug_nans(fm.jacfwd(f)),
        fm.debug_nans(lambda x: fm.jvp(f, (x,), (1.0,))[1]),
        fm.debug_nans(lambda x: fm.vjp(f, x)[1](1.0)[0]),
        fm.debug_nans(fm.hessian(lambda x: fm.sqrt(x) * x)),
    ):
        with pytest.raises(FloatingPointError, match="produced nan"):
            wrapped(0.0)


def test_nan_in_a_second_derivative_only():
    # f(x) = (x*x)**1.5 = |x|^3 at 0: f and f' are clean, but f'' meets
    # pow'' = inf at 0 times the inner derivative 2x = 0 squared: inf * 0 = nan
    f = lambda x: (x * x) ** 1.5
    assert fm.debug_nans(fm.grad(f))(0.0) == 0.0
    assert math.isnan(fm.hessian(f)(0.0))
    with pytest.raises(FloatingPointError, match=r"'\*' produced nan from inputs \(.*inf"):
        fm.debug_nans(fm.hessian(f))(0.0)


def test_the_first_source_is_reported_not_its_consequences():
    f = fm.debug_nans(lambda x: fm.sqrt(-x) * 3.0 + fm.log(-x))
    with pytest.raises(FloatingPointError, match="'sqrt'"):
        f(1.0)
    g = fm.debug_nans(lambda x: (x * math.inf - math.inf) * 2.0)
    with pytest.raises(FloatingPointError, match=r"'-' produced nan from inputs \(inf, inf\)"):
        g(1.0)


def test_error_names_the_output_reached():
    f = fm.debug_nans(lambda x: {"ok": x * 2.0, "bad": (x, fm.log(x - 5.0))})
    with pytest.raises(FloatingPointError, match=r"output at \['bad'\]\[1\]"):
        f(1.0)


def test_a_nan_argument_is_not_an_operation():
    assert math.isnan(fm.debug_nans(lambda x: x * 2.0)(math.nan))


def test_custom_vjp_forward_nan_names_the_function():
    @fm.custom_vjp
    def bad_log(x):
        return fm.log(x)

    bad_log.defvjp(lambda x: (fm.log(x), x), lambda x, g: (g / x,))
    with pytest.raises(FloatingPointError, match="custom_vjp bad_log"):
        fm.debug_nans(fm.value_and_grad(bad_log))(-1.0)


def test_inside_an_outer_transform_the_graph_stays_differentiable():
    g = fm.grad(lambda x: fm.debug_nans(lambda y: y * y * x)(x))
    assert g(3.0) == 27.0
    with pytest.raises(FloatingPointError, match="'log'"):
        fm.grad(lambda x: fm.debug_nans(fm.log)(x - 5.0))(1.0)


def test_a_forward_nan_that_grad_drops_is_still_reported():
    assert fm.grad(fm.log)(-1.0) == -1.0  # the derivative 1/x is clean
    with pytest.raises(FloatingPointError, match="'log' produced nan.*inner transform"):
        fm.debug_nans(fm.grad(fm.log))(-1.0)
    with pytest.raises(FloatingPointError, match="'log'"):
        fm.debug_nans(lambda x: fm.jvp(fm.log, (x,), (1.0,))[1])(-1.0)
    assert fm.debug_nans(fm.grad(fm.log))(2.0) == 0.5


def test_int_arguments_stay_ints_and_the_numbers_do_not_change():
    # every int became a float variable: x + (n + 1 - n) at n = 10**17 gave 2.0, not 3.0
    f = lambda x, n: x + (n + 1 - n)
    assert fm.debug_nans(f)(2.0, 10 ** 17) == fm.debug_nans(fm.jit(f))(2.0, 10 ** 17) == 3.0
    assert fm.debug_nans(fm.grad(lambda x, n: x * (n + 1 - n)))(2.0, 10 ** 17) == 1.0
    assert fm.debug_nans(lambda x, n: x * 2.0 if isinstance(n, int) else x * 3.0)(2.0, 4) == 4.0
    assert fm.debug_nans(lambda x, n: x * (n % 3))(2.0, 5) == 4.0  # % on an fm node: an error


def test_keyword_arguments_are_watched_too():
    with pytest.raises(FloatingPointError, match="log\\(kwargs\\['x'\\]\\) = nan"):
        fm.debug_nans(lambda x: fm.log(x) * 2.0)(x=-1.0)
    with pytest.raises(FloatingPointError, match="kwargs\\['y'\\]"):
        fm.debug_nans(lambda x, y=1.0: fm.log(y) * x)(1.0, y=-1.0)


@pytest.mark.parametrize("c", [2.0, np.array([1.0, 3.0])])
def test_under_vmap_an_unmapped_argument_gives_what_vmap_of_f_gives(c):
    # the unmapped argument's variables stand for constants: the result is vmap's
    # tuple of examples, as without the wrapper, not a lazy batch
    f = lambda x, c: x * fm.sum(c) if isinstance(c, np.ndarray) else x * c  # noqa: E731
    xs = np.arange(3.0)
    got = fm.vmap(fm.debug_nans(f), in_axes=(0, None))(xs, c)
    assert isinstance(got, tuple) and got == fm.vmap(f, in_axes=(0, None))(xs, c)
    grads = fm.vmap(fm.grad(fm.debug_nans(lambda x, c: x * c * x)), in_axes=(0, None))(xs, 2.0)
    assert grads == tuple(4.0 * x for x in xs)
    with pytest.raises(FloatingPointError, match="'log'"):
        fm.vmap(fm.debug_nans(lambda x, c: fm.log(x - c)), in_axes=(0, None))(xs, 2.0)
