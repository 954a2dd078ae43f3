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


def _loop(f, argnums, c):
    return tuple(fm.grad(f, argnums=argnums)(x, c) for x in XS)


@pytest.mark.parametrize("c", [2.0, 0.5, -1.0])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_per_example_gradients_of_an_unmapped_argument_match_the_loop(name, c) -> None:
    f = FUNCTIONS[name]
    for argnums in (1, (0, 1)):
        want = _loop(f, argnums, c)
        g = fm.grad(f, argnums=argnums)
        for stack in (lambda h: fm.vmap(h, in_axes=(0, None)),
                      lambda h: fm.vmap(fm.jit(h), in_axes=(0, None)),
                      lambda h: fm.jit(fm.vmap(h, in_axes=(0, None)))):
            got = stack(g)(XS, c)
            assert fm.tree.structure(got) == fm.tree.structure(want)
            assert fm.tree.leaves(got) == pytest.approx(fm.tree.leaves(want), rel=1e-13)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_gradient_of_the_batch_sum_in_the_unmapped_argument(name) -> None:
    f = FUNCTIONS[name]
    total = lambda c: fm.sum(fm.vmap(f, in_axes=(0, None))(XS, c))  # noqa: E731
    want = sum(_loop(f, 1, 2.0))
    assert fm.grad(total)(2.0) == pytest.approx(want, rel=1e-13)
    assert fm.jit(fm.grad(total))(2.0) == pytest.approx(want, rel=1e-13)
    assert fm.grad(fm.jit(total))(2.0) == pytest.approx(want, rel=1e-13)
