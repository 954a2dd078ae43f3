"""A transform inside ``vmap(grad(...))`` that closes over the outer
``grad``'s variable: under ``vmap`` that variable holds a batch (a node), and
the inner sweep or ``jit`` must still see it as an enclosing transform's
variable (build derivatives as graphs, not compile it as a constant).
Each case is compared with the loop over examples."""

import pytest

import fmicrograd as fm

CS = [0.4, 0.9]
XS = [0.3, -1.1, 2.0]


def _inner_grad(c):
    return fm.grad(lambda y: fm.sin(y) * c * c)(1.5)


def _inner_grad_under_vmap(c):
    return fm.sum(fm.vmap(lambda x: fm.grad(lambda y: fm.sin(y) * y * c)(x) * x)(XS))


def _jit_closure(c):
    return fm.jit(lambda x: x * c * c)(1.5)


def _jit_grad_closure(c):
    return fm.jit(fm.grad(lambda y: fm.sin(y) * c * c))(1.5)


def _inner_jvp(c):
    return fm.jvp(lambda y: fm.sin(y) * c * c, (1.5,), (1.0,))[1]


CASES = [_inner_grad, _inner_grad_under_vmap, _jit_closure, _jit_grad_closure, _inner_jvp]


@pytest.mark.parametrize("h", CASES, ids=lambda h: h.__name__)
def test_vmap_of_grad_matches_the_loop(h):
    got = fm.vmap(fm.grad(h))(CS)
    want = [fm.grad(h)(c) for c in CS]
    assert all(isinstance(g, float) for g in got)
    assert list(got) == pytest.approx(want, rel=1e-12)
    assert want[0] != 0.0


@pytest.mark.parametrize("h", CASES, ids=lambda h: h.__name__)
def test_vmap_of_jvp_matches_the_loop(h):
    got = fm.vmap(lambda c: fm.jvp(h, (c,), (1.0,)))(CS)
    want = [fm.jvp(h, (c,), (1.0,)) for c in CS]
    assert fm.tree.leaves(got) == pytest.approx(fm.tree.leaves(want), rel=1e-12)
