"""Forward mode through a ``custom_jvp`` pushes the tangents through the
rule's linear map: it now checks the rule is one, as reverse mode does, and
that its tangents are numbers.

Until round 31 forward mode returned the derivative of the rule's tangent map:
``t * t`` gave 18.0 where the rule says 9.0 (JAX: 9.0), ``t + 1.0`` 3.0, a
constant 1.5 gave 0.0, and a str tangent gave 0.0."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm


def _with_rule(tangent):
    f = fm.custom_jvp(lambda x: x * x)
    f.defjvp(lambda p, t: (f(p[0]), tangent(p[0], t[0])))
    return f


PATHS = {
    "jvp": lambda f: fm.jvp(f, (2.0,), (3.0,))[1],
    "linearize": lambda f: fm.linearize(f, 2.0)[1](3.0),
    "jacfwd": lambda f: fm.jacfwd(f)(2.0),
    "jit(jvp)": lambda f: fm.jit(lambda x: fm.jvp(f, (x,), (3.0,))[1])(2.0),
    "vmap(jvp)": lambda f: fm.vmap(lambda x: fm.jvp(f, (x,), (3.0,))[1])(np.array([1.0, 2.0])),
    "grad": lambda f: fm.grad(f)(2.0),
}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS)
@pytest.mark.parametrize("tangent", [
    lambda x, t: t * t, lambda x, t: t + 1.0, lambda x, t: 1.5, lambda x, t: x,
], ids=["t * t", "t + 1", "constant", "primal only"])
def test_a_rule_not_linear_in_its_tangents_is_an_error(path, tangent):
    with pytest.raises(TypeError, match="not linear in the tangents"):
        path(_with_rule(tangent))


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS)
def test_a_tangent_that_is_not_a_number_is_an_error(path):
    with pytest.raises(TypeError, match="tangent_out whose leaf 0 is str 'oops'"):
        path(_with_rule(lambda x, t: "oops"))


@pytest.mark.parametrize("tangent, slope", [
    (lambda x, t: 2.0 * x * t, 4.0), (lambda x, t: t / (0.5 / x), 4.0),
    (lambda x, t: 0.0, 0.0), (lambda x, t: 0.0 * t, 0.0),
], ids=["2 x t", "divided", "zero", "0 * t"])
def test_linear_rules_still_run(tangent, slope):
    f = _with_rule(tangent)
    assert fm.jvp(f, (2.0,), (3.0,))[1] == 3.0 * slope
    assert fm.jacfwd(f)(2.0) == fm.grad(f)(2.0) == slope


@pytest.mark.parametrize("x, y, t, rel", [
    (0.9656508621357078, 0.9656505284441772, 2.0441606237302827, 1e-8),
    (1e-308, 1.2e-308, 1.0, 1e-12),
], ids=["cancellation", "slopes near the largest float"])
def test_a_linear_rule_is_not_refused(x, y, t, rel):
    # (reviews' catches: a first version compared the rule at the tangents given with the
    # pushed result, one ulp apart in t / x, relative to a cancelled difference; a second
    # compared at -2 s only, where these terms overflow)
    @fm.custom_jvp
    def logratio(x, y):
        return fm.log(x) - fm.log(y)

    @logratio.defjvp
    def _(p, t):
        (x, y), (tx, ty) = p, t
        return logratio(x, y), tx / x - ty / y

    assert fm.jvp(logratio, (x, y), (t, t))[1] == pytest.approx(t / x - t / y, rel=rel)


def test_jit_checks_the_rule_whatever_the_traced_tangent():
    # (a review's catch: traced at t = 0, where t * t and its linearisation agree, a later
    # call at t = 3 gave 18.0)
    f = _with_rule(lambda x, t: t * t)
    g = fm.jit(lambda x, t: fm.jvp(f, (x,), (t,))[1])
    with pytest.raises(TypeError, match="not linear in the tangents"):
        g(2.0, 0.0)
