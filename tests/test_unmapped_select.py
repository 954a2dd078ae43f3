"""A derivative rule's select whose condition reads only an unmapped
argument of ``vmap`` (``in_axes=None``) picks one branch for the whole batch;
its value must still have the batch's shape, or the compiled code (which
broadcasts) gave each example the whole batch, or failed to reshape."""

from __future__ import annotations

import pytest

import fmicrograd as fm

XS = (1.0, 2.0, 3.0)

FUNCTIONS = {
    "clip": lambda a, c: a * fm.clip(c, 0.2, 0.8) + fm.exp(c),
    "pow": lambda a, c: (a + c) ** c,
    "hypot": lambda a, c: fm.hypot(a, fm.clip(c, 0.2, 0.8)) + c * c,
    "where": lambda a, c: fm.where(fm.less_equal(a, 2.5), fm.clip(c, 0.2, 0.8) * a, a + c),
}


def _same_under_every_stack(g, args, want) -> None:
    """``vmap(g, in_axes=(0, None))``, with jit inside and outside, equals the loop's
    ``want`` in structure (a float per example) and values."""
    for stack in (lambda h: fm.vmap(h, in_axes=(0, None)),
                  lambda h: fm.vmap(fm.jit(h), in_axes=(0, None)),
                  lambda h: fm.jit(fm.vmap(h, in_axes=(0, None)))):
        got = stack(g)(*args)
        assert fm.tree.structure(got) == fm.tree.structure(want)
        assert fm.tree.leaves(got) == pytest.approx(fm.tree.leaves(want), rel=1e-13)


def _loop(f, argnums, c):
    return tuple(fm.grad(f, argnums=argnums)(x, c) for x in XS)


@pytest.mark.parametrize("c", [2.0, 0.5, -1.0])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_per_example_gradients_of_an_unmapped_argument_match_the_loop(name, c) -> None:
    f = FUNCTIONS[name]
    for argnums in (1, (0, 1)):
        want = _loop(f, argnums, c)
        g = fm.grad(f, argnums=argnums)
        _same_under_every_stack(g, (XS, c), want)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradient_of_the_batch_sum_in_the_unmapped_argument(name) -> None:
    f = FUNCTIONS[name]
    total = lambda c: fm.sum(fm.vmap(f, in_axes=(0, None))(XS, c))  # noqa: E731
    want = sum(_loop(f, 1, 2.0))
    assert fm.grad(total)(2.0) == pytest.approx(want, rel=1e-13)
    assert fm.jit(fm.grad(total))(2.0) == pytest.approx(want, rel=1e-13)
    assert fm.grad(fm.jit(total))(2.0) == pytest.approx(want, rel=1e-13)


def _tanh_prod(w, x):
    return fm.tanh(w * x)


def _inner_sum(w, xs):
    return fm.sum(fm.vmap(_tanh_prod, in_axes=(None, 0))(w, xs))


def _loop_grad_xs(w, xs):
    return fm.grad(lambda v, ys: fm.sum([_tanh_prod(v, y) for y in ys]), argnums=1)(w, xs)


@pytest.mark.parametrize("ws", [(0.3, -0.7), (0.3,)], ids=["two", "one"])
def test_gradient_for_an_argument_only_the_inner_vmap_maps(ws) -> None:
    """One gradient per outer example for the data an inner vmap maps: the
    cotangent keeps the outer axis that the stacked data lacks (it was a
    broadcast error, and with one outer example a list per float)."""
    want = tuple(_loop_grad_xs(w, XS) for w in ws)
    g = fm.grad(_inner_sum, argnums=1)
    _same_under_every_stack(g, (ws, XS), want)


@pytest.mark.parametrize("ws", [(0.3, -0.7), (0.3,)], ids=["two", "one"])
def test_outer_gradient_through_nested_vmaps_sums_the_outer_examples(ws) -> None:
    nested = fm.vmap(fm.vmap(_tanh_prod, in_axes=(None, 0)), in_axes=(0, None))
    total = lambda a, b: fm.sum([fm.sum(list(o)) for o in nested(a, b)])  # noqa: E731
    want = fm.grad(lambda a, b: fm.sum([_tanh_prod(x, y) for x in a for y in b]),
                   argnums=1)(ws, XS)
    for g in (fm.grad(total, argnums=1), fm.jit(fm.grad(total, argnums=1)),
              fm.grad(fm.jit(total), argnums=1)):
        got = g(ws, XS)
        assert fm.tree.structure(got) == fm.tree.structure(want)  # floats, not lists
        assert got == pytest.approx(want, rel=1e-13)


def test_second_order_through_an_inner_vmap_of_jit_under_an_outer_vmap() -> None:
    """``f`` ignores ``y``: the compiled call's zero cotangent for it was a raw
    array, which the outer Jacobian refused."""
    f = lambda x, y: fm.sin(x)  # noqa: E731
    g = lambda x, y: fm.sum(fm.vmap(fm.jit(f))(x, y))  # noqa: E731
    plain = lambda x, y: fm.sum(fm.vmap(f)(x, y))  # noqa: E731
    xs, ys = ((0.1, 0.3), (0.5, 0.7)), ((0.2, 0.4), (0.6, 0.8))
    for stack in (lambda h: fm.vmap(fm.jacrev(fm.grad(h, argnums=1))),
                  lambda h: fm.vmap(fm.hessian(h, argnums=(0, 1))),
                  lambda h: fm.vmap(fm.jacfwd(fm.grad(h, argnums=(0, 1))))):
        got, want = stack(g)(xs, ys), stack(plain)(xs, ys)
        assert fm.tree.structure(got) == fm.tree.structure(want)
        assert fm.tree.leaves(got) == pytest.approx(fm.tree.leaves(want), rel=1e-13, abs=0)


def _two_outputs():
    @fm.custom_vjp
    def f(u, v):
        return (v, u * v)

    f.defvjp(lambda u, v: (f(u, v), (u, v)), lambda r, g: (r[1] * g[1], g[0] + r[0] * g[1]))
    return f


@pytest.mark.parametrize("make", [_two_outputs, lambda: fm.checkpoint(lambda u, v: (v, u * v))],
                         ids=["custom_vjp", "checkpoint"])
def test_a_custom_output_that_reads_only_unmapped_values_is_not_counted_per_example(make) -> None:
    """The first output is ``v`` (unmapped), the rule's other output is per
    example: its summed cotangent was broadcast against the per-example
    residual and summed again, the gradient B times too large."""
    f = make()
    one = lambda a, c: f(c, a)[0]  # noqa: E731  (= a, d/da = 1 per example)
    mapped = fm.vmap(one, in_axes=(None, 0))
    assert fm.grad(lambda a, cs: fm.sum(mapped(a, cs)))(0.5, XS) == 3.0
    assert fm.jit(fm.grad(lambda a, cs: fm.sum(mapped(a, cs))))(0.5, XS) == 3.0
    assert fm.vjp(mapped, 0.5, XS)[1]((1.0, 1.0, 1.0))[0] == 3.0
    assert fm.jacrev(mapped)(0.5, XS) == (1.0, 1.0, 1.0)
    assert fm.jvp(fm.jit(mapped), (0.5, XS), (1.0, (0.0,) * 3))[1] == (1.0, 1.0, 1.0)
    assert mapped(0.5, XS) == (0.5, 0.5, 0.5)


def test_grouped_selects_whose_condition_reads_only_an_unmapped_value_keep_their_rows() -> None:
    """Two ``**`` nodes sharing an unmapped exponent: the compiler groups their
    masks (``b == 0``), whose predicate reads only the exponent, so the
    group's condition had one row where the group has two, and the program
    failed to reshape (found by a differential fuzzer)."""
    def f(x, e):
        b = fm.tanh(e)
        return (x * x + 0.5) ** b + ((x + 1.0) * (x + 1.0) + 0.5) ** b

    xs = (-0.36, -1.28, 0.17, -1.53, 1.78)
    loop = [fm.grad(f, argnums=(0, 1))(x, 1.95) for x in xs]
    for stack in (lambda g: fm.vmap(fm.jit(g), in_axes=(0, None)),
                  lambda g: fm.jit(fm.vmap(g, in_axes=(0, None)))):
        got = stack(fm.grad(f, argnums=(0, 1)))(xs, 1.95)
        assert len(got) == len(loop)
        for g, want in zip(got, loop):
            assert g == pytest.approx(want, rel=1e-13, abs=0)
