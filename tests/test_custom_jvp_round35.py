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
