"""Until round 32: under ``jit`` an array argument is an array of traced
nodes, and an operator between it and a node made one node holding the
array, on which ``.sum()``, indexing, iteration and ``np.sum`` crashed
(``AttributeError: 'TracedExpr' object has no attribute 'sum'``) where the
docs promise they work. An operator between a node and a numpy array of
objects is now numpy's, entry by entry, as for a float. And a node holding
an array (``x * arr``) in an ``if`` took a branch when its entries agreed,
where the float program raises: the ``ValueError`` naming ``fm.where`` now."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm

A = np.array([1.0, 2.0, 4.0, 7.0])


@pytest.mark.parametrize("f, args", [
    (lambda a: np.sum((a - a.mean()) ** 2), (A,)),
    (lambda a, s: ((a - s) ** 2).sum(), (A, 2.0)),
    (lambda a, s: (a / s)[0] + (s / a)[3], (A, 2.0)),
    (lambda a, s: sum(a * s), (A, 2.0)),
    (lambda a, s: float(np.dot(a, a * s) > 0.0) * s, (A, 2.0)),
], ids=["centred", "sum-method", "index", "iterate", "compare"])
def test_an_array_argument_meeting_a_node_under_jit_is_entry_by_entry(f, args):
    jf = fm.jit(f)
    assert jf(*args) == f(*args)
    moved = (args[0] * 3.0 - 1.0,) + args[1:]
    assert jf(*moved) == f(*moved)  # a second call, new values


def test_the_derivative_through_an_array_argument_under_jit():
    f = lambda a, s: ((a - s) ** 2).sum()
    g = fm.jit(fm.grad(f, argnums=1))
    assert g(A, 2.0) == fm.grad(lambda s: sum((e - s) ** 2 for e in A.tolist()))(2.0) == -12.0
    assert g(A, 5.0) == -2.0 * sum(e - 5.0 for e in A.tolist())


def test_an_array_of_users_nodes_with_a_node_keeps_every_derivative():
    u, v, x = fm.Var(1.0), fm.Var(2.0), fm.Var(3.0)
    arr = np.array([u, v], dtype=object)
    for out, want in (((arr * x).sum(), (3.0, 3.0, 3.0)), ((x * arr).sum(), (3.0, 3.0, 3.0)),
                      ((x - arr).sum(), (-1.0, -1.0, 2.0))):
        g = fm.viz.node_grads(out)
        assert (g[u], g[v], g[x]) == want
    assert fm.grad(lambda x: (x * arr).sum())(3.0).value == 3.0  # u + v, still a node


@pytest.mark.parametrize("transform", [fm.grad, fm.jit, lambda f: fm.jit(fm.grad(f))],
                         ids=["grad", "jit", "jit(grad)"])
def test_a_node_holding_an_array_in_an_if_is_an_error_even_where_entries_agree(transform):
    w = np.array([1.0, 2.0])
    f = lambda x: x * 10.0 if (w * x) > 1.0 else -x  # both entries > 1 at 2.0
    with pytest.raises(ValueError, match=r"`>` on an fm\.Expr holding an array.*fm\.where"):
        transform(f)(2.0)
    with pytest.raises(ValueError, match=r"holding an array"):
        transform(lambda x: x if w * x else -x)(0.3)


def test_where_still_chooses_per_entry_on_a_node_holding_an_array():
    w = np.array([1.0, 2.0])
    out = fm.where((w * fm.Var(1.0)) > 1.5, 1.0, 0.0)
    assert out.value.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("f, p, want", [
    (lambda x, p: fm.where(x == p, 1.0, p / (p - 2.5)), 2.5, (float("inf"), None)),
    (lambda x, p: fm.where(x == p, 0.0, p).tanh(), 0.5, None),
    (lambda x, p: (p / (p - 2.5)) if x != 0.0 else x, 2.5, (float("inf"), None)),
], ids=["where-divide", "where-method", "agreeing-branch"])
def test_a_jit_under_vmap_that_runs_as_python_computes_on_nodes(f, p, want):
    # until round 32 its fallback ran f on the enclosing grad's values as Python floats:
    # ZeroDivisionError, AttributeError: 'float' object has no attribute 'tanh'
    xs = (1.0, -1.0)
    loop = fm.value_and_grad(lambda p: fm.sum([f(x, p) for x in xs]))(p)
    got = fm.value_and_grad(lambda p: fm.sum(fm.vmap(fm.jit(f), in_axes=(0, None))(xs, p)))(p)
    np.testing.assert_array_equal(np.array(got), np.array(loop))
    if want is not None:
        assert got[0] == want[0]


def test_a_schedule_that_returns_no_number_names_itself():
    for bad in (None, np.array([0.1]), "0.1"):
        opt = fm.optim.sgd(lambda k, bad=bad: bad)
        with pytest.raises(TypeError, match=r"learning-rate schedule .* at step 0: a schedule "
                                            r"returns one number"):
            opt.update((1.0,), opt.init((0.0,)))
    opt = fm.optim.sgd(lambda k: np.float32(0.5))  # a numpy scalar is a number
    assert opt.update((1.0,), opt.init((0.0,)))[0] == (-0.5,)


def test_a_checkpoint_with_a_learning_rate_scale_that_is_not_positive_is_refused(tmp_path):
    import warnings
    loss = lambda p, b: (p["w"] - b) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm.train.fit(loss, {"w": 3.0}, fm.optim.sgd(0.1), [1.0], epochs=2,
                     checkpoint_dir=tmp_path, on_instability="rollback")
    path = sorted(tmp_path.glob("epoch-*.json"))[-1]
    text = path.read_text()
    assert '"lr_scale": 1.0' in text
    for bad in ("-1.0", "0.0"):
        path.write_text(text.replace('"lr_scale": 1.0', f'"lr_scale": {bad}'))
        with pytest.raises(ValueError, match=r"opt_state\.lr_scale, where this run has a finite "
                                             r"number > 0"):
            fm.train.fit(loss, {"w": 3.0}, fm.optim.sgd(0.1), [1.0], epochs=4, resume=tmp_path,
                         on_instability="rollback")


@pytest.mark.parametrize("f", [lambda x: np.sinc(x)], ids=["sinc"])
def test_numpy_code_that_needs_floats_names_the_function(f):
    for t in (fm.grad, fm.jit):
        with pytest.raises(TypeError, match=r"np\.sinc on an fm node: numpy's code for it needs "
                                            r"float arrays"):
            t(f)(2.0)


def test_a_comparison_with_the_node_on_the_left_is_entry_by_entry_too():
    # (a review's catch: `a > s` worked, `s < a` raised)
    jf = fm.jit(lambda a, s: float(np.sum(s < a)) * s)
    assert jf(A, 2.0) == 4.0 and jf(A, 5.0) == 5.0
    assert fm.jit(lambda a, s: fm.sum(list(fm.where(s < a, a, 0.0))))(A, 2.0) == 11.0
    x, o = fm.Var(2.0), np.array([fm.Var(1.0), fm.Var(3.0)], dtype=object)
    assert (x < o).tolist() == [False, True] and (x == o).tolist() == [False, False]


def test_float_of_a_comparison_on_a_node_holding_an_array_says_so():
    with pytest.raises(TypeError, match=r"float\(\) of a comparison \(`>`\) on an fm\.Expr "
                                        r"holding an array"):
        float(fm.Var(1.5) * np.array([1.0, 2.0]) > 0)
    with pytest.raises(TypeError, match=r"^int\(\) of a comparison"):
        int(fm.Var(1.5) * np.array([1.0, 2.0]) > 0)


def test_a_float_argument_of_a_jit_under_vmap_that_runs_as_python_stays_a_float():
    # (a review's catch: the fallback's constant nodes refused `n % 3`, which a float answers)
    f = lambda x, n: x * (n % 3)
    assert fm.vmap(fm.jit(f), in_axes=(0, None))(np.array([1.0, 2.0]), 4.0) == (1.0, 2.0)


@pytest.mark.parametrize("call", [
    lambda c: fm.jvp(c, (2.0,), (1.0,)), lambda c: fm.jacfwd(c)(2.0),
    lambda c: fm.linearize(c, 2.0)[1](1.0),
    lambda c: fm.jit(lambda x: fm.jvp(c, (x,), (1.0,)))(2.0),
], ids=["jvp", "jacfwd", "linearize", "jit(jvp)"])
def test_a_custom_jvp_rule_returning_the_tangent_alone_says_so_in_forward_mode(call):
    # (a probe's: "'Expr' object is not subscriptable"; grad said it already)
    c = fm.custom_jvp(lambda x: x * x)
    c.defjvp(lambda p, t: 2 * p[0] * t[0])
    with pytest.raises(TypeError, match=r"rule must return a pair \(primal_out, tangent_out\)"):
        call(c)


def test_a_checkpoint_static_argument_that_is_differentiated_names_static_argnums():
    ck = fm.checkpoint(lambda x, n: x * n, static_argnums=1)
    with pytest.raises(TypeError, match=r"argument 1 is in static_argnums.*take it out of "
                                        r"static_argnums"):
        fm.grad(lambda x: ck(x, x))(2.0)


def test_an_np_matrix_argument_times_a_node_under_jit_is_entry_by_entry():
    # np.matrix declines `* node`: the node's reflected operator is numpy's, entry by entry
    # (until round 32 jit returned [[2. 6.]] where the float program gives 8.0)
    f = lambda x, a: fm.sum(list(np.asarray(np.asmatrix(a) * x).ravel()))
    g = lambda x, a: fm.sum(list(np.asarray(x * np.asmatrix(a)).ravel()))
    for h in (f, g):
        assert fm.jit(h)(2.0, np.array([1.0, 3.0])) == h(2.0, np.array([1.0, 3.0])) == 8.0
        assert fm.jit(h)(3.0, np.array([1.0, 3.0])) == 12.0
