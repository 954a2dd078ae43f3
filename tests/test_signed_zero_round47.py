"""Signed zeros where jit's float code, vmap and the array code met eager
differently (round 47): a dot of -0.0 products, which eager fm started from
0.0 (giving 0.0) while every compiled path sums from the first product
(giving -0.0), and maximum/minimum/clip at a tie of 0.0 and -0.0, where eager
returns the first argument and numpy's and torch's tensors the second."""

import math

import numpy as np
import pytest
import torch

import fmicrograd as fm


def sign(x):
    return math.copysign(1.0, float(x))


def _branchy(x, y):
    if 1.0 / fm.dot([x], [y]) < 0.0:  # at (0, -1) the product is -0.0: 1 / -0.0 is -inf
        return x * 10.0
    return x - 1.0


@pytest.mark.parametrize("traced_at", [(1.0, -1.0), (1.0, 1.0)])
def test_jit_takes_eagers_branch_on_the_sign_of_a_dot(traced_at):
    eager = _branchy(fm.Var(0.0), fm.Var(-1.0)).value
    assert eager == 0.0  # (the first branch, as for -1.0 * 0.0 without a dot)
    jitted, slope = fm.jit(_branchy), fm.jit(fm.grad(_branchy))
    jitted(*traced_at), slope(*traced_at)  # traced on the branch taken there
    assert jitted(0.0, -1.0) == eager
    assert slope(0.0, -1.0) == fm.grad(_branchy)(0.0, -1.0) == 10.0


@pytest.mark.parametrize("n", [1, 2, 3])
def test_a_dot_of_negative_zero_products_is_negative_zero_on_every_path(n):
    def f(x, y):
        return fm.dot([x] * n, [y] * n)

    xs, ys = np.array([0.0, 0.0, 1.0]), np.array([-1.0, -1.0, 2.0])
    got = {
        "floats": f(0.0, -1.0),
        "eager": f(fm.Var(0.0), fm.Var(-1.0)).value,
        "jit": fm.jit(f)(0.0, -1.0),
        "vmap": fm.vmap(f)(xs, ys)[0],
        "jit(vmap)": fm.jit(fm.vmap(f))(xs, ys)[0],
        "to_torch": fm.to_torch(f, in_axes=(0, 0))(torch.tensor(xs), torch.tensor(ys))[0],
    }
    assert {k: sign(v) for k, v in got.items()} == dict.fromkeys(got, -1.0)
    # and what reads that sign: log's slope 1 / dot, reverse and forward
    g = lambda x, y: fm.log(fm.dot([x] * n, [y] * n))  # noqa: E731
    assert fm.jit(fm.grad(g))(-0.0, 2.0) == fm.grad(g)(-0.0, 2.0) == -math.inf
    jvp = lambda x: fm.jvp(lambda v: g(v, 2.0), (x,), (1.0,))  # noqa: E731
    assert fm.jit(jvp)(-0.0) == jvp(-0.0) == (-math.inf, -math.inf)


TIES = [(0.0, -0.0), (-0.0, 0.0)]
FUNCS = {
    "maximum": lambda a, b: fm.maximum(a, b),
    "minimum": lambda a, b: fm.minimum(a, b),
    "clip-lo": lambda a, b: fm.clip(a, b, 1.0),
    "clip-hi": lambda a, b: fm.clip(a, -1.0, b),
}


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("a, b", TIES)
def test_a_tie_of_zeros_gives_eagers_zero_on_every_path(name, a, b):
    f = FUNCS[name]
    want = sign(f(fm.Var(a), fm.Var(b)).value)
    assert sign(f(a, b)) == want
    # (20 examples: torch's kernels take 8-wide vector blocks, and give the second
    # argument there, the first in their scalar loops and tails)
    xs, ys = np.array([a] * 19 + [2.0]), np.array([b] * 19 + [3.0])
    got = {
        "jit": fm.jit(f)(a, b),
        "vmap": fm.vmap(f)(xs, ys)[0],
        "jit(vmap)": fm.jit(fm.vmap(f))(xs, ys)[0],
    }
    exported = fm.to_torch(f, in_axes=(0, 0))(torch.tensor(xs), torch.tensor(ys))
    got.update({f"to_torch[{i}]": exported[i] for i in range(19)})
    assert {k: sign(v) for k, v in got.items()} == dict.fromkeys(got, want)


def test_vmap_of_a_slope_through_maximum_at_a_tie_is_the_loops():
    # the sign of maximum(-0.0, 0.0) reaches the gradient of maximum(x, 0) * x
    g = fm.grad(lambda x: fm.maximum(x, 0.0) * x)
    loop = [g(x) for x in (-0.0, 0.0, 1.5)]
    assert [sign(v) for v in fm.vmap(g)(np.array([-0.0, 0.0, 1.5]))] == [sign(v) for v in loop]
    assert sign(loop[0]) == -1.0  # (torch's too)


def test_a_neuron_on_floats_sums_as_fm_dot_does():
    n = fm.nn.Neuron(w=(1.0, 2.0), b=-0.0, activation="linear")
    x = (-0.0, -0.0)
    assert sign(n(x)) == sign(n(tuple(map(fm.Var, x))).value) == sign(fm.jit(n)(x)) == -1.0
    assert sign(fm.dot(n.w, x) + n.b) == -1.0


def test_torchs_table_gives_eagers_maximum_on_zero_d_tensors():
    from fmicrograd.core.torch_ops import TORCH

    zero, minus = torch.tensor(0.0, dtype=torch.float64), torch.tensor(-0.0, dtype=torch.float64)
    assert sign(TORCH["maximum"](torch, zero, minus)) == sign(fm.maximum(0.0, -0.0)) == 1.0
    assert sign(TORCH["minimum"](torch, minus, zero)) == sign(fm.minimum(-0.0, 0.0)) == -1.0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    assert math.isnan(TORCH["maximum"](torch, zero, nan)) and \
        math.isnan(TORCH["minimum"](torch, nan, zero))
