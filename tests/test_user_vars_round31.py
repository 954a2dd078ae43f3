"""fm used eagerly, micrograd's way, with ``fm.Var`` nodes the user made.

Until round 31: a ``custom_vjp``/``custom_jvp`` (or a top-level ``checkpoint``)
closing over a user's Var dropped its derivative with no error
(``fm.viz.node_grads(out)`` had no entry for it); ``debug_nans`` and ``vjp_fn``
(given such a Var as its cotangent) returned floats, so a later derivative with
respect to the Var missed them (18.0 for 36.0, 12.0 for 24.0); and micrograd's
prebuilt ``c = a * b`` gave 0.0 under ``vjp``, ``jvp``, ``linearize``,
``jacrev``, ``jacfwd`` where ``grad`` named the fix."""

from __future__ import annotations

import pytest

import fmicrograd as fm


def _custom_vjp(w):
    f = fm.custom_vjp(lambda a: a * a * w)
    f.defvjp(lambda a: (a * a * w, a), lambda a, g: (2.0 * a * w * g,))
    return f


def _custom_jvp(w):
    f = fm.custom_jvp(lambda a: a * a * w)
    f.defjvp(lambda p, t: (f(p[0]), 2.0 * p[0] * w * t[0]))
    return f


@pytest.mark.parametrize("make", [_custom_vjp, _custom_jvp], ids=["custom_vjp", "custom_jvp"])
def test_a_rule_closing_over_a_users_var_is_an_error(make):
    w, x = fm.Var(2.0, name="w"), fm.Var(3.0, name="x")
    with pytest.raises(TypeError, match="closes over an fm.Var made outside it"):
        make(w)(x)


def test_debug_nans_keeps_a_users_var_in_the_graph():
    w = fm.Var(2.0, name="w")
    out = fm.debug_nans(lambda x: x * x * w)(3.0)
    assert fm.viz.node_grads(out * w)[w] == 36.0


def test_a_vjp_fn_cotangent_that_is_a_users_var():
    w = fm.Var(2.0)
    _, vjp_fn = fm.vjp(lambda x: x * x, 3.0)
    g = vjp_fn(w)[0]
    assert fm.viz.node_grads(g * w)[w] == 24.0


@pytest.mark.parametrize("call", [
    lambda f, a: fm.vjp(f, a)[1](1.0), lambda f, a: fm.jvp(f, (a,), (1.0,)),
    lambda f, a: fm.linearize(f, a), lambda f, a: fm.jacrev(f)(a),
    lambda f, a: fm.jacfwd(f)(a),
], ids=["vjp", "jvp", "linearize", "jacrev", "jacfwd"])
def test_a_prebuilt_output_names_the_fix_in_every_transform(call):
    a, b = fm.Var(2.0), fm.Var(-3.0)
    c = a * b
    with pytest.raises(ValueError, match="built before the call from the node passed"):
        call(lambda x: c, a)


def test_node_grads_of_a_float_names_the_fix():
    with pytest.raises(TypeError, match=r"node_grads: expected an fm.Expr, got float 3.0 "
                                        r"\(a model called on plain numbers"):
        fm.viz.node_grads(3.0)


@pytest.mark.parametrize("value, match", [
    (__import__("numpy").array([1.0, 2.0]), r"an array of shape \(2,\)"),
    (10 ** 400, "beyond float64's range"),
], ids=["array", "huge int"])
def test_a_var_is_one_float64_number(value, match):
    with pytest.raises(TypeError, match=match):
        fm.Var(value)
