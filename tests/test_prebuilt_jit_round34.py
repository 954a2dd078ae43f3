"""micrograd's prebuilt graph (``c = a * a`` then a transform of ``lambda a: c``)
through ``fm.jit``: the ``ValueError`` every other transform raises, never 0.0."""

import pytest

import fmicrograd as fm

PREBUILT = "built before the call from the node passed"


@pytest.mark.parametrize("inner", [
    fm.grad, fm.value_and_grad, fm.hessian, fm.jacfwd, fm.jacrev,
    lambda f: fm.grad(fm.grad(f)),
], ids=["grad", "value_and_grad", "hessian", "jacfwd", "jacrev", "grad(grad)"])
def test_jit_of_a_transform_of_a_prebuilt_output_is_the_error(inner):
    a = fm.Var(2.0)
    c = a * a
    with pytest.raises(ValueError, match=PREBUILT):
        inner(lambda a: c)(a)  # (as without jit)
    with pytest.raises(ValueError, match=PREBUILT):
        fm.jit(inner(lambda a: c))(a)


def test_a_float_call_first_compiles_the_constant_and_a_later_var_call_is_the_error():
    a = fm.Var(2.0)
    c = a * a
    f = fm.jit(fm.grad(lambda a: c))
    assert f(3.0) == 0.0 == f(3.0)  # a float: c is a closed-over constant, as in JAX
    with pytest.raises(ValueError, match=PREBUILT):
        f(a)  # the compiled program of the float call: still the error
    with pytest.raises(ValueError, match=PREBUILT):
        f(a)
    assert f(4.0) == 0.0


def test_another_var_or_an_output_that_uses_the_argument_is_not_the_error():
    a, b = fm.Var(2.0), fm.Var(5.0)
    c = a * a
    f = fm.jit(fm.grad(lambda x: c))
    out = f(b)  # c holds a, not b: a constant for this call
    assert isinstance(out, fm.Expr) and out.value == 0.0
    g = fm.jit(fm.grad(lambda x, y: c + x * y))
    assert g(a, 3.0).value == 3.0  # uses its parameter: d/dx = y
    h = fm.jit(fm.grad(lambda x, y: c * y, argnums=1))
    assert h(a, 3.0).value == 4.0  # the derivative in y of c * y is c, built from a


def test_the_second_position_is_checked_where_the_var_is_passed():
    a = fm.Var(2.0)
    c = a * 3.0
    f = fm.jit(fm.grad(lambda x, y: c, argnums=1))
    assert f(a, 1.0) == 0.0  # a at position 0, not differentiated; c is a constant
    with pytest.raises(ValueError, match=PREBUILT):
        f(1.0, a)


def test_a_computed_node_passed_at_the_top_level_is_the_error_as_for_grad_alone():
    a = fm.Var(2.0)
    b = a * 2.0
    c = b * b
    with pytest.raises(ValueError, match=PREBUILT):
        fm.grad(lambda b: c)(b)
    f = fm.jit(fm.grad(lambda b: c))
    with pytest.raises(ValueError, match=PREBUILT):
        f(b)
    assert f(1.0) == 0.0
    with pytest.raises(ValueError, match=PREBUILT):
        f(b)  # (the float call's program)
    assert f(a * 3.0).value == 0.0  # another node: c is a constant for it


def test_under_vmap_a_prebuilt_output_of_the_users_var_is_the_error():
    # (the micrograd probe's: the check was off at any vmap depth, 0.0 per example)
    a, b = fm.Var(2.0, name="a"), fm.Var(-3.0, name="b")
    c = a * b
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(lambda t: fm.grad(lambda y: c)(a) * t)((1.0, 2.0))  # a not mapped
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(fm.grad(lambda x: c))((a, a))  # a stacked into each example
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(fm.grad(lambda x, y: c * y), in_axes=(None, 0))(a, (1.0, 2.0))
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(lambda t: fm.jvp(lambda y: c, (a,), (1.0,))[1] * t)((1.0, 2.0))


def test_under_vmap_closing_over_a_per_example_value_is_a_constant_as_in_a_loop():
    def one(x):
        return fm.grad(lambda y: x * x)(x)

    assert fm.vmap(one)((1.0, 2.0)) == (one(1.0), one(2.0)) == (0.0, 0.0)
    c = fm.Var(2.0) * fm.Var(-3.0)
    out = fm.vmap(fm.grad(lambda x: c))((fm.Var(1.0), fm.Var(2.0)))  # other Vars: c constant
    assert out == (0.0, 0.0)
    w = fm.Var(3.0)
    got = fm.vmap(fm.grad(lambda x: x * w * x))((fm.Var(1.0), fm.Var(2.0)))
    assert [v.value for v in got] == [6.0, 12.0]
