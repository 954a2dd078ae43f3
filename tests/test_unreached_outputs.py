"""An output of a wrapped function that the sweep does not reach adds nothing.

``checkpoint``, ``custom_jvp`` and a jitted call become one custom node per
output; the rule of the output a sweep reaches used to run the VJP of every
output, the others seeded with 0.0, and 0.0 times an infinite or NaN partial
on their paths is NaN, where ``f``'s own sweep never goes (round 18).
"""

import math

import pytest

import fmicrograd as fm


def two(a, b):
    return (a * a, fm.sqrt(b))  # sqrt' of a negative: nan, at 0: inf


@fm.custom_jvp
def two_rule(a, b):
    return (a * a, fm.sqrt(b))


@two_rule.defjvp
def _two_rule_jvp(primals, tangents):
    a, b = primals
    da, db = tangents
    return two_rule(a, b), (2.0 * a * da, 0.5 * fm.power(b, -0.5) * db)


WRAPPED = {"checkpoint": fm.checkpoint(two), "custom_jvp": two_rule, "jit": fm.jit(two)}
TRANSFORMS = {
    "grad": lambda f: fm.grad(f, argnums=(0, 1)),
    "hessian": lambda f: fm.hessian(f, argnums=(0, 1)),
    "jacfwd": lambda f: fm.jacfwd(f, argnums=(0, 1)),
    "jacfwd(grad)": lambda f: fm.jacfwd(fm.grad(f, argnums=(0, 1)), argnums=(0, 1)),
    "jit(grad)": lambda f: fm.jit(fm.grad(f, argnums=(0, 1))),
}


@pytest.mark.parametrize("wrapper", WRAPPED)
@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("b", [-1.0, 0.0, 4.0])
def test_an_output_no_sweep_reaches_adds_no_nan(wrapper, transform, b):
    wrapped = WRAPPED[wrapper]
    want = TRANSFORMS[transform](lambda a, b: two(a, b)[0] * 3.0)(1.5, b)
    got = TRANSFORMS[transform](lambda a, b: wrapped(a, b)[0] * 3.0)(1.5, b)
    assert got == want  # (4.5 * 2, 0.0) and the like: no nan where f has none


@pytest.mark.parametrize("wrapper", WRAPPED)
def test_under_vmap_each_example_gets_its_own_cotangents(wrapper):
    wrapped = WRAPPED[wrapper]
    g = fm.grad(lambda a, b: wrapped(a, b)[0], argnums=(0, 1))
    loop = tuple(fm.grad(lambda a, b: two(a, b)[0], argnums=(0, 1))(a, b)
                 for a, b in [(1.0, 9.0), (2.0, 4.0)])
    assert fm.vmap(g)((1.0, 2.0), (9.0, 4.0)) == loop == ((2.0, 0.0), (4.0, 0.0))


@pytest.mark.parametrize("wrapper", WRAPPED)
def test_under_vmap_unreached_outputs_stay_out_at_nan_slopes(wrapper):
    # checkpoint and custom_jvp under vmap seeded the unreached output with 0.0 per
    # example until round 19: (2.0, nan) for example 0, where f gives (2.0, 0.0)
    wrapped = WRAPPED[wrapper]
    g = fm.grad(lambda a, b: wrapped(a, b)[0], argnums=(0, 1))
    loop = tuple(fm.grad(lambda a, b: two(a, b)[0], argnums=(0, 1))(a, b)
                 for a, b in [(1.0, -1.0), (2.0, 4.0)])
    assert fm.vmap(g)((1.0, 2.0), (-1.0, 4.0)) == loop == ((2.0, 0.0), (4.0, 0.0))
    assert fm.jit(fm.vmap(g))((1.0, 2.0), (-1.0, 4.0)) == loop


@pytest.mark.parametrize("wrapper", WRAPPED)
@pytest.mark.parametrize("transform", ["grad", "jit(grad)", "jacfwd", "hessian"])
def test_differentiating_a_vmap_over_the_wrapped_call_adds_no_nan(wrapper, transform):
    wrapped = WRAPPED[wrapper]

    def make(w):
        return lambda a, b: fm.sum(fm.vmap(lambda x, y: w(x, y)[0] * 3.0)(a, b))

    t = TRANSFORMS[transform]
    at = ((1.0, 2.0), (-1.0, 0.0))
    assert t(make(wrapped))(*at) == t(make(two))(*at)


@pytest.mark.parametrize("wrapper", WRAPPED)
def test_a_reached_nan_still_comes_through(wrapper):
    # the restriction drops stand-ins only: a NaN on the reached output's path stays
    wrapped = WRAPPED[wrapper]
    g = fm.grad(lambda a, b: wrapped(a, b)[1] + wrapped(a, b)[0], argnums=(0, 1))
    out = g(1.0, -1.0)
    assert out[0] == 2.0 and out[1] != out[1]


def _ident(r):
    return r


_ident_jvp = fm.custom_jvp(_ident)
_ident_jvp.defjvp(lambda p, t: fm.jvp(_ident, p, t))
_ident_vjp = fm.custom_vjp(_ident)
_ident_vjp.defvjp(lambda r: (r, None), lambda res, ct: (ct,))
RETURNS_A_VMAP_RESULT = {"checkpoint": fm.checkpoint(_ident), "custom_jvp": _ident_jvp,
                         "custom_vjp": _ident_vjp}


@pytest.mark.parametrize("wrapper", RETURNS_A_VMAP_RESULT)
@pytest.mark.parametrize("transform", [
    fm.jit, fm.jacfwd, fm.jacrev, lambda f: fm.jit(fm.jacrev(f)),
    lambda f: fm.hessian(lambda x: fm.sum(f(x))),
    lambda f: fm.jit(fm.hessian(lambda x: fm.sum(f(x)))),
])
def test_a_rule_returning_a_vmap_result_gives_every_example_its_own_numbers(wrapper, transform):
    # compiled, the rule's forward read the batch's field per example and every example
    # came out as example 0's ((3, 3, 3) for (3, 5, 4.5)); and a rule restricted to one
    # output leaf must not take the result's one leaf for example 0 ((2, 0, 0) for (2, 2, 6))
    wrapped = RETURNS_A_VMAP_RESULT[wrapper]

    def make(w):
        return lambda x: w(fm.vmap(lambda a: a * 2.0)((x, x + 1.0, x * x)))

    for x in (1.5, -0.5):
        assert transform(make(wrapped))(x) == transform(make(_ident))(x)


def _reorder(r):  # a new vmap over the examples of one: the rule mixes them
    return fm.vmap(lambda a: a * 1.0)(tuple(reversed(list(r))))


_reorder_jvp = fm.custom_jvp(_reorder)
_reorder_jvp.defjvp(lambda p, t: fm.jvp(_reorder, p, t))


@pytest.mark.parametrize("wrapped", [fm.checkpoint(_reorder), _reorder_jvp],
                         ids=["checkpoint", "custom_jvp"])
@pytest.mark.parametrize("transform", [fm.jacfwd, fm.jacrev, fm.grad])
def test_a_rule_that_maps_over_a_vmap_results_examples_differentiates(wrapped, transform):
    # the rule's variable for the result stood on a constant node, which the inner vmap
    # took for no variable at all: it returned plain numbers, and every derivative was 0
    def make(w):
        def f(x):
            out = w(fm.vmap(lambda a: a * 2.0)((x, x + 1.0, x * x)))
            return fm.sum(out) * out[0] if transform is fm.grad else out
        return f

    for x in (1.5, -0.5):
        assert transform(make(wrapped))(x) == transform(make(_reorder))(x)


def _roots(a, b):  # a vmap result: sqrt of each example, nan slope at b < 0
    return fm.vmap(fm.sqrt)((a, b))


_roots_jvp = fm.custom_jvp(_roots)
_roots_jvp.defjvp(lambda p, t: fm.jvp(_roots, p, t))
RETURNS_ROOTS = {"checkpoint": fm.checkpoint(_roots), "custom_jvp": _roots_jvp,
                 "jit": fm.jit(_roots)}


@pytest.mark.parametrize("wrapper", RETURNS_ROOTS)
@pytest.mark.parametrize("transform", TRANSFORMS)
def test_an_example_of_a_returned_vmap_result_no_sweep_reaches_adds_no_nan(wrapper, transform):
    # until round 19, checkpoint and custom_jvp seeded the other example with 0.0:
    # grad (0.75, nan) and a nan Hessian entry, where f gives (0.75, 0.0)
    wrapped = RETURNS_ROOTS[wrapper]
    t = TRANSFORMS[transform]
    want = t(lambda a, b: _roots(a, b)[0] * 3.0)(4.0, -1.0)
    assert t(lambda a, b: wrapped(a, b)[0] * 3.0)(4.0, -1.0) == want
    assert tr_leaves_finite(want)


def tr_leaves_finite(tree):
    return all(x == x for x in fm.tree.leaves(tree))


def _pairs(a, b):  # a vmap result of two fields: b's sqrt slope is inf at 0
    return fm.vmap(lambda x: (x * x, fm.sqrt(x)))((a, b))


_pairs_jvp = fm.custom_jvp(_pairs)
_pairs_jvp.defjvp(lambda p, t: (_pairs_jvp(*p), fm.jvp(_pairs, p, t)[1]))


@pytest.mark.parametrize("wrapped", [fm.checkpoint(_pairs), _pairs_jvp],
                         ids=["checkpoint", "custom_jvp"])
def test_under_vmap_each_field_of_a_returned_vmap_result_is_differentiated_alone(wrapped):
    # under an outer vmap the rule's outputs are the result's fields: the other field's
    # 0.0 stand-in met sqrt's infinite slope, nan for inf (round 19)
    def total(w):
        return lambda a, b: fm.sum([fm.sum(list(o)) for o in w(a, b)])

    g, want = (fm.grad(total(w), argnums=(0, 1)) for w in (wrapped, _pairs))
    loop = tuple(want(a, b) for a, b in [(4.0, 0.0), (5.0, 0.0)])
    assert fm.vmap(g)((4.0, 5.0), (0.0, 0.0)) == loop
    assert loop[0] == (8.25, math.inf)


def _gated_result(x):  # a vmap result whose examples took where's branches per example
    def example(y, c):
        a = y * c
        v = fm.cos(fm.where(a > 0.0, fm.sqrt(a), 0.0))
        return (abs(v) ** 1.5 * (1.0 + 0.1 * fm.tanh(a)), v)

    return fm.vmap(example, in_axes=(None, 0))(x, (1.0, -0.7, 1.3))


@pytest.mark.parametrize("wrapper", ["checkpoint", "custom_jvp"])
@pytest.mark.parametrize("transform", [fm.jacfwd, lambda f: lambda x: fm.jvp(f, (x,), (1.0,))[1],
                                       fm.grad, fm.jacrev])
def test_forward_mode_through_a_rule_over_a_where_gated_vmap_result_sums_its_examples(wrapper,
                                                                                   transform):
    # jacfwd of checkpoint(sum) over such a result gave the examples' terms unsummed,
    # an array of 3 for one number (found by the round-19 fuzzer)
    def total(r):
        return fm.sum(tuple(leaf * (1.0 + 0.1 * i) for i, leaf in enumerate(fm.tree.leaves(r))))

    w = fm.checkpoint(total) if wrapper == "checkpoint" else fm.custom_jvp(total)
    if wrapper == "custom_jvp":
        w.defjvp(lambda p, t: fm.jvp(total, p, t))
    got = transform(lambda x: w(_gated_result(x)))(0.5)
    want = transform(lambda x: total(_gated_result(x)))(0.5)
    assert got == pytest.approx(want, rel=1e-15) and isinstance(got, float)
