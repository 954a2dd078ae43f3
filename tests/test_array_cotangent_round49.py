"""An array of several entries standing for the cotangent or tangent of one
number, outside ``vmap``: summed as if it held one per example (round 30's and
round 36's known items, a wrong number without an error). Refused now, as JAX
refuses it; under ``vmap`` such arrays stay one value per example."""

import numpy as np
import pytest

import fmicrograd as fm


def test_vjp_fn_refuses_an_array_for_a_number_output():
    _, back = fm.vjp(lambda x: x * x, 3.0)
    with pytest.raises(TypeError, match=r"cotangent at .* shape \(2,\) for an output that is "
                                        "one number"):
        back(np.array([1.0, 2.0]))  # gave (18.0,): 6 + 12
    _, back2 = fm.vjp(lambda x: (x, x * 2.0), 3.0)
    with pytest.raises(TypeError, match=r"cotangent at \[1\]"):
        back2((1.0, np.array([1.0, 2.0])))
    assert back(np.array(2.0)) == (12.0,)  # one number in a 0-d array: fine
    assert fm.vmap(back)(np.array([1.0, 2.0])) == ((6.0,), (12.0,))  # the fix it names


def test_custom_vjp_bwd_returning_an_array_for_a_number_argument():
    @fm.custom_vjp
    def f(x):
        return x * x

    f.defvjp(lambda x: (x * x, x), lambda r, g: (np.array([g * r, g * r]),))
    for transform in (fm.grad, lambda h: fm.jit(fm.grad(h))):
        with pytest.raises(TypeError, match=r"bwd returned a numpy array of shape \(2,\)"):
            transform(f)(3.0)  # eager gave 6.0, jit a float() error


def test_custom_vjp_bwd_per_example_array_under_vmap_is_still_taken():
    @fm.custom_vjp
    def f(x, w):
        return x * w

    f.defvjp(lambda x, w: (x * w, (x, w)), lambda r, g: (g * r[1], g * r[0]))
    xs = [1.0, 2.0, 3.0]
    got = fm.grad(lambda w: fm.sum(fm.vmap(f, in_axes=(0, None))(xs, w)))(0.5)
    assert got == sum(xs)


def test_custom_jvp_rule_with_array_data_gives_a_number_output_an_array_tangent():
    @fm.custom_jvp
    def f(x, d):
        return x * 2.0

    @f.defjvp
    def _(primals, tangents):
        (x, d), (tx, _) = primals, tangents
        return x * 2.0, tx * d  # an array tangent for a number

    d = np.array([1.0, 3.0])
    calls = (lambda: fm.grad(lambda x: f(x, d))(3.0),  # gave 4.0 (1 + 3, summed)
             lambda: fm.jvp(lambda x: f(x, d), (3.0,), (1.0,)),  # gave the array
             lambda: fm.jit(fm.grad(lambda x: f(x, d)))(3.0))  # 4.0 too
    for call in calls:
        with pytest.raises(TypeError, match="is an array of shape .2,. for an output that is "
                                            "one number"):
            call()


def test_custom_jvp_rule_with_array_data_reduced_in_the_rule_is_fine():
    @fm.custom_jvp
    def f(x, d):
        return x * float(np.sum(d))

    @f.defjvp
    def _(primals, tangents):
        (x, d), (tx, _) = primals, tangents
        return f(x, d), tx * float(np.sum(d))

    d = np.array([1.0, 3.0])
    assert fm.grad(lambda x: f(x, d))(3.0) == 4.0
    assert fm.jvp(lambda x: f(x, d), (3.0,), (1.0,)) == (12.0, 4.0)


A = np.array([1.0, 2.0, 3.0])


def test_an_output_holding_a_data_array_takes_an_array_cotangent():
    # (the first version of the refusal took these for number outputs: a review's find)
    assert fm.vjp(lambda w: w * A, 2.0)[1](A) == (14.0,)
    assert list(fm.jacrev(fm.checkpoint(lambda w: w * A))(2.0)) == [1.0, 2.0, 3.0]

    @fm.custom_jvp
    def scaled(w):
        return w * A

    @scaled.defjvp
    def _(primals, tangents):
        return scaled(primals[0]), tangents[0] * A

    assert list(fm.jacrev(scaled)(2.0)) == [1.0, 2.0, 3.0]

    @fm.custom_vjp
    def square_scaled(x):
        return x * x * A[:2]

    square_scaled.defvjp(lambda x: (square_scaled(x), x), lambda x, g: (2.0 * x * A[:2] * g,))
    assert list(fm.jacrev(square_scaled)(0.5)) == [1.0, 2.0]
