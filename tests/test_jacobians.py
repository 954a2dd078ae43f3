"""jacrev, jacfwd, jacobian, hessian: layout, argnums, pytrees, nesting, torch agreement."""

import math

import pytest
import torch
from pyrsistent import PMap, PVector

import fmicrograd as fm

JACS = [fm.jacrev, fm.jacfwd]


def _f(x):  # R^3 -> R^2
    return (x[0] * x[1] + fm.sin(x[2]), fm.exp(x[0]) * x[2] ** 2)


def _f_torch(x):
    return torch.stack([x[0] * x[1] + torch.sin(x[2]), torch.exp(x[0]) * x[2] ** 2])


X3 = (0.5, -1.5, 2.0)


def test_jacobian_is_jacrev():
    assert fm.jacobian is fm.jacrev


@pytest.mark.parametrize("jac", JACS)
def test_flat_layout_is_m_tuples_of_n_floats(jac):
    J = jac(_f)(X3)
    assert isinstance(J, tuple) and len(J) == 2
    assert all(isinstance(row, tuple) and len(row) == 3 for row in J)
    assert all(type(v) is float for row in J for v in row)
    want = torch.autograd.functional.jacobian(_f_torch, torch.tensor(X3, dtype=torch.float64))
    for k in range(2):
        for j in range(3):
            assert J[k][j] == pytest.approx(want[k][j].item(), rel=1e-14)


@pytest.mark.parametrize("jac", JACS)
def test_scalar_output_gives_the_input_structure(jac):
    f = lambda p: p["a"] * p["b"][0] + p["b"][1]
    assert jac(f)({"a": 2.0, "b": [3.0, 4.0]}) == fm.grad(f)({"a": 2.0, "b": [3.0, 4.0]})
    assert jac(lambda x: x ** 3)(2.0) == 12.0


@pytest.mark.parametrize("jac", JACS)
def test_scalar_input_several_outputs(jac):
    assert jac(lambda x: (x, x * x, 5.0))(3.0) == (1.0, 6.0, 0.0)


@pytest.mark.parametrize("jac", JACS)
def test_pytrees_outputs_outside_inputs_inside_and_persistent(jac):
    f = lambda p: [p["a"] * p["b"], {"s": p["a"] + p["b"]}]
    J = jac(f)({"a": 2.0, "b": 3.0})
    assert isinstance(J, PVector) and isinstance(J[0], PMap) and isinstance(J[1]["s"], PMap)
    assert J == [{"a": 3.0, "b": 2.0}, {"s": {"a": 1.0, "b": 1.0}}]


@pytest.mark.parametrize("jac", JACS)
def test_argnums(jac):
    f = lambda x, y, z: (x * y * z, x + 2.0 * z)
    assert jac(f, argnums=1)(2.0, 3.0, 4.0) == (8.0, 0.0)
    assert jac(f, argnums=(0, 2))(2.0, 3.0, 4.0) == ((12.0, 6.0), (1.0, 2.0))
    assert jac(f, argnums=-1)(2.0, 3.0, 4.0) == (6.0, 2.0)
    with pytest.raises(ValueError, match="argnums"):
        jac(f, argnums=3)(2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="repeats"):
        jac(f, argnums=(0, 0))(2.0, 3.0, 4.0)


@pytest.mark.parametrize("jac", JACS)
def test_function_is_traced_once(jac):
    calls = []

    def f(x):
        calls.append(1)
        return tuple(x[i] * x[(i + 1) % 4] for i in range(4))

    jac(f)((1.0, 2.0, 3.0, 4.0))
    assert len(calls) == 1
    fm.hessian(lambda x: fm.sum(f(x)))((1.0, 2.0, 3.0, 4.0))
    assert len(calls) == 2


@pytest.mark.parametrize("jac", JACS)
def test_has_aux_and_kwargs(jac):
    f = lambda x, scale=1.0: ((x * scale, x * x), {"note": x * 10.0})
    J, aux = jac(f, has_aux=True)(3.0, scale=2.0)
    assert J == (2.0, 6.0) and aux == {"note": 30.0}
    with pytest.raises(TypeError, match="pair"):
        jac(lambda x: x, has_aux=True)(1.0)


@pytest.mark.parametrize("jac", JACS)
def test_non_numeric_output_leaf_is_a_type_error_naming_its_path(jac):
    with pytest.raises(TypeError, match=r"\[1\]\['name'\]"):
        jac(lambda x: (x, {"name": "oops"}))(1.0)
    with pytest.raises(TypeError, match=r"args|argument 0"):
        jac(lambda x: x)("not a number")


@pytest.mark.parametrize("jac", JACS)
def test_inputs_are_not_mutated(jac):
    p = {"w": [1.0, 2.0]}
    jac(lambda q: (q["w"][0] * q["w"][1],))(p)
    assert p == {"w": [1.0, 2.0]} and type(p["w"]) is list


@pytest.mark.parametrize("jac", JACS)
def test_jacobian_inside_grad(jac):
    # d/dx of J[0][1] of (x0 * x1 * c, ...) where c is the outer variable
    def g(c):
        J = jac(lambda x: (x[0] * x[1] * c * c, x[0] + c))((2.0, 3.0))
        return J[0][1] + J[1][0]  # = 2 c^2 + 1
    assert g(3.0) == 19.0
    assert fm.grad(g)(3.0) == 12.0
    assert fm.grad(fm.grad(g))(3.0) == 4.0


def test_jacfwd_and_jacrev_agree_on_a_wide_and_a_tall_function():
    wide = lambda x: fm.sum([fm.tanh(a * b) for a in x for b in x])
    tall = lambda s: tuple(fm.sin(s * k) for k in range(1, 6))
    x = (0.1, -0.4, 0.3, 0.9)
    assert fm.jacfwd(wide)(x) == pytest.approx(fm.jacrev(wide)(x), rel=1e-14)
    assert fm.jacfwd(tall)(0.7) == pytest.approx(fm.jacrev(tall)(0.7), rel=1e-14)
    assert fm.jacrev(tall)(0.7) == pytest.approx(tuple(k * math.cos(0.7 * k) for k in range(1, 6)),
                                                 rel=1e-14)


def _tanh_sum(x):
    return fm.sum([fm.tanh(a * b) for a in x for b in x])


def test_hessian_matches_torch():
    x = (0.3, -0.7, 1.1, 0.2, -0.5)
    H = fm.hessian(_tanh_sum)(x)
    t = torch.tensor(x, dtype=torch.float64)
    want = torch.autograd.functional.hessian(lambda v: torch.tanh(torch.outer(v, v)).sum(), t)
    assert isinstance(H, tuple) and all(isinstance(r, tuple) and len(r) == 5 for r in H)
    for i in range(5):
        for j in range(5):
            assert H[i][j] == pytest.approx(want[i][j].item(), rel=1e-13, abs=1e-15)
            assert H[i][j] == H[j][i] or H[i][j] == pytest.approx(H[j][i], rel=1e-14)


def test_hessian_argnums_gives_blocks_as_jax():
    f = lambda x, y: x[0] * x[0] * y + x[1] * y * y
    H = fm.hessian(f, argnums=(0, 1))((1.0, 2.0), 3.0)
    # outputs (the gradient's leaves x0, x1, y) outside, argnums (x, y) inside: the very
    # nesting jax.hessian gives for a tuple of scalars and a scalar
    assert H == ((((6.0, 0.0), 2.0), ((0.0, 0.0), 6.0)), ((2.0, 6.0), 4.0))
    assert fm.hessian(f, argnums=1)((1.0, 2.0), 3.0) == 4.0


def test_hessian_of_a_pytree_argument():
    f = lambda p: p["a"] ** 2 * p["b"] + fm.exp(p["b"])
    H = fm.hessian(f)({"a": 1.0, "b": 0.0})
    assert isinstance(H, PMap) and isinstance(H["a"], PMap)
    assert H == {"a": {"a": 0.0, "b": 2.0}, "b": {"a": 2.0, "b": 1.0}}


def test_hessian_with_aux():
    H, aux = fm.hessian(lambda x: (x ** 3, "label"), has_aux=True)(2.0)
    assert (H, aux) == (12.0, "label")


def test_grad_of_hessian_entry_is_a_third_derivative():
    # the Hessian entry is 12 y^2 x at y = x, i.e. 12 x^3, whose derivative is 36 x^2
    assert fm.grad(lambda x: fm.hessian(lambda y: y ** 4 * x)(x))(2.0) == 36.0 * 2.0 ** 2
