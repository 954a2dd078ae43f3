"""What a rule (checkpoint, custom_jvp, custom_vjp) is handed: a numpy array
under ``vmap``, and its arguments' values as Python floats.

Outside ``vmap`` an array argument of a rule is data. Inside, fmicrograd
holds every example's value in an array, so the rule cannot tell data from
examples: until round 22 this raised a shape-mismatch or "'Var' object is
not subscriptable" error deep inside the rule. It is now an error naming the
argument and the fix, and each fix gives the loop's numbers.
"""

import numpy as np
import pytest
from helpers import same_numbers

import fmicrograd as fm

DATA = np.array([1.0, 2.0, 3.0])
XS = np.array([0.5, 1.5])


def f(w, d):
    return fm.sum(tuple(w * d[i] * (i + 1.0) for i in range(3)))


def _custom_jvp():
    g = fm.custom_jvp(f)
    g.defjvp(lambda p, t: (f(*p), fm.sum(tuple(t[0] * p[1][i] * (i + 1.0) for i in range(3)))))
    return g


def _custom_vjp():
    g = fm.custom_vjp(f)
    g.defvjp(lambda w, d: (f(w, d), d),
             lambda d, ct: (ct * fm.sum(tuple(d[i] * (i + 1.0) for i in range(3))), None))
    return g


RULES = {"checkpoint": lambda: fm.checkpoint(f), "custom_jvp": _custom_jvp,
         "custom_vjp": _custom_vjp}
LOOP = tuple(fm.grad(lambda w: f(w, DATA) ** 2)(x) for x in XS)


@pytest.mark.parametrize("kind", RULES)
def test_an_array_argument_outside_vmap_is_data(kind):
    g = RULES[kind]()
    assert tuple(fm.grad(lambda w: g(w, DATA) ** 2)(x) for x in XS) == LOOP


@pytest.mark.parametrize("kind", RULES)
@pytest.mark.parametrize("transform", ["vmap(grad)", "jit(vmap(grad))", "vmap(jacfwd)"])
def test_under_vmap_the_error_names_the_argument_and_the_fix(kind, transform):
    g = RULES[kind]()
    inner = fm.grad if "grad" in transform else fm.jacfwd
    h = fm.vmap(inner(lambda w: g(w, DATA) ** 2))
    h = fm.jit(h) if transform.startswith("jit") else h
    fix = "static_argnums" if kind == "checkpoint" else "nondiff_argnums"
    with pytest.raises(TypeError, match=rf"{kind}: f's differentiable arguments have a numpy "
                                        rf"array at \[1\] \(shape \(3,\)\) under vmap.*{fix}"):
        h(XS)


def test_each_fix_gives_the_loops_numbers():
    closed = fm.checkpoint(lambda w: f(w, DATA))
    static = fm.checkpoint(f, static_argnums=1)
    cj = fm.custom_jvp(f, nondiff_argnums=(1,))
    cj.defjvp(lambda d, p, t: (f(p[0], d), fm.sum(tuple(t[0] * d[i] * (i + 1.0)
                                                         for i in range(3)))))
    for g in (closed, lambda w: static(w, DATA), lambda w: cj(w, DATA)):
        same_numbers(fm.vmap(fm.grad(lambda w, g=g: g(w) ** 2))(XS), LOOP)
        same_numbers(fm.jit(fm.vmap(fm.jacfwd(lambda w, g=g: g(w) ** 2)))(XS), LOOP)


def test_vmap_alone_still_calls_the_function():
    # nothing differentiates: the rule is not used, and the array is the function's
    g = fm.checkpoint(f)
    same_numbers(fm.vmap(lambda w: g(w, DATA))(XS), tuple(f(x, DATA) for x in XS))


@pytest.mark.parametrize("kind", ["checkpoint", "custom_jvp"])
def test_a_complex_value_from_float_arithmetic_is_refused(kind):
    # a rule computes its value from the argument values, where Python's (-1.0) ** 0.5
    # is complex: it was handed on silently as the primal (until round 22)
    f = lambda x, y: x ** y  # noqa: E731
    g = fm.checkpoint(f) if kind == "checkpoint" else fm.custom_jvp(f)
    if kind == "custom_jvp":
        g.defjvp(lambda p, t: (f(*p), t[0] * p[1] * p[0] ** (p[1] - 1.0)))
    with pytest.raises(TypeError, match=r"complex number from the argument values.*fm.power"):
        fm.jvp(g, (-1.0, 0.5), (1.0, 0.0))
    h = fm.checkpoint(lambda x, y: fm.power(x, y))
    same_numbers(fm.jvp(h, (-1.0, 0.5), (1.0, 0.0)), fm.jvp(f, (-1.0, 0.5), (1.0, 0.0)))


@pytest.mark.parametrize("kind", ["checkpoint", "custom_jvp"])
@pytest.mark.parametrize("stack", ["jit(jvp)", "jvp(jit)"])
def test_a_complex_value_in_a_compiled_call_is_refused(kind, stack):
    # compiled at a point where the value is real, then called where it is complex: the
    # compiled program replays the rule on the call's values, and handed the complex
    # number on as the primal (jit(jvp)) or failed in float() (until round 23)
    f = lambda x, y: x ** y  # noqa: E731
    g = fm.checkpoint(f) if kind == "checkpoint" else fm.custom_jvp(f)
    if kind == "custom_jvp":
        g.defjvp(lambda p, t: (f(*p), t[0] * p[1] * p[0] ** (p[1] - 1.0)))
    run = {"jit(jvp)": fm.jit(lambda x, y: fm.jvp(g, (x, y), (1.0, 0.0))),
           "jvp(jit)": lambda x, y: fm.jvp(fm.jit(g), (x, y), (1.0, 0.0))}[stack]
    run(2.0, 0.5)
    with pytest.raises(TypeError, match=r"complex number from the argument values.*fm.power"):
        run(-1.0, 0.5)
