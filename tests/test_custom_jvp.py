"""fm.custom_jvp, with cases ported from JAX's tests/api_test.py (CustomJVPTest):
forward mode uses the rule, reverse mode and higher order work, and the function
composes with jit, vmap and custom_vjp."""

import math

import numpy as np
import pytest

import fmicrograd as fm


def _sin_with_rule(scale=2.0):
    @fm.custom_jvp
    def f(x):
        return fm.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (g,) = primals, tangents
        return f(x), scale * fm.cos(x) * g

    return f


def test_basic():  # JAX: test_basic
    f = _sin_with_rule()
    x = 3.0
    assert f(x) == math.sin(x)
    assert fm.jvp(f, (x,), (1.0,)) == (math.sin(x), 2 * math.cos(x))
    assert fm.grad(f)(x) == pytest.approx(2 * math.cos(x), rel=1e-15)


def test_the_rule_replaces_the_function_derivative_in_every_mode():
    f = _sin_with_rule(scale=3.0)
    x = 0.7
    want = 3.0 * math.cos(x)
    assert fm.jacfwd(f)(x) == pytest.approx(want, rel=1e-15)
    assert fm.jacrev(f)(x) == pytest.approx(want, rel=1e-15)
    out, f_jvp = fm.linearize(f, x)
    assert f_jvp(2.0) == pytest.approx(2 * want, rel=1e-15)


def test_higher_order_differentiates_the_rule():  # JAX: test_hessian / test_grad_of_grad
    f = _sin_with_rule()
    x = 0.4
    assert fm.grad(fm.grad(f))(x) == pytest.approx(-2 * math.sin(x), rel=1e-14)
    assert fm.hessian(f)(x) == pytest.approx(-2 * math.sin(x), rel=1e-14)
    assert fm.grad(fm.grad(fm.grad(f)))(x) == pytest.approx(-2 * math.cos(x), rel=1e-14)


def test_invariance():  # JAX: test_invariance
    @fm.custom_jvp
    def f(x):
        return fm.cos(2 * x) / 2.0

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (g,) = primals, tangents
        return f(x), g

    def f2(x):
        y, _ = fm.jvp(f, (x,), (x,))
        return y

    def f3(x):
        y, _ = fm.jvp(f2, (x,), (x,))
        return y

    x = 1.0
    assert fm.jvp(f, (x,), (x,)) == fm.jvp(f2, (x,), (x,))
    assert fm.jvp(f, (x,), (x,)) == fm.jvp(f3, (x,), (x,))


def test_python_control_flow():  # JAX: test_python_control_flow
    @fm.custom_jvp
    def f(x):
        return fm.sin(x) if x > 0 else fm.cos(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (g,) = primals, tangents
        return f(x), (2.0 * g if x > 0 else 3.0 * g)

    assert f(1.0) == math.sin(1.0) and f(-1.0) == math.cos(1.0)
    assert fm.jvp(f, (1.0,), (1.0,)) == (math.sin(1.0), 2.0)
    assert fm.jvp(f, (-1.0,), (1.0,)) == (math.cos(-1.0), 3.0)
    assert fm.grad(f)(1.0) == 2.0 and fm.grad(f)(-1.0) == 3.0


def test_vmap():  # JAX: test_vmap
    f = _sin_with_rule()
    xs = np.arange(3.0)
    assert np.allclose(fm.vmap(f)(xs), np.sin(xs), rtol=1e-15)
    assert np.allclose(fm.vmap(fm.grad(f))(xs), 2 * np.cos(xs), rtol=1e-15)
    assert fm.grad(lambda x: fm.sum(fm.vmap(lambda y: f(x * y))(xs)))(0.5) == pytest.approx(
        sum(2 * math.cos(0.5 * y) * y for y in xs), rel=1e-14)


def test_jit():  # JAX: test_jit
    f = _sin_with_rule()
    x = 3.0
    assert fm.jit(f)(x) == math.sin(x)
    assert fm.jit(fm.grad(f))(x) == pytest.approx(2 * math.cos(x), rel=1e-15)
    assert fm.grad(fm.jit(f))(x) == pytest.approx(2 * math.cos(x), rel=1e-15)
    assert fm.jit(lambda x: fm.jvp(f, (x,), (1.0,)))(x) == pytest.approx(
        (math.sin(x), 2 * math.cos(x)), rel=1e-15)


def test_pytrees():  # JAX: test_pytrees
    @fm.custom_jvp
    def f(x):
        return {"b": fm.sin(x["a"])}

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (g,) = primals, tangents
        return f(x), {"b": 2.0 * fm.cos(x["a"]) * g["a"]}

    x = {"a": 3.0}
    out, tan = fm.jvp(f, (x,), (x,))
    assert out["b"] == math.sin(3.0)
    assert tan["b"] == pytest.approx(2 * math.cos(3.0) * 3.0, rel=1e-15)
    assert fm.grad(lambda x: f(x)["b"])(x)["a"] == pytest.approx(2 * math.cos(3.0), rel=1e-15)


def test_several_arguments_and_outputs():
    @fm.custom_jvp
    def f(x, y):
        return x * y, x + y

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, y), (tx, ty) = primals, tangents
        return f(x, y), (10.0 * (tx * y + x * ty), tx + ty)

    jac = fm.jacrev(lambda x, y: f(x, y), argnums=(0, 1))(2.0, 3.0)
    assert jac == ((30.0, 20.0), (1.0, 1.0))
    assert fm.jacfwd(lambda x, y: f(x, y), argnums=(0, 1))(2.0, 3.0) == jac


def test_nondiff_argnums():  # JAX: test_nondiff_arg
    @fm.custom_jvp
    def app(f, x):
        return f(x)

    app = fm.custom_jvp(app.fun, nondiff_argnums=(0,))

    @app.defjvp
    def app_jvp(f, primals, tangents):
        (x,), (t,) = primals, tangents
        return app(f, x), 3.0 * t

    assert app(lambda x: 2.0 * x, 1.0) == 2.0
    assert fm.jvp(lambda x: app(lambda y: 2.0 * y, x), (1.0,), (1.0,)) == (2.0, 3.0)
    assert fm.grad(lambda x: app(lambda y: 2.0 * y, x))(1.0) == 3.0


def test_composes_with_custom_vjp():
    @fm.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (fm.clip(g, -1.0, 1.0),))
    f = _sin_with_rule(scale=10.0)
    # reverse mode: outside, the custom_vjp clips the seed (1) and the rule scales it
    # by 10; inside, it clips the 10 the rule's transpose made
    assert fm.grad(lambda x: clip_gradient(f(x)))(0.0) == 10.0
    assert fm.grad(lambda x: f(clip_gradient(x)))(0.0) == 1.0
    # forward mode reads a custom_vjp's partials from bwd at cotangent 1, which a
    # clipping bwd does not give (jvp said 10.0 here, and jit's compiled VJP another
    # number): an error naming the reverse-mode transforms, as JAX refuses jvp of it
    with pytest.raises(TypeError, match="clip_gradient: forward mode .* not -2 times it"):
        fm.jvp(lambda x: f(clip_gradient(x)), (0.0,), (1.0,))


def test_stable_rule_gives_finite_derivatives():  # the JAX docs' log1pexp
    @fm.custom_jvp
    def log1pexp(x):
        return fm.log(1.0 + fm.exp(x))

    @log1pexp.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return log1pexp(x), t * (1.0 - 1.0 / (1.0 + fm.exp(x)))

    assert fm.grad(lambda x: fm.log(1.0 + fm.exp(x)))(1000.0) != 1.0  # nan without the rule
    assert fm.grad(log1pexp)(1000.0) == 1.0
    assert fm.vmap(fm.grad(log1pexp))(np.array([0.0, 1000.0])) == (0.5, 1.0)


def test_errors():
    f = fm.custom_jvp(fm.sin)
    with pytest.raises(TypeError, match="no rule yet"):
        f(1.0)
    f.defjvp(lambda p, t: (fm.sin(p[0]), t[0]))
    with pytest.raises(ValueError, match="already has a rule"):
        f.defjvp(lambda p, t: (fm.sin(p[0]), t[0]))
    bad = fm.custom_jvp(fm.sin)
    bad.defjvp(lambda p, t: fm.sin(p[0]))
    with pytest.raises(TypeError, match="must return a pair"):
        fm.grad(bad)(1.0)
    w = fm.Var(2.0)
    closes = fm.custom_jvp(lambda x: x * w.value)
    closes.defjvp(lambda p, t: (closes(*p), t[0]))
    assert fm.grad(closes)(1.0) == 1.0  # a float closure is fine
    with pytest.raises(TypeError, match="custom_jvp: .*closes over"):
        fm.grad(lambda w: fm.grad(_closure(w))(1.0))(2.0)


def _closure(w):
    f = fm.custom_jvp(lambda x: x * w)
    f.defjvp(lambda p, t: (f(*p), t[0] * w))
    return f


def test_docs_example_two_arguments():  # JAX's custom derivatives notebook, TL;DR
    @fm.custom_jvp
    def f(x, y):
        return fm.sin(x) * y

    @f.defjvp
    def f_jvp(primals, tangents):
        (x, y), (x_dot, y_dot) = primals, tangents
        return f(x, y), fm.cos(x) * x_dot * y + fm.sin(x) * y_dot

    assert fm.jvp(f, (2.0, 3.0), (1.0, 0.0)) == (math.sin(2.0) * 3.0, math.cos(2.0) * 3.0)
    assert fm.grad(f)(2.0, 3.0) == pytest.approx(math.cos(2.0) * 3.0, rel=1e-15)
    assert fm.grad(f, argnums=1)(2.0, 3.0) == pytest.approx(math.sin(2.0), rel=1e-15)


def test_kwargs():  # JAX: test_kwargs
    @fm.custom_jvp
    def my_fun(x, y, c=1.0):
        return c * (x + y)

    @my_fun.defjvp
    def my_jvp(primals, tangents):
        (x, y, c), (_, _, t_c) = primals, tangents
        return my_fun(x, y, c), t_c

    f = lambda x, y: fm.square(my_fun(x, y, c=2.0))
    assert f(10.0, 5.0) == 900.0
    assert fm.jvp(f, (10.0, 5.0), (1.0, 1.0)) == (900.0, 0.0)  # the rule: only c moves it


def _clipped():  # JAX's own custom_vjp example: a bwd that is not linear in the cotangent
    @fm.custom_vjp
    def clip_gradient(x):
        return x

    clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (fm.clip(g, -1.0, 1.0),))
    return lambda x: clip_gradient(3.0 * x) * 2.0


@pytest.mark.parametrize("forward", [
    lambda f: fm.jvp(f, (0.5,), (1.0,)), lambda f: fm.jacfwd(f)(0.5),
    lambda f: fm.linearize(f, 0.5)[1](1.0), lambda f: fm.jvp(fm.jit(f), (0.5,), (1.0,)),
    lambda f: fm.jacfwd(fm.jit(f))(0.5), lambda f: fm.jit(lambda x: fm.jvp(f, (x,), (1.0,)))(0.5),
    lambda f: fm.vmap(lambda x: fm.jvp(f, (x,), (1.0,))[1])(np.array([0.5, 1.0]))])
def test_forward_mode_refuses_a_custom_vjp_whose_bwd_is_not_linear(forward):
    # jvp gave 6.0 (bwd read at cotangent 1) and jvp(jit(f)) 3.0 (the compiled VJP at the
    # real cotangent): a number that depended on jit. Reverse mode is the rule's meaning
    f = _clipped()
    assert fm.grad(f)(0.5) == fm.jit(fm.grad(f))(0.5) == fm.grad(fm.jit(f))(0.5) == 3.0
    with pytest.raises(TypeError, match=r"forward mode .* bwd linear in the cotangent.*fm\.grad"):
        forward(f)


def test_forward_mode_takes_a_linear_custom_vjp_with_and_without_jit():
    @fm.custom_vjp
    def straight_through(x):
        return fm.relu(x)

    straight_through.defvjp(lambda x: (fm.relu(x), None), lambda _, g: (2.0 * g,))
    f = lambda x: straight_through(x) * fm.sin(x)
    eager = fm.jvp(f, (-0.5,), (1.0,))
    assert fm.jvp(fm.jit(f), (-0.5,), (1.0,)) == pytest.approx(eager, rel=1e-15)
    assert eager[1] == pytest.approx(2.0 * math.sin(-0.5), rel=1e-15)  # relu(-0.5) = 0
    assert fm.jacfwd(f)(-0.5) == pytest.approx(fm.grad(f)(-0.5), rel=1e-15)


@pytest.mark.parametrize("transform", ["jvp", "jacfwd", "jit(jvp)", "grad"])
def test_a_tangent_out_shaped_otherwise_than_the_output_is_refused_in_every_mode(transform):
    # (within round 22 forward mode paired the leaves up in order, silently)
    g = fm.custom_jvp(lambda x: (x, 2.0 * x))
    g.defjvp(lambda p, t: ((p[0], 2.0 * p[0]), {"a": 5.0 * t[0], "b": 7.0 * t[0]}))
    run = {"jvp": lambda: fm.jvp(g, (1.0,), (1.0,)),
           "jacfwd": lambda: fm.jacfwd(lambda x: g(x)[0] + g(x)[1])(1.0),
           "jit(jvp)": lambda: fm.jit(lambda x: fm.jvp(g, (x,), (1.0,)))(1.0),
           "grad": lambda: fm.grad(lambda x: g(x)[0] + g(x)[1])(1.0)}[transform]
    with pytest.raises(ValueError, match="rule must return a tangent_out shaped like"):
        run()


def test_a_rule_that_branches_on_a_tangent():
    # forward mode runs the rule on the tangents it is given; reverse mode would
    # answer the branch for tangents of 0.0 (it gave 0.0 silently until round 22)
    g = fm.custom_jvp(fm.sin)

    @g.defjvp
    def _(p, t):
        (x,), (tx,) = p, t
        return g(x), (0.0 if tx == 0.0 else fm.cos(x) * tx)

    want = math.cos(0.5)
    assert fm.jvp(g, (0.5,), (1.0,))[1] == want
    assert fm.jacfwd(g)(0.5) == want
    assert fm.linearize(g, 0.5)[1](2.0) == 2.0 * want
    assert fm.jit(lambda x: fm.jvp(g, (x,), (1.0,))[1])(0.5) == want
    with pytest.raises(TypeError, match=r"rule compares a tangent \(`==`\).*linear in the"):
        fm.grad(g)(0.5)


def test_the_documented_fixes_for_a_rule_over_a_where_give_the_functions_numbers():
    # docs/sharp-bits.md: reverse mode transposes the rule, so a rule that is fm.jvp of a
    # where with a node condition hands the branch not taken a zero cotangent; a
    # comparison, or a rule written on the primals, picks the branch in the rule too
    f = lambda p, t: fm.where(p > 0.0, fm.log(p) * t, fm.sqrt(-p) * t)  # noqa: E731
    g = fm.custom_jvp(f)
    g.defjvp(lambda primals, tangents: fm.jvp(f, primals, tangents))
    h = fm.custom_jvp(lambda p, t: fm.where(fm.greater(p, 0.0), fm.log(p) * t,
                                            fm.sqrt(-p) * t))

    @h.defjvp
    def _(primals, tangents):
        (p, t), (dp, dt) = primals, tangents
        slope = fm.where(fm.greater(p, 0.0), dp * t / p + fm.log(p) * dt,
                         -dp * t / (2.0 * fm.sqrt(-p)) + fm.sqrt(-p) * dt)
        return h(p, t), slope

    for p in (2.0, -4.0):
        want = fm.grad(f, argnums=1)(p, 1.0)
        assert not math.isnan(want)
        for rule in (g, h):
            assert fm.grad(rule, argnums=1)(p, 1.0) == want
            assert fm.jit(fm.grad(rule, argnums=1))(p, 1.0) == want


@pytest.mark.parametrize("transform", ["grad", "jit(grad)", "vmap(grad)", "hessian",
                                       "jacrev(jacfwd)", "jacfwd(jacrev)", "jvp"])
def test_a_rule_that_is_fm_jvp_branches_on_an_argument_nothing_differentiates(transform):
    # reverse mode transposes the rule from tangent variables; the argument nothing
    # differentiates got one too, so fm.jvp inside the rule made it a variable and the
    # where a torch where: NaN at an ordinary point (p = 2) where f gives log(2) (until
    # round 24). It now gets NO_TANGENT, JAX's symbolic zero, and stays as given
    f = lambda p, t: fm.tanh(fm.where(fm.greater(p, 0.0), fm.log(p) * t * t,  # noqa: E731
                                      fm.sqrt(-p) * t))
    g = fm.custom_jvp(f)
    g.defjvp(lambda primals, tangents: fm.jvp(f, primals, tangents))
    t2 = {"grad": lambda h: fm.grad(h, argnums=1),
          "jit(grad)": lambda h: fm.jit(fm.grad(h, argnums=1)),
          "vmap(grad)": lambda h: lambda p, t: fm.vmap(fm.grad(h, argnums=1), in_axes=(0, None))(
              np.array([p, -p]), t),
          "hessian": lambda h: fm.hessian(h, argnums=1),
          "jacrev(jacfwd)": lambda h: fm.jacrev(fm.jacfwd(h, argnums=1), argnums=1),
          "jacfwd(jacrev)": lambda h: fm.jacfwd(fm.jacrev(h, argnums=1), argnums=1),
          "jvp": lambda h: lambda p, t: fm.jvp(lambda u: h(p, u), (t,), (1.0,))}[transform]
    for p in (2.0, -4.0, 0.0):
        want = t2(f)(p, 0.5)
        assert not any(math.isnan(v) for v in fm.tree.leaves(want)) or p == 0.0
        assert fm.tree.leaves(t2(g)(p, 0.5)) == fm.tree.leaves(want)


@pytest.mark.parametrize("tangent", [
    lambda p, t: 2.0 * p * t * t,      # gave fm.grad 0.0 (transposed at t = 0)
    lambda p, t: 2.0 * p * abs(t),
    lambda p, t: 2.0 * p * t + 1.0,
    lambda p, t: fm.maximum(t, 2.0 * p * t),
], ids=["square", "abs", "affine", "max"])
def test_a_rule_not_linear_in_the_tangents_is_refused_in_reverse_mode(tangent):
    f = fm.custom_jvp(lambda x: x * x)
    f.defjvp(lambda p, t: (p[0] * p[0], tangent(p[0], t[0])))
    for transform, arg in ((fm.grad, 3.0), (fm.jacrev, 3.0),
                           (lambda g: fm.jit(fm.grad(g)), 3.0),
                           (lambda g: fm.vmap(fm.grad(g)), (3.0, 4.0))):
        with pytest.raises(TypeError, match=r"rule is not linear in the tangents .*at tangents "
                                            r"s and .* at -2 s"):
            transform(f)(arg)
    linear = fm.custom_jvp(lambda x, y: x * y)
    linear.defjvp(lambda p, t: (p[0] * p[1], p[1] * t[0] + p[0] * t[1]))
    assert fm.grad(linear, argnums=(0, 1))(3.0, 4.0) == (4.0, 3.0)
    assert fm.hessian(lambda x: linear(x, x))(2.0) == 2.0


def _mul():
    @fm.custom_jvp
    def mul(x, y):
        return x * y

    @mul.defjvp
    def _(p, t):
        (x, y), (tx, ty) = p, t
        return x * y, tx * y + x * ty
    return mul


def _two():
    @fm.custom_jvp
    def two(x, y):
        return (x * y, x + y)

    @two.defjvp
    def _(p, t):
        (x, y), (tx, ty) = p, t
        return (x * y, x + y), (tx * y + x * ty, tx + ty)
    return two


def test_a_rule_under_vmap_with_an_unmapped_argument_is_not_taken_for_a_wrong_one():
    # the check that a rule's tangent map is its own counted a tangent the same on every
    # example once against the values of every example: "1.5 where its value is 4.5" for a
    # correct rule (an outside probe, round 45), in forward and in reverse mode
    g = lambda b: _mul()(b, 1.5)  # noqa: E731
    xs = [0.3, 0.4, 0.5]
    assert fm.vmap(lambda b: fm.jvp(g, (b,), (1.0,))[1])(xs) == (1.5, 1.5, 1.5)
    assert fm.vmap(fm.jacfwd(g))(xs) == (1.5, 1.5, 1.5)
    assert fm.vmap(fm.jit(lambda b: fm.jvp(g, (b,), (1.0,))[1]))(xs) == (1.5, 1.5, 1.5)
    h = lambda a, b: _two()(a, b)[0] * b  # noqa: E731  (a * b * b, shared b)
    a = [0.3, -0.5, 1.1]
    loop = [fm.grad(h, 1)(x, 0.7) for x in a]
    assert fm.vmap(fm.grad(h, 1), in_axes=(0, None))(a, 0.7) == tuple(loop)
    assert fm.grad(lambda b: fm.sum(fm.vmap(h, in_axes=(0, None))(a, b)))(0.7) == \
        pytest.approx(sum(loop), rel=1e-15)
    assert fm.hessian(lambda b: fm.sum(fm.vmap(h, in_axes=(0, None))(a, b)))(0.7) == \
        pytest.approx(sum(2.0 * x for x in a), rel=1e-15)


def test_a_rule_closing_over_a_mapped_value_gives_one_tangent_per_example():
    # its tangent holds one value per example, which was refused as "an array for an
    # output that is one number" (an outside probe, round 45)
    def inner(x):
        @fm.custom_jvp
        def h(y):
            return y * y
        h.defjvp(lambda p, t: (p[0] * p[0], 2.0 * p[0] * x * t[0]))
        return fm.grad(h)(0.5)  # = x

    xs = [1.7, 1.0]
    assert fm.vmap(inner)(xs) == (1.7, 1.0)
    f = lambda x: x * inner(x)  # noqa: E731
    for transform in (fm.grad, fm.jacfwd, fm.hessian):
        assert fm.vmap(transform(f))(xs) == tuple(transform(f)(x) for x in xs)


def test_a_constant_array_of_the_batchs_length_in_a_rule_is_still_refused_under_vmap():
    # round 45's first version took any array of the batch's shape for one tangent per
    # example (a re-review): a user's constant array is refused there as in the loop
    w = np.array([1.0, 3.0])

    @fm.custom_jvp
    def h(y):
        return fm.sin(y)

    h.defjvp(lambda p, t: (fm.sin(p[0]), w * t[0] * fm.cos(p[0])))
    with pytest.raises(TypeError, match="the tangent of a number is one number"):
        fm.grad(h)(0.5)
    with pytest.raises(TypeError, match="the tangent of a number is one number"):
        fm.vmap(lambda d: d * fm.grad(h)(0.5))([1.0, 2.0])
