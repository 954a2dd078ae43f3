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


# --- a transform applied outside the wrapper ------------------------------------------------

_BACKWARD = r"'/' produced nan from inputs \(0\.0, 0\.0\): .*sqrt\(args\[0\]\).* = nan; " \
            r"it reaches the derivative of the output at <root>"


def test_reverse_transforms_outside_the_wrapper_check_the_backward_pass():
    f = lambda x: fm.sqrt(x) * 0.0
    assert math.isnan(fm.grad(f)(0.0))  # the NaN the wrapper must name
    for outside in (
        fm.grad(fm.debug_nans(f)),
        fm.value_and_grad(fm.debug_nans(f)),
        fm.jacrev(fm.debug_nans(f)),
        lambda x: fm.vjp(fm.debug_nans(f), x)[1](1.0),
        fm.jit(fm.grad(fm.debug_nans(f))),
    ):
        with pytest.raises(FloatingPointError, match=_BACKWARD):
            outside(0.0)
        assert outside(4.0) in (0.0, (0.0, 0.0), (0.0,))  # no NaN: no error, as without


_TANGENT = r"'\*' produced nan from inputs \(0\.0, (inf|\[inf, 0\.25\])\): .* = nan; " \
           r"it reaches the tangent of the output at <root>"


def test_forward_transforms_outside_the_wrapper_check_the_tangent():
    # forward mode pushes the tangent through f's graph: sqrt's slope at 0 is inf,
    # and the tangent of ``* 0.0`` is 0 * inf (they returned nan unchecked)
    f = lambda x: fm.sqrt(x) * 0.0
    assert math.isnan(fm.jvp(f, (0.0,), (1.0,))[1])
    for outside in (
        lambda x: fm.jvp(fm.debug_nans(f), (x,), (1.0,)),
        fm.jacfwd(fm.debug_nans(f)),
        lambda x: fm.linearize(fm.debug_nans(f), x)[1](1.0),
        fm.jit(lambda x: fm.jvp(fm.debug_nans(f), (x,), (1.0,))[1]),
        lambda x: fm.vmap(fm.jacfwd(fm.debug_nans(f)))((x, 4.0)),
    ):
        with pytest.raises(FloatingPointError, match=_TANGENT):
            outside(0.0)
        outside(4.0)  # no NaN: no error
    assert fm.jvp(fm.debug_nans(f), (4.0,), (1.0,)) == fm.jvp(f, (4.0,), (1.0,)) == (0.0, 0.0)
    # a NaN tangent handed in is not an operation of f's
    assert math.isnan(fm.jvp(fm.debug_nans(lambda x: x * 2.0), (1.0,), (math.nan,))[1])
    # the branch a comparison's where does not take has no tangent: no error
    w = lambda x: fm.where(x > 0.0, fm.sqrt(x), 0.0)
    assert fm.jvp(fm.debug_nans(w), (0.0,), (1.0,)) == fm.jvp(w, (0.0,), (1.0,)) == (0.0, 0.0)


def test_a_nan_in_a_second_derivative_taken_outside():
    h = lambda x: (x * x) ** 1.5  # h and h' are clean at 0, h'' is inf * 0
    assert fm.grad(fm.debug_nans(h))(0.0) == fm.grad(h)(0.0) == 0.0
    assert math.isnan(fm.hessian(h)(0.0))
    for outside in (fm.hessian(fm.debug_nans(h)), fm.grad(fm.grad(fm.debug_nans(h))),
                    fm.grad(fm.jacrev(fm.debug_nans(h)))):
        with pytest.raises(FloatingPointError, match=r"'\*' produced nan from inputs \(.*inf"
                                                     r".*second derivative of the output"):
            outside(0.0)
    assert fm.hessian(fm.debug_nans(h))(2.0) == fm.hessian(h)(2.0) == 12.0


def test_outside_the_error_names_the_output_whose_derivative_is_nan():
    f = lambda x: {"ok": x * 2.0, "bad": fm.sqrt(x) * 0.0}
    assert math.isnan(fm.jacrev(f)(0.0)["bad"])
    with pytest.raises(FloatingPointError, match=r"derivative of the output at \['bad'\]"):
        fm.jacrev(fm.debug_nans(f))(0.0)
    g = lambda x, y: (x * y, fm.sqrt(y) * 0.0)
    _, back = fm.vjp(fm.debug_nans(g), 2.0, 0.0)
    with pytest.raises(FloatingPointError, match=r"derivative of the output at \[1\]"):
        back((0.0, 1.0))
    with pytest.raises(FloatingPointError, match=r"derivative of the output at \[0\]"):
        fm.value_and_grad(fm.debug_nans(lambda x: (fm.sqrt(x) * 0.0, {"x": x})),
                          has_aux=True)(0.0)


def test_outside_only_a_nan_that_reaches_the_result_counts():
    # a comparison's where gives the branch not taken no derivative at all: fm's
    # derivative is a clean 0.0, so the infinite slope of sqrt at 0 is no error
    w = lambda x: fm.where(x > 0.0, fm.sqrt(x), 0.0)
    assert fm.grad(fm.debug_nans(w))(0.0) == fm.grad(w)(0.0) == 0.0
    assert fm.hessian(fm.debug_nans(w))(0.0) == fm.hessian(w)(0.0) == 0.0
    xs = (0.0, 4.0)
    assert fm.vmap(fm.grad(fm.debug_nans(w)))(xs) == fm.vmap(fm.grad(w))(xs) == (0.0, 0.25)
    # the same where outside the wrapper: the example that does not take f is not blamed
    f = lambda x: fm.sqrt(x) * 0.0
    outer = lambda g: fm.vmap(fm.grad(lambda x: fm.where(x > 0.0, g(x), 0.0)))(xs)
    assert outer(fm.debug_nans(f)) == outer(f) == (0.0, 0.0)
    closure = lambda g: fm.grad(lambda c: fm.sum(fm.vmap(
        lambda x: fm.where(x > 0.0, g(lambda y: fm.sqrt(y * c))(x), 0.0))(xs)))(2.0)
    assert closure(fm.debug_nans) == closure(lambda h: h)
    # a where on a node the user built follows torch: 0 * inf is the NaN grad returns
    t = lambda x: fm.where(fm.greater(x, 0.0), fm.sqrt(x), 0.0)
    assert math.isnan(fm.grad(t)(0.0))
    with pytest.raises(FloatingPointError, match="'/' produced nan.*derivative of the output"):
        fm.grad(fm.debug_nans(t))(0.0)
    safe = lambda x: fm.where(fm.greater(x, 0.0), fm.sqrt(fm.where(fm.greater(x, 0.0), x, 1.0)),
                              0.0)
    assert fm.grad(fm.debug_nans(safe))(0.0) == fm.grad(safe)(0.0) == 0.0


def test_outside_under_vmap_and_jit():
    f = lambda x: fm.sqrt(x) * 0.0
    with pytest.raises(FloatingPointError, match=r"'/' produced nan from inputs \(0\.0, "
                                                 r"\[0\.0, 4\.0\]\).*derivative"):
        fm.vmap(fm.grad(fm.debug_nans(f)))((0.0, 4.0))
    with pytest.raises(FloatingPointError, match="derivative of the output"):
        fm.grad(lambda x: fm.sum(fm.vmap(fm.debug_nans(f))((x, x + 1.0))))(0.0)
    with pytest.raises(FloatingPointError, match="second derivative"):
        fm.vmap(fm.grad(fm.grad(fm.debug_nans(lambda x: (x * x) ** 1.5))))((0.0, 1.0))
    with pytest.raises(FloatingPointError, match="derivative of the output"):
        fm.grad(fm.jit(lambda x: fm.debug_nans(f)(x)))(0.0)


def _f(x, y):
    a = fm.tanh(x * y + 0.3) * fm.exp(-x * x) + fm.sin(y) / (1.5 + fm.cos(x * 3.0))
    b = fm.log(1.0 + a * a) * y + fm.sqrt(x * x + y * y + 0.1)
    return a * b + fm.sigmoid(a - b) * x


@pytest.mark.parametrize("x, y", [(0.3, -1.2), (-1.7, 0.4), (1.1, 1.9), (-0.6, -0.8)])
def test_outside_without_a_nan_the_numbers_do_not_change(x, y):
    d = fm.debug_nans(_f)
    both = (0, 1)
    assert fm.grad(d, argnums=both)(x, y) == fm.grad(_f, argnums=both)(x, y)
    assert fm.value_and_grad(d, argnums=both)(x, y) == fm.value_and_grad(_f, argnums=both)(x, y)
    assert fm.jacrev(d, argnums=both)(x, y) == fm.jacrev(_f, argnums=both)(x, y)
    assert fm.hessian(d, argnums=both)(x, y) == fm.hessian(_f, argnums=both)(x, y)
    assert fm.grad(fm.grad(d))(x, y) == fm.grad(fm.grad(_f))(x, y)
    assert fm.vjp(d, x, y)[1](0.7) == fm.vjp(_f, x, y)[1](0.7)
    # debug_nans under jit runs the jitted function as Python: Python's numbers
    assert fm.jit(fm.grad(d, argnums=both))(x, y) == fm.grad(_f, argnums=both)(x, y)
    xs = np.linspace(-2.0, 2.0, 5) + x
    g = lambda t: _f(t, y)
    assert fm.vmap(fm.grad(fm.debug_nans(g)))(xs) == fm.vmap(fm.grad(g))(xs)
    assert fm.vmap(fm.hessian(fm.debug_nans(g)))(xs) == fm.vmap(fm.hessian(g))(xs)
    # forward mode: the wrapper's rule runs the sweep the transform would have run
    assert fm.jvp(d, (x, y), (1.0, 0.5)) == fm.jvp(_f, (x, y), (1.0, 0.5))
    assert fm.jacfwd(d, argnums=both)(x, y) == fm.jacfwd(_f, argnums=both)(x, y)
    assert fm.linearize(d, x, y)[1](0.3, -0.2) == fm.linearize(_f, x, y)[1](0.3, -0.2)
    assert fm.jacfwd(fm.jacrev(d))(x, y) == fm.jacfwd(fm.jacrev(_f))(x, y)
    assert fm.jacrev(fm.jacfwd(d))(x, y) == fm.jacrev(fm.jacfwd(_f))(x, y)
    assert fm.jacfwd(fm.jacfwd(d))(x, y) == fm.jacfwd(fm.jacfwd(_f))(x, y)
    tangent = lambda h: lambda t: fm.jvp(h, (t, y), (1.0, 0.5))[1]
    assert fm.grad(tangent(d))(x) == fm.grad(tangent(_f))(x)
    assert fm.vmap(fm.jacfwd(fm.debug_nans(g)))(xs) == fm.vmap(fm.jacfwd(g))(xs)
    assert fm.vmap(tangent(d))(xs) == fm.vmap(tangent(_f))(xs)


def test_outside_closures_keep_their_derivatives():
    # a closure over grad's value with only floats passed in: the derivative
    # through it was dropped (0.0) when the wrapper returned plain values
    wrap = fm.debug_nans
    assert fm.grad(lambda x: wrap(lambda y: y * x * x)(3.0))(2.0) == 12.0
    assert fm.grad(lambda x: wrap(lambda: x * x)())(2.0) == 4.0
    assert fm.jvp(lambda x: wrap(lambda y: y * x)(3.0), (2.0,), (1.0,)) == (6.0, 3.0)
    plain = lambda g: g
    for outer in (lambda w: fm.grad(fm.grad(lambda x: w(lambda y: y * x * x * x)(3.0)))(2.0),
                  lambda w: fm.hessian(lambda x: w(lambda y: y * fm.sin(x) * y)(x))(2.0),
                  lambda w: fm.grad(lambda x: fm.grad(w(lambda y: y * y * x))(x))(3.0),
                  lambda w: fm.vmap(fm.grad(lambda x: w(lambda y: y * x * x)(3.0)))((1.0, 2.0)),
                  lambda w: fm.grad(lambda p: w(lambda d: fm.tanh(p["w"] * d + p["b"]))(0.5)
                                    + p["w"] * p["w"])({"w": 0.3, "b": -0.2})):
        assert outer(fm.debug_nans) == outer(plain)
    with pytest.raises(FloatingPointError, match="'/' produced nan.*derivative of the output"):
        fm.grad(lambda x: fm.debug_nans(lambda y: fm.sqrt(y * x) * 0.0)(3.0))(0.0)


def test_nested_wrappers_name_the_op_once():
    f = lambda x: fm.sqrt(x) * 0.0
    with pytest.raises(FloatingPointError, match=_BACKWARD):
        fm.debug_nans(fm.grad(fm.debug_nans(f)))(0.0)
    with pytest.raises(FloatingPointError, match="'/' produced nan.*derivative of the output"):
        fm.grad(fm.debug_nans(lambda x: fm.debug_nans(f)(x) * 2.0 + x))(0.0)
    assert fm.grad(fm.debug_nans(lambda x: fm.debug_nans(fm.sqrt)(x) * 2.0 + x))(4.0) == 1.5


def _pairs(a0, a1):
    return fm.where(a1 > 0.0, a1 * a1, a0) * a0


@pytest.mark.parametrize("second", [
    fm.hessian, lambda f: fm.jacfwd(fm.grad(f)), lambda f: fm.jacrev(fm.grad(f)),
    lambda f: (lambda x: fm.jvp(fm.grad(f), (x,), ((1.0, -0.5),))[1]),
])
@pytest.mark.parametrize("inner, x", [
    (lambda x: fm.vmap(lambda a, b: a * b)((x[0], 0.5), (x[1], 0.5)), (0.7, 0.2)),
    (lambda x: fm.vmap(_pairs)((x[0], x[1]), (x[1], -x[1])), (0.5, -0.5)),
])
def test_second_derivatives_through_the_wrapper_on_a_vmap_result_are_the_functions(
        second, inner, x):
    # the watching nodes of the first derivative mixed the result's examples: an extra
    # outer(grad r0, grad r0) term, or an asymmetric Hessian (found by an outside fuzzer)
    def wrapped(x):
        return fm.debug_nans(lambda r: r[0] * r[1])(inner(x))

    def plain(x):
        r = inner(x)
        return r[0] * r[1]

    assert second(wrapped)(x) == second(plain)(x)


def test_a_nan_in_the_derivative_of_an_argument_nothing_differentiates_is_not_blamed():
    # d/dx of sqrt(w * x) at w = 0 is 0 * inf = nan, but grad takes d/dw only (inf); under
    # jit the traced x got a cotangent the sweep drops, and debug_nans raised on it
    f = lambda w, x: fm.sqrt(w * x)  # noqa: E731
    for g in (fm.jit(fm.grad(fm.debug_nans(f))), fm.grad(fm.jit(fm.debug_nans(f))),
              fm.grad(fm.debug_nans(f)), fm.debug_nans(fm.jit(fm.grad(f)))):
        assert g(0.0, 1.0) == math.inf
    assert fm.jit(fm.value_and_grad(fm.debug_nans(f)))(0.0, 1.0) == (0.0, math.inf)
    # the argument differentiated too: the nan reaches the derivative, and is named
    with pytest.raises(FloatingPointError, match=r"'\*' produced nan .*reaches the derivative"):
        fm.jit(fm.grad(fm.debug_nans(f), argnums=(0, 1)))(0.0, 1.0)
    loss = lambda p, batch: fm.sum([fm.sqrt(p["w"] * x) for x, _ in batch])  # noqa: E731
    with pytest.warns(Warning):  # (fit warns of the infinite gradient; it used to raise)
        fm.train.fit(fm.debug_nans(loss), {"w": 0.0}, fm.optim.sgd(0.1), [[(1.0, 2.0)]],
                     epochs=1, jit=True)


def test_atan2s_own_rule_at_the_origin_is_not_blamed():
    # the rule divided 0 / 0 and masked the NaN to torch's 0: debug_nans reported the
    # division though no result carried a NaN (a helper's fuzzing, round 46)
    f = lambda y, x: fm.atan2(y, x)  # noqa: E731
    g = fm.grad(f, argnums=(0, 1))
    assert fm.debug_nans(g)(0.0, 0.0) == g(0.0, 0.0) == (0.0, 0.0)
    assert fm.debug_nans(fm.jit(g))(0.0, 0.0) == (0.0, 0.0)
    per_example = fm.vmap(lambda y: fm.grad(f)(y, y))
    assert fm.debug_nans(per_example)((0.0, 1.0)) == per_example((0.0, 1.0))
    assert per_example((0.0, 1.0))[0] == 0.0
    assert fm.debug_nans(lambda y, x: fm.jvp(f, (y, x), (1.0, 1.0)))(0.0, 0.0) == (0.0, 0.0)
