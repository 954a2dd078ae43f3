"""Round 35's gradcheck probe: ``check_grads`` re-estimated a failing
difference with steps that straddled a kink 1e-8 away (their estimates
``x / h`` agreed with each other) and passed a rule that gave 0.0 for 1.0,
which JAX's check_grads and torch's gradcheck reject; and it raised on
correct functions at tiny inputs (no step below ~6e-14)."""

from __future__ import annotations

import pytest

import fmicrograd as fm
from fmicrograd.testing import check_grads


def _dead_zone_abs():
    a = fm.custom_vjp(lambda x: abs(x))
    a.defvjp(lambda x: (abs(x), x),
             lambda x, g: (fm.where(fm.less(abs(x), 1e-6), 0.0, fm.sign(x)) * g,))
    return a


def _split_maximum():
    m = fm.custom_vjp(lambda x, y: fm.maximum(x, y))
    m.defvjp(lambda x, y: (fm.maximum(x, y), (x, y)),
             lambda r, g: (fm.where(fm.less(abs(r[0] - r[1]), 1e-6), 0.5,
                                    fm.where(fm.greater(r[0], r[1]), 1.0, 0.0)) * g,
                           fm.where(fm.less(abs(r[0] - r[1]), 1e-6), 0.5,
                                    fm.where(fm.greater(r[0], r[1]), 0.0, 1.0)) * g))
    return m


@pytest.mark.parametrize("x", [1e-8, 1e-9, 3e-8])
@pytest.mark.parametrize("order", [1, 2])
def test_a_wrong_rule_next_to_a_kink_fails(x, order):
    a = _dead_zone_abs()
    with pytest.raises(AssertionError, match="expected 1.0, got 0.0"):
        check_grads(lambda t: 1.0 + a(t), (x,), order=order)  # (round 34: passed at 1e-8)


@pytest.mark.parametrize("modes", [("fwd", "rev"), ("rev",)])
def test_a_rule_splitting_a_near_tie_fails(modes):
    with pytest.raises(AssertionError):
        check_grads(_split_maximum(), (1.0, 1.0 + 1e-8), modes=modes)


@pytest.mark.parametrize("f, x", [
    (lambda t: 1.0 + abs(t), (1e-8,)),
    (lambda t: 1.0 + fm.relu(t), (3e-8,)),
    (fm.maximum, (1.0, 1.0 + 1e-8)),
    (fm.log, (1e-13,)),
    (lambda a, b: fm.log(a) * b, (1e-8, 1e8)),
], ids=["abs", "relu", "maximum", "log", "log times y"])
def test_correct_functions_near_a_kink_or_tiny_pass(f, x):
    check_grads(f, x)  # (round 34: false alarms)


def test_no_finite_difference_is_said_so():
    with pytest.raises(AssertionError, match="no step of the central differences gave a "
                                             "finite estimate"):
        check_grads(fm.sqrt, (1e-300,))


# review 2: on a large constant the rounding noise of the one-sided gap was taken for a kink


def test_on_a_large_constant_a_wrong_rule_fails_and_the_function_passes():
    @fm.custom_vjp
    def g(y):
        return 3e8 + 1.3 * y

    g.defvjp(lambda y: (g(y), None), lambda _, ct: (0.0 * ct,))
    for seed in range(5):
        with pytest.raises(AssertionError):
            check_grads(g, (0.5,), modes=("rev",), seed=seed)
    for c in (3e8, 1e9):
        check_grads(lambda y, c=c: c + 1.3 * y, (0.5,))
    check_grads(lambda x, y: (3e8 + fm.exp(x) * y, 1e-8 * fm.cos(x)), (0.3, 0.5), order=2)
