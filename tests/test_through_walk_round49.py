"""A loop that calls a jitted step under ``grad`` (a rollout of a physics
step): each call asked whether its arguments reach a variable by walking the
whole graph built so far, so n steps cost n^2 (4,000 steps of a pendulum
3.5 s for the plain step's 0.06 s; ``hessian`` of 2,000 26 s). The nodes
found to reach one are remembered (a realistic-programs probe, round 49)."""

import pytest

import fmicrograd as fm
from fmicrograd.core import control
from fmicrograd.core.expr import Var


def test_a_growing_chain_is_walked_once_in_all():
    calls = []

    def hit(n):
        calls.append(1)
        return n.op == "var"

    x = Var(0.5)
    node = x
    with control.running(10 ** 9 + 7, "fm.grad"):  # (the memo lives while transforms run)
        for _ in range(2_000):
            node = fm.sin(node) * 0.5 + 0.25
            assert control.reaches_known(node, hit, "test-chain")
    assert len(calls) < 20 * 2_000  # (about 2,000 * 2,000 / 2 when each walk went all the way)
    assert not control.reaches_known(fm.Const(1.0) * 2.0, hit, "test-chain")  # (no var)


def step(s):
    return s[0] + 0.01 * s[1], s[1] - 0.0981 * fm.sin(s[0])


@pytest.mark.parametrize("transform", [
    lambda f: fm.grad(f), lambda f: fm.jit(fm.grad(f)),
    lambda f: (lambda s: fm.jvp(f, (s,), ((1.0, 0.0),))[1]),
])
def test_a_rollout_of_a_jitted_step_differentiates_as_the_plain_one(transform):
    jitted = fm.jit(step)

    def rollout(f, n=300):
        def run(s):
            for _ in range(n):
                s = f(s)
            return s[0] * s[1]
        return run

    got = transform(rollout(jitted))((0.8, -0.3))
    want = transform(rollout(step))((0.8, -0.3))
    assert got == pytest.approx(want, rel=1e-12)


def test_nothing_is_remembered_once_the_transform_has_ended():
    # (a sweep that runs after grad's own block, on the graph of a user's Var, replays the
    # seen-through steps: the first version of the memo kept the rollout's graph, 4 MB)
    jitted = fm.jit(lambda x, v: (x + 0.1 * v, v - 0.1 * fm.sin(x)))
    w = fm.Var(0.5)

    def rollout(x):
        v = w * 1.0
        for _ in range(200):
            x, v = jitted(x, v)
        return x * x + v

    fm.grad(rollout)(0.3)
    assert not control._CLEAR
