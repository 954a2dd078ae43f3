"""Sums and means of signed zeros: eager gives what jit and vmap give, the
IEEE sum of the items from the first one (so the sum of -0.0s is -0.0, where
Python's sum starts from 0 and gives 0.0), and the sign reaches functions that
read it (atan2) the same way on every path."""

import functools
import math
import operator

import pytest
import torch

import fmicrograd as fm

Z = -0.0


def sign(x):
    return math.copysign(1.0, x)


@pytest.mark.parametrize("f", [
    lambda a: fm.sum([a, a]),
    lambda a: fm.sum([a] * 4),
    lambda a: fm.mean([a, a, a]),
    lambda a: fm.sum([a, 0.0]),
    lambda a: fm.sum([0.0, a]),
], ids=["sum2", "sum4", "mean", "sum-then-zero", "zero-then-sum"])
def test_every_path_gives_the_same_zero(f):
    eager = f(Z)
    assert [sign(v) for v in (fm.jit(f)(Z), *fm.vmap(f)((Z, Z)),
                              *fm.jit(fm.vmap(f))((Z, Z)))] == [sign(eager)] * 5


def test_the_zero_is_the_ieee_sum_from_the_first_item():
    for items in ([Z, Z], [Z], [Z, 0.0], [0.0, Z], [Z, Z, Z]):
        want = sign(functools.reduce(operator.add, items))
        assert sign(fm.sum(items)) == want
        assert sign(fm.sum([fm.Var(v) for v in items]).value) == want


def test_atan2_of_a_sum_of_negative_zeros_is_the_same_with_jit():
    def f(x):
        return fm.atan2(x * 2.0, fm.sum([x] * 4))

    want = math.atan2(Z * 2.0, Z + Z + Z + Z)  # -pi
    assert f(Z) == fm.jit(f)(Z) == fm.jit(fm.vmap(f))((Z, Z))[0] == want  # eager gave -0.0


def test_empty_sums_are_the_number_zero():
    for r in (fm.sum([]), fm.dot([], []), fm.dot((), ())):
        assert r.__class__ is float and r == 0.0 and sign(r) == 1.0  # dot([], []) was a node


@pytest.mark.parametrize("f, torch_f, args, argnums", [
    (lambda x: fm.sign(x) + 0.5 * (x * x), lambda x: torch.sign(x) + 0.5 * (x * x), (-0.0,), 0),
    (lambda x, y: y ** x, lambda x, y: y ** x, (-0.0, 710.0), 1),
    (lambda x, y: y ** x, lambda x, y: y ** x, (-0.0, 2.0), 1),
])
def test_a_zero_slope_beside_a_negative_zero_is_torchs_zero_under_every_path(f, torch_f, args,
                                                                            argnums):
    # jit (and debug_nans, whose inner transforms build graphs) gave -0.0 where eager and
    # torch give 0.0: the graph sweep dropped sign's 0.0 slope, and pow's masked slope on
    # nodes was b / a * a ** b = -0.0 at b = -0.0 (a helper's fuzzing, round 46)
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    want = torch.autograd.grad(torch_f(*ts), ts[argnums])[0].item()
    assert want == 0.0 and math.copysign(1.0, want) == 1.0
    g = fm.grad(f, argnums=argnums)
    for path in (g, fm.jit(g), fm.debug_nans(g)):
        got = path(*args)
        assert got == 0.0 and math.copysign(1.0, got) == 1.0, (path, got)
