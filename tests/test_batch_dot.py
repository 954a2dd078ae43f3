"""The reverse sweep's ``dot`` cotangents under ``vmap`` (core.dot_cotangents):
a fused ``batch_dot`` node for a weight's cotangent and one ``dot`` node per
input for the others, instead of a batch-sized product per weight.

Every transform stack runs on an MLP written with ``fm.dot`` (the fused path)
and on the same MLP written with ``fm.sum`` of products (the generic path):
values agree to 1e-12 at first and second order, under ``vmap`` at depth 1
and 2, ``grad``, ``jvp``, ``hessian`` and ``jit``. Then the memory: a jit
trace of a training step keeps no batch-sized node per weight.
"""

import numpy as np
import pytest
from helpers import jit_trace_nodes
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.core.expr import Expr


def fused(ws, xs):
    return fm.dot(ws, xs)


def generic(ws, xs):
    return fm.sum([w * x for w, x in zip(ws, xs)])


def per_example(dot):
    def f(p, x):
        hidden, out = p
        h = [fm.tanh(dot(w, x)) for w in hidden]
        return dot(out, h) ** 2

    return f


def loss(dot):
    f = per_example(dot)
    return lambda p, xs: fm.mean(fm.vmap(f, in_axes=(None, 0))(p, xs))


def loss_depth2(dot):
    f = per_example(dot)
    inner = fm.vmap(f, in_axes=(None, 0))
    return lambda p, xss: fm.mean(fm.vmap(lambda p, xs: fm.mean(inner(p, xs)),
                                          in_axes=(None, 0))(p, xss))


def params(seed):
    rng = np.random.default_rng(seed)
    hidden = tuple(tuple(rng.normal(size=2).tolist()) for _ in range(3))
    return hidden, tuple(rng.normal(size=3).tolist())


XS = np.random.default_rng(7).normal(size=(5, 2))
XSS = np.random.default_rng(8).normal(size=(2, 4, 2))
TANGENT = params(11)


def _grad(dot):
    return fm.grad(loss(dot))


STACKS = {
    "jit(grad)": lambda dot: fm.jit(_grad(dot)),
    "hessian": lambda dot: fm.hessian(loss(dot)),
    "jit(hessian)": lambda dot: fm.jit(fm.hessian(loss(dot))),
    "jvp(grad)": lambda dot: lambda p, xs: fm.jvp(lambda q: _grad(dot)(q, xs), (p,),
                                                  (TANGENT,))[1],
    "jit(jvp(grad))": lambda dot: fm.jit(lambda p, xs: fm.jvp(
        lambda q: _grad(dot)(q, xs), (p,), (TANGENT,))[1]),
    "jvp(jit(grad))": lambda dot: lambda p, xs: fm.jvp(
        lambda q: fm.jit(_grad(dot))(q, xs), (p,), (TANGENT,))[1],
    "grad(jit(grad)) of a dot": lambda dot: fm.grad(
        lambda p, xs: fm.dot(fm.tree.leaves(fm.jit(_grad(dot))(p, xs)),
                             fm.tree.leaves(TANGENT))),
    "vmap(grad) at depth 1, jit": lambda dot: fm.jit(
        lambda p, xs: fm.vmap(fm.grad(per_example(dot)), in_axes=(None, 0))(p, xs)),
    "hessian of vmap(grad) at depth 1": lambda dot: fm.hessian(
        lambda p, xs: fm.mean(fm.vmap(lambda q, x: fm.dot(
            fm.tree.leaves(fm.grad(per_example(dot))(q, x)), fm.tree.leaves(TANGENT)),
            in_axes=(None, 0))(p, xs))),
}


def _leaves(out):
    return np.array([float(v.value if isinstance(v, Expr) else v)
                     for v in fm.tree.leaves(out)], dtype=float).ravel()


@pytest.mark.parametrize("name", sorted(STACKS))
@pytest.mark.parametrize("seed", [0, 1])
def test_fused_matches_generic(name, seed):
    p = params(seed)
    got = _leaves(STACKS[name](fused)(p, XS))
    want = _leaves(STACKS[name](generic)(p, XS))
    assert got.shape == want.shape and got.size > 0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stack", ["grad", "hessian", "jit(grad)", "jit(hessian)"])
def test_two_batch_axes(stack):
    p = params(2)
    make = {"grad": fm.grad, "hessian": fm.hessian,
            "jit(grad)": lambda f: fm.jit(fm.grad(f)),
            "jit(hessian)": lambda f: fm.jit(fm.hessian(f))}[stack]
    got = _leaves(make(loss_depth2(fused))(p, XSS))
    want = _leaves(make(loss_depth2(generic))(p, XSS))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_hessian_against_finite_differences():
    p = params(3)
    flat = np.array(fm.tree.leaves(p))
    treedef = fm.tree.structure(p)
    g = fm.grad(loss(fused))

    def grad_at(v):
        return np.array(fm.tree.leaves(g(fm.tree.unflatten(treedef, v.tolist()), XS)))

    eps = 1e-6
    fd = np.array([(grad_at(flat + eps * e) - grad_at(flat - eps * e)) / (2 * eps)
                   for e in np.eye(flat.size)])
    h = _leaves(fm.hessian(loss(fused))(p, XS)).reshape(flat.size, flat.size)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)


def _batch_sized_nodes(f, *args, batch):
    """How many nodes of ``f``'s jit trace hold an array with ``batch`` entries
    or more, and the set of ops in the trace."""
    nodes = jit_trace_nodes(f, *args)
    return sum(getattr(n.value, "size", 1) >= batch for n in nodes), {n.op for n in nodes}


def test_a_jit_trace_keeps_no_batch_sized_node_per_weight():
    rng = np.random.default_rng(0)
    sizes, batch = (4, 32, 32, 1), 40
    layers = tuple(tuple((tuple(rng.normal(size=a).tolist()), 0.0) for _ in range(b))
                   for a, b in zip(sizes, sizes[1:]))
    n_params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    neurons = sum(sizes[1:])

    def step(p, xs):
        def f(p, x):
            for i, layer in enumerate(p):
                x = [fm.dot(w, x) + b for w, b in layer]
                if i < len(p) - 1:
                    x = [fm.relu(v) for v in x]
            return x[0] * x[0]

        value, g = fm.value_and_grad(lambda p: fm.mean(fm.vmap(f, in_axes=(None, 0))(p, xs)))(p)
        return value, fm.tree.map(lambda a, d: a - 0.01 * d, p, g)

    big, ops = _batch_sized_nodes(step, layers, rng.normal(size=(batch, 4)), batch=batch)
    # a few per neuron (forward value, activation, cotangents), none per weight:
    # the unfused sweep kept about three per weight (3,564 here; 396 fused)
    assert big <= 8 * neurons < n_params / 2
    assert "batch_dot" in ops


# Random MLPs: depth, widths, activation, transform stack and whether each
# example has its own weights (vmap over the parameters too) are drawn.
ACTIVATIONS = {"tanh": fm.tanh, "relu": fm.relu, "sigmoid": fm.sigmoid, "square": lambda z: z * z}
RANDOM_STACKS = ("grad", "jit_grad", "grad_jit", "hessian", "jvp_grad", "jacfwd_grad",
          "grad_of_grad", "per_example_grad", "jit_per_example_grad")


def mlp(dot, act):
    def f(p, x):
        h = list(x)
        for layer in p:
            h = [act(dot(w, h)) for w in layer]
        return fm.sum(h)
    return f


def random_params(rng, sizes):
    return tuple(tuple(tuple(rng.normal(size=sizes[i]).tolist()) for _ in range(sizes[i + 1]))
                 for i in range(len(sizes) - 1))


def run_stack(stack, dot, act, p, xs, tangent, own_weights):
    f = mlp(dot, act)
    if stack.endswith("per_example_grad"):
        g = fm.vmap(fm.grad(f), in_axes=(0 if own_weights else None, 0))
        return (fm.jit(g) if stack.startswith("jit") else g)(p, xs)

    def loss(q, xs):
        return fm.mean(fm.vmap(f, in_axes=(None, 0))(q, xs))

    if stack == "grad":
        return fm.grad(loss)(p, xs)
    if stack == "jit_grad":
        return fm.jit(fm.grad(loss))(p, xs)
    if stack == "grad_jit":
        return fm.grad(fm.jit(loss))(p, xs)
    if stack == "hessian":
        return fm.hessian(lambda q: loss(q, xs))(p)
    if stack == "jvp_grad":
        return fm.jvp(lambda q: fm.grad(loss)(q, xs), (p,), (tangent,))[1]
    if stack == "jacfwd_grad":
        return fm.jacfwd(lambda q: fm.grad(loss)(q, xs))(p)
    return fm.grad(lambda q: fm.sum(fm.tree.leaves(fm.grad(loss)(q, xs))))(p)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 3), min_size=2, max_size=3), st.sampled_from(sorted(ACTIVATIONS)),
       st.sampled_from(RANDOM_STACKS), st.integers(1, 4), st.booleans(), st.integers(0, 2**31))
def test_random_mlps_fused_match_generic(sizes, act, stack, batch, own_weights, seed):
    rng = np.random.default_rng(seed)
    own_weights = own_weights and stack.endswith("per_example_grad")
    # per-example weights: a list of models, one per example (vmap maps a list)
    p = ([random_params(rng, sizes) for _ in range(batch)] if own_weights
         else random_params(rng, sizes))
    xs = rng.normal(size=(batch, sizes[0]))
    tangent = random_params(np.random.default_rng(seed + 1), sizes)
    got = run_stack(stack, fused, ACTIVATIONS[act], p, xs, tangent, own_weights)
    want = run_stack(stack, generic, ACTIVATIONS[act], p, xs, tangent, own_weights)
    a = np.concatenate([np.ravel(np.asarray(v, float)) for v in fm.tree.leaves(got)])
    b = np.concatenate([np.ravel(np.asarray(v, float)) for v in fm.tree.leaves(want)])
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# A dot node's fused weight cotangents are computed in one array operation
# (core.dot_cotangents.batch_values) when there are enough of them: the same
# bits as one batch_dot per weight, for any batch length (numpy's pairwise sum
# works in blocks of 8 and 128), and the same gradients end to end.

@settings(max_examples=30, deadline=None)
@given(st.integers(8, 40), st.integers(1, 700), st.integers(0, 2**31))
def test_batch_values_are_each_batch_dot_bit_for_bit(k, batch, seed):
    from fmicrograd.core.dot_cotangents import batch_dot, batch_values
    from fmicrograd.core.expr import const

    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(scale=8.0, size=(k, 1)))  # rows of very different magnitudes
    others = [const(v) for v in rng.normal(size=(k, batch)) * scale]
    g = const(rng.normal(size=batch))
    want = [batch_dot(g, o, (0,)).value for o in others]
    last: list = []
    assert list(batch_values(g.value, others, last)) == want
    stacked = last[2]
    assert list(batch_values(g.value, others, last)) == want and last[2] is stacked  # reused
    assert batch_values(g.value[None], others) is None  # not one batch axis: one by one


@pytest.mark.parametrize("stack", ["jit_grad", "grad_jit", "jvp_grad", "grad_of_grad"])
def test_wide_layers_same_bits_with_and_without_batch_values(stack, monkeypatch):
    # the stacks whose sweeps build cotangent graphs under vmap (plain grad sweeps floats)
    from fmicrograd.core import dot_cotangents

    rng = np.random.default_rng(3)
    p = random_params(rng, (9, 10, 1))
    xs = rng.normal(size=(37, 9))
    tangent = random_params(np.random.default_rng(4), (9, 10, 1))

    def bits():
        out = run_stack(stack, fused, fm.tanh, p, xs, tangent, False)
        return np.array(fm.tree.leaves(out), dtype=float).tobytes()

    together = bits()
    monkeypatch.setattr(dot_cotangents, "_FEW", 10**9)  # one batch_dot at a time
    assert bits() == together
