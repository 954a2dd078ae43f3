"""Rules (``checkpoint``, ``custom_jvp``, ``custom_vjp``) that close over a
value ``jit`` traces, and rules wrapped in other rules.

``jit`` compiles a rule's call as a replay of its function on the call's
argument values. A function closing over a traced value, in a branch the
first call did not take, replayed with the first call's value: ``jit(f)``
gave 10.0 at 0.25 where ``f`` gives 2.5.
"""

import math

import pytest
from test_rule_arguments import _rule  # checkpoint, custom_jvp or custom_vjp of f

import fmicrograd as fm


def _closing(kind, branch):
    """``f(x, c)``: a rule over ``x`` closing over ``c``, used in one branch only."""
    def f(x, c):
        if branch == "if":
            h = lambda a: a * a if a > 0.5 else 10.0 * c * a
        else:
            h = lambda a: fm.where(a > 0.5, a * a, 10.0 * c * a)
        return _rule(kind, h)(x)

    return f


KINDS = ("checkpoint", "custom_jvp", "custom_vjp")
POINTS = ((1.0, 2.0), (0.25, 3.0), (0.3, 4.0), (2.0, 5.0))
STACKS = {
    "jit": lambda f: fm.jit(f),
    "jit(grad)": lambda f: fm.jit(fm.grad(f)),
    "grad(jit)": lambda f: fm.grad(fm.jit(f)),
    "jit(jacfwd)": lambda f: fm.jit(fm.jacfwd(f)),
    "jit(value_and_grad)": lambda f: fm.jit(fm.value_and_grad(f)),
}
UNJITTED = {"jit": lambda f: f, "jit(grad)": fm.grad, "grad(jit)": fm.grad,
            "jit(jacfwd)": fm.jacfwd, "jit(value_and_grad)": fm.value_and_grad}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("branch", ["if", "where"])
@pytest.mark.parametrize("stack", sorted(STACKS))
@pytest.mark.parametrize("first", [0, 1])
def test_a_branch_using_the_closure_after_one_that_did_not(kind, branch, stack, first):
    f = _closing(kind, branch)
    points = POINTS[first:] + POINTS[:first]  # the first call takes either branch
    compiled = STACKS[stack](f)
    got = [compiled(*p) for p in points]
    assert got == [UNJITTED[stack](f)(*p) for p in points]


def test_a_closure_through_an_attribute_is_an_error_not_a_stale_number():
    class Holder:
        pass

    def f(x):
        held = Holder()
        held.x = x
        return fm.checkpoint(lambda a: fm.where(a > 0.5, a, 10.0 * held.x))(x)

    jitted = fm.jit(f)
    assert jitted(1.0) == 1.0
    with pytest.raises(TypeError, match="Pass that value as an argument"):
        jitted(0.25)


def test_custom_vjp_of_a_checkpoint_uses_its_own_rule():
    g = fm.checkpoint(lambda a, b: a * 2.0)
    h = fm.custom_vjp(g)
    h.defvjp(lambda a, b: (g(a, b), None), lambda res, ct: (2.0 * ct, 5.0 * ct))
    assert fm.jvp(h, (1.0, 1.0), (0.0, 1.0)) == (2.0, 5.0)
    assert fm.jacfwd(h, argnums=(0, 1))(1.0, 1.0) == (2.0, 5.0)
    assert fm.grad(h, argnums=(0, 1))(1.0, 1.0) == (2.0, 5.0)
    assert h.who == "custom_vjp" and g.who == "checkpoint"


def test_custom_jvp_of_a_checkpoint_and_custom_vjp_of_that():
    g = fm.checkpoint(lambda a, b: a * 2.0)
    h = fm.custom_jvp(g)
    h.defjvp(lambda p, t: (g(*p), 3.0 * t[0] + 7.0 * t[1]))
    assert fm.jvp(h, (1.0, 1.0), (0.0, 1.0)) == (2.0, 7.0)
    assert fm.grad(h, argnums=(0, 1))(1.0, 1.0) == (3.0, 7.0)
    k = fm.custom_vjp(h)
    k.defvjp(lambda a, b: (h(a, b), None), lambda res, ct: (2.0 * ct, 5.0 * ct))
    assert fm.jvp(k, (1.0, 1.0), (0.0, 1.0)) == (2.0, 5.0)
    assert fm.grad(k, argnums=(0, 1))(1.0, 1.0) == (2.0, 5.0)


def test_a_rule_closing_over_nothing_traced_stays_compiled():
    scale = 3.0
    g = fm.checkpoint(lambda a: fm.where(a > 0.5, a * a, scale * a))
    jitted = fm.jit(lambda x: g(x) + x)
    assert [jitted(p) for p in (1.0, 0.25)] == [2.0, 1.0]
    assert "runs as Python" not in jitted.lower(1.0).as_text()


@pytest.mark.parametrize("kind", ["custom_jvp", "custom_vjp"])
def test_a_differentiated_nondiff_argument_is_named_as_such(kind):
    if kind == "custom_jvp":
        f = fm.custom_jvp(lambda x, n: fm.sin(x * n), nondiff_argnums=(1,))
        f.defjvp(lambda n, p, t: (fm.sin(p[0] * n), n * fm.cos(p[0] * n) * t[0]))
    else:
        f = fm.custom_vjp(lambda x, n: fm.sin(x * n), nondiff_argnums=(1,))
        f.defvjp(lambda x, n: (fm.sin(x * n), x), lambda n, x, g: (n * fm.cos(x * n) * g,))
    h = lambda x, n: f(x, n)
    for run in (lambda: fm.jit(fm.grad(h, argnums=1))(0.5, 2.0),
                lambda: fm.jvp(h, (0.5, 2.0), (0.0, 1.0)),
                lambda: fm.grad(h, argnums=(0, 1))(0.5, 2.0)):
        with pytest.raises(TypeError, match="argument 1 is in nondiff_argnums"):
            run()
    assert fm.jit(fm.grad(h))(0.5, 2.0) == pytest.approx(2.0 * math.cos(1.0), rel=1e-15)


def test_a_jitted_closure_over_a_differentiated_value_runs_as_the_function():
    """jit seen through by a transform is a rule of its own; a closure over a
    value an outer transform differentiates made it raise, naming its
    internal function (an outside probe): the function runs as it is."""
    f = lambda x: fm.sum(fm.vmap(lambda z, y: fm.jacfwd(lambda u: fm.jit(lambda v: z * v)(u))(y),
                                 in_axes=(None, 0))(x, (1.0, 2.0)))
    assert fm.grad(f)(0.5) == 2.0
    h = lambda x: fm.jit(lambda v: x * v)(2.0)
    assert (fm.grad(h)(3.0), fm.jacfwd(h)(3.0), fm.hessian(lambda x: x * h(x))(3.0)) == \
        (2.0, 2.0, 4.0)
    with pytest.raises(TypeError, match="checkpoint: <lambda> closes over"):  # a user's rule
        fm.grad(lambda x: fm.jit(lambda v: fm.checkpoint(lambda a: a * x)(v))(x))(2.0)
