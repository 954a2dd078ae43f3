"""The sweeps that build derivatives as graphs (higher order): how many nodes
they build, and that their rewrites are exact: a node's contributions become
one ``dot``/``sum`` node (``core/accumulate.py``), tanh' shares its constant,
and a constant exponent or base of ``**`` skips the masks. Checked against
torch float64 at second and third order, against the first-order floats
bit for bit, and under ``jit`` and ``vmap``."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.core import sweep
from fmicrograd.core.expr import Expr, next_level, variable
from fmicrograd.testing.strategies import dags


def _reach(roots, stop=frozenset()):
    seen, stack = set(), [r for r in roots if isinstance(r, Expr)]
    while stack:
        n = stack.pop()
        if n not in seen and n not in stop:
            seen.add(n)
            stack.extend(n.children)
    return seen


def _nested(values):
    """Inner variables standing for an enclosing transform's: sweeps over
    them build graphs, as inside ``grad(grad(f))``."""
    outer_level = next_level()
    outer = [variable(v, outer_level) for v in values]
    inner_level = next_level()
    return outer, [variable(v, inner_level, source=o) for v, o in zip(values, outer)]


def _built_by_reverse(f, values):
    outer, inner = _nested(values)
    out = f(inner)
    grads, on_graph = sweep.reverse([out], [1.0], inner)
    assert on_graph
    return _reach(grads, _reach([out]) | set(outer))


def _built_by_forward(f, values, tangents):
    outer, inner = _nested(values)
    out = f(inner)
    tans, on_graph = sweep.forward([out], inner, tangents)
    assert on_graph
    return _reach(tans, _reach([out]) | set(outer))


def tanh_sum(x):
    return fm.sum([fm.tanh(a * b) for a in x for b in x])


def _mlp_loss(flat, xp=fm):
    """MSE of a 2-3-3-1 tanh MLP (25 parameters, flat) on four fixed points,
    written once for fmicrograd (``xp=fm``) and for torch (``xp=torch``)."""
    k, layers = 0, []
    for nin, nout in ((2, 3), (3, 3), (3, 1)):
        layer = []
        for _ in range(nout):
            layer.append((list(flat[k:k + nin]), flat[k + nin]))
            k += nin + 1
        layers.append(layer)
    errs = []
    for i in range(4):
        h = [math.cos(i), math.sin(2 * i)]
        for j, layer in enumerate(layers):
            h = [fm.dot(w, h) + b if xp is fm else sum(wi * hi for wi, hi in zip(w, h)) + b
                 for w, b in layer]
            if j < 2:
                h = [xp.tanh(v) for v in h]
        errs.append((h[0] - (1.0 if i % 2 else -1.0)) ** 2)
    return fm.mean(errs) if xp is fm else sum(errs) / len(errs)


W = tuple(math.sin(1.3 * i) for i in range(25))
V = tuple(0.5 * math.cos(0.7 * i) for i in range(25))
X5 = tuple(0.1 + 0.2 * i for i in range(5))


# --- node counts ------------------------------------------------------------------

def test_gradient_graph_of_a_sum_of_products_is_one_dot_per_input():
    # per tanh(x_i x_j): 1 - out*out (2 nodes, the 1.0 shared); per input one dot
    # over its 2n products. Chains of + and a node per product built 170 here.
    n = len(X5)
    built = _built_by_reverse(tanh_sum, X5)
    ops = [b.op for b in built]
    assert len(built) <= 2 * n * n + n + 1 == 56
    assert ops.count("dot") == n and "+" not in ops
    assert sum(b.op == "const" for b in built) == 1


def test_gradient_graph_of_an_mlp_loss_is_about_one_node_per_forward_node():
    # 121 forward nodes; the old sweep built 355 (binary + chains, one * node per
    # weight and example, masks around x ** 2.0)
    built = _built_by_reverse(_mlp_loss, W)
    assert len(built) <= 142
    assert not {"+", "select"} & {b.op for b in built}


def test_tangent_graph_node_counts():
    # forward mode building tangents as graphs (grad of jvp): 149 and 475 before
    assert len(_built_by_forward(tanh_sum, X5, [1.0] * 5)) <= 102
    assert len(_built_by_forward(_mlp_loss, W, list(V))) <= 199  # a tangent: one leaf


def test_constant_exponent_builds_no_masks_and_no_exponent_cotangent():
    built = _built_by_reverse(lambda x: x[0] ** 3.0, [1.5])
    assert sorted(b.op for b in built) == ["*", "**", "const"]  # 3.0 * x ** 2.0
    built = _built_by_reverse(lambda x: 2.0 ** x[0], [1.5])
    assert sorted(b.op for b in built) == ["*", "const"]  # out * log(2.0)


# --- exactness: the same floats as the first-order sweep -----------------------------

def _mixed(x):
    # products first and last, a bare term, a constant factor, a repeated input
    a, b, c = x
    return a * b + fm.tanh(a) * 3.0 + a + fm.dot([a, b, c], [c, a, b]) + c * c * a - b / a


@pytest.mark.parametrize("f, x", [(_mixed, (0.3, -1.1, 0.7)), (tanh_sum, X5),
                                  (_mlp_loss, W)])
def test_graph_gradient_has_the_first_order_floats_bit_for_bit(f, x):
    # jvp(grad(f)) builds the gradient as a graph; its value is grad(f) exactly
    v = tuple(1.0 / (i + 2) for i in range(len(x)))
    value, _ = fm.jvp(fm.grad(f), (x,), (v,))
    assert value == fm.grad(f)(x)
    # and grad(jvp(f)) builds the tangent as a graph: its value is jvp's float
    tangent = lambda p: fm.jvp(f, (p,), (v,))[1]
    assert fm.value_and_grad(tangent)(x)[0] == fm.jvp(f, (x,), (v,))[1]


def _same_floats(a, b):
    return all(x == y or (x != x and y != y) for x, y in zip(fm.tree.leaves(a),
                                                           fm.tree.leaves(b)))


@settings(max_examples=40, deadline=None)
@given(dags(max_inputs=3, max_steps=8))
def test_graph_derivatives_of_random_dags_have_the_first_order_floats(dag):
    fn, n, xs = dag
    nums = tuple(range(n))
    v = tuple(0.5 + 0.25 * i for i in range(n))
    g = fm.grad(fn, argnums=nums)
    assert _same_floats(fm.jvp(g, xs, v)[0], g(*xs))
    tangent = lambda *p: fm.jvp(fn, p, v)[1]
    assert _same_floats(fm.value_and_grad(tangent, argnums=nums)(*xs)[0],
                        fm.jvp(fn, xs, v)[1])


# --- against torch at second and third order ----------------------------------------

def _close(got, want, rel=1e-12):
    got = fm.tree.leaves(got)
    want = [float(w) for w in torch.as_tensor(want, dtype=torch.float64).flatten()]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == pytest.approx(w, rel=rel, abs=rel), (g, w)


def test_mlp_hessian_and_every_hvp_composition_match_torch():
    tw, tv = torch.tensor(W, dtype=torch.float64), torch.tensor(V, dtype=torch.float64)
    h = torch.autograd.functional.hessian(lambda t: _mlp_loss(list(t), torch), tw)
    hv = h @ tv
    loss = _mlp_loss
    _close(fm.hessian(loss)(W), h)
    _close(fm.jvp(fm.grad(loss), (W,), (V,))[1], hv)
    _close(fm.grad(lambda p: fm.jvp(loss, (p,), (V,))[1])(W), hv)
    _close(fm.grad(lambda p: fm.dot(fm.grad(loss)(p), V))(W), hv)
    _close(fm.jacfwd(fm.grad(loss))(W), h)


def _torch_third(f, x):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    g = torch.autograd.grad(f(t), t, create_graph=True)[0]
    rows = []
    for i in range(len(x)):
        hi = torch.autograd.grad(g[i], t, create_graph=True)[0]
        rows.append([torch.autograd.grad(hi[j], t, retain_graph=True)[0].tolist()
                     for j in range(len(x))])
    return torch.tensor(rows, dtype=torch.float64)


def test_third_order_tensors_match_torch():
    x = (0.3, -0.8, 1.1)
    f = lambda t: torch.tanh(torch.outer(t, t)).sum()
    want = _torch_third(f, x)
    _close(fm.jacrev(fm.hessian(tanh_sum))(x), want)
    _close(fm.jacfwd(fm.hessian(tanh_sum))(x), want)
    _close(fm.hessian(fm.grad(tanh_sum))(x), want)  # symmetric: any layout
    # a 1-2-1 tanh MLP: 7 parameters, 343 third derivatives
    p = (0.4, -0.9, 0.1, 0.3, 0.8, -0.5, 0.2)

    def net(q, xp):
        return sum(((q[4] * xp.tanh(q[0] * x + q[2]) + q[5] * xp.tanh(q[1] * x + q[3])
                     + q[6]) - y) ** 2 for x, y in ((0.5, 1.0), (-1.0, 0.0)))

    _close(fm.jacrev(fm.hessian(lambda q: net(q, fm)))(p),
           _torch_third(lambda t: net(t, torch), p))


def _nth_x(f, n):
    for _ in range(n):
        f = fm.grad(f)
    return f


def _torch_nth(f, x, n):
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = f(t)
    for k in range(n):
        if not out.requires_grad:
            return 0.0
        (out,) = torch.autograd.grad(out, t, create_graph=k < n - 1)
    return out.item()


def _same(got, want):
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (got, want)


@pytest.mark.parametrize("c", [2.0, 3.0, -1.5, 0.5, 0.0])
@pytest.mark.parametrize("x", [1.3, -0.7, 0.0])
def test_constant_exponent_derivatives_to_third_order_match_torch(c, x):
    for n in (1, 2, 3):
        _same(_nth_x(lambda v: v ** c, n)(x), _torch_nth(lambda t: t ** c, x, n))


@pytest.mark.parametrize("c", [2.0, 0.5, -2.0])  # a base 0.0 takes the masked rule
@pytest.mark.parametrize("x", [1.3, 0.0, -0.7])
def test_constant_base_derivatives_to_third_order_match_torch(c, x):
    for n in (1, 2, 3):
        _same(_nth_x(lambda v: c ** v, n)(x), _torch_nth(lambda t: c ** t, x, n))


# --- jit and vmap over the rewritten graphs -------------------------------------------

def test_jit_of_higher_order_agrees_with_eager():
    for f, x in ((_mixed, (0.3, -1.1, 0.7)), (tanh_sum, X5[:3])):
        v = tuple(0.5 + i for i in range(len(x)))
        _close(fm.jit(fm.hessian(f))(x), fm.hessian(f)(x))
        hvp = lambda p, t, f=f: fm.jvp(fm.grad(f), (p,), (t,))[1]
        _close(fm.jit(hvp)(x, v), hvp(x, v))
        third = fm.jacrev(fm.hessian(f))
        _close(fm.jit(third)(x), third(x))


def test_vmap_of_hessian_agrees_with_a_loop():
    xs = ((0.3, -1.1, 0.7), (1.2, 0.4, -0.2), (-0.5, 0.9, 0.1))
    for x, h in zip(xs, fm.vmap(fm.hessian(_mixed))(xs)):
        _close(h, fm.hessian(_mixed)(x))


def test_an_array_cotangent_seeding_a_graph_sweep():
    # a numpy cotangent for a scalar output: summed to the input's shape until round 49
    # (grad 3.0, as if it held one cotangent per example), refused now as JAX refuses it
    def h(x):
        _, back = fm.vjp(lambda y: y * x, x)
        return back(np.array([1.0, 2.0]))[0]

    with pytest.raises(TypeError, match=r"vjp_fn: the cotangent .* shape \(2,\)"):
        fm.grad(h)(3.0)
    assert fm.grad(lambda x: fm.vjp(lambda y: y * x, x)[1](np.array(2.0))[0])(3.0) == 2.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.booleans()),
                min_size=1, max_size=5), st.floats(-1e3, 1e3))
def test_a_sum_of_nodes_and_products_is_the_chain_of_plus(terms, first):
    # accumulate.total's sum of nodes (a node first, then nodes and pairs (ct, y)
    # of nodes): one sum node over the terms, its value the + chain's bit for bit
    from fmicrograd.core.accumulate import total

    parts = [variable(first, next_level())]
    chain = parts[0]
    for a, b, pair in terms:
        x, y = variable(a, next_level()), variable(b, next_level())
        parts.append((x, y) if pair else x)
        chain = chain + (x * y if pair else x)
    s = total(parts)
    assert s.op == "sum" and len(s.children) == len(parts)
    assert s.value == chain.value or (s.value != s.value and chain.value != chain.value)
    for kid, part in zip(s.children, parts):
        if isinstance(part, tuple):
            assert kid.op == "*" and kid.children == part
        else:
            assert kid is part
