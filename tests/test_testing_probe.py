"""fm.testing verdicts at hard but ordinary points: check_grads passes correct
functions whose fixed-step central differences are off (small or large
inputs, a kink or a large constant nearby) and still fails wrong rules there;
check_op matches equal infinities."""

import math

import numpy as np
import pytest
import torch

import fmicrograd as fm
from fmicrograd.testing import check_grads, check_op


def _scaled_rule(fn, factor):
    """``fn`` with a custom_jvp rule ``factor`` times its true derivative."""
    @fm.custom_jvp
    def g(*xs):
        return fn(*xs)

    @g.defjvp
    def _(primals, tangents):
        _, tan = fm.jvp(fn, primals, tangents)
        return g(*primals), factor * tan

    return g


HARD = [  # (name, f, args): central differences at eps = 1e-5 are off by more than 1e-6
    ("log at 1e-3", fm.log, (1e-3,)),
    ("log at 1e-5", fm.log, (1e-5,)),
    ("log at 1e-8", fm.log, (1e-8,)),  # x - eps / 2 < 0: NaN
    ("sqrt at 1e-5", fm.sqrt, (1e-5,)),
    ("1 / x at 1e-3", lambda x: 1.0 / x, (1e-3,)),
    ("x * x at 1e6", lambda x: x * x, (1e6,)),  # x +- eps / 2 rounds
    ("sin at 1e6", fm.sin, (1e6,)),
    ("sin(1000 x)", lambda x: fm.sin(1000.0 * x), (0.3,)),
    ("abs 3e-6 from its kink", lambda x: abs(x) + x * x, (3e-6,)),
    ("relu 1e-6 from its kink", fm.relu, (1e-6,)),
    ("clip 1e-6 from a bound", lambda x: fm.clip(x, -1.0, 1.0), (1.0 - 1e-6,)),
    ("x + 1e8", lambda x: x + 1e8, (1.0,)),  # rounding of f's values
    ("atan2 near the origin", fm.atan2, (1e-3, 1e-3)),
    ("mixed scales", lambda p: fm.log(p["a"]) * p["b"], ({"a": 1e-4, "b": 1e4},)),
]


@pytest.mark.parametrize("name, f, args", HARD, ids=[h[0] for h in HARD])
def test_correct_functions_pass_at_hard_points(name, f, args):
    check_grads(f, args, order=2)


@pytest.mark.parametrize("name, f, args", HARD, ids=[h[0] for h in HARD])
@pytest.mark.parametrize("factor", [1.001, -1.0])
def test_wrong_rules_still_fail_at_hard_points(name, f, args, factor):
    with pytest.raises(AssertionError, match="disagrees with central differences"):
        check_grads(_scaled_rule(f, factor), args)


def test_a_wrong_second_derivative_still_fails_at_a_hard_point():
    @fm.custom_vjp
    def inv(x):
        return 1.0 / x

    # right first derivative; the detached x makes the second -1/x**3 instead of 2/x**3
    inv.defvjp(lambda x: (1.0 / x, x), lambda x, g: (-g / (fm.stop_gradient(x) * x),))
    check_grads(inv, (1e-3,))
    with pytest.raises(AssertionError, match="order 2"):
        check_grads(inv, (1e-3,), order=2)


def test_a_step_that_raises_on_floats_is_left_out():
    # a re-estimating step lands on x = 0.0 exactly: 1.0 / 0.0 raises on plain floats
    check_grads(lambda x: 1.0 / x, (0.25 + 1e-9,), order=2)
    check_grads(lambda x: 1.0 / x, (1e-3,), order=3)


def test_the_message_shows_the_careful_estimate():
    with pytest.raises(AssertionError, match=r"expected 2000000\.0, got 200(1999\.9|2000\.0)"):
        check_grads(_scaled_rule(lambda x: x * x, 1.001), (1e6,), modes=("fwd",))


# check_op


def test_check_op_matches_equal_infinities():
    # sqrt'(0) and log(0) are inf / -inf in fmicrograd and torch alike
    check_op(fm.sqrt, torch.sqrt, domain=(0.0, 4.0), order=2, max_examples=20)
    check_op(fm.log, torch.log, domain=(0.0, 4.0), order=1, max_examples=20)
    with pytest.raises(AssertionError, match=r"value is -inf in fmicrograd but 0\.0 in torch"):
        check_op(fm.log, lambda x: 0.0 * x, domain=(0.0, 1.0), order=0, max_examples=20)


def test_check_op_accepts_numpy_bounds_and_shows_plain_floats():
    check_op(fm.sin, torch.sin, domain=np.array([-1.0, 1.0]), max_examples=10)
    check_op(fm.sin, torch.sin, domain=(np.float32(-1.0), np.float32(1.0)), max_examples=10)
    with pytest.raises(AssertionError) as info:
        check_op(lambda x: 1.01 * fm.sin(x), torch.sin, order=0, max_examples=10)
    assert "np.float64" not in str(info.value)
    assert math.isfinite(float(str(info.value).split(" is ")[1].split()[0]))
