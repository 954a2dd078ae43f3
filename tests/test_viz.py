"""fm.viz: DOT text with ops, values and gradients, checked against fm.grad,
torch and the numbers of micrograd's neuron walkthrough."""

import math
import re
import sys

import pytest
import torch

import fmicrograd as fm
from fmicrograd.core.expr import prim

RECORD = re.compile(r'(n\d+) \[label="\{ (.*?) \| data (\S+) \| grad (\S+) \}" shape=record\]')
OVAL = re.compile(r'(n\d+)op \[label="(.*?)"\]')
B = 6.8813735870195432  # micrograd's neuron bias: makes the output tanh(0.8814) = 0.7071


def neuron(x1, x2, w1, w2, b):
    return (x1 * w1 + x2 * w2 + b).tanh()


def neuron_graph():
    names = ("x1", "x2", "w1", "w2", "b")
    vals = (2.0, 0.0, -3.0, 1.0, B)
    leaves = [fm.Var(v, name=n) for v, n in zip(vals, names)]
    return neuron(*leaves), dict(zip(names, vals))


def records(dot):
    return {m[0]: (m[1], m[2], m[3]) for m in RECORD.findall(dot)}


def test_neuron_shows_micrograd_values_and_gradients():
    out, _ = neuron_graph()
    recs = records(fm.viz.to_dot(out))
    by_name = {name: (data, grad) for name, data, grad in recs.values()}
    # the numbers micrograd's walkthrough prints after o.backward()
    assert by_name["x1"] == ("2.0000", "-1.5000")
    assert by_name["w1"] == ("-3.0000", "1.0000")
    assert by_name["x2"] == ("0.0000", "0.5000")
    assert by_name["w2"] == ("1.0000", "0.0000")
    assert by_name["b"] == ("6.8814", "0.5000")
    assert by_name["tanh"] == ("0.7071", "1.0000")


def test_leaf_gradients_equal_fm_grad_exactly():
    out, vals = neuron_graph()
    recs = records(fm.viz.to_dot(out, precision=None))
    grads = fm.grad(neuron, argnums=(0, 1, 2, 3, 4))(*vals.values())
    for name, g in zip(vals, grads):
        [(data, shown)] = [(d, gr) for n, d, gr in recs.values() if n == name]
        assert float(data) == vals[name]
        assert float(shown) == g


def test_inner_gradients_match_torch():
    out, vals = neuron_graph()
    dot = fm.viz.to_dot(out, precision=None)
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in vals.items()}
    x1w1 = t["x1"] * t["w1"]
    x2w2 = t["x2"] * t["w2"]
    s = x1w1 + x2w2
    n = s + t["b"]
    o = n.tanh()
    for z in (x1w1, x2w2, s, n):
        z.retain_grad()
    o.backward()
    recs = records(dot)
    # post-order ids: x1 w1 * x2 w2 * + b + tanh
    for uid, z in (("n2", x1w1), ("n5", x2w2), ("n6", s), ("n8", n), ("n9", o)):
        _, data, grad = recs[uid]
        assert float(data) == pytest.approx(z.item(), rel=1e-15)
        assert float(grad) == pytest.approx(1.0 if z is o else z.grad.item(), rel=1e-12)


def test_ops_and_edges():
    out, _ = neuron_graph()
    dot = fm.viz.to_dot(out)
    assert dot.startswith("digraph fm {\n\trankdir=LR\n") and dot.endswith("}\n")
    assert sorted(OVAL.findall(dot), key=lambda m: int(m[0][1:])) == [
        ("n2", "*"), ("n5", "*"), ("n6", "+"), ("n8", "+"), ("n9", "tanh")]
    # every inner node gets one edge from its oval and one edge per child into it
    assert dot.count(" -> ") == 5 + 2 * 4 + 1


def test_shared_node_accumulates_and_const_is_labelled():
    x = fm.Var(3.0)
    y = x * x + 1.0
    recs = records(fm.viz.to_dot(y, precision=None))
    assert recs["n0"] == ("var", "3.0", "6.0")   # unnamed Var, d(x*x)/dx = 2x
    assert recs["n2"] == ("const", "1.0", "1.0")
    assert fm.viz.to_dot(y).count("n0 -> n1op") == 2  # both operands drawn


def test_node_grads_keeps_every_node():
    x = fm.Var(0.3)
    a = x.sin()
    b = a * x
    c = b.exp() + a
    g = fm.viz.node_grads(c)
    assert set(g) == set(fm.viz.topological(c))
    assert g[x] == pytest.approx(fm.grad(lambda v: (fm.sin(v) * v).exp() + fm.sin(v))(0.3),
                                 rel=1e-15)
    assert g[b] == pytest.approx(math.exp(b.value), rel=1e-15)


def test_custom_prim_node_uses_its_rule():
    x = fm.Var(2.0, name="x")
    cube = prim("custom", x.value ** 3, (x,), lambda ct, out, a: (ct * 3.0 * a * a,))
    recs = records(fm.viz.to_dot(cube, precision=None))
    assert recs["n0"] == ("x", "2.0", "12.0")
    assert recs["n1"] == ("custom", "8.0", "1.0")


def test_names_are_escaped_for_record_labels():
    x = fm.Var(1.0, name='a{b}|"c"')
    dot = fm.viz.to_dot(x * 2.0)
    assert '{ a\\{b\\}\\|\\"c\\" | data 1.0000' in dot


def test_deep_chain_without_recursion():
    x = fm.Var(0.5, name="x")
    y = x
    for _ in range(5000):  # 10,000 nodes: a product and a constant per step
        y = y * 1.0001
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursion over the graph would fail here
    try:
        dot = fm.viz.to_dot(y, precision=None)
    finally:
        sys.setrecursionlimit(limit)
    recs = records(dot)
    assert len(recs) == 10_001
    assert recs["n0"][0] == "x"
    assert float(recs["n0"][2]) == pytest.approx(1.0001 ** 5000, rel=1e-12)


def test_draw_dot_is_a_digraph_with_the_same_source():
    import graphviz

    out, _ = neuron_graph()
    g = fm.viz.draw_dot(out)
    assert isinstance(g, graphviz.Digraph)
    assert g.source == fm.viz.to_dot(out)
    assert fm.viz.draw_dot(out, precision=None).source == fm.viz.to_dot(out, precision=None)


def test_draw_dot_without_graphviz_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)
    with pytest.raises(ImportError, match=r"pip install 'fmicrograd\[viz\]'"):
        fm.viz.draw_dot(fm.Var(1.0))


def test_not_an_expression_is_a_type_error():
    with pytest.raises(TypeError, match="fm.trace"):
        fm.viz.to_dot(3.0)


def test_draw_dot_without_the_graphviz_program_says_how_to_install(monkeypatch, tmp_path):
    import graphviz

    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    g = fm.viz.draw_dot(fm.Var(1.0, name="x").exp())
    assert isinstance(g, graphviz.Digraph)
    with pytest.raises(graphviz.ExecutableNotFound, match="apt install graphviz.*brew"):
        g.pipe(format="svg")
    with pytest.raises(graphviz.ExecutableNotFound, match="conda install"):
        g.render(tmp_path / "g", format="svg")
    shown = g._repr_mimebundle_()  # what a notebook displays instead of a traceback
    assert list(shown) == ["text/plain"] and "digraph fm" in shown["text/plain"]
    assert "apt install graphviz" in shown["text/plain"]


def test_draw_dot_in_a_notebook_is_svg_when_dot_exists(monkeypatch, tmp_path):
    fake = tmp_path / "dot"  # stands in for Graphviz: prints an SVG for -Tsvg
    fake.write_text('#!/bin/sh\nprintf "<svg>fm</svg>"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    shown = fm.viz.draw_dot(fm.Var(1.0, name="x").exp())._repr_mimebundle_()
    assert shown["image/svg+xml"] == "<svg>fm</svg>"


def test_node_grads_sums_a_vmaps_closed_over_value_over_its_examples():
    # (round 29's probe: an unreduced per-example array, [3.87, 5.07] for 5.56)
    y = fm.Var(1.3, name="y")
    out = fm.sum(fm.vmap(lambda z: z * z * y)((0.7, y)))
    truth = fm.grad(lambda y: fm.sum(fm.vmap(lambda z: z * z * y)((0.7, y))))(1.3)
    assert fm.viz.node_grads(out)[y] == truth == 0.49 + 3 * 1.3 ** 2


def test_node_grads_stops_at_stop_gradient():
    # (round 29's probe: the rule's 0.0 went on below, 0 * inf = nan where fm.grad gives 1.0)
    x = fm.Var(0.0)
    out = x + fm.stop_gradient(fm.sqrt(x))
    assert fm.viz.node_grads(out)[x] == fm.grad(lambda x: x + fm.stop_gradient(fm.sqrt(x)))(0.0)


def test_node_grads_follows_a_per_example_where_as_grad_does():
    # (round 29's probe: the examples a where does not take were nan where fm.grad gives 0.0)
    a, b, c = fm.Var(0.0), fm.Var(4.0), fm.Var(-1.0)

    def f(*xs):
        return fm.sum(fm.vmap(lambda x: fm.where(x > 0, fm.sqrt(x), 0.0))(list(xs)))

    g = fm.viz.node_grads(f(a, b, c))
    assert (g[a], g[b], g[c]) == fm.grad(f, argnums=(0, 1, 2))(0.0, 4.0, -1.0) == (0.0, 0.25, 0.0)
    assert fm.viz.node_grads(fm.vmap(fm.sqrt)([a, b])[1])[a] == 0.0


def test_node_grads_skips_a_stop_gradient_argument_of_a_jitted_call_under_vmap():
    # (round 29's review: node_grads raised the vmap(jit) sum check fm.grad never meets)
    jitted = fm.jit(lambda a, c: fm.sqrt(a) * c + fm.log(c * a))

    def f(x, c):
        return fm.sum(fm.vmap(lambda z: fm.where(z > 0, jitted(z, fm.stop_gradient(c)), 0.0))(
            (x, -1.0)))

    x, c = fm.Var(4.0), fm.Var(2.0)
    g = fm.viz.node_grads(f(x, c))
    assert (g[x], g[c]) == fm.grad(f, argnums=(0, 1))(4.0, 2.0) == (0.75, 0.0)


@pytest.mark.parametrize("read, outside", [
    (lambda x: x * fm.viz.node_grads(x * x)[x], 2 * 2.5 ** 2),  # 2 x**2 as a float program
    (lambda x: x * float(re.findall(r"data ([-0-9.]+)", fm.viz.to_dot(x + 0.0))[-1]), 2.5 ** 2)])
def test_the_graph_of_a_running_transform_is_not_read_as_numbers(read, outside):
    # the numbers were the trace's under jit (jit(f)(2.7) after a call at 1.3 gave 7.02 for
    # 14.58) and lost their derivative under grad (5.4 for 10.8): an outside probe
    for transform, name in [(fm.jit, "fm.jit is tracing"), (fm.grad, "fm.grad differentiates"),
                            (lambda f: lambda x: fm.jvp(f, (x,), (1.0,)), "fm.jvp differentiates"),
                            (fm.vmap, "one value per example")]:
        with pytest.raises(TypeError, match=rf"fm.viz.(node_grads|to_dot) of a graph .*{name}.* "
                                            "draw or read the graph outside the transform"):
            transform(read)((1.3, 2.7) if transform is fm.vmap else 1.3)
    assert read(fm.Var(2.5)).value == outside  # outside every transform: the graph's numbers
    g = fm.trace(lambda x: x * x * 3.0)(2.0)
    assert fm.viz.node_grads(g)[g.children[0]] == 3.0 and "data 12.0000" in fm.viz.to_dot(g)
