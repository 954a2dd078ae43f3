"""Forward mode through a wrapped function with several outputs keeps structural zeros.

``checkpoint``, ``custom_jvp`` and a jitted call seen through become one rule
node per output, whose partials forward mode reads from the rule's VJP: an
output that does not depend on an input got a partial of 0.0 in its
direction, a tangent of 0.0 where the function's own forward sweep gives
none at all, and 0.0 times an infinite partial further on was NaN (until
round 20). Every number here is compared with the same function without the
wrapper (the "loop"), NaN for NaN and zero for zero of the same sign.
"""

import math

import pytest
from helpers import same_numbers

import fmicrograd as fm

INF = math.inf


def root_pair(a, b):
    return (a * a, fm.sqrt(b))  # sqrt(inf) is inf; sqrt' is 0 there, inf at 0


def log_pair(a, b):
    return (a * a, fm.log(b))  # log(0) is -inf, log' is inf there


def _rule(f):
    """``f`` as a ``custom_jvp`` whose rule is ``f``'s own JVP (the same arithmetic)."""
    wrapped = fm.custom_jvp(f)
    wrapped.defjvp(lambda primals, tangents: (wrapped(*primals), fm.jvp(f, primals, tangents)[1]))
    return wrapped


FUNCTIONS = {"sqrt": root_pair, "log": log_pair}
RULES = {name: _rule(f) for name, f in FUNCTIONS.items()}
WRAPPERS = ["checkpoint", "custom_jvp", "jit"]
# (function, a, b): points with an infinite value or slope, and ordinary ones
POINTS = [("sqrt", 3.0, INF), ("sqrt", 3.0, 0.0), ("sqrt", 3.0, 4.0), ("sqrt", -1.5, 2.0),
          ("log", 3.0, 0.0), ("log", 3.0, INF), ("log", 0.5, 2.0)]


def wrapped(wrapper, name):
    if wrapper == "checkpoint":
        return fm.checkpoint(FUNCTIONS[name])
    if wrapper == "custom_jvp":
        return RULES[name]
    return fm.jit(FUNCTIONS[name])


def product(f):
    return lambda a, b: f(a, b)[0] * f(a, b)[1]


def same(got, want):
    same_numbers(got, want, nan_sign=True)


TRANSFORMS = {
    "jacfwd": lambda f: fm.jacfwd(f, argnums=(0, 1)),
    "jacfwd(b)": lambda f: fm.jacfwd(f, argnums=1),
    "jvp(b)": lambda f: lambda a, b: fm.jvp(lambda y: f(a, y), (b,), (1.0,)),
    "jvp(a)": lambda f: lambda a, b: fm.jvp(lambda x: f(x, b), (a,), (1.0,)),
    "linearize(b)": lambda f: lambda a, b: fm.linearize(lambda y: f(a, y), b)[1](1.0),
    "jacfwd(jacfwd)": lambda f: fm.jacfwd(fm.jacfwd(f, argnums=(0, 1)), argnums=(0, 1)),
    "jacfwd(grad)": lambda f: fm.jacfwd(fm.grad(f, argnums=(0, 1)), argnums=(0, 1)),
    # (d/da only: d/db, a reverse sweep through the wrapper, see test_reverse_over_forward)
    "grad(jvp)": lambda f: fm.grad(lambda a, b: fm.jvp(lambda y: f(a, y), (b,), (1.0,))[1]),
    "jit(jacfwd)": lambda f: fm.jit(fm.jacfwd(f, argnums=(0, 1))),
}


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("point", POINTS, ids=lambda p: f"{p[0]}-{p[1]}-{p[2]}")
def test_forward_mode_through_a_wrapper_matches_the_function(wrapper, transform, point):
    name, a, b = point
    t = TRANSFORMS[transform]
    want = t(product(FUNCTIONS[name]))(a, b)
    got = t(product(wrapped(wrapper, name)))(a, b)
    if wrapper == "custom_jvp" and "grad" in transform:
        # a reverse sweep through a custom_jvp transposes its rule: the same numbers up
        # to rounding (the last bit of one entry here), and the same zeros, infs and NaNs
        close(got, want)
    else:
        same(got, want)


def close(got, want):
    gl, wl = fm.tree.leaves(got), fm.tree.leaves(want)
    assert len(gl) == len(wl), (got, want)
    for g, w in zip(gl, wl):
        if math.isfinite(w) and w != 0.0:
            assert g == pytest.approx(w, rel=1e-15, abs=0.0), (got, want)
        else:
            same(g, w)


def test_the_documented_example_is_no_longer_nan():
    w = fm.checkpoint(root_pair)
    got = fm.jacfwd(product(w), argnums=(0, 1))(3.0, INF)
    assert got == fm.jacfwd(product(root_pair), argnums=(0, 1))(3.0, INF) == (INF, 0.0)


def _tangent_in_b(f):
    def tangent(a, b):
        return fm.jvp(lambda y: f(a, y), (b,), (1.0,))[1]

    return tangent


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_vmap_of_forward_mode_through_a_wrapper(wrapper, name):
    w = wrapped(wrapper, name)
    a, b = (3.0, 0.5), ((INF if name == "sqrt" else 0.0), 4.0)
    for t in (lambda f: fm.jacfwd(f, argnums=(0, 1)), _tangent_in_b):
        loop = tuple(t(product(FUNCTIONS[name]))(x, y) for x, y in zip(a, b))
        same(fm.vmap(t(product(w)))(a, b), loop)


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_jacfwd_of_a_vmap_over_a_wrapper(wrapper, name):
    w = wrapped(wrapper, name)

    def make(f):
        return lambda a, b: fm.sum(fm.vmap(product(f), in_axes=(None, 0))(a, b))

    bs = ((INF if name == "sqrt" else 0.0), 4.0)
    same(fm.jacfwd(make(w), argnums=(0, 1))(3.0, bs),
         fm.jacfwd(make(FUNCTIONS[name]), argnums=(0, 1))(3.0, bs))


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_an_output_reached_through_a_nested_wrapper(wrapper):
    # the inner checkpoint's outputs reach their own inputs only
    def outer(pair):
        def f(a, b):
            u, v = pair(a, b)
            return (u + 1.0, v * 2.0)
        return f

    f = outer(fm.checkpoint(root_pair))
    w = {"checkpoint": fm.checkpoint(f), "jit": fm.jit(f)}.get(wrapper) or _rule(f)
    for b in (INF, 4.0):
        want = fm.jacfwd(product(outer(root_pair)), argnums=(0, 1))(3.0, b)
        same(fm.jacfwd(product(f), argnums=(0, 1))(3.0, b), want)
        same(fm.jacfwd(product(w), argnums=(0, 1))(3.0, b), want)


def test_a_hand_written_custom_jvp_rule():
    @fm.custom_jvp
    def f(a, b):
        return (a * a, fm.log(b))

    @f.defjvp
    def _(primals, tangents):
        (a, b), (da, db) = primals, tangents
        return f(a, b), (2.0 * a * da, fm.power(b, -1.0) * db)

    assert fm.jacfwd(product(f), argnums=(0, 1))(3.0, 0.0) == (-INF, INF)
    assert fm.jacfwd(product(f), argnums=(0, 1))(3.0, INF) == (INF, 0.0)  # 9 * 1/inf


def test_a_custom_jvp_rule_that_returns_zero_keeps_its_zero():
    # the rule's own 0.0 is a tangent in every direction, as JAX instantiates a rule's
    # zero: only the zeros that fmicrograd's transposition makes are dropped
    @fm.custom_jvp
    def f(a, b):
        return (a * a, fm.sqrt(b))

    @f.defjvp
    def _(primals, tangents):
        (a, b), (_, db) = primals, tangents
        return f(a, b), (0.0, fm.jvp(fm.sqrt, (b,), (db,))[1])

    got = fm.jacfwd(product(f), argnums=(0, 1))(3.0, INF)
    assert all(math.isnan(x) for x in got)  # the rule's 0.0 times sqrt(inf)
    assert fm.jacfwd(product(f), argnums=(0, 1))(3.0, 4.0) == (0.0, 2.25)


def test_a_user_custom_vjp_keeps_its_rules_zeros():
    # a custom_vjp's bwd is the user's VJP: forward mode reads its partials as they are
    f = fm.custom_vjp(root_pair)
    f.defvjp(lambda a, b: (root_pair(a, b), (a, b)),
             lambda res, ct: (2.0 * res[0] * ct[0], 0.5 / fm.sqrt(res[1]) * ct[1]))
    got = fm.jacfwd(product(f), argnums=(0, 1))(3.0, INF)
    assert got[0] == INF and math.isnan(got[1])


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_reached_zero_partial_is_kept(wrapper):
    # a partial that is 0.0 by value on a path the graph has (sqrt' at inf) stays a
    # term: 0.0 * inf is NaN in the function too
    def f(a, b):
        return (a * fm.sqrt(b), b)

    w = {"checkpoint": fm.checkpoint(f), "jit": fm.jit(f)}.get(wrapper) or _rule(f)
    want = fm.jacfwd(lambda a, b: f(a, b)[0] * INF, argnums=(0, 1))(0.0, INF)
    same(fm.jacfwd(lambda a, b: w(a, b)[0] * INF, argnums=(0, 1))(0.0, INF), want)
    assert math.isnan(want[1])
