"""Under ``vmap``, a ``fm.where`` condition computed from a per-example comparison
(``(x > 0.0) * 1.0``, ``fm.where(x > 0.0, x > 1.0, x < -5.0)``) picks a branch per
example as the loop's float does, even where ``x`` is differentiated: the
branch not taken gets no cotangent, so its infinite slope is not 0 * inf.

Until round 30 such a condition, reaching ``grad``'s variable through the
comparison's operands, kept ``where`` a torch-style select: ``vmap(grad)`` gave
NaN where the loop gives 0.0 (a bare comparison, ``&`` and ``|`` were right)."""

from __future__ import annotations

import math

import pytest

import fmicrograd as fm

CONDITIONS = {
    "product": lambda x: (x > 0.0) * 1.0,
    "nested where": lambda x: fm.less(fm.where(x > 0.0, -1.0, -2.0), 0.0),
    "where of comparisons": lambda x: fm.where(x > 0.0, x > 1.0, x < -5.0),
    "bare": lambda x: x > 0.0,
}
XS, YS = (1.0, -1.0, 2.0, -7.0), (0.0, 0.0, 4.0, 0.0)


def _same(a, b):
    return all(p == q or (math.isnan(p) and math.isnan(q)) for p, q in zip(a, b))


@pytest.mark.parametrize("name", sorted(CONDITIONS))
@pytest.mark.parametrize("transform", ["vmap", "jit_vmap", "vmap_jit"])
def test_vmap_of_grad_is_the_loop(name, transform):
    cond = CONDITIONS[name]
    g = fm.grad(lambda x, y: fm.where(cond(x), x, fm.sqrt(y)), argnums=(0, 1))
    loop = [g(x, y) for x, y in zip(XS, YS)]
    mapped = {"vmap": fm.vmap(g), "jit_vmap": fm.jit(fm.vmap(g)),
              "vmap_jit": fm.vmap(fm.jit(g))}[transform](XS, YS)
    assert not any(math.isnan(d) for pair in loop for d in pair)
    assert len(mapped) == len(loop)
    assert all(_same(m, want) for m, want in zip(mapped, loop))


def test_grad_of_a_sum_over_examples():
    def total(xs, y):
        return fm.sum(fm.vmap(lambda x: fm.where((x > 0.0) * 1.0, x, fm.sqrt(y)))(xs))

    dxs, dy = fm.grad(total, argnums=(0, 1))(XS[:3], 1.0)
    assert dxs == (1.0, 0.0, 1.0) and dy == pytest.approx(0.5)


def test_a_node_condition_of_the_users_own_is_still_a_select():
    # fm.greater(x, 0.0) is a node in the loop too: torch's where, whose branch not
    # taken gets a zero cotangent (0 * inf is NaN there, in the loop as under vmap)
    g = fm.grad(lambda x, y: fm.where(fm.greater(x, 0.0), x, fm.sqrt(y)), argnums=(0, 1))
    loop = [g(x, y) for x, y in zip(XS[:2], YS[:2])]
    mapped = fm.vmap(g)(XS[:2], YS[:2])
    assert math.isnan(loop[0][1]) and all(_same(m, want) for m, want in zip(mapped, loop))
