"""Round 36's depth-and-size probe: jit's prebuilt-graph check past its node
limit (0.0 with no error in round 35's code), a checkpoint closing over a
differentiated value under jit, pytrees nested 500 deep through jit, and
jit(grad) of a long fm.dot (a value rebuilt alike by a long computation: in
test_aliasing_round35.py)."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm


@pytest.mark.parametrize("steps", [100, 2600])
def test_a_prebuilt_output_of_any_size_is_an_error_under_jit(steps):
    # round 35: from 10,000 nodes on, jit(grad) gave 0.0 (eager grad raised)
    a = fm.Var(1.5)
    b = a * 2.0
    c = b
    for _ in range(steps):
        c = c * 0.999 + 0.001
    with pytest.raises(ValueError, match="built before the call"):
        fm.grad(lambda b: c)(b)
    with pytest.raises(ValueError, match="built before the call"):
        fm.jit(fm.grad(lambda b: c))(b)


def test_a_jitted_constant_function_of_a_computed_node_stays_zero():
    a = fm.Var(1.5)
    c = fm.Var(2.0) * 3.0  # not built from a
    assert fm.jit(fm.grad(lambda b: c))(a * 2.0) == 0.0


@pytest.mark.parametrize("how", ["jit(grad)", "grad(jit)", "vmap(grad)"])
def test_a_checkpoint_closing_over_the_differentiated_value_runs_as_its_function(how):
    # round 35: jit(grad) raised ClosesOver where eager grad gives 2.0
    f = lambda x, a: fm.checkpoint(lambda h: h * a)(x)  # noqa: E731
    g = fm.grad(f, argnums=1)
    if how == "jit(grad)":
        assert fm.jit(g)(2.0, 3.0) == 2.0
    elif how == "grad(jit)":
        assert fm.grad(fm.jit(f), argnums=1)(2.0, 3.0) == 2.0
    else:
        assert fm.vmap(g, in_axes=(0, None))((2.0, 5.0), 3.0) == (2.0, 5.0)


def test_a_checkpoint_differentiated_through_its_argument_and_closure_is_still_refused():
    f = lambda x, a: fm.checkpoint(lambda h: h * a)(x)  # noqa: E731
    with pytest.raises(TypeError, match="closes over a value"):
        fm.jit(fm.grad(f, argnums=(0, 1)))(2.0, 3.0)


def _nest(depth, kind):
    t = 0.5
    for _ in range(depth):
        t = [t, 0.1] if kind == "list" else ((0.1, t) if kind == "tuple" else {"z": t, "a": 0.1})
    return t


@pytest.mark.parametrize("kind", ["list", "tuple", "dict"])
def test_jit_takes_a_pytree_nested_500_deep_on_every_call(kind):
    # round 35: IndexError on the first call, a bare RecursionError on the second
    f = fm.jit(lambda t: fm.sum(fm.tree.leaves(t)))
    t = _nest(500, kind)
    assert f(t) == pytest.approx(50.5, rel=1e-12)
    assert f(_nest(500, kind)) == pytest.approx(50.5, rel=1e-12)


def test_jit_grad_of_a_long_dot_of_two_arguments():
    # round 35: the first call grew as N**2 (9.3 s at 20,000); the numbers are checked here
    rng = np.random.default_rng(0)
    w, x = tuple(rng.normal(size=3000).tolist()), tuple(rng.normal(size=3000).tolist())
    gw, gx = fm.jit(fm.grad(lambda w, x: fm.dot(w, x), argnums=(0, 1)))(w, x)
    assert gw == pytest.approx(x, rel=1e-15) and gx == pytest.approx(w, rel=1e-15)
