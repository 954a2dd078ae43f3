"""Round 35's gradcheck probe: a ``custom_jvp`` rule with ``stop_gradient``
on a tangent gave a derivative of 0.0 in every mode (fm differentiates
tangent_out in the tangents), where JAX's ``jvp`` reads the rule's value
(cos 0.7) and its ``grad`` raises."""

from __future__ import annotations

import pytest

import fmicrograd as fm


def _sin(stop_tangent: bool):
    r = fm.custom_jvp(lambda x: fm.sin(x))
    cut = fm.stop_gradient if stop_tangent else (lambda t: t)
    r.defjvp(lambda p, t: (fm.sin(p[0]), fm.cos(p[0]) * cut(t[0])))
    return r


CALLS = {
    "jvp": lambda r: fm.jvp(r, (0.7,), (1.0,))[1],
    "linearize": lambda r: fm.linearize(r, 0.7)[1](1.0),
    "jacfwd": lambda r: fm.jacfwd(r)(0.7),
    "grad": lambda r: fm.grad(r)(0.7),
    "jit(grad)": lambda r: fm.jit(fm.grad(r))(0.7),
    "vmap(grad)": lambda r: fm.vmap(fm.grad(r))([0.7, 0.7])[0],
    "jacrev": lambda r: fm.jacrev(r)(0.7),
}


@pytest.mark.parametrize("how", sorted(CALLS))
def test_a_stopped_tangent_is_an_error(how):
    with pytest.raises(TypeError, match="stop_gradient .* on a tangent"):
        CALLS[how](_sin(True))  # (round 34: 0.0)


@pytest.mark.parametrize("how", sorted(CALLS))
def test_a_rule_on_the_tangents_itself_is_taken(how):
    assert CALLS[how](_sin(False)) == pytest.approx(0.7648421872844885, rel=1e-15)


def test_a_stopped_coefficient_is_fine():
    r = fm.custom_jvp(lambda x: x * x)
    r.defjvp(lambda p, t: (p[0] * p[0], fm.stop_gradient(2.0 * p[0]) * t[0]))
    assert fm.grad(r)(3.0) == 6.0 and fm.jvp(r, (3.0,), (1.0,))[1] == 6.0
    assert fm.hessian(r)(3.0) == 0.0  # (the coefficient's derivative stopped, as asked)


# review 2: the first version's tolerance scaled with the totals, which cancel


def test_a_softmax_rule_whose_tangents_cancel_is_taken():
    import numpy as np

    @fm.custom_jvp
    def softmax(x):
        e = [fm.exp(v) for v in x]
        s = fm.sum(e)
        return tuple(v / s for v in e)

    @softmax.defjvp
    def _(p, t):
        s = softmax(p[0])
        dot = fm.sum(tuple(a * b for a, b in zip(s, t[0])))
        return s, tuple(a * (b - dot) for a, b in zip(s, t[0]))

    x = (0.1, -0.4, 0.3, 1.2)
    jac = fm.jacrev(softmax)(x)
    e = np.exp(np.array(x))
    s = e / e.sum()
    want = np.diag(s) - np.outer(s, s)
    assert np.allclose(np.array(jac), want, rtol=1e-12, atol=1e-15)


def test_a_product_rule_under_vmap_on_centred_data_is_taken():
    import numpy as np

    mul = fm.custom_jvp(lambda x, y: x * y)
    mul.defjvp(lambda p, t: (p[0] * p[1], p[1] * t[0] + p[0] * t[1]))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=50), rng.normal(size=50)
    X, Y = X - X.mean(), Y - Y.mean()
    pairs = fm.vmap(fm.grad(mul, argnums=(0, 1)))(X, Y)  # (review 2: refused, 19 seeds of 20)
    assert [p[0] for p in pairs] == Y.tolist() and [p[1] for p in pairs] == X.tolist()


def test_large_and_subnormal_coefficients_are_taken():
    f = fm.custom_jvp(lambda x, y: (1e17 * x + y, y - 1e17 * x))
    f.defjvp(lambda p, t: (f(*p), (1e17 * t[0] + t[1], t[1] - 1e17 * t[0])))
    assert fm.jacrev(f, argnums=(0, 1))(0.3, 0.4) == ((1e17, 1.0), (-1e17, 1.0))
    g = fm.custom_jvp(lambda x, y, z: fm.exp(x + y + z))
    g.defjvp(lambda p, t: (g(*p), fm.exp(p[0] + p[1] + p[2]) * (t[0] + t[1] + t[2])))
    assert fm.grad(g, argnums=(0, 1, 2))(-743.0, 0.0, 0.0) == (fm.exp(-743.0),) * 3
