"""Transforms see through jit: grad/jvp/hessian of a jitted function trace it
once per structure, run compiled code, and give the jit-free numbers."""

import numpy as np
import pytest
from helpers import counted

import fmicrograd as fm


def f2(x, y):
    return fm.tanh(x * y) + x ** 3 / (1.0 + y * y)


def close(a, b, tol=1e-12):
    la, lb = fm.tree.leaves(a), fm.tree.leaves(b)
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        assert abs(u - v) <= tol * max(1.0, abs(v)), (u, v)


POINTS = [(0.3, -1.2), (1.5, 0.7), (-2.0, 0.1), (0.9, 2.5)]


@pytest.mark.parametrize("transform", [
    lambda f: fm.grad(f, argnums=(0, 1)),
    lambda f: fm.value_and_grad(f, argnums=1),
    lambda f: (lambda x, y: fm.jvp(f, (x, y), (0.5, -1.0))),
    lambda f: (lambda x, y: fm.hessian(lambda v: f(v[0], v[1]))((x, y))),
    lambda f: (lambda x, y: fm.jacfwd(lambda v: f(v[0], v[1]))((x, y))),
])
def test_transform_of_jit_traces_once_and_matches(transform):
    g, calls = counted(f2)
    compiled = transform(fm.jit(g))
    reference = transform(f2)
    close(compiled(*POINTS[0]), reference(*POINTS[0]))
    first = len(calls)
    for x, y in POINTS[1:]:
        close(compiled(x, y), reference(x, y))
    assert len(calls) == first  # no call traced f again
    assert first <= 4  # the forward program and the compiled VJPs, each traced once


def three_outputs(v):
    a, b = v
    return (fm.tanh(a) * b, fm.sin(a + b), a * a)


@pytest.mark.parametrize("outer", [False, True])
def test_hessian_of_jit_of_jvp_of_jit_runs_compiled(outer):
    # the hessian's sweeps call the compiled VJPs with constant nodes (their seeds):
    # those calls ran f as Python, each one sweeping it again (round 19: f ran 78
    # times on the first call and 72 on each later one; the fuzzer's 5-transform
    # stacks took 20 s where the stack without jit takes 0.03 s)
    g, calls = counted(three_outputs)

    def stack(wrap, f):
        inner = wrap(f)
        pushed = wrap(lambda v: fm.jvp(inner, (v,), ((0.3, 0.4),))) if outer else \
            (lambda v: fm.jvp(inner, (v,), ((0.3, 0.4),)))
        return fm.hessian(lambda v: fm.dot(pushed(v)[1], (1.0, 2.0, 3.0)))

    compiled, reference = stack(fm.jit, g), stack(lambda h: h, three_outputs)
    close(compiled((0.5, -0.7)), reference((0.5, -0.7)))
    first = len(calls)
    for point in [(0.6, -0.2), (-1.1, 0.4), (2.0, 1.5)]:
        close(compiled(point), reference(point))
    assert len(calls) == first  # every later call runs compiled code only
    # one trace per program: the function's, and at higher order the VJP of each of
    # its 3 outputs alone (round 21: the VJP of all three, 0.0-seeded, had NaN
    # derivatives where the function's own sweep has none), and of theirs in turn
    assert first <= 16


def test_grad_of_jit_follows_branches():
    g, calls = counted(lambda x: x * x if x > 0.0 else -3.0 * x)
    dg = fm.grad(fm.jit(g))
    assert [dg(2.0), dg(-2.0), dg(3.0), dg(-1.0)] == [4.0, -3.0, 6.0, -3.0]
    assert len(calls) <= 4  # one trace per branch and program, never one per call


def test_grad_of_jit_with_static_argument():
    g, calls = counted(lambda x, n: x ** n)
    dg = fm.grad(fm.jit(g, static_argnums=1))
    assert [dg(2.0, 3), dg(3.0, 3), dg(2.0, 2)] == [12.0, 27.0, 4.0]
    before = len(calls)
    assert dg(5.0, 2) == 10.0 and len(calls) == before


def test_jit_of_grad_of_jit():
    inner = fm.jit(f2)
    outer = fm.jit(fm.grad(inner, argnums=(0, 1)))
    for x, y in POINTS:
        close(outer(x, y), fm.grad(f2, argnums=(0, 1))(x, y))


def test_closure_over_an_outer_variable_still_differentiates():
    def outer(a):
        return fm.jit(lambda x: fm.sin(x * a))(2.0)

    assert abs(fm.grad(outer)(0.5) - 2.0 * np.cos(1.0)) < 1e-12


def test_vmap_of_jit_gives_the_loop_numbers():
    jf = fm.jit(f2)
    xs, ys = np.array([0.1, 0.2, 0.3]), np.array([1.0, -1.0, 2.0])
    out = fm.vmap(jf)(xs, ys)
    close([out[i] for i in range(3)], [f2(x, y) for x, y in zip(xs.tolist(), ys.tolist())])


def test_grad_of_jit_with_data_arrays_runs_one_compiled_node():
    g, calls = counted(lambda w, X: fm.sum([fm.tanh(w[0] * x[0] + w[1] * x[1]) for x in X]))
    X = np.array([[0.5, -1.0], [2.0, 0.3], [-0.7, 0.9]])
    dg = fm.grad(fm.jit(g))
    reference = fm.grad(lambda w: fm.sum([fm.tanh(w[0] * a + w[1] * b) for a, b in X.tolist()]))
    close(dg((0.3, -0.2), X), reference((0.3, -0.2)))
    first = len(calls)
    close(dg((1.3, 0.4), X), reference((1.3, 0.4)))
    X2 = X * 2.0  # new data, same structure: still compiled, and read again
    close(dg((1.3, 0.4), X2), fm.grad(
        lambda w: fm.sum([fm.tanh(w[0] * a + w[1] * b) for a, b in X2.tolist()]))((1.3, 0.4)))
    assert len(calls) == first
    second = fm.jacfwd(lambda w: dg(w, X))((0.3, -0.2))  # through the compiled VJP
    close(second, fm.hessian(lambda w: fm.sum([fm.tanh(w[0] * a + w[1] * b)
                                                for a, b in X.tolist()]))((0.3, -0.2)))


# f's own sweep never reaches the outputs a transform does not differentiate; the
# compiled VJP of a jitted call seeded them with 0.0, and 0.0 times an infinite or
# NaN partial on their path spread NaN into entries that are finite without jit
NAN_PATHS = [
    (lambda a, b: a * a + fm.sqrt(b), (1.0, -1.0)),          # sqrt' of a negative: nan
    (lambda a, b: a * a + b * b * 1e300 * 1e300, (1.0, 1.0)),  # an overflowing partial
    (lambda a, b: fm.exp(a) * 2.0 + fm.log(b), (0.5, 0.0)),   # log' at 0: inf
    (lambda a, b: a * a + fm.sqrt(b), (1.0, 4.0)),           # finite: the common path
]


@pytest.mark.parametrize("f, point", NAN_PATHS)
@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_second_derivatives_of_jit_keep_unrelated_entries_finite(f, point):
    both = (0, 1)
    want = fm.hessian(f, argnums=both)(*point)
    got = {
        "hessian(jit)": fm.hessian(fm.jit(f), argnums=both)(*point),
        "jacrev(jit(grad))": fm.jacrev(fm.jit(fm.grad(f, argnums=both)), argnums=both)(*point),
        "jacrev(grad(jit))": fm.jacrev(fm.grad(fm.jit(f), argnums=both), argnums=both)(*point),
        "jacfwd(grad(jit))": fm.jacfwd(fm.grad(fm.jit(f), argnums=both), argnums=both)(*point),
        "jit(hessian(jit))": fm.jit(fm.hessian(fm.jit(f), argnums=both))(*point),
    }
    for name, h in got.items():
        assert np.allclose(h, want, rtol=1e-12, atol=0.0, equal_nan=True), (name, h, want)
    cross = fm.grad(lambda b, a: fm.grad(fm.jit(f))(a, b))(point[1], point[0])
    assert cross == want[0][1]  # 0.0 in each, also where d2/db2 is not finite
    loop = [fm.hessian(f, argnums=both)(a, b) for a, b in [point, (2.0, 9.0)]]
    batch = fm.vmap(fm.hessian(fm.jit(f), argnums=both))((point[0], 2.0), (point[1], 9.0))
    assert np.allclose(batch, loop, rtol=1e-12, atol=0.0, equal_nan=True)


def test_hessian_of_jit_traces_the_one_output_vjps_only_where_a_partial_is_not_finite():
    g, calls = counted(lambda a, b: a * a * b + fm.sqrt(b))
    h = fm.hessian(fm.jit(g), argnums=(0, 1))
    h(1.0, 4.0)
    finite = len(calls)
    assert h(2.0, 9.0) == fm.hessian(lambda a, b: a * a * b + fm.sqrt(b), argnums=(0, 1))(2.0, 9.0)
    assert len(calls) == finite  # one VJP program for every output at finite points
    h(1.0, -1.0)
    assert finite < len(calls) <= finite + 2  # one program per output seeded alone
    h(3.0, -2.0)
    assert len(calls) <= finite + 2
