"""What a rule (checkpoint, custom_jvp, custom_vjp) is handed: a numpy array
under ``vmap``, and its arguments' values as Python floats.

Outside ``vmap`` an array argument of a rule is data. Inside, fmicrograd
holds every example's value in an array, so the rule cannot tell data from
examples: until round 22 this raised a shape-mismatch or "'Var' object is
not subscriptable" error deep inside the rule. It is now an error naming the
argument and the fix, and each fix gives the loop's numbers.
"""

import math

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


def _rule(kind, f):
    """``f`` behind a ``checkpoint``, a ``custom_jvp`` with its own rule, or a
    ``custom_vjp`` whose ``fwd`` computes on the argument values."""
    if kind == "checkpoint":
        return fm.checkpoint(f)
    if kind == "custom_jvp":
        g = fm.custom_jvp(f)
        g.defjvp(lambda p, t: fm.jvp(f, p, t))
        return g
    g = fm.custom_vjp(f)
    g.defvjp(lambda *p: (f(*p), p), lambda p, ct: fm.vjp(f, *p)[1](ct))
    return g


FLOAT_ARITHMETIC = {  # where Python's floats depart from fm's nodes
    "complex power": (lambda x, y: x ** y, (-1.0, 0.5)),
    "division by zero": (lambda x, y: x / y + 1.0 / y, (1.0, 0.0)),
    "overflow": (lambda x, y: x ** y * 2.0, (10.0, 400.0)),
    # no error in Python, another number: inf where fm's power gives NaN, and abs of a
    # complex number back to a float (outside probe, round 23)
    "power of -inf": (lambda x, y: x * y ** 0.5, (1.0, -math.inf)),
    "abs of complex": (lambda x, y: abs(x ** 0.5) + x * y, (-4.0, 1.0)),
    "power of -inf, first": (lambda x, y: x ** 0.5 * y, (-math.inf, 1.0)),
}
STACKS = {
    "jvp": lambda g: lambda x, y: fm.jvp(g, (x, y), (1.0, 0.5)),
    "grad": lambda g: fm.grad(g, argnums=(0, 1)),
    "jit(jvp)": lambda g: fm.jit(lambda x, y: fm.jvp(g, (x, y), (1.0, 0.5))),
    "jvp(jit)": lambda g: lambda x, y: fm.jvp(fm.jit(g), (x, y), (1.0, 0.5)),
    "hessian": lambda g: fm.hessian(g, argnums=(0, 1)),
    # each column reruns f with the other argument fixed (as a number, until round 23)
    "jacfwd": lambda g: fm.jacfwd(g, argnums=(0, 1)),
    "vmap": lambda g: lambda x, y: fm.vmap(g, in_axes=(None, 0))(x, (y, 3.0)),
    # the unmapped argument reached the rule as numpy's float64, whose ** is C's (until
    # round 24: inf for NaN)
    "jvp(vmap(jit))": lambda g: lambda x, y: fm.jvp(
        lambda a: fm.vmap(fm.jit(lambda u, v: g(u, v)), in_axes=(None, 0))(a, (y, 3.0)),
        (x,), (1.0,)),
}


@pytest.mark.parametrize("kind", ["checkpoint", "custom_jvp"])
@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("case", FLOAT_ARITHMETIC)
def test_a_rule_gives_the_functions_numbers_where_floats_depart(kind, stack, case):
    # a rule computes its value from the argument values, where Python's (-1.0) ** 0.5
    # is complex and 1.0 / 0.0 raises: the value was handed on complex (until round 22),
    # then refused; it is now f's on nodes, NaN and inf (round 23). jit traces at a
    # point where the floats agree first, then replays the rule at the case's point
    f, point = FLOAT_ARITHMETIC[case]
    t = STACKS[stack]
    run = t(_rule(kind, f))
    run(2.0, 0.5)
    with np.errstate(all="ignore"):
        same_numbers(run(*point), t(f)(*point))


@pytest.mark.parametrize("stack", ["jvp", "jit(jvp)"])
def test_a_custom_vjp_whose_fwd_gives_a_complex_value_is_refused(stack):
    # a user's fwd is run as written, on the argument values: its complex value is an error
    run = STACKS[stack](_rule("custom_vjp", lambda x, y: x ** y))
    run(2.0, 0.5)
    with pytest.raises(TypeError, match=r"complex number from the argument values.*fm.power"):
        run(-1.0, 0.5)
