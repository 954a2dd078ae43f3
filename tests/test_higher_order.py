"""Derivatives of derivatives at any depth, every mix of modes, stop_gradient everywhere."""

import math

import pytest

import fmicrograd as fm


def _nth(f, n):
    for _ in range(n):
        f = fm.grad(f)
    return f


@pytest.mark.parametrize("n", range(9))
def test_nth_derivative_of_a_power(n):
    # d^n/dx^n x**8 = 8!/(8-n)! x**(8-n)
    want = math.factorial(8) // math.factorial(8 - n) * 1.5 ** (8 - n)
    assert _nth(lambda x: x ** 8, n)(1.5) == pytest.approx(want, rel=1e-13)
    assert _nth(lambda x: x * x * x * x * x * x * x * x, n)(1.5) == pytest.approx(want, rel=1e-13)


def test_derivatives_past_a_polynomial_degree_are_zero():
    assert _nth(lambda x: x * x * x, 4)(2.0) == 0.0
    assert _nth(lambda x: x * x * x, 7)(2.0) == 0.0


@pytest.mark.parametrize("n", range(8))
def test_nth_derivative_of_sin_cycles(n):
    assert _nth(fm.sin, n)(0.7) == pytest.approx(math.sin(0.7 + n * math.pi / 2), rel=1e-13)


@pytest.mark.parametrize("n", range(6))
def test_nth_derivative_of_exp_and_log(n):
    assert _nth(fm.exp, n)(0.3) == pytest.approx(math.exp(0.3), rel=1e-14)
    # d^n/dx^n log x = (-1)^(n-1) (n-1)! / x^n for n >= 1
    want = math.log(2.0) if n == 0 else (-1) ** (n - 1) * math.factorial(n - 1) / 2.0 ** n
    assert _nth(fm.log, n)(2.0) == pytest.approx(want, rel=1e-14)


def test_tanh_derivatives_closed_form():
    t = math.tanh(0.4)
    assert _nth(fm.tanh, 2)(0.4) == pytest.approx(-2 * t * (1 - t * t), rel=1e-14)
    assert _nth(fm.tanh, 3)(0.4) == pytest.approx(-2 * (1 - t * t) * (1 - 3 * t * t), rel=1e-13)


def test_mixed_partials_with_argnums():
    f = lambda x, y: x * x * y * y * y  # f_xy = 6 x y^2, f_yy = 6 x^2 y
    assert fm.grad(fm.grad(f, argnums=0), argnums=1)(2.0, 3.0) == 108.0
    assert fm.grad(fm.grad(f, argnums=1), argnums=0)(2.0, 3.0) == 108.0
    assert fm.grad(fm.grad(f, argnums=1), argnums=1)(2.0, 3.0) == 72.0
    assert fm.grad(fm.grad(f, argnums=1), argnums=(0, 1))(2.0, 3.0) == (108.0, 72.0)


def test_grad_of_grad_over_pytrees():
    f = lambda p: p["w"][0] ** 2 * p["w"][1] + fm.sin(p["b"])
    outer = fm.grad(lambda p: fm.grad(f)(p)["w"][0])({"w": [1.0, 3.0], "b": 0.5})
    assert outer == {"w": [6.0, 2.0], "b": 0.0}


def _cube_sum(x):
    return x[0] ** 3 + x[0] * x[1] ** 2


def _hess_cube_sum(x):
    return ((6 * x[0], 2 * x[1]), (2 * x[1], 2 * x[0]))


X = (1.5, -2.0)
V = (0.5, 2.0)


def _hvp_exact(x, v):
    h = _hess_cube_sum(x)
    return tuple(sum(h[i][j] * v[j] for j in range(2)) for i in range(2))


def test_jvp_of_grad_is_a_hessian_vector_product():
    _, hv = fm.jvp(fm.grad(_cube_sum), (X,), (V,))
    assert hv == _hvp_exact(X, V)


def test_grad_of_jvp_is_a_hessian_vector_product():
    # d/dx <grad f(x), v> computed as grad of the directional derivative
    hv = fm.grad(lambda x: fm.jvp(_cube_sum, (x,), (V,))[1])(X)
    assert hv == _hvp_exact(X, V)


def test_vjp_inside_grad_and_grad_of_vjp():
    hv = fm.grad(lambda x: fm.vjp(_cube_sum, x)[1](1.0)[0][0])(X)
    assert hv == _hess_cube_sum(X)[0]
    # vjp of grad: v^T H
    _, back = fm.vjp(fm.grad(_cube_sum), X)
    assert back(V) == (_hvp_exact(X, V),)


def test_jvp_of_jvp_and_jvp_of_vjp():
    # second directional derivative v^T H v
    vhv = sum(a * b for a, b in zip(V, _hvp_exact(X, V)))
    inner = lambda x: fm.jvp(_cube_sum, (x,), (V,))[1]
    assert fm.jvp(inner, (X,), (V,))[1] == vhv
    back_in = lambda x: fm.vjp(_cube_sum, x)[1](1.0)[0]
    assert fm.jvp(back_in, (X,), (V,))[1] == _hvp_exact(X, V)


def test_vjp_cotangent_from_an_outer_transform():
    # the cotangent itself depends on the outer variable: d/dc (c * f'(2)) = f'(2)
    _, back = fm.vjp(lambda x: x ** 3, 2.0)
    assert fm.grad(lambda c: back(c * c)[0])(3.0) == 2 * 3.0 * 12.0


def test_hessian_agrees_with_every_composition():
    want = _hess_cube_sum(X)
    assert fm.hessian(_cube_sum)(X) == want
    assert fm.jacfwd(fm.grad(_cube_sum))(X) == want
    assert fm.jacrev(fm.grad(_cube_sum))(X) == want
    assert fm.jacfwd(fm.jacrev(_cube_sum))(X) == want
    assert fm.jacrev(fm.jacfwd(_cube_sum))(X) == want
    assert fm.jacfwd(fm.jacfwd(_cube_sum))(X) == want


def test_third_derivative_tensor():
    t = fm.jacrev(fm.hessian(_cube_sum))(X)
    # d/dx0 of the Hessian: ((6, 0), (0, 2)); d/dx1: ((0, 2), (2, 0))
    assert t == (((6.0, 0.0), (0.0, 2.0)), ((0.0, 2.0), (2.0, 0.0)))
    assert fm.jacfwd(fm.hessian(_cube_sum))(X) == t


def test_value_and_grad_and_has_aux_nested():
    def f(x):
        g, aux = fm.grad(lambda y: (y ** 3, y * 2.0), has_aux=True)(x)
        return g + aux  # 3x^2 + 2x: the aux is differentiable by the outer grad
    assert fm.grad(f)(2.0) == 14.0
    (v, g) = fm.value_and_grad(fm.grad(lambda x: x ** 4))(2.0)
    assert (v, g) == (32.0, 48.0)


# stop_gradient in every mode: the value passes, the derivative is zero


def _sg(x):
    return x * fm.stop_gradient(x) + fm.stop_gradient(x * x) * x


def test_stop_gradient_first_order_every_mode():
    # value x^2 + x^3; derivative: stop(x) + stop(x^2) = x + x^2
    assert _sg(3.0) == 36.0
    assert fm.grad(_sg)(3.0) == 12.0
    assert fm.value_and_grad(_sg)(3.0) == (36.0, 12.0)
    assert fm.jvp(_sg, (3.0,), (2.0,)) == (36.0, 24.0)
    out, back = fm.vjp(_sg, 3.0)
    assert (out, back(1.0)) == (36.0, (12.0,))
    assert fm.jacfwd(_sg)(3.0) == 12.0
    assert fm.jacrev(_sg)(3.0) == 12.0


def test_stop_gradient_higher_order_every_mode():
    # grad is stop(x) + stop(x^2): a constant for any outer derivative
    assert fm.grad(fm.grad(_sg))(3.0) == 0.0
    assert fm.hessian(_sg)(3.0) == 0.0
    assert fm.jvp(fm.grad(_sg), (3.0,), (1.0,)) == (12.0, 0.0)
    assert fm.grad(lambda x: fm.jvp(_sg, (x,), (1.0,))[1])(3.0) == 0.0
    assert fm.jacfwd(fm.jacrev(_sg))(3.0) == 0.0


def test_stop_gradient_of_an_outer_variable_inside_an_inner_transform():
    # the inner grad sees x only through stop_gradient: d/dy (stop(x) * y) = stop(x)
    f = lambda x: fm.grad(lambda y: fm.stop_gradient(x) * y)(1.0) * x
    assert f(3.0) == 9.0
    assert fm.grad(f)(3.0) == 3.0  # only the last factor x is differentiated
    # stop_gradient on the inner variable blocks the inner derivative only
    g = lambda x: fm.grad(lambda y: fm.stop_gradient(y) * y * x)(2.0)  # = 2 x
    assert fm.grad(g)(5.0) == 2.0


def test_stop_gradient_on_a_pytree():
    p = {"a": fm.Var(1.0), "b": (fm.Var(2.0), 3.0)}
    s = fm.stop_gradient(p)
    assert s["a"].op == "stop_gradient" and s["b"][1] == 3.0
    assert fm.grad(lambda q: fm.sum(fm.tree.leaves(fm.stop_gradient(q))) * q["a"])(
        {"a": 2.0, "b": 1.0}) == {"a": 3.0, "b": 0.0}
