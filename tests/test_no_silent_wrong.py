"""Programs that once returned a wrong number without an error (issue 8):
each is now exact, or a TypeError/ValueError that names the fix."""

import math

import numpy as np
import pytest

import fmicrograd as fm

# --- stacked jit ---------------------------------------------------------------------------


@pytest.mark.parametrize("transform, expected", [
    (fm.grad, math.cos(1.0)),
    (fm.value_and_grad, (math.sin(1.0), math.cos(1.0))),
    (fm.jacrev, math.cos(1.0)),
    (fm.jacfwd, math.cos(1.0)),
    (fm.hessian, -math.sin(1.0)),
])
def test_jit_of_a_transform_of_jit_keeps_its_own_function(transform, expected):
    f = fm.jit(transform(fm.jit(fm.sin)))
    assert f(1.0) == pytest.approx(expected, rel=1e-12)
    assert f(1.0) == pytest.approx(expected, rel=1e-12)  # the compiled path too


def test_jit_of_vmap_of_jit_returns_numbers():
    out = fm.jit(fm.vmap(fm.jit(fm.sin)))((1.0, 2.0))
    assert out == (math.sin(1.0), math.sin(2.0))
    assert fm.jit(fm.vmap(fm.jit(fm.sin)))(np.array([0.5]))[0] == math.sin(0.5)


# --- comparisons and truth tests -----------------------------------------------------------

def _branchy(x):
    return x * x if x == 2.0 else 0.0


def test_equality_under_grad_is_float_equality():
    assert fm.grad(_branchy)(2.0) == 4.0
    assert fm.grad(_branchy)(3.0) == 0.0
    assert fm.grad(lambda x: x * 3.0 if x != 1.0 else x)(1.0) == 1.0
    assert fm.Var(2.0) == fm.Var(2.0) and fm.Var(2.0) != fm.Var(3.0)


@pytest.mark.parametrize("f", [
    lambda x: 1.0 if x == 0.0 else fm.sin(x) / x,
    lambda x: x * 2.0 if x else x + 5.0,
    lambda x: x + 1.0 if x != 0.0 else x - 1.0,
    lambda x: x * 3.0 if x <= 1.0 else x,
    lambda x: x * 3.0 if x >= 1.0 else x,
    lambda x: x * 3.0 if not x > 1.0 else x,
])
def test_every_comparison_under_jit_is_guarded(f):
    j = fm.jit(f)
    for x in (0.0, 1.0, 2.0, 0.0, -1.0, 1.0):
        assert j(x) == f(x)
        assert fm.jit(fm.grad(f))(x) == fm.grad(f)(x)


def test_comparisons_under_vmap_follow_each_example_or_name_where():
    assert fm.vmap(lambda x: x * 2.0 if x > 0 else -x)((1.0, 2.0)) == (2.0, 4.0)
    assert fm.vmap(lambda x: x * 2.0 if x == 1.0 else -x)((1.0, 1.0)) == (2.0, 2.0)
    with pytest.raises(ValueError, match="fm.where"):
        fm.vmap(lambda x: x * 2.0 if x == 1.0 else -x)((1.0, 2.0))
    with pytest.raises(ValueError, match="fm.where"):
        fm.vmap(lambda x: x if x else -x)((0.0, 2.0))


def test_comparisons_in_jit_of_vmap_follow_each_call():
    f = fm.jit(fm.vmap(lambda x: x * 2.0 if x > 0 else -x))
    cases = (((1.0, 2.0), (2.0, 4.0)), ((-1.0, -2.0), (1.0, 2.0)), ((3.0, 4.0), (6.0, 8.0)))
    for xs, want in cases:
        assert f(np.array(xs)) == want and f(xs) == want
    with pytest.raises(ValueError, match="fm.where"):
        f(np.array([1.0, -1.0]))


def test_nodes_are_not_equal_to_non_numbers_and_hash_by_identity():
    x = fm.Var(1.0)
    assert x != "1.0" and x != None  # noqa: E711
    assert {x: 1}[x] == 1 and fm.Var(1.0) not in {x: 1}


# --- implicit escapes ----------------------------------------------------------------------

@pytest.mark.parametrize("escape", [float, int, round, math.sin, math.exp, complex,
                                    math.floor, math.trunc])
def test_escapes_on_a_differentiated_node_are_type_errors(escape):
    with pytest.raises(TypeError, match="fm.stop_gradient"):
        fm.grad(lambda x: escape(x) * x)(3.0)


def test_escape_messages_name_the_transform_and_the_fix():
    with pytest.raises(TypeError, match=r"float\(\) on an fm.Expr that fm.grad .*fm.sin"):
        fm.grad(math.sin)(0.0)
    with pytest.raises(TypeError, match="fm.jvp"):
        fm.jvp(lambda x: float(x) * x, (3.0,), (1.0,))
    with pytest.raises(TypeError, match="fm.jacfwd"):
        fm.jacfwd(lambda x: math.exp(x))(0.0)
    with pytest.raises(TypeError, match="fm.jit is tracing"):
        fm.jit(lambda x: x * round(x))(2.0)
    with pytest.raises(TypeError, match="one value per example"):
        fm.vmap(lambda x: math.sin(x))((1.0, 2.0))


def test_reading_a_traced_argument_value_inside_jit_is_a_type_error():
    with pytest.raises(TypeError, match=r"x.value on an argument that fm.jit is tracing"):
        fm.jit(lambda x: x * 2.0 if x.value > 0 else -x)(1.0)
    with pytest.raises(TypeError, match="static_argnums"):
        fm.jit(lambda a: a[0] * 2.0 if a[1].value > 0 else a[0])(np.array([1.0, 2.0]))
    # the same function without jit, and a jitted one that compares the node, work
    assert (lambda x: x * 2.0 if x.value > 0 else -x)(fm.Var(1.0)).value == 2.0
    f = fm.jit(lambda x: x * 2.0 if x > 0 else -x)
    assert (f(1.0), f(-3.0)) == (2.0, 3.0)


def test_escapes_outside_transforms_and_on_independent_nodes_keep_working():
    x = fm.Var(2.6)
    assert (float(x), int(x), round(x), round(x, 1), math.floor(x)) == (2.6, 2, 3, 2.6, 2)
    assert math.sin(x) == math.sin(2.6) and complex(x) == 2.6 + 0j
    c = fm.Const(2.0)
    assert fm.grad(lambda y: y * float(c))(3.0) == 2.0
    assert fm.grad(lambda y: y * float(fm.stop_gradient(y)))(3.0) == 3.0
    # an inner transform's nodes are free once it has finished
    assert fm.grad(lambda y: y * float(fm.grad(lambda z: z * z)(2.0)))(1.0) == 4.0


def test_printing_inside_a_loss_shows_the_value():
    seen = []

    def loss(x):
        y = x * x
        seen.append(f"{y:.3f}")
        seen.append(repr(y))
        return y

    assert fm.grad(loss)(1.5) == 3.0
    assert seen[0] == "2.250" and "2.25" in seen[1]
    assert fm.jit(loss)(2.0) == 4.0 and seen[-2] == "4.000"  # printed while tracing
    assert f"{fm.vmap(lambda x: x * 1.0, in_axes=0)((1.0, 2.0))[0]:.1f}" == "1.0"


# --- outputs and inputs that are not scalars ------------------------------------------------

def test_grad_of_an_array_valued_output_is_a_type_error():
    with pytest.raises(TypeError, match="must return a scalar"):
        fm.grad(lambda x: x * np.array([1.0, 2.0, 3.0]))(1.0)
    # under vmap a per-example scalar is fine
    assert fm.vmap(fm.grad(lambda x: x * x))(np.array([1.0, 2.0])) == (2.0, 4.0)


def test_vmap_of_complex_numbers_is_a_type_error():
    with pytest.raises(TypeError, match="complex"):
        fm.vmap(lambda a: a * 2.0)(np.array([1j, 2j]))
    with pytest.raises(TypeError, match="expected numbers"):
        fm.vmap(lambda a: a * 2.0)([1j, 2j])


def test_stop_gradient_of_a_function_is_a_type_error():
    with pytest.raises(TypeError, match="stop_gradient"):
        fm.stop_gradient(fm.sin)


# --- forward mode and Jacobians of vmap ----------------------------------------------------

def test_jvp_of_vmap_keeps_examples_apart():
    assert fm.jvp(fm.vmap(lambda x: 2 * x), ((1.0, 2.0),), ((1.0, 0.0),)) == \
        ((2.0, 4.0), (2.0, 0.0))


@pytest.mark.parametrize("jac", [fm.jacfwd, fm.jacrev])
def test_jacobian_of_vmap_is_block_diagonal(jac):
    assert jac(fm.vmap(lambda x: x * x))((1.0, 2.0)) == ((2.0, 0.0), (0.0, 4.0))
    nested = jac(fm.vmap(fm.vmap(lambda x: x * x)))(((1.0, 2.0), (3.0, 4.0)))
    assert nested == ((((2.0, 0.0), (0.0, 0.0)), ((0.0, 4.0), (0.0, 0.0))),
                      (((0.0, 0.0), (6.0, 0.0)), ((0.0, 0.0), (0.0, 8.0))))
    assert jac(fm.vmap(fm.grad(lambda x: x ** 3)))((1.0, 2.0)) == ((6.0, 0.0), (0.0, 12.0))
    assert fm.vmap(jac(fm.vmap(lambda x: x ** 3)))(((1.0, 2.0), (3.0, 4.0))) == \
        (((3.0, 0.0), (0.0, 12.0)), ((27.0, 0.0), (0.0, 48.0)))


def test_hessian_and_vjp_of_vmap_keep_examples_apart():
    h = fm.hessian(lambda x: fm.sum(fm.vmap(lambda v: v * v * v)(x)))((1.0, 2.0))
    assert h == ((6.0, 0.0), (0.0, 12.0))
    _, back = fm.vjp(fm.vmap(lambda x: x ** 3), (1.0, 2.0))
    assert back((1.0, 0.0)) == ((3.0, 0.0),)


def test_vmap_over_lists_of_lists_hands_the_function_nodes():
    g = fm.vmap(fm.grad(lambda r: r[0] * r[1]))([[1.0, 2.0], [3.0, 4.0]])
    assert [list(x) for x in g] == [[2.0, 1.0], [4.0, 3.0]]
    assert fm.vmap(fm.vmap(lambda x: x * 2))([[1.0, 2.0], [3.0, 4.0]]) == ((2.0, 4.0), (6.0, 8.0))
    gg = fm.vmap(fm.vmap(fm.grad(lambda r: r[0] * r[1])))([[[1.0, 2.0], [3.0, 4.0]],
                                                           [[5.0, 6.0], [7.0, 8.0]]])
    assert [[list(x) for x in row] for row in gg] == [[[2.0, 1.0], [4.0, 3.0]],
                                                     [[6.0, 5.0], [8.0, 7.0]]]


# --- custom_vjp ----------------------------------------------------------------------------

def _scaled_sin(x):
    """JAX's closed-over-tracer case: a custom_vjp closing over ``x``."""
    @fm.custom_vjp
    def f(y):
        return x * fm.sin(y)

    f.defvjp(lambda y: (f(y), fm.cos(y)), lambda cos_y, g: (cos_y * g * x,))
    return f


def test_custom_vjp_may_close_over_mapped_and_traced_values():
    want = tuple(x * math.cos(3.0) for x in (0.0, 1.0, 2.0))
    assert fm.vmap(lambda x: fm.grad(_scaled_sin(x))(3.0))((0.0, 1.0, 2.0)) == \
        pytest.approx(want, rel=1e-12)
    assert fm.vmap(lambda x: fm.grad(_scaled_sin(x))(3.0))(np.arange(3.0)) == \
        pytest.approx(want, rel=1e-12)
    j = fm.jit(fm.value_and_grad(lambda y, x: _scaled_sin(x)(y)))
    for x in (1.0, 2.0, 1.0):  # a second x must not reuse the first one's value
        assert j(3.0, x) == pytest.approx((x * math.sin(3.0), x * math.cos(3.0)), rel=1e-12)


def test_custom_vjp_closing_over_a_differentiated_value_is_an_error():
    with pytest.raises(TypeError, match="closes over a value that fm.grad differentiates"):
        fm.grad(lambda x: _scaled_sin(x)(fm.Var(3.0) * 1.0 + x * 0.0))(2.0)


def test_custom_vjp_backward_rule_returning_a_non_number_names_the_rule():
    twice = fm.custom_vjp(lambda x: x * 2.0)
    twice.defvjp(lambda x: (x * 2.0, None), lambda res, g: ("two",))
    with pytest.raises(TypeError, match="<lambda>'s bwd returned str 'two'"):
        fm.grad(twice)(1.0)


# --- debug_nans ----------------------------------------------------------------------------

def test_debug_nans_checks_array_inputs_to_vmap_and_jit():
    with pytest.raises(FloatingPointError, match=r"'log' produced nan.*stack\(args\[0\]\[0\]"):
        fm.debug_nans(fm.vmap(fm.log))(np.array([1.0, -1.0]))
    with pytest.raises(FloatingPointError, match=r"'log' produced nan.*log\(args\[0\]\[0\]\)"):
        fm.debug_nans(fm.jit(lambda a: fm.log(a[0]) + a[1]))(np.array([-1.0, 2.0]))
    assert fm.debug_nans(fm.jit(lambda a: fm.log(a[0]) + a[1]))(np.array([1.0, 2.0])) == 2.0


def test_debug_nans_never_blames_a_custom_vjp_the_user_did_not_write():
    with pytest.raises(FloatingPointError) as info:
        fm.debug_nans(fm.vmap(fm.log))((1.0, -1.0))
    assert "custom_vjp" not in str(info.value)


def test_three_nested_vmaps_keep_every_example_in_place():
    a = (((1.0, 2.0), (3.0, 4.0)), ((5.0, 6.0), (7.0, 8.0)))
    want = (((2.0, 4.0), (6.0, 8.0)), ((10.0, 12.0), (14.0, 16.0)))
    assert fm.vmap(fm.vmap(fm.vmap(lambda x: x * 2)))(a) == want
    assert fm.vmap(fm.vmap(fm.vmap(lambda x: x * 2)))(np.array(a)) == want
    f = lambda x: fm.vmap(lambda y: fm.vmap(lambda z: z * 2)([y, y * 0.5]))([x, x * 0.5])  # noqa: E731
    want = (((2.0, 1.0), (1.0, 0.5)), ((6.0, 3.0), (3.0, 1.5)))
    assert fm.vmap(f)([1.0, 3.0]) == want and fm.jit(fm.vmap(f))((1.0, 3.0)) == want


def test_where_takes_a_comparison_whose_vmap_examples_disagree():
    f = lambda x: fm.where(x > 0.0, x * x, -x)
    assert fm.vmap(f)((1.0, -2.0)) == (1.0, 2.0)
    assert fm.vmap(fm.grad(f))((1.0, -2.0)) == (2.0, -1.0)
    assert list(fm.jit(fm.vmap(f))(np.array([1.0, -2.0]))) == [1.0, 2.0]
    g = lambda x: fm.where(x == 1.0, 10.0 * x, x)
    assert fm.vmap(fm.grad(g))((1.0, -2.0)) == (10.0, 1.0)


# --- found by the round-11 review ------------------------------------------------------------


@pytest.mark.parametrize("bound, x", [(2**53 + 1, 2.0**53), (np.float32(0.1), 0.1)])
def test_a_guard_compares_with_a_constant_as_python_does(bound, x):
    # an int a float64 cannot hold, a float32 (numpy compares in float32): not a float64 guard
    def f(v):
        return v * 2.0 if v < bound else v * 3.0

    jf = fm.jit(f)
    for arg in (2.0 * x if x > 1 else 0.5 * x, x):  # the first call compiles the other branch
        assert jf(arg) == f(fm.Var(arg)).value
    assert fm.jit(lambda v: v * 2.0 if v == 2**53 + 1 else v * 3.0)(2.0**53) == 3.0 * 2.0**53


def test_a_bool_among_floats_is_not_read_as_a_number_by_the_compiled_match():
    jf = fm.jit(lambda p: p[0] * p[1])
    assert jf((2.0, 3.0)) == 6.0
    # a bool is a static leaf (not matched as the float input 1.0), and combines with a
    # node as Python's bool does with a float
    assert jf((2.0, True)) == fm.jit(lambda p: p[0] * p[1])((2.0, True)) == 2.0 * True
    assert jf((2.0, False)) == 0.0
    fresh = fm.jit(lambda p: p[0] * p[1])((2.0, np.True_))  # a static leaf, as numpy's 1
    assert jf((2.0, np.True_)) == fresh == 2.0
    jg = fm.jit(lambda x, y: x * y)
    assert jg(3.0, 2.0) == 6.0
    # a 0-d numeric array (``tensor.numpy()`` of one number) is a number, read at each call
    a = np.array(4.0)
    assert jg(3.0, a) == 12.0
    a[...] = 5.0
    assert jg(3.0, a) == 15.0 == fm.jit(lambda x, y: x * y)(3.0, np.array(5.0))
    assert jf((2.0, np.array(3))) == 6.0
    with pytest.raises(TypeError, match=r"dtype bool .*astype\(float\).*args\[1\]"):
        jg(3.0, np.array(True))  # a 0-d bool array: as a bool array, refused with the fix
    assert jg(3, 2.0) == 6.0  # an int is a number


def test_static_zeros_of_either_sign_are_different_arguments():
    f = fm.jit(lambda x, c: fm.atan2(c, x), static_argnums=1)
    assert (f(-1.0, 0.0), f(-1.0, -0.0)) == (math.pi, -math.pi)
    g = fm.jit(lambda x, cfg: fm.atan2(cfg[0], x), static_argnums=1)
    assert (g(-1.0, (0.0, "a")), g(-1.0, (-0.0, "a")), g(-1.0, (0.0, "a"))) == \
        (math.pi, -math.pi, math.pi)


def test_an_older_deferred_passed_back_or_elsewhere_is_its_pytree():
    xs = np.linspace(0.0, 2.0, 201)

    def step(p, xs):
        g = fm.grad(lambda w: fm.mean(fm.vmap(lambda x: (w[0] * x - w[1]) ** 2)(xs)))(p)
        return tuple(a - 0.1 * d for a, d in zip(p, g))

    f = fm.jit(lambda p, xs: (step(p, xs), p[0] * 2.0))
    p1, _ = f.deferred((1.0, 0.0), xs)
    p2, _ = f.deferred(p1, xs)
    p3, _ = f.deferred(p2, xs)
    assert type(p2).__name__ == type(p3).__name__ == "Deferred"
    assert f(p2, xs)[0] == pytest.approx(step(p2.get(), xs), rel=1e-13, abs=0)
    assert fm.jit(lambda p: p[0] + p[1])(p3) == sum(p3.get())
    with pytest.raises(TypeError, match=r"\.get\(\)"):
        fm.grad(lambda p: p[0])(p3)


def test_vmap_of_a_custom_vjp_whose_fwd_calls_the_function():
    @fm.custom_vjp
    def h(x):
        return x * 3.0

    h.defvjp(lambda x: (h(x), None), lambda r, g: (5.0 * g,))  # JAX's usual form
    xs = np.array([2.0, 1.0])
    assert fm.vmap(h)(xs) == (6.0, 3.0)
    assert fm.vmap(fm.grad(h))(xs) == (5.0, 5.0)
    loss = lambda w: fm.sum(fm.vmap(lambda x: h(w * x))(xs))
    assert fm.grad(loss)(1.0) == fm.jit(fm.grad(loss))(1.0) == 15.0


@pytest.mark.parametrize("transform", [
    lambda f: fm.grad(f), lambda f: fm.jit(fm.grad(f)), lambda f: fm.grad(fm.jit(f)),
    lambda f: (lambda x: fm.jvp(f, (x,), (1.0,))[1]),
    lambda f: (lambda x: fm.vmap(fm.grad(f))((x, x))[0]),
])
def test_no_derivative_reaches_below_stop_gradient(transform):
    # torch's detach and JAX's stop_gradient cut the graph: sqrt's infinite slope at 0
    # never meets the zero, so the derivative is 1, not 0 * inf = nan
    torch = pytest.importorskip("torch")
    x = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    (x.sqrt().detach() + x).backward()
    f = lambda x: fm.stop_gradient(fm.sqrt(x)) + x  # noqa: E731
    assert transform(f)(0.0) == x.grad.item() == 1.0
    assert fm.hessian(lambda x: fm.stop_gradient(fm.log(x)) * x * x)(0.0) == -math.inf
