"""A rule (``checkpoint``, ``custom_jvp``) of a function that returns a ``vmap`` result.

Under an outer ``vmap`` each field of the inner ``vmap`` result holds the
inner examples first and the outer lanes last. A rule's VJP that gives one
field's cotangent example by example, as plain numbers (a zero for a field
the seeded output does not read), was stacked without the lanes, and the
forward sweep then failed to broadcast it (``(3,)`` against ``(3, 2)``); and
a vmap result inside a tuple argument was not restacked at all (a structure
error). Minimized from fuzzer programs; every number is compared with the
loop (the same program with Python loops for the vmaps).
"""

import numpy as np
import pytest

import fmicrograd as fm

CS = (1.0, -0.7, 1.3)


def split(x):
    return (tuple(x), tuple(0.05 - xi * 0.9 for xi in x))


def flat(o):
    return tuple(fm.tree.leaves(o))


def close(got, want):
    gl, wl = fm.tree.leaves(got), fm.tree.leaves(want)
    assert len(gl) == len(wl), (got, want)
    for g, w in zip(gl, wl):
        np.testing.assert_allclose(np.asarray(g, dtype=float), np.asarray(w, dtype=float),
                                   rtol=1e-12, atol=1e-300)


def pair(x):
    a0, a1 = x
    v2 = fm.where(a1 > 0.0, fm.sqrt(a1), 0.0)
    return (v2 * (1.0 + 0.1 * fm.tanh(a0 + a1)), v2)


def _scaled(f, x):
    return fm.vmap(lambda y, c: f(tuple(yi * c for yi in y)), in_axes=(None, 0))(x, CS)


def _looped(f, x):
    return tuple(f(tuple(yi * c for yi in x)) for c in CS)


def _rule(f):
    g = fm.custom_jvp(f)
    g.defjvp(lambda p, t: fm.jvp(f, p, t))
    return g


WRAPPERS = {"checkpoint": fm.checkpoint, "custom_jvp": _rule}


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_vmap_of_jacfwd_over_a_rule_of_a_vmap_result(wrapper):
    # r105300: a broadcast error in the forward sweep's ``_spread_tangent``
    wrap = WRAPPERS[wrapper]

    def f(x):
        return fm.jacfwd(lambda y: flat(wrap(lambda r: r)(_scaled(pair, y))))(x)

    def loop(x):
        return fm.jacfwd(lambda y: flat(_looped(pair, y)))(x)

    x = (0.4, 0.9)
    close(f(x), loop(x))
    close(fm.vmap(f)(split(x)), fm.vmap(loop)(split(x)))


def _red(o):
    return fm.sum(tuple(v * (1.0 + 0.1 * i) for i, v in enumerate(fm.tree.leaves(o))))


def mixed(x):
    a0, a1 = x
    v0 = 2.0 ** fm.tanh(a0)

    def inner(c):
        w1 = fm.mean((-a1, v0, -a1 * v0))
        return (w1 * c + fm.tanh(c) * a1, v0 + c)

    fm.vmap(inner)((0.5, -0.3, 1.1))  # (an inner vmap whose result is not used)
    return (fm.maximum(v0, a0) * (1.0 + 0.1 * fm.tanh(a0 + a1)), a1)


@pytest.mark.parametrize("jit", [False, True])
def test_a_checkpoint_of_a_tuple_holding_a_vmap_result(jit):
    # 112127: the checkpointed backward pass takes a tuple holding the inner vmap
    # result, whose cotangent came back example by example (a structure error)
    def make(f, scaled):
        def hess(x):
            return fm.hessian(lambda y: _red(f(scaled(mixed, y))))(x)
        h = fm.jit(hess) if jit else hess
        t = (0.3, 0.4)
        return lambda x: fm.jvp(h, (x,), (t,))

    f = fm.checkpoint(make(fm.checkpoint(lambda r: r), _scaled))
    loop = make(lambda r: r, _looped)
    for x in [(-0.32, 0.331), (1.416, 0.536)]:
        close(f(x), loop(x))
