"""fm.testing.check_op: a user's op or rule against torch float64, no global table."""

import pytest
import torch
from hypothesis import given, settings

import fmicrograd as fm
from fmicrograd.testing import OPS, OpCase, check_op, programs


def _gelu_with(rule_scale):
    @fm.custom_jvp
    def gelu(x):
        return 0.5 * x * (1.0 + fm.erf(x / 2.0 ** 0.5))

    @gelu.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        cdf = 0.5 * (1.0 + fm.erf(x / 2.0 ** 0.5))
        pdf = fm.exp(-0.5 * x * x) / (2.0 * 3.141592653589793) ** 0.5
        return gelu(x), t * (cdf + rule_scale * x * pdf)

    return gelu


def test_a_correct_rule_passes_to_third_order():
    check_op(_gelu_with(1.0), torch.nn.functional.gelu, domain=(-5.0, 5.0), order=3,
             max_examples=25)


def test_a_wrong_rule_fails_naming_the_derivative():
    with pytest.raises(AssertionError, match=r"d/dx0 is .* in fmicrograd but .* in torch"):
        check_op(_gelu_with(0.9), torch.nn.functional.gelu, order=1, max_examples=25)


def test_a_rule_wrong_only_at_second_order_fails_at_order_2_only():
    @fm.custom_vjp
    def sq(x):
        return x * x

    # the residual's derivative is dropped: right at first order, wrong at second
    sq.defvjp(lambda x: (x * x, x), lambda x, g: (2.0 * fm.stop_gradient(x) * g,))
    check_op(sq, torch.square, order=1, max_examples=10)
    with pytest.raises(AssertionError, match="d/dx0 d/dx0"):
        check_op(sq, torch.square, order=2, max_examples=10)


def test_several_arguments_and_per_argument_domains():
    check_op(lambda x, lo, hi: fm.clip(x, lo, hi), torch.clamp, arity=3,
             domain=[(-4.0, 4.0), (-2.0, -0.5), (0.5, 2.0)], max_examples=25)
    with pytest.raises(ValueError, match="arity 2"):
        check_op(fm.hypot, torch.hypot, arity=2, domain=[(-1.0, 1.0)] * 3)


CUBE = {"cube": OpCase("cube", lambda x: x * x * x, lambda t, x: x ** 3, ((-2.0, 2.0),))}


@settings(max_examples=25, deadline=None)
@given(programs(ops=CUBE, max_inputs=2))
def test_strategies_accept_a_users_ops(prog):
    assert {op for op, _ in prog.steps} <= {"cube", "sum"}
    xs = (0.3,) * prog.n_inputs
    want = prog(*[torch.tensor(x, dtype=torch.float64) for x in xs]).item()
    assert prog(*xs) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert "cube" not in OPS  # nothing global changed


def _sin_with(bwd):
    @fm.custom_vjp
    def s(x):
        return fm.sin(x)

    s.defvjp(lambda x: (fm.sin(x), x), bwd)
    return s


@pytest.mark.parametrize("bwd, shown", [
    (lambda x, g: (fm.cos(x),), "fm.vjp at a cotangent of -1.5"),  # forgets g
    (lambda x, g: (g * g * fm.cos(x),), "fm.vjp at a cotangent of -1.5"),  # not linear in g
])
def test_a_rule_right_only_at_a_cotangent_of_one_is_caught(bwd, shown):
    # check_op passed these (it called fm.grad and fm.jacrev only, so bwd saw g = 1.0),
    # while fm.grad(lambda x: 3.0 * s(x)) was wrong (a helper's mutation test, round 46);
    # one AssertionError, not hypothesis's group of "distinct failures"
    s = _sin_with(bwd)
    with pytest.raises(AssertionError, match=shown):
        check_op(s, torch.sin, order=1, max_examples=5)


def test_a_right_rule_passes_the_chain_rule_checks():
    check_op(_sin_with(lambda x, g: (g * fm.cos(x),)), torch.sin, max_examples=10)


def test_a_two_argument_rule_forgetting_g_for_one_argument_is_one_assertion_error():
    # hypothesis reported it as an ExceptionGroup of distinct failures, which
    # pytest.raises(AssertionError) and `except AssertionError` miss (the round's review)
    @fm.custom_vjp
    def m(x, y):
        return x * y

    m.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1], r[0]))
    with pytest.raises(AssertionError, match=r"fm.vjp at a cotangent of -1.5 .* for d/dx1"):
        check_op(m, lambda x, y: x * y, arity=2, max_examples=20)


@pytest.mark.parametrize("fm_fn, torch_fn, domain", [
    (fm.hypot, torch.hypot, (-4.0, 4.0)),  # subnormal corners: torch rounds as fm does
    (lambda x: x * fm.log(x), lambda x: x * torch.log(x), (0.0, 2.0)),  # jvp inf in both
    (lambda y: fm.sign(fm.sqrt(y)), lambda y: torch.sign(torch.sqrt(y)), (0.0, 4.0)),
])
def test_correct_functions_pass_the_mode_checks_at_their_edges(fm_fn, torch_fn, domain):
    # compared with fm's own gradient, the modes failed these at 0 and subnormals, where
    # torch's vjp and jvp give the same numbers as fm's (the round's review)
    arity = 2 if fm_fn is fm.hypot else 1
    check_op(fm_fn, torch_fn, arity=arity, domain=domain, order=1, max_examples=60)


def test_a_tangent_dot_that_overflows_is_no_error():
    # math.fsum of finite products whose sum overflows raised OverflowError (the review)
    check_op(lambda x, y: x * y, lambda x, y: x * y, arity=2, domain=(1e307, 1e308), order=1,
             max_examples=10)
