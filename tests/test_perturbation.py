"""Perturbation confusion: the literature's nested-derivative cases, exact answers.

An inner derivative must differentiate only with respect to its own argument,
even when its function closes over the outer argument, over values computed
from it, or is evaluated at it. Every case runs with every pairing of
derivative operators (grad, jvp, vjp, jacfwd, jacrev outside and inside), so
reverse-over-forward, forward-over-reverse and the rest are all covered.
"""

import math

import pytest

import fmicrograd as fm

# d/dx f at x, each built on a different transform
DERIVATIVES = {
    "grad": lambda f: lambda x: fm.grad(f)(x),
    "jvp": lambda f: lambda x: fm.jvp(f, (x,), (1.0,))[1],
    "vjp": lambda f: lambda x: fm.vjp(f, x)[1](1.0)[0],
    "jacfwd": lambda f: lambda x: fm.jacfwd(f)(x),
    "jacrev": lambda f: lambda x: fm.jacrev(f)(x),
}
PAIRS = [(o, i) for o in DERIVATIVES for i in DERIVATIVES]


def _ops(pair):
    outer, inner = pair
    return DERIVATIVES[outer], DERIVATIVES[inner]


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_siskind_pearlmutter_2005(pair):
    """Siskind & Pearlmutter 2005, "Perturbation confusion and referential
    transparency": d/dx (x * d/dy (x + y)|_{y=1}) at x = 1 is 1 (confusion gives 2)."""
    D, Di = _ops(pair)
    assert D(lambda x: x * Di(lambda y: x + y)(1.0))(1.0) == 1.0


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_siskind_pearlmutter_2008(pair):
    """Siskind & Pearlmutter 2008, "Nesting forward-mode AD in a functional
    framework", p. 4: d/dx (x * d/dy (x * y)|_{y=2}) at x = 1 is 2."""
    D, Di = _ops(pair)
    assert D(lambda x: x * Di(lambda y: x * y)(2.0))(1.0) == 2.0


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_classic_nested_cases(pair):
    """The nested-derivative checks of the Siskind-Pearlmutter line of AD
    languages (DVL's test suite), with their exact answers."""
    D, Di = _ops(pair)

    def one(x):  # d/dy (x + y) at y = 3: always 1, whatever x is
        return Di(lambda y: x + y)(3.0)

    assert D(one)(7.0) == 0.0                             # nested constant function
    assert D(lambda x: x * one(x))(7.0) == 1.0            # don't conflate the perturbations
    assert D(lambda x: x * one(2.0 * x))(7.0) == 1.0      # ... through a computed value
    # d/dy [d/dx (x * (x * y)) at x = 3y] = d/dy (2 * 3y * y) = 12 y = 60 at y = 5
    assert D(lambda y: Di(lambda x: x * (x * y))(y * 3.0))(5.0) == 60.0


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_forwarddiff_issue_83(pair):
    """ForwardDiff.jl's perturbation-confusion tests (issue #83)."""
    D, Di = _ops(pair)
    assert D(lambda x: x * Di(lambda y: x + y)(1.0))(1.0) == 1.0
    assert D(lambda x: x * Di(lambda y: y * y)(1.0))(1.0) == 2.0


def _norm(v):
    return fm.sqrt(fm.sum([a * a for a in v]))


@pytest.mark.parametrize("inner", sorted(DERIVATIVES))
def test_gradient_of_closure_over_a_vector(inner):
    """ForwardDiff.jl: grad(v -> sum(v) * D(y -> y * norm(v))(1)) == grad(v -> sum(v) * norm(v))."""
    Di = DERIVATIVES[inner]
    v = (1.0, 2.0, 2.0)  # norm 3
    got = fm.grad(lambda v: fm.sum(v) * Di(lambda y: y * _norm(v))(1.0))(v)
    want = fm.grad(lambda v: fm.sum(v) * _norm(v))(v)
    assert got == pytest.approx(want, rel=1e-15)
    assert got == pytest.approx(tuple(3.0 + 5.0 * a / 3.0 for a in v), rel=1e-15)


@pytest.mark.parametrize("outer", ["jacfwd", "jacrev"])
def test_jacobian_of_gradient_closing_over_x(outer):
    """ForwardDiff.jl: jacobian(x -> gradient(y -> dot(y, A x))) == A."""
    A = ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    jac = getattr(fm, outer)

    def inner_gradient(x):
        ax = [fm.dot(row, x) for row in A]
        return fm.grad(lambda y: fm.dot(y, ax))((0.5, -1.0))

    assert jac(inner_gradient)((1.0, 1.0, 1.0)) == A


# Manzyuk, Pearlmutter, Radul, Rush & Siskind 2019, "Perturbation confusion in
# forward automatic differentiation of higher-order functions": derivatives of
# functions that return functions. Written eta-expanded, each derivative
# calculation (not each derivative operator) gets its own fresh variables.

def _shift(u):
    """s u f x = f (x + u): its derivative at u = 0 is the derivative operator."""
    return lambda f: lambda x: f(x + u)


@pytest.mark.parametrize("name", sorted(DERIVATIVES))
def test_manzyuk_shift_operator_twice_is_second_derivative(name):
    D = DERIVATIVES[name]
    d_s0 = lambda f: lambda x: D(lambda u: _shift(u)(f)(x))(0.0)  # (D s 0) f = f'
    assert d_s0(d_s0(fm.exp))(1.0) == pytest.approx(math.e, rel=1e-15)
    assert d_s0(d_s0(lambda x: x * x * x))(2.0) == 12.0
    assert d_s0(d_s0(d_s0(fm.sin)))(0.5) == pytest.approx(-math.cos(0.5), rel=1e-15)


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_manzyuk_derivative_that_is_a_derivative_operator(pair):
    """f x = lambda g. g x, so (D f x) g = g'(x): the derivative at x is itself a
    function that takes a derivative. Applied to g = lambda y. x * y (closing over
    the same x), h x = (D f x) g = x, so h'(x) = 1; confused tags give 2."""
    D, Di = _ops(pair)
    d_f = lambda x: lambda g: Di(lambda t: g(t))(x)
    h = lambda x: d_f(x)(lambda y: x * y)
    assert h(3.0) == 3.0
    assert D(h)(3.0) == 1.0


@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_closures_over_outer_variables(pair):
    """As JAX's nested-transform tests: an inner derivative closing over the outer
    variable, over a value computed from it, and evaluated at it."""
    D, Di = _ops(pair)
    # inner closes over x only as a constant: d/dy (x * y) = x; d/dx x**2 = 2x
    assert D(lambda x: x * Di(lambda y: x * y)(1.5))(3.0) == 6.0
    # closes over z = sin(x): d/dy (z * y**2) at y = 2 is 4 z; d/dx 4 sin x = 4 cos x
    assert D(lambda x: Di(lambda y: fm.sin(x) * y * y)(2.0))(0.3) == \
        pytest.approx(4.0 * math.cos(0.3), rel=1e-15)
    # evaluated at x: d/dy (x * y**2) at y = x is 2 x**2, derivative 4x
    assert D(lambda x: Di(lambda y: x * y * y)(x))(3.0) == 12.0
    # the inner function ignores the outer variable: its derivative is constant
    assert D(lambda x: Di(lambda y: y * y * y)(2.0))(5.0) == 0.0
    # jvp of a function whose inner jvp closes over x (autodidax): zero
    assert D(lambda x: Di(lambda y: x)(0.0))(0.0) == 0.0


def test_three_levels_each_with_its_own_variable():
    # d/dx d/dy d/dz (x * y * z) with every variable also closed over below
    f = lambda x: fm.grad(lambda y: fm.grad(lambda z: x * y * z + z * z)(x + y))(2.0 * x)
    # inner: d/dz = x*y + 2z at z = x + y -> x*y + 2x + 2y; d/dy -> x + 2; d/dx -> 1
    assert fm.grad(f)(4.0) == 1.0
    assert f(4.0) == 6.0
