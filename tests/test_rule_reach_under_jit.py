"""A rule's reach decided by a ``vmap`` branch, under ``jit``.

Inside ``jit``, a ``checkpoint``'s second-order reverse mode asked which
argument each output reaches (``presence.reached``) on the trace's values: an
example whose ``where`` took the other branch left its term out of the
compiled program, with no guard. A later call at values that take the branch
gave the first call's numbers (round 22's known item, fuzzer seed 270197).
The function now runs as Python where that reach depended on a branch.
"""

import itertools

import pytest

import fmicrograd as fm

POINTS = [(-1.285, 1.341), (-0.609, -1.126), (0.3, 0.2), (2.0, -1.0)]


def per_example(y, c):
    a0, a1 = y[0] * c, y[1] * c
    return fm.where(a0 > a1, a0 * a1, a0 - a1)


def mapped(x):
    return fm.vmap(per_example, in_axes=(None, 0))(x, (1.0, -0.7, 1.3))


def own_rule(fn):
    g = fm.custom_jvp(fn)
    g.defjvp(lambda p, t: fm.jvp(fn, p, t))
    return g


WRAPPERS = {"checkpoint": fm.checkpoint, "custom_jvp": own_rule, "jit": fm.jit}
STACKS = {
    "hessian": fm.hessian,
    "jacrev(grad)": lambda f: fm.jacrev(fm.grad(f)),
    "jacfwd(grad)": lambda f: fm.jacfwd(fm.grad(f)),
    "jacfwd(jacfwd)": lambda f: fm.jacfwd(fm.jacfwd(f)),
    "grad": fm.grad,
}


@pytest.mark.parametrize("wrapper,stack", list(itertools.product(WRAPPERS, STACKS)))
def test_each_call_gets_its_own_branches(wrapper, stack):
    wrapped = WRAPPERS[wrapper](mapped)
    compiled = fm.jit(STACKS[stack](lambda y: fm.sum(wrapped(y))))
    loop = STACKS[stack](lambda y: fm.sum(mapped(y)))
    for point in POINTS + POINTS[::-1]:  # every point after one taking other branches
        got, want = fm.tree.leaves(compiled(point)), fm.tree.leaves(loop(point))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (point, got, want)


def test_the_hessian_is_not_the_first_calls():
    # the numbers of the report: the cross term is 2.69 at the first point, 0.49 at the second
    h = fm.jit(fm.hessian(lambda y: fm.sum(fm.checkpoint(mapped)(y))))
    assert h(POINTS[1])[0][1] == pytest.approx(2.69, abs=1e-12)
    assert h(POINTS[0])[0][1] == pytest.approx(0.49, abs=1e-12)
    assert "not compiled" in h.lower(POINTS[0]).as_text()
    assert "which vmap examples take a where branch" in h.lower(POINTS[0]).as_text()


def test_a_reach_without_branches_still_compiles():
    # the same stack without a where: nothing for a branch to decide
    def smooth(x):
        return fm.vmap(lambda y, c: fm.tanh(y[0] * c) * y[1], in_axes=(None, 0))(x, (1.0, -0.7))

    h = fm.jit(fm.hessian(lambda y: fm.sum(fm.checkpoint(smooth)(y))))
    want = fm.tree.leaves(fm.hessian(lambda y: fm.sum(smooth(y)))(POINTS[0]))
    assert fm.tree.leaves(h(POINTS[0])) == pytest.approx(want, rel=1e-12)
    assert h.lower(POINTS[0]).as_text().startswith("# fm.jit(<lambda>): batched backend")


def test_a_first_order_gradient_still_compiles():
    g = fm.jit(fm.grad(lambda y: fm.sum(fm.checkpoint(mapped)(y))))
    for point in POINTS:
        want = fm.grad(lambda y: fm.sum(mapped(y)))(point)
        assert g(point) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert "batched backend" in g.lower(POINTS[0]).as_text()
