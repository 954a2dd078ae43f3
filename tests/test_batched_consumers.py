"""A ``vmap`` result made outside a ``vmap`` and used inside it (closed over,
indexed, reduced, or mapped again by a nested ``vmap``): under every transform
it gives the numbers of the Python loop over the examples. The cotangent that
reaches it then holds one value per example of the enclosing ``vmap`` (a unit
axis of the result), which its ``Reshape`` and ``Take`` nodes must sum or keep
(it was ``ValueError: cannot reshape array`` / ``could not broadcast``)."""

import numpy as np
import pytest

import fmicrograd as fm

YS = (0.5, 1.5)
XS = (0.3, -1.2, 2.0)
ZS = (0.1, 0.4, -0.8, 1.3)
QS = (0.9, -0.6, 1.7)


def _loop_vmap(f):
    return lambda *args: tuple(f(*a) for a in zip(*args))


def _mapped_again(v, p, q):
    r = v(lambda y: p * y)(YS)
    return fm.sum(v(lambda x: fm.sum(v(lambda e: e * x * q)(r)))(XS))


def _mapped_two_deep(v, p, q):
    r = v(lambda y: p * fm.exp(y) + q)(YS)
    return fm.sum(v(lambda x: fm.sum(v(lambda z: fm.sum(v(lambda e: e * x * z)(r)))(ZS)))(XS))


def _dict_examples(v, p, q):
    r = v(lambda y: {"a": p * y, "b": (y, p * p * y)})(YS)
    return fm.sum(v(lambda x: fm.sum(v(lambda e: e["a"] * x + e["b"][1] * q)(r)))(XS))


def _indexed_inside(v, p, q):
    r = v(lambda y: p * y)(YS)
    return fm.sum(v(lambda x: fm.sum(v(lambda z: fm.sum(r) * z + r[1] * x)(ZS)))(XS))


def _nested_result(v, p, q):
    r = v(lambda z: v(lambda y: p * y * z)(YS))(ZS)
    return fm.sum(v(lambda x: fm.sum(v(lambda b: fm.sum(v(lambda e: e * x)(b)))(r)))(XS))


PROGRAMS = [_mapped_again, _mapped_two_deep, _dict_examples, _indexed_inside, _nested_result]

TRANSFORMS = {
    "grad": lambda g: fm.grad(g, argnums=(0, 1))(0.7, 1.1),
    "hessian": lambda g: fm.hessian(lambda p: g(p, 1.1))(0.7),
    "jvp": lambda g: fm.jvp(lambda p: g(p, 1.1), (0.7,), (1.0,)),
    "jit_grad_twice": lambda g: [fm.jit(fm.grad(g, argnums=(0, 1)))(p, 1.1)
                                 for p in (0.2, 0.7)],
    "vmap_grad": lambda g: fm.vmap(fm.grad(g), in_axes=(None, 0))(0.7, QS),
    "vmap_hessian": lambda g: fm.vmap(fm.hessian(g), in_axes=(None, 0))(0.7, QS),
    "grad_vmap": lambda g: fm.grad(lambda p: fm.sum(fm.vmap(lambda q: g(p, q))(QS)))(0.7),
    "jit_vmap_grad": lambda g: fm.jit(fm.vmap(fm.grad(g), in_axes=(None, 0)))(0.7, np.array(QS)),
}


@pytest.mark.parametrize("transform", sorted(TRANSFORMS))
@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_vmap_result_used_inside_vmap_matches_loop(program, transform):
    run = TRANSFORMS[transform]
    got = run(lambda p, q: program(fm.vmap, p, q))
    want = run(lambda p, q: program(_loop_vmap, p, q))
    assert fm.tree.structure(got) == fm.tree.structure(want)
    np.testing.assert_allclose(np.asarray(fm.tree.leaves(got), dtype=float),
                               np.asarray(fm.tree.leaves(want), dtype=float),
                               rtol=1e-12, atol=1e-12)


def test_first_repro():
    """The minimal case: ``r`` from one vmap, mapped again inside another."""
    def f(p):
        r = fm.vmap(lambda y: p * y)(YS)
        return fm.sum(fm.vmap(lambda x: fm.sum(fm.vmap(lambda e: e * x)(r)))(XS))

    assert fm.grad(f)(0.7) == pytest.approx(sum(YS) * sum(XS), rel=1e-12)


def _grad_of_result(v, p, q):
    """``grad`` taken with respect to a vmap result whose examples are dicts,
    one field unused (its gradient is a zero without the example axis)."""
    r = v(lambda x: {"u": p * x, "v": x * p * p})(XS)
    g = fm.grad(lambda r: fm.sum([e["u"] * e["u"] * q for e in r]))(r)
    return g[0]["u"] * 2.0 + g[2]["v"] + fm.sum([e["v"] + e["u"] for e in g])


@pytest.mark.parametrize("transform", ["plain", "jit"] + sorted(TRANSFORMS))
def test_grad_with_respect_to_vmap_result_matches_loop(transform):
    run = TRANSFORMS.get(transform) or (
        lambda g: (fm.jit(g) if transform == "jit" else g)(0.7, 1.1))
    got = run(lambda p, q: _grad_of_result(fm.vmap, p, q))
    want = run(lambda p, q: _grad_of_result(lambda f: lambda xs: [f(x) for x in xs], p, q))
    np.testing.assert_allclose(np.asarray(fm.tree.leaves(got), dtype=float),
                               np.asarray(fm.tree.leaves(want), dtype=float),
                               rtol=1e-12, atol=1e-12)


# The reducers users call on pytrees walk a vmap result example by example,
# as the Python loop's tuple (a ``Batched``'s own pytree leaves are one array
# node per output field: ``l2`` gave one number per example, or raised "a
# numpy array entered the computation").

def _clipped_total(r):
    clipped, _ = fm.optim.clip_by_global_norm(1.0).update(r, fm.optim.EmptyState())
    return fm.sum([fm.sum(fm.tree.leaves(e)) for e in clipped])


REDUCERS = {
    "l2": fm.losses.l2,
    "global_norm": fm.optim.global_norm,
    "clip_by_global_norm": _clipped_total,
    "parameters": lambda r: fm.dot(fm.nn.parameters(r), fm.nn.parameters(r)),
    "count_params": lambda r: fm.nn.count_params(r) * 1.0,
}

OUTPUTS = {
    "scalar": lambda p, x: p * x,
    "dict": lambda p, x: {"a": p * x, "b": (x * x, p * p * x)},
}

REDUCER_TRANSFORMS = {
    "grad": lambda g: fm.grad(g)(0.7),
    "hessian": lambda g: fm.hessian(g)(0.7),
    "jit": lambda g: fm.jit(g)(0.7),
    "jit_grad": lambda g: fm.jit(fm.grad(g))(0.7),
    "vmap_grad": lambda g: fm.vmap(fm.grad(g))(QS),
    "jvp": lambda g: fm.jvp(g, (0.7,), (1.0,)),
    "grad_vmap": lambda g: fm.grad(lambda p: fm.sum(fm.vmap(lambda q: g(p * q))(QS)))(0.7),
}


@pytest.mark.parametrize("transform", sorted(REDUCER_TRANSFORMS))
@pytest.mark.parametrize("output", sorted(OUTPUTS))
@pytest.mark.parametrize("reducer", sorted(REDUCERS))
def test_pytree_reducers_of_vmap_result_match_loop(reducer, output, transform):
    run, reduce, out = REDUCER_TRANSFORMS[transform], REDUCERS[reducer], OUTPUTS[output]
    got = run(lambda p: reduce(fm.vmap(lambda x: out(p, x))(XS)))
    want = run(lambda p: reduce(tuple(out(p, x) for x in XS)))
    assert fm.tree.structure(got) == fm.tree.structure(want)
    np.testing.assert_allclose(np.asarray(fm.tree.leaves(got), dtype=float),
                               np.asarray(fm.tree.leaves(want), dtype=float),
                               rtol=1e-12, atol=1e-12)


def test_l2_hessian_of_vmap_result_is_the_loops():
    """The documented example: it gave ``[2, 8, 18]``, one entry per example."""
    h = fm.hessian(lambda p: fm.losses.l2(fm.vmap(lambda x: p * x)((1.0, 2.0, 3.0))))(1.0)
    assert h == pytest.approx(28.0, rel=1e-12)


def test_reducers_of_a_vmap_result_inside_a_container_match_loop():
    def f(v):
        return lambda p: fm.losses.l2({"w": p, "r": v(lambda x: p * x)(XS)})

    loop = _loop_vmap
    assert fm.grad(f(fm.vmap))(0.7) == pytest.approx(
        fm.grad(f(lambda g: lambda xs: loop(g)(xs)))(0.7), rel=1e-12)


def _tree_walks(v):
    """A loss that walks a vmap result (``v`` is fm.vmap, or the loop) with the
    generic ``fm.tree`` functions, and reduces what they give."""
    def f(p):
        r = v(lambda x: {"a": p * x, "b": x * x - p})(XS)
        xs, td = fm.tree.flatten(r)
        _, paths, _ = fm.tree.flatten_with_paths(r)
        assert len(xs) == len(fm.tree.leaves(r)) == td.num_leaves == len(paths) == 2 * len(XS)
        assert fm.tree.structure(r) == fm.tree.structure(tuple({"a": 0.0, "b": 0.0} for _ in XS))
        assert [fm.tree.keystr(q) for q in paths][:2] == ["[0]['a']", "[0]['b']"]
        doubled = fm.tree.map(lambda x: fm.where(x > 0.0, 2.0 * x, x * x), r)
        paired = fm.tree.map(lambda x, y: x * y, r, doubled)
        named = fm.tree.map_with_path(lambda q, x: x * (3.0 if "'a'" in q else 1.0), r)
        rebuilt = fm.tree.unflatten(td, [x * x for x in xs])
        return (fm.sum(fm.tree.leaves(r)) + fm.sum(fm.tree.leaves(paired))
                + fm.sum(fm.tree.leaves(named)) + fm.sum([e["b"] for e in rebuilt]))

    return f


def _loop_of(g):
    return lambda xs: tuple(g(x) for x in xs)


@pytest.mark.parametrize("transform, points", [
    (lambda f: f, (0.7, -0.3)), (fm.jit, (0.7, -0.3)), (fm.grad, (0.7, -0.3)),
    (lambda f: fm.jit(fm.grad(f)), (0.7, -0.3)), (fm.hessian, (0.7, -0.3)),
    (lambda f: lambda p: fm.jvp(f, (p,), (1.0,))[1], (0.7, -0.3)),
    (fm.vmap, ((0.7, -0.3),)), (lambda f: fm.jit(fm.vmap(f)), ((0.7, -0.3),)),
], ids=["eager", "jit", "grad", "jit(grad)", "hessian", "jvp", "vmap", "jit(vmap)"])
def test_generic_tree_functions_take_a_vmap_result_example_by_example(transform, points):
    """``fm.tree``'s generic functions see a vmap result inside a transform as
    the loop's tuple of examples (they saw one array leaf per field: under
    ``jit``, ``fm.sum(fm.tree.leaves(r))`` was one number per example)."""
    got, want = transform(_tree_walks(fm.vmap)), transform(_tree_walks(_loop_of))
    for p in points:
        np.testing.assert_allclose(np.asarray(got(p), dtype=float),
                                   np.asarray(want(p), dtype=float), rtol=1e-12, atol=1e-12)


def test_generic_tree_functions_keep_plain_trees_and_at_and_stack_take_examples():
    def f(p):
        r = fm.vmap(lambda x: (p * x, x))(XS)
        moved = fm.tree.at(lambda t: t[1][0], r, p * 10.0)
        stacked_values = fm.tree.leaves(moved)
        return fm.sum(stacked_values)

    def loop(p):
        r = tuple((p * x, x) for x in XS)
        return fm.sum(fm.tree.leaves(fm.tree.at(lambda t: t[1][0], r, p * 10.0)))

    for t in (fm.jit, fm.grad, lambda g: fm.jit(fm.grad(g))):
        assert t(f)(0.7) == pytest.approx(t(loop)(0.7), rel=1e-12)
    # outside any transform a vmap result is the tuple already: stack gives its arrays
    out = fm.tree.stack(fm.vmap(lambda x: {"a": x, "b": 2.0 * x})(XS))
    np.testing.assert_array_equal(out["b"], 2.0 * np.asarray(XS))


@pytest.mark.parametrize("transform", [
    fm.grad, lambda f: fm.jit(fm.grad(f)), fm.hessian, lambda f: fm.jit(fm.hessian(f)),
    lambda f: fm.grad(fm.grad(f)),
], ids=["grad", "jit(grad)", "hessian", "jit(hessian)", "grad(grad)"])
def test_checkpoint_of_a_vmap_result_differentiates_as_the_loop(transform):
    # its rule's cotangent comes back one example at a time, and is laid out as the
    # vmap result's (it was "bwd cotangent 0 must match argument 0: Batched ... tuple")
    xs = (1.0, 2.0, 3.0)

    def loss(p):
        r = fm.vmap(lambda x: {"a": p * x, "b": x * x})(xs)
        return fm.checkpoint(lambda r: fm.sum([e["a"] ** 3 * e["b"] for e in r]))(r)

    def loop(p):
        return fm.sum([(p * x) ** 3 * (x * x) for x in xs])

    for p in (1.5, -0.5):
        assert transform(loss)(p) == pytest.approx(transform(loop)(p), rel=1e-12)


def _rule_over_a_vmap_result(kind):
    xs = (1.0, 2.0, 3.0)
    body = lambda r: fm.sum([e["a"] ** 3 * e["b"] for e in r])
    if kind == "checkpoint":
        wrap = fm.checkpoint(body)
    else:
        wrap = fm.custom_vjp(body)
        wrap.defvjp(lambda r: (body(r), r),
                    lambda r, ct: (tuple({"a": ct * 3.0 * e["a"] ** 2 * e["b"],
                                          "b": ct * e["a"] ** 3} for e in r),))

    def loss(p):
        return wrap(fm.vmap(lambda x: {"a": p * x, "b": x * x})(xs))

    return loss, lambda p: fm.sum([(p * x) ** 3 * (x * x) for x in xs])


_FORWARD_AND_VMAPPED = {
    "jacfwd": fm.jacfwd,
    "jacfwd(grad)": lambda f: fm.jacfwd(fm.grad(f)),
    "jacfwd(jacfwd)": lambda f: fm.jacfwd(fm.jacfwd(f)),
    "jvp": lambda f: lambda p: fm.jvp(f, (p,), (0.7,)),
    "linearize": lambda f: lambda p: fm.linearize(f, p)[1](0.7),
    "jit(jacfwd)": lambda f: fm.jit(fm.jacfwd(f)),
    "grad(jvp)": lambda f: fm.grad(lambda p: fm.jvp(f, (p,), (1.0,))[1]),
    "vmap(jacfwd)": lambda f: fm.vmap(fm.jacfwd(f)),
    "vmap(hessian)": lambda f: fm.vmap(fm.hessian(f)),
    "vmap(grad(grad))": lambda f: fm.vmap(fm.grad(fm.grad(f))),
    "jit(vmap(hessian))": lambda f: fm.jit(fm.vmap(fm.hessian(f))),
    "vmap(jacfwd(grad))": lambda f: fm.vmap(fm.jacfwd(fm.grad(f))),
}


@pytest.mark.parametrize("kind", ["checkpoint", "custom_vjp"])
@pytest.mark.parametrize("name", list(_FORWARD_AND_VMAPPED))
def test_forward_mode_and_vmapped_second_order_of_a_rule_over_a_vmap_result(name, kind):
    # forward mode multiplied the rule's partials by the vmap result's tangents
    # without summing over its examples: jacfwd(grad(loss))(1.5) was [9, 288, 2187]
    # (the loop: 2484), vmap(jacfwd(loss)) one array per example; and vmap of a
    # second derivative raised "bwd cotangent 0 must match argument 0"
    loss, loop = _rule_over_a_vmap_result(kind)
    transform = _FORWARD_AND_VMAPPED[name]
    for p in ((1.5, -0.5),) if "vmap" in name else (1.5, -0.5):
        got, want = transform(loss)(p), transform(loop)(p)
        np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                                   rtol=1e-12)


@pytest.mark.parametrize("name", ["jacfwd(grad)", "jit(jacfwd)", "grad(jvp)", "jacfwd(jacfwd)"])
def test_forward_over_reverse_through_a_rule_on_a_vmap_result_is_not_doubled(name):
    # the backward rule's per-example cotangents have a scalar term that a batched
    # zero term broadcast: summed as one, jacfwd(grad(f))(0.5) was 2.56 (the loop: 1.28)
    def f(t):
        return fm.checkpoint(fm.sum)(fm.vmap(lambda x: x * t)((0.3, 0.5))) ** 2

    def loop(t):
        return fm.checkpoint(fm.sum)(tuple(x * t for x in (0.3, 0.5))) ** 2

    transform = _FORWARD_AND_VMAPPED[name]
    if name in ("jit(jacfwd)", "jacfwd(jacfwd)"):
        transform = {"jit(jacfwd)": lambda g: fm.jit(fm.jacfwd(fm.grad(g))),
                     "jacfwd(jacfwd)": lambda g: fm.jacfwd(fm.jacfwd(g))}[name]
    np.testing.assert_allclose(np.asarray(transform(f)(0.5), dtype=float),
                               np.asarray(transform(loop)(0.5), dtype=float), rtol=1e-12)
    assert fm.jacfwd(fm.grad(f))(0.5) == pytest.approx(1.28, rel=1e-12)


def _returning_a_vmap_result(kind):
    xs = (1.0, 2.0, 3.0)

    def h(t):
        r = fm.vmap(lambda x: x * t)(xs)
        return fm.sum(r), r

    if kind == "checkpoint":
        return fm.checkpoint(h)
    if kind == "custom_vjp":
        wrapped = fm.custom_vjp(h)
        wrapped.defvjp(lambda t: (h(t), None),
                       lambda _, ct: (ct[0] * 6.0 + fm.sum([c * x for c, x in zip(ct[1], xs)]),))
        return wrapped
    wrapped = fm.custom_jvp(h)
    wrapped.defjvp(lambda primals, tangents: (h(primals[0]), (tangents[0] * 6.0, tuple(
        tangents[0] * x for x in xs))))
    return wrapped


@pytest.mark.parametrize("kind", ["checkpoint", "custom_vjp", "custom_jvp"])
def test_a_rule_returning_a_vmap_result_and_a_number_under_vmap(kind):
    # the number was broadcast to the vmap result's shape, the inner examples' axis
    # included: vmap gave a 3 x 2 array per example, grad and jit raised
    h = _returning_a_vmap_result(kind)
    ss = (0.5, 2.0)
    assert fm.vmap(lambda s: h(s + 0.0)[0])(ss) == (3.0, 12.0)
    assert fm.jit(fm.vmap(lambda s: h(s + 0.0)[0]))(ss) == (3.0, 12.0)
    assert fm.vmap(lambda s: h(s + 0.0)[1][2])(ss) == (1.5, 6.0)
    assert fm.grad(lambda w: fm.mean(fm.vmap(lambda s: h(s * w)[0])(ss)))(1.0) == 7.5
    assert fm.vmap(fm.grad(lambda s: h(s * 2.0)[0]))(ss) == (12.0, 12.0)


def test_vmap_of_checkpoint_of_an_inner_vmap_result_is_one_number_per_example():
    # the rule's outputs were broadcast to the inner result's shape: each example
    # came back as a 3 x 2 array of the right numbers instead of one number
    xs = (1.0, 2.0, 3.0)

    def loss(p):
        r = fm.vmap(lambda x: p * x)(xs)
        return fm.checkpoint(lambda r: fm.sum([e * e * e for e in r]))(r)

    def loop(p):
        return fm.sum([(p * x) ** 3 for x in xs])

    ps = (1.5, 2.0)
    assert fm.vmap(loss)(ps) == pytest.approx(fm.vmap(loop)(ps), rel=1e-12)
    assert fm.jit(fm.vmap(loss))(ps) == pytest.approx(fm.vmap(loop)(ps), rel=1e-12)


@pytest.mark.parametrize("transform", [
    lambda f: fm.vmap(fm.jacfwd(f)), lambda f: fm.vmap(lambda t: fm.jvp(f, (t,), (1.0,))[1]),
    lambda f: fm.vmap(lambda t: fm.linearize(f, t)[1](1.0)),
], ids=["vmap(jacfwd)", "vmap(jvp)", "vmap(linearize)"])
def test_forward_mode_through_an_example_no_where_branch_takes(transform):
    # the tangent of r[0] exists on no lane: masking it raised AttributeError
    # ('bool' object has no attribute 'shape')
    def f(v):
        def g(t):
            r = v(lambda x: fm.where(x > 0.5, x * t, 0.0))((0.2 * t, 0.9 * t))
            return fm.sin(r[0]) * 2.0 + r[1] + fm.sum(list(r))
        return g

    ts = (1.0, 2.0)
    assert transform(f(fm.vmap))(ts) == transform(f(_loop_of))(ts)


@pytest.mark.parametrize("make", [lambda: fm.optim.clip_by_global_norm(1.0),
                                  lambda: fm.optim.adam(0.1), lambda: fm.optim.sgd(0.1, 0.9)],
                         ids=["clip", "adam", "momentum"])
def test_optimizers_take_a_vmap_result_example_by_example(make):
    # clip_by_global_norm returned the lazy batch, and apply_updates then refused it
    # against the loop's tuple ("tuple of 3 children ... Batched of 2 children")
    def loss(v):
        def g(t):
            opt = make()
            r = v(lambda x: (x * t, fm.sin(x * t)))((1.0, 2.0, 3.0))
            u, _ = opt.update(r, opt.init(r))
            return fm.sum(fm.tree.leaves(fm.optim.apply_updates(((0.0, 0.0),) * 3, u)))
        return g

    for transform in (fm.grad, lambda f: fm.jit(fm.grad(f))):
        assert transform(loss(fm.vmap))(0.7) == pytest.approx(transform(loss(_loop_of))(0.7),
                                                                rel=1e-13)


def test_forward_mode_through_a_rule_returning_a_vmap_result_under_vmap():
    # the rule's unit-cotangent partials added up the result's examples: each
    # example's tangent was their sum ((0.195, 0.195) where the loop has (0.026, 0.169))
    def make(v):
        def g(th):
            return {"r": v(lambda x: x * th[1])((th[0] * 0.11, th[0] * 0.72))}

        h = fm.custom_jvp(g)
        h.defjvp(lambda primals, tangents: fm.jvp(g, primals, tangents))
        return h

    def stacks(h):
        at = lambda s, th: tuple(t + s for t in th)
        return (fm.vmap(lambda s, th: fm.linearize(h, at(s, th))[1]((0.3, 0.2)),
                        in_axes=(0, None))((0.1, -0.2), (0.348, 0.384)),
                fm.vmap(lambda s, th: fm.jvp(h, (at(s, th),), ((0.3, 0.2),))[1],
                        in_axes=(0, None))((0.1, -0.2), (0.348, 0.384)))

    got, want = stacks(make(fm.vmap)), stacks(make(_loop_of))
    np.testing.assert_allclose(np.asarray(fm.tree.leaves(got)), np.asarray(fm.tree.leaves(want)),
                               rtol=1e-13)


def test_jacfwd_of_a_vmap_result_inside_vmap_is_refused_naming_the_fix():
    # with one inner example every lane got lane 0's Jacobian; with more, an IndexError
    def make(v, wrap):
        def g(th):
            r = v(lambda x: x * th + 0.2)((th * 0.74, th * 0.3))
            return fm.sum(fm.tree.leaves(fm.jacfwd(lambda q: fm.tree.map(fm.sin, q))(wrap(r))))
        return g

    outer = lambda g: fm.vmap(lambda s: g(0.853 * s))((1.0, 0.5, 1.3))
    with pytest.raises(TypeError, match=r"jacfwd: an argument is a vmap result inside another "
                                        r"vmap.*pass tuple\(r\)"):
        outer(make(fm.vmap, lambda r: r))
    assert outer(make(fm.vmap, tuple)) == pytest.approx(outer(make(_loop_of, tuple)), rel=1e-13)
    assert make(fm.vmap, lambda r: r)(0.853) == pytest.approx(make(_loop_of, tuple)(0.853),
                                                              rel=1e-13)  # (no outer vmap)
