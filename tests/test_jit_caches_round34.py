"""The jit-staleness probe's findings (round 34): ``vmap(jit(f))`` decides a
Python branch as the trace computed it (the exact guards ``jit`` alone has),
and a registered pytree node's aux data keys a program by type and bits."""

import numpy as np
import pytest

import fmicrograd as fm

AXES = (0, None, None, None, None)
TIE = (0.1, 0.2, -0.1, -0.2)  # (0.1 + 0.2) + (-0.1 + -0.2) is 0.0; regrouped, 2.8e-17


def _tied(x, a, b, c, d):
    return x * x * (1.0 if (a + b) + (c + d) > 0.0 else 2.0)


def test_vmap_of_jit_takes_the_traced_branch_at_a_tie():
    xs = np.array([1.0, 2.0])
    eager = list(fm.vmap(_tied, in_axes=AXES)(xs, *TIE))
    assert eager == [2.0, 8.0]
    v = fm.vmap(fm.jit(_tied), in_axes=AXES)
    assert list(v(xs, 0.5, 0.5, 0.5, 0.5)) == [1.0, 4.0]
    assert list(v(xs, *TIE)) == eager  # (was [1.0, 4.0]: the other branch's program)
    fresh = fm.vmap(fm.jit(_tied), in_axes=AXES)
    assert list(fresh(xs, *TIE)) == eager  # (was a RuntimeError: a variant rejected its inputs)
    assert list(fresh(xs, 0.5, 0.5, 0.5, 0.5)) == [1.0, 4.0]


def test_grad_through_vmap_of_jit_at_a_tie():
    def loss(f):
        return lambda xs: fm.sum(fm.vmap(f, in_axes=AXES)(xs, *TIE))

    want = fm.grad(loss(_tied))((1.0, 2.0))
    assert want == (4.0, 8.0)
    jitted = fm.jit(_tied)
    fm.vmap(jitted, in_axes=AXES)(np.array([1.0, 2.0]), 0.5, 0.5, 0.5, 0.5)
    assert fm.grad(loss(jitted))((1.0, 2.0)) == want


def test_vmap_of_jit_compares_fm_exp_not_numpys():
    a = 4.808353387762301  # math.exp and numpy's exp differ in the last bit here
    c = float(fm.exp(a))

    def f(x, a, c):
        return x * (1.0 if fm.exp(a) >= c else 2.0)

    xs, axes = np.array([1.0, 2.0]), (0, None, None)
    assert list(fm.vmap(f, in_axes=axes)(xs, a, c)) == [1.0, 2.0]
    v = fm.vmap(fm.jit(f), in_axes=axes)
    assert list(v(xs, 0.0, 5.0)) == [2.0, 4.0]
    assert list(v(xs, a, c)) == [1.0, 2.0]
    assert list(fm.vmap(fm.jit(f), in_axes=axes)(xs, a, c)) == [1.0, 2.0]


def test_vmap_of_jit_with_batched_and_scalar_inputs_checks_the_scalars():
    def h(x, a, b):
        return x * (1.0 if a > 0.3 else 2.0) + x * b  # (a guard reads a, not x)

    inner = fm.vmap(fm.jit(h), in_axes=(0, None, None))
    outer = fm.vmap(inner, in_axes=(0, None, None))  # per-example nodes reach jit
    plain = fm.vmap(fm.vmap(h, in_axes=(0, None, None)), in_axes=(0, None, None))
    xs = ((1.0, 2.0), (3.0, 4.0))
    for a, b in [(0.5, 0.2), (0.1, 0.2), (0.5, 0.7), (0.2, 0.1)]:
        assert outer(xs, a, b) == plain(xs, a, b)


class _Box:
    def __init__(self, x, c):
        self.x, self.c = x, c


@pytest.fixture(scope="module")
def box():
    try:
        fm.tree.register(_Box, lambda s: ((s.x,), s.c), lambda c, ch: _Box(ch[0], c))
    except ValueError:
        pass  # (registered by an earlier run in this process)
    return _Box


def test_a_registered_nodes_aux_data_keys_jit_by_type_and_bits(box):
    def kind(s):
        return s.x * (2.0 if isinstance(s.c, bool) else 3.0)

    f = fm.jit(kind)
    assert [f(box(2.0, 1)), f(box(2.0, True)), f(box(2.0, 1))] == [6.0, 4.0, 6.0]
    g = fm.jit(lambda s: s.x * s.c)
    assert str(g(box(2.0, 0.0))) == "0.0" and str(g(box(2.0, -0.0))) == "-0.0"
    v = fm.vmap(fm.jit(kind))
    assert v([box(1.0, 1), box(2.0, 1)]) == (3.0, 6.0)
    assert v([box(1.0, True), box(2.0, True)]) == (2.0, 4.0)


def test_keyword_arguments_reach_a_call_with_constant_nodes():
    # (review 6: jit dropped the keywords of a top-level call whose nodes reach no variable)
    c = fm.Const(1.0) * 2.0

    def f(x, y=1.0):
        return x * y

    assert fm.jit(f)(c, y=3.0).value == f(c, y=3.0).value == 6.0

    def g(x, *, mode="a"):
        return x * (2.0 if mode == "a" else 3.0)

    assert fm.jit(g, static_argnames=("mode",))(c, mode="b").value == 6.0
