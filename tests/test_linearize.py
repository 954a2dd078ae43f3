"""fm.linearize and fm.jvp(has_aux=True), against jvp and JAX's conventions."""

import math

import pytest

import fmicrograd as fm


def f(p, x):
    return fm.tanh(p["w"] * x + p["b"]), fm.sin(x) * p["w"]


def test_linearize_equals_jvp_for_every_tangent():
    primals = ({"w": 0.5, "b": -0.2}, 1.5)
    out, f_jvp = fm.linearize(f, *primals)
    assert out == f(*primals)
    for tangents in [({"w": 1.0, "b": 0.0}, 0.0), ({"w": 0.0, "b": 1.0}, 0.0),
                     ({"w": 0.3, "b": -2.0}, 0.7)]:
        assert f_jvp(*tangents) == fm.jvp(f, primals, tangents)[1]


def test_linearize_is_linear_and_differentiable_again():
    _, f_jvp = fm.linearize(lambda x: x ** 3, 2.0)
    assert f_jvp(1.0) == 12.0 and f_jvp(2.0) == 24.0
    # inside another transform the linear map is a graph in the outer variable
    d2 = fm.grad(lambda x: fm.linearize(lambda y: y ** 3, x)[1](1.0))(2.0)
    assert d2 == 12.0


def test_linearize_checks_the_tangent_structure():
    _, f_jvp = fm.linearize(f, {"w": 0.5, "b": -0.2}, 1.5)
    with pytest.raises(ValueError, match="linearize"):
        f_jvp({"w": 1.0}, 0.0)


def test_jvp_has_aux():
    out, tangent, aux = fm.jvp(lambda x: (fm.sin(x), {"x": x}), (0.5,), (2.0,), has_aux=True)
    assert out == math.sin(0.5) and tangent == 2 * math.cos(0.5)
    assert aux == {"x": 0.5}  # aux comes back as plain values
    with pytest.raises(TypeError, match="has_aux"):
        fm.jvp(lambda x: x, (0.5,), (1.0,), has_aux=True)
