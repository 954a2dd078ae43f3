"""A node compared with a numpy number answers numpy's bool, as the float
does; bitwise operators and int format specs on a node name the fix (round
45's outside probes)."""

import numpy as np
import pytest

import fmicrograd as fm

THR = np.mean([0.0, 1.0, 2.0])  # a numpy threshold against a plain float argument


@pytest.mark.parametrize("f", [
    lambda x: x * ((x > THR) + (x > 0.0)),       # np.True_ + True is True: a count of 1
    lambda x: x * 2.0 if ~(x > THR) else x * 3.0,  # ~np.True_ is False
    lambda x: x * ((THR < x) + (0.0 < x)),
])
def test_a_comparison_with_a_numpy_number_is_numpys_bool(f):
    # (x > thr) was a Python bool under a transform: 3.0 for eager's 1.5, a slope of 2.0
    # for 1.0, and ~ took the other branch
    eager = f(1.5)
    assert fm.jit(f)(1.5) == eager and fm.jit(f)(0.5) == f(0.5)
    slope = (f(1.5 + 1e-6) - f(1.5 - 1e-6)) / 2e-6
    assert fm.grad(f)(1.5) == pytest.approx(slope, rel=1e-6)
    assert fm.grad(fm.jit(f))(1.5) == fm.grad(f)(1.5)
    assert fm.vmap(f)((1.5, 2.5)) == (f(1.5), f(2.5))  # (examples that agree: one truth)


@pytest.mark.parametrize("f", [lambda x, n: x * ~n, lambda x, n: x * (n & 1),
                               lambda x, n: x * (n ^ 1), lambda x, n: x * (1 << n),
                               lambda x, n: x * len(f"{n:d}")])
def test_int_operations_on_a_traced_int_name_static_argnums(f):
    assert f(1.5, 3) == f(1.5, 3)  # (eager: Python's int arithmetic)
    with pytest.raises(TypeError, match="static_argnums"):
        fm.jit(f)(1.5, 3)
    assert fm.jit(f, static_argnums=1)(1.5, 3) == f(1.5, 3)
    with pytest.raises(TypeError, match="holds a float"):
        f(1.5, fm.Var(3.0))  # (a float has none of them either)


def test_numpys_bool_as_an_output_is_a_bool():
    # round 45's np.bool_ answers met two checks that took only Python's bool: vmap refused
    # x > np.float64(0) as an output (it gave (1.0, 1.0)), and jvp paired it with a
    # tangent of 0.0 where a bool output is refused (a re-review)
    assert fm.vmap(lambda x: x > np.float64(0))([1.0, 2.0]) == (1.0, 1.0)
    for out in (lambda x: x > np.float64(0), lambda x: 1j * 1.0, lambda x: np.array(["a"])):
        with pytest.raises(TypeError, match="every output leaf must be a number"):
            fm.jvp(out, (1.0,), (1.0,))
    assert fm.jvp(lambda x: np.float64(2.0) * x, (1.0,), (1.0,)) == (2.0, 2.0)
