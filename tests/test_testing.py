"""fm.testing: check_grads passes on right rules and fails on wrong ones; the DAG
strategies draw what they promise; assert_trees_close."""

import math

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.testing import OPS, assert_trees_close, check_grads
from fmicrograd.testing.strategies import SMOOTH_OPS, Program, dags, op_args, programs

# check_grads


@pytest.mark.parametrize("order", [1, 2, 3])
def test_check_grads_passes_on_correct_functions(order):
    check_grads(lambda x, y: fm.exp(x) * fm.sin(y) / (1.0 + x * x), (0.7, -1.3), order=order)
    check_grads(lambda p: {"a": p[0] * p[1], "b": (fm.tanh(p[0]), p[1] ** 3)}, ([0.4, 2.0],),
                order=order)
    check_grads(fm.log, (2.0,), order=order, modes=("fwd",))
    check_grads(fm.sqrt, (2.0,), order=order, modes=("rev",))


def _square_with(bwd):
    @fm.custom_vjp
    def square(x):
        return x * x

    square.defvjp(lambda x: (x * x, x), bwd)
    return square


def test_check_grads_passes_on_a_correct_custom_rule():
    check_grads(_square_with(lambda x, g: (2.0 * x * g,)), (1.5,), order=3)


@pytest.mark.parametrize("mode, name", [("rev", "reverse mode (vjp)"),
                                        ("fwd", "forward mode (jvp)")])
def test_check_grads_fails_on_a_wrong_custom_rule(mode, name):
    wrong = _square_with(lambda x, g: (3.0 * x * g,))  # 3x instead of 2x
    with pytest.raises(AssertionError) as info:
        check_grads(wrong, (1.5,), modes=(mode,))
    msg = str(info.value)
    assert f"{name} of square disagrees" in msg and "order 1" in msg
    assert "args[0]" in msg  # which input direction
    if mode == "fwd":  # d output / d input: expected 2x = 3, got 3x = 4.5
        assert "expected 3.0" in msg and "got 4.5" in msg


def test_check_grads_fails_at_second_order_only():
    # right first derivative, but bwd detaches x: the second derivative comes out 0, not 2
    half_right = _square_with(lambda x, g: (2.0 * fm.stop_gradient(x) * g,))
    check_grads(half_right, (1.5,), order=1)
    with pytest.raises(AssertionError, match=r"of (jvp|vjp)\(square\) disagrees .* order 2"):
        check_grads(half_right, (1.5,), order=2)


def test_check_grads_reports_the_worst_input_and_output():
    # only output [1] along input args[0][1] is wrong
    @fm.custom_vjp
    def f(p):
        return (p[0] * p[1], p[1] * p[1])

    f.defvjp(lambda p: (f(p), p),
             lambda p, ct: ((ct[0] * p[1], ct[0] * p[0] + ct[1] * 5.0 * p[1]),))
    with pytest.raises(AssertionError, match=r"d output \[1\] along input args\[0\]\[1\]"):
        check_grads(f, ((2.0, 3.0),), modes=("fwd",))


def test_check_grads_rejects_bad_calls():
    with pytest.raises(TypeError, match="tuple of arguments"):
        check_grads(fm.exp, 1.0)
    with pytest.raises(ValueError, match="order"):
        check_grads(fm.exp, (1.0,), order=0)
    with pytest.raises(ValueError, match="modes"):
        check_grads(fm.exp, (1.0,), modes=("sideways",))
    with pytest.raises(TypeError, match=r"non-float output at \[1\]"):
        check_grads(lambda x: (x, "label"), (1.0,))


# strategies


def test_every_op_can_be_drawn():
    for op in OPS:
        prog = find(programs(), lambda p, op=op: any(s[0] == op for s in p.steps))
        assert any(s[0] == op for s in prog.steps)


def test_shared_subexpressions_are_drawn():
    def shares(p):
        uses = [r for _, refs in p.steps for r in refs if r >= p.n_inputs]
        return len(uses) > len(set(uses))
    assert shares(find(programs(), shares))


@settings(max_examples=60, deadline=None)
@given(dags(max_inputs=3, max_steps=8))
def test_one_dag_runs_on_floats_exprs_and_torch_alike(dag):
    fn, n, xs = dag
    value = fn(*xs)
    # every op stayed in its domain (no NaN); a drawn chain may still overflow to
    # inf (sinh(sinh(4.0 ** 2.7)))
    assert isinstance(value, float) and not math.isnan(value)
    assert fm.trace(fn)(*xs).value == value
    t = fn(*[torch.tensor(x, dtype=torch.float64) for x in xs])
    assert isinstance(t, torch.Tensor) and t.item() == pytest.approx(value, rel=1e-12, abs=1e-12)


@settings(max_examples=20, deadline=None)
@given(dags(max_inputs=2, max_steps=4, n_outputs=3))
def test_several_outputs(dag):
    out = dag.fn(*dag.inputs)
    assert isinstance(out, tuple) and len(out) == 3


@settings(max_examples=25, deadline=None)
@given(dags(max_inputs=3, max_steps=6, ops=SMOOTH_OPS))
def test_check_grads_on_random_smooth_dags(dag):
    check_grads(dag.fn, dag.inputs, order=2)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(sorted(OPS)).flatmap(lambda op: st.tuples(st.just(op), op_args(op))))
def test_op_args_lie_in_the_domain(op_and_args):
    op, args = op_and_args
    assert all(lo <= a <= hi for a, (lo, hi) in zip(args, OPS[op].domain))


def test_strategies_are_exported_lazily():
    assert fm.testing.dags is dags and fm.testing.SMOOTH_OPS == SMOOTH_OPS
    with pytest.raises(AttributeError, match="no attribute"):
        fm.testing.nothing_here  # noqa: B018


def test_program_repr_and_arity():
    p = Program(2, (("*", (0, 1)), ("log", (2,))), (3,))
    assert repr(p) == ("Program(n_inputs=2): v2 = v0 * v1; "
                       "v3 = log(into(v2, 0.05, 20.0)); out = v3")
    with pytest.raises(TypeError, match="2 inputs"):
        p(1.0)
    with pytest.raises(ValueError, match="unknown ops"):
        find(programs(ops=("nope",)), lambda p: True)


# assert_trees_close


def test_assert_trees_close():
    assert_trees_close({"a": [1.0, math.nan]}, {"a": [1.0 + 1e-14, math.nan]})
    assert_trees_close(fm.grad(lambda p: p["w"] * 2.0)({"w": 1.0}), {"w": 2.0})
    with pytest.raises(AssertionError, match=r"at \['a'\]\[1\]: got 2\.0, expected 3\.0"):
        assert_trees_close({"a": [1.0, 2.0]}, {"a": [1.0, 3.0]})
    with pytest.raises(ValueError, match="structures differ"):
        assert_trees_close((1.0, 2.0), (1.0,))


def test_a_custom_rule_whose_forward_pass_changes_the_value_is_caught():
    # fwd returned sin(x) + 1: value_and_grad and jvp gave 1.389 where the function gives
    # 0.389, and check_grads and check_op passed it (an outside probe); JAX's check_jvp and
    # check_vjp compare the primal outputs
    import torch

    from fmicrograd.testing import check_grads, check_op

    @fm.custom_vjp
    def shifted(x):
        return fm.sin(x)

    shifted.defvjp(lambda x: (fm.sin(x) + 1.0, x), lambda x, g: (g * fm.cos(x),))
    for modes in (("fwd",), ("rev",)):
        with pytest.raises(AssertionError, match="computes the value 1.389.* where the "
                                                 "function gives 0.389"):
            check_grads(shifted, (0.4,), order=2, modes=modes)
    with pytest.raises(AssertionError, match="custom rule's forward pass must return"):
        check_op(shifted, torch.sin)

    @fm.custom_vjp
    def right(x):
        return fm.sin(x)

    right.defvjp(lambda x: (fm.sin(x), x), lambda x, g: (g * fm.cos(x),))
    check_grads(right, (0.4,), order=2)


def test_an_infinity_matches_only_the_same_infinity():
    # the tolerance rtol * inf is inf, and inf / inf is NaN, which is not > 1: both passed
    for got, want in (((1.0,), (math.inf,)), ((-math.inf,), (math.inf,)), ((math.inf,), (1.0,))):
        with pytest.raises(AssertionError, match=r"trees differ at \[0\]"):
            assert_trees_close(got, want)
    assert_trees_close((math.inf, -math.inf), (math.inf, -math.inf))


def test_check_grads_refuses_to_check_nothing():
    with pytest.raises(TypeError, match="returned no number"):  # it passed: nothing compared
        check_grads(lambda x: None, (1.0,))
    with pytest.raises(ValueError, match=r"is nan at output <root>.*finite"):  # NaN vs NaN
        check_grads(lambda x: fm.log(x), (-1.0,))
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        check_grads(lambda x: x, (1.0,), eps=0)  # (a ZeroDivisionError)
    with pytest.raises(ValueError, match="atol must be a finite number >= 0"):
        check_grads(lambda x: x, (1.0,), atol=-1.0)
    check_grads(lambda x: fm.log(x), (2.0,))
