"""Reverse mode through a wrapped function with several outputs keeps structural zeros.

``checkpoint`` and a jitted call seen through become one rule node per output,
whose reverse rule (a VJP of the seeded output) hands an input that output
does not reach a cotangent of 0.0, where the function's own reverse sweep
hands it nothing. Added to another cotangent, that zero turned a ``-0.0``
into ``0.0``; at second order the zero was a node of the rule's backward
pass, whose partials (0.0 times an infinite slope further on) were NaN:
``hessian`` of ``w(a, b)[0] * w(a, b)[1]`` with ``w = checkpoint(lambda a, b:
(a * a, fm.sqrt(b)))`` at ``b = 0`` had ``d2/db2`` NaN where the function
gives ``-inf`` (until round 20). Every number here is compared with the same
function without the wrapper (the "loop"): NaN for NaN, and zeros of the
same sign.
"""

import math

import numpy as np
import pytest
from helpers import same_numbers

import fmicrograd as fm

INF = math.inf


def root_pair(a, b):
    return (a * a, fm.sqrt(b))  # sqrt' is inf at 0


def log_pair(a, b):
    return (a * a, fm.log(b))  # log(0) is -inf, log' is inf there


def inverse_pair(a, b):
    return (a * a, fm.power(b, -1.0))  # 1/x: inf at 0, and so is its slope


def negated_pair(a, b):
    return (-(a * a), -fm.sqrt(b))  # products of -0.0: the sign of a zero shows


FUNCTIONS = {"sqrt": root_pair, "log": log_pair, "inverse": inverse_pair,
             "negated": negated_pair}
WRAPPERS = ["checkpoint", "jit"]
# (a, b): points with an infinite value or slope, signed zeros, and ordinary ones
POINTS = [(3.0, 0.0), (3.0, -0.0), (0.0, 0.0), (-1.5, 0.0), (3.0, INF), (0.0, 4.0),
          (-1.5, INF), (3.0, 4.0), (0.5, 2.0)]


def wrapped(wrapper, name):
    f = FUNCTIONS[name]
    return fm.checkpoint(f) if wrapper == "checkpoint" else fm.jit(f)


def product(f):
    return lambda a, b: f(a, b)[0] * f(a, b)[1]


def same(got, want):
    same_numbers(got, want)


def _tangent(f, which):
    def tangent(a, b):
        if which == 0:
            return fm.jvp(lambda x: f(x, b), (a,), (fm.tree.map(lambda _: 1.0, a),))[1]
        return fm.jvp(lambda y: f(a, y), (b,), (fm.tree.map(lambda _: 1.0, b),))[1]

    return tangent


TRANSFORMS = {
    "grad": lambda f: fm.grad(f, argnums=(0, 1)),
    "hessian": lambda f: fm.hessian(f, argnums=(0, 1)),
    "jacrev(grad)": lambda f: fm.jacrev(fm.grad(f, argnums=(0, 1)), argnums=(0, 1)),
    "jacfwd(grad)": lambda f: fm.jacfwd(fm.grad(f, argnums=(0, 1)), argnums=(0, 1)),
    "grad(jvp a)": lambda f: fm.grad(_tangent(f, 0), argnums=(0, 1)),
    "grad(jvp b)": lambda f: fm.grad(_tangent(f, 1), argnums=(0, 1)),
    "jit(hessian)": lambda f: fm.jit(fm.hessian(f, argnums=(0, 1))),
    "hessian(jit)": lambda f: fm.hessian(fm.jit(f), argnums=(0, 1)),
}


@pytest.fixture(autouse=True)
def _quiet():
    with np.errstate(all="ignore"):
        yield


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_reverse_mode_through_a_wrapper_matches_the_function(wrapper, transform, name):
    t = TRANSFORMS[transform]
    for a, b in POINTS:
        want = t(product(FUNCTIONS[name]))(a, b)
        got = t(product(wrapped(wrapper, name)))(a, b)
        same(got, want)


def test_the_documented_example():
    f = root_pair
    want = fm.hessian(lambda v: product(f)(v[0], v[1]))((3.0, 0.0))
    assert want[1][1] == -INF
    for w in (fm.checkpoint(f), fm.jit(f)):
        same(fm.hessian(lambda v, w=w: product(w)(v[0], v[1]))((3.0, 0.0)), want)


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_grad_of_jvp_keeps_the_sign_of_zero(wrapper, name):
    f, w = product(FUNCTIONS[name]), product(wrapped(wrapper, name))
    for a, b in ((0.0, 4.0), (3.0, INF), (-1.5, INF), (3.0, -0.0)):
        same(fm.grad(_tangent(w, 1), argnums=(0, 1))(a, b),
             fm.grad(_tangent(f, 1), argnums=(0, 1))(a, b))


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("transform", ["hessian", "grad(jvp b)", "jacrev(grad)"])
def test_vmap_of_reverse_mode_through_a_wrapper(wrapper, name, transform):
    t = TRANSFORMS[transform]
    a, bs = (3.0, -1.5, 0.0, 0.5), (0.0, INF, 4.0, -0.0)
    loop = [t(product(FUNCTIONS[name]))(x, y) for x, y in zip(a, bs)]
    got = fm.vmap(t(product(wrapped(wrapper, name))))(a, bs)
    gl, wl = fm.tree.leaves(got), fm.tree.leaves(loop)
    if len(gl) != len(wl):  # one array per entry (one the same for every example may
        gl = [np.broadcast_to(g, (len(a),))[k] for k in range(len(a)) for g in gl]  # not be)
    same(gl, wl)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_vmap_inside_the_reverse_sweep(wrapper):
    # the wrapped call under vmap, the sweeps over the vmap: the rule's batched zeros
    def make(f):
        return lambda a, b: fm.sum(fm.vmap(product(f), in_axes=(None, 0))(a, b))

    bs = (0.0, 4.0, -0.0)
    for t in (TRANSFORMS["hessian"], TRANSFORMS["grad"], TRANSFORMS["grad(jvp b)"]):
        for name in FUNCTIONS:
            same(t(make(wrapped(wrapper, name)))(3.0, bs), t(make(FUNCTIONS[name]))(3.0, bs))


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_reached_zero_cotangent_is_kept(wrapper):
    # a cotangent that is 0.0 by value on a path the graph has (sqrt' at inf) stays:
    # 0.0 times an infinite slope is NaN in the function too
    def f(a, b):
        return (a * fm.sqrt(b), b)

    w = fm.checkpoint(f) if wrapper == "checkpoint" else fm.jit(f)
    for t in (TRANSFORMS["hessian"], TRANSFORMS["grad"]):
        want = t(lambda a, b: f(a, b)[0] * f(a, b)[1])(0.0, INF)
        same(t(lambda a, b: w(a, b)[0] * w(a, b)[1])(0.0, INF), want)


def test_an_output_reached_through_a_nested_checkpoint():
    def outer(pair):
        def f(a, b):
            u, v = pair(a, b)
            return (u + 1.0, v * 2.0)
        return f

    f = outer(fm.checkpoint(root_pair))
    for w in (fm.checkpoint(f), fm.jit(f), f):
        for b in (0.0, INF, 4.0):
            want = fm.hessian(product(outer(root_pair)), argnums=(0, 1))(3.0, b)
            same(fm.hessian(product(w), argnums=(0, 1))(3.0, b), want)


def power_pair(a, b):
    return (a * a, abs(b) ** 1.5)  # slope 0.0 at b = 0, second derivative inf there


def gap_pair(a, b):
    return (abs(a - a) ** 1.5 * b, a)  # the same at every point, through a - a


# The Jacobian of a function with several outputs at second order: each output
# is seeded alone. A jitted call's compiled VJP, called with nodes, was that of
# every output with 0.0 for the others; the value of a 0.0 term was finite
# (0.0 times a slope of 0.0) but its derivative was 0.0 times an infinite second
# derivative, NaN (until round 21: ``jacrev(jacrev(jit(f)))``, fuzzer seed 142477).
PAIRS = dict(FUNCTIONS, power=power_pair, gap=gap_pair)
JACOBIANS = {
    "jacrev(jacrev)": lambda f: fm.jacrev(fm.jacrev(f, argnums=(0, 1)), argnums=(0, 1)),
    "jacfwd(jacrev)": lambda f: fm.jacfwd(fm.jacrev(f, argnums=(0, 1)), argnums=(0, 1)),
    "jacrev(jacfwd)": lambda f: fm.jacrev(fm.jacfwd(f, argnums=(0, 1)), argnums=(0, 1)),
    "jacfwd(jacfwd)": lambda f: fm.jacfwd(fm.jacfwd(f, argnums=(0, 1)), argnums=(0, 1)),
}


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("jacobian", JACOBIANS)
@pytest.mark.parametrize("name", PAIRS)
def test_second_order_jacobian_of_every_output(wrapper, jacobian, name):
    f = PAIRS[name]
    w = fm.checkpoint(f) if wrapper == "checkpoint" else fm.jit(f)
    t = JACOBIANS[jacobian]
    for a, b in POINTS:
        same(t(w)(a, b), t(f)(a, b))


@pytest.mark.parametrize("name", ["power", "gap"])
def test_the_second_order_jacobian_under_vmap(name):
    f, t = PAIRS[name], JACOBIANS["jacrev(jacrev)"]
    a, bs = (3.0, -1.5, 0.0), (0.0, 4.0, -0.0)
    loop = tuple(t(f)(x, y) for x, y in zip(a, bs))  # (vmap of tuples: one per example)
    same(fm.vmap(t(fm.jit(f)))(a, bs), loop)
    same(fm.vmap(t(fm.jit(f)))(np.array(a), np.array(bs)), loop)
