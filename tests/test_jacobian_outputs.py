"""jacrev / jacobian / hessian of array-valued outputs: one row per entry, never a sum.

A node holding a numpy array (``w * arr`` outside ``vmap``) is an array-valued
output. ``jacfwd`` always gave its Jacobian as an array of the output's shape;
``jacrev``, ``jacobian`` and ``hessian`` used to seed the whole array with 1.0
and so returned the sum of its entries. They must give what ``jacfwd`` and JAX
give, plain, under ``fm.jit``, of ``fm.jit(f)``; inside ``fm.vmap`` an array
per example is the same clear ``TypeError`` from every Jacobian transform.
"""

import math

import numpy as np
import pytest
import torch  # (a test dependency: the independent reference, as JAX's jacrev would be)

import fmicrograd as fm

X = np.array([1.0, 2.0, 3.0])
M = np.arange(6.0).reshape(2, 3)
W = 0.7
_T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731

# name -> (fm function of a float, its derivative by hand, the same function in torch)
CASES = {
    "w*X": (lambda w: w * X, lambda w: X, lambda w: w * _T(X)),
    "w*w*X": (lambda w: w * w * X, lambda w: 2 * w * X, lambda w: w * w * _T(X)),
    "sin(w*X)": (lambda w: fm.sin(w * X), lambda w: np.cos(w * X) * X,
                 lambda w: torch.sin(w * _T(X))),
    "exp(w*M)+w": (lambda w: fm.exp(w * M) + w, lambda w: np.exp(w * M) * M + 1.0,
                   lambda w: torch.exp(w * _T(M)) + w),
}

JACS = {"jacrev": fm.jacrev, "jacobian": fm.jacobian, "jacfwd": fm.jacfwd}

# every way of composing a Jacobian transform with jit
COMPOSE = {
    "plain": lambda jac, f: jac(f),
    "jit(jac(f))": lambda jac, f: fm.jit(jac(f)),
    "jac(jit(f))": lambda jac, f: jac(fm.jit(f)),
    "jit(jac(jit(f)))": lambda jac, f: fm.jit(jac(fm.jit(f))),
}


def _close(got, want):
    assert isinstance(got, np.ndarray), f"expected an array, got {type(got).__name__} {got!r}"
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("how", COMPOSE)
@pytest.mark.parametrize("jac", JACS)
@pytest.mark.parametrize("case", CASES)
def test_jacobian_of_array_output_is_one_row_per_entry(case, jac, how):
    f, df, _ = CASES[case]
    got = COMPOSE[how](JACS[jac], f)(W)
    _close(got, df(W))
    _close(got, fm.jacfwd(f)(W))


@pytest.mark.parametrize("case", CASES)
def test_the_reported_sums_are_gone(case):
    f, df, _ = CASES[case]
    for jac in (fm.jacrev, fm.jacobian):
        got = jac(f)(2.0)
        assert np.ndim(got) > 0  # was float(np.sum(df(2.0)))
        _close(got, df(2.0))


@pytest.mark.parametrize("case", CASES)
def test_agrees_with_torch(case):
    f, _, ft = CASES[case]
    want = torch.autograd.functional.jacobian(ft, _T(W)).numpy()
    for jac in JACS.values():
        _close(jac(f)(W), want)
    want_h = torch.autograd.functional.jacobian(
        lambda w: torch.autograd.functional.jacobian(ft, w, create_graph=True), _T(W)).numpy()
    _close(fm.hessian(f)(W), want_h)
    _close(fm.jit(fm.hessian(f))(W), want_h)


def _d2(w):  # d^2/dw^2 of sin(w * w * X), by hand
    u = w * w * X
    return -np.sin(u) * (2 * w * X) ** 2 + np.cos(u) * 2 * X


@pytest.mark.parametrize("how", COMPOSE)
def test_hessian_of_array_output(how):
    hess = COMPOSE[how](fm.hessian, lambda w: w * w * X)
    _close(hess(2.0), 2 * X)  # was 12.0
    f = lambda w: fm.sin(w * w * X)
    got = COMPOSE[how](fm.hessian, f)(W)
    _close(got, _d2(W))
    for outer in (fm.jacfwd, fm.jacrev):
        for inner in (fm.jacfwd, fm.jacrev):
            _close(outer(inner(f))(W), _d2(W))


def test_several_inputs_and_outputs_match_jacfwd_and_hand():
    f = lambda a, b: (a * X + b * b, a * b, fm.sin(b * M))
    want = ((X, np.full(3, 2 * 3.0)), (3.0, 2.0), (np.zeros((2, 3)), np.cos(3.0 * M) * M))
    for jac in JACS.values():
        got = jac(f, argnums=(0, 1))(2.0, 3.0)
        assert isinstance(got, tuple) and len(got) == 3
        _close(got[0][0], want[0][0])
        _close(got[0][1], want[0][1])
        assert got[1] == want[1]
        _close(got[2][0], want[2][0])  # zeros of the output's shape where b is not used
        _close(got[2][1], want[2][1])


def test_pytree_input_and_has_aux():
    f = lambda p: ({"y": p["a"] * X, "s": p["a"] * p["b"]}, "aux")
    for jac in JACS.values():
        jacobian, aux = jac(f, has_aux=True)({"a": 2.0, "b": 5.0})
        assert aux == "aux"
        _close(jacobian["y"]["a"], X)
        _close(jacobian["y"]["b"], np.zeros(3))
        assert jacobian["s"] == {"a": 5.0, "b": 2.0}


@pytest.mark.parametrize("outer", [fm.jacfwd, fm.jacrev])
@pytest.mark.parametrize("inner", [fm.jacfwd, fm.jacrev])
def test_inner_jacobian_of_an_array_node_is_not_summed_either(outer, inner):
    # the inner transform's input holds an array (w * X): its Jacobian is
    # diagonal, cos(w X), not the sum of the columns; d/dw of it is -sin(w X) X.
    got = outer(lambda w: inner(fm.sin)(w * X))(W)
    _close(got, np.diag(-np.sin(W * X) * X))


# Under vmap a node's array holds one value per example (see sharp-bits.md):
# that reading stays, and is the same for every Jacobian transform and grad.

def test_under_vmap_an_array_meeting_a_per_example_value_is_per_example():
    xs = np.array([1.0, 2.0, 4.0])
    f = lambda w: w * w * X
    want = tuple(2 * xs * X)
    for jac in (fm.grad, fm.jacrev, fm.jacobian, fm.jacfwd):
        assert fm.vmap(jac(f))(xs) == pytest.approx(want, rel=1e-14)
        assert fm.jit(fm.vmap(jac(f)))(xs) == pytest.approx(want, rel=1e-14)
        assert fm.vmap(jac(fm.jit(f)))(xs) == pytest.approx(want, rel=1e-14)
    assert fm.vmap(fm.hessian(f))(xs) == pytest.approx(tuple(2 * X), rel=1e-14)
    assert fm.jit(fm.vmap(fm.hessian(f)))(xs) == pytest.approx(tuple(2 * X), rel=1e-14)


@pytest.mark.parametrize("jac", [fm.jacrev, fm.jacfwd])
def test_jacobian_of_vmap_with_an_array_is_block_diagonal(jac):
    got = jac(fm.vmap(lambda w: fm.sin(w * X)))((1.0, 2.0, 3.0))
    want = np.diag(np.cos(np.array([1.0, 2.0, 3.0]) * X) * X)
    np.testing.assert_allclose(np.array(got), want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("who", ["jacrev", "jacobian", "jacfwd", "hessian"])
def test_an_array_per_example_under_vmap_is_a_type_error(who):
    transform = getattr(fm, who)
    # an unmapped w times M: shape (2, 3) at vmap depth 1, one (3,) array per example
    per_example_array = lambda x: transform(lambda w: w * M)(2.0)
    label = "jacrev" if who == "jacobian" else who  # fm.jacobian is fm.jacrev
    with pytest.raises(TypeError, match=rf"^{label}: under fm.vmap the function must return "
                                        r"scalars per example") as err:
        fm.vmap(per_example_array)((1.0, 2.0))
    message = str(err.value)
    assert "array of shape (2, 3)" in message
    assert "tuple(x * a for a in arr.tolist())" in message
    assert "outside fm.vmap" in message


def test_grad_still_refuses_an_array_output():
    with pytest.raises(TypeError, match="must return a scalar"):
        fm.grad(lambda w: w * X)(2.0)


def test_hessian_errors_are_labelled_hessian():
    with pytest.raises(TypeError, match=r"^hessian: the function's output has a leaf"):
        fm.hessian(lambda x: "not a number")(1.0)
    with pytest.raises(ValueError, match=r"^hessian: argnums 3 is out of range"):
        fm.hessian(lambda x: x * x, argnums=3)(1.0)
    with pytest.raises(TypeError, match=r"^hessian: argument 0 has a leaf"):
        fm.hessian(lambda x: x * x)("a")


def test_array_leaf_that_is_not_a_node_is_still_a_type_error():
    for jac in (fm.jacrev, fm.jacfwd):
        with pytest.raises(TypeError, match="every output leaf must be a float or an fm.Expr"):
            jac(lambda w: (w, X))(2.0)


def test_nan_entries_follow_jax():
    # reverse mode's one-hot seeds meet the NaN as 0 * nan, as in jax.jacrev
    # ([nan, nan]); forward mode's tangent is 1.0 * X, as in jax.jacfwd ([1, nan])
    f = lambda w: w * np.array([1.0, math.nan])
    for jac in (fm.jacrev, fm.jacobian):
        got = jac(f)(2.0)
        assert got.shape == (2,) and np.isnan(got).all()
    got = fm.jacfwd(f)(2.0)
    assert got.shape == (2,) and got[0] == 1.0 and math.isnan(got[1])
