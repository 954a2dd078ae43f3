"""Round 36's dtype probe: a custom rule's numpy float32 or int8 numbers, a
float32 0-d array or tensor in ``fm.Var``, float32 parameters through
``apply_updates``, a masked array under ``vmap`` and a huge int into a custom
rule gave other numbers than float64's, with no error, in round 35's code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fmicrograd as fm

TRANSFORMS = {"grad": fm.grad, "jit(grad)": lambda f: fm.jit(fm.grad(f)),
              "grad(jit)": lambda f: fm.grad(fm.jit(f))}


@fm.custom_vjp
def _ident(x):
    return x


_ident.defvjp(lambda x: (x, np.float32(1.0)), lambda res, g: (g * res,))


@pytest.mark.parametrize("how", TRANSFORMS)
def test_a_float32_residual_leaves_the_sweep_in_float64(how):
    # round 35: numpy kept g * float32(1.0) float32 (1e8 for 100000001.0)
    got = TRANSFORMS[how](lambda x: 1e8 * x + _ident(x))(0.5)
    assert got == 100000001.0 and type(got) is float
    got = TRANSFORMS[how](lambda x: fm.sin(_ident(x * x)))(0.3)
    assert got == pytest.approx(np.cos(0.09) * 0.6, rel=1e-15)


@fm.custom_vjp
def _int8_slope(x):
    return x * 3.0


_int8_slope.defvjp(lambda x: (x * 3.0, None), lambda r, g: (np.int8(100),))


@pytest.mark.parametrize("how", TRANSFORMS)
def test_int8_cotangents_do_not_wrap_around(how):
    # round 35: two np.int8(100) summed to -56
    got = TRANSFORMS[how](lambda x: _int8_slope(x) + _int8_slope(x))(0.5)
    assert got == 200.0 and type(got) is float


@fm.custom_vjp
def _triple(x):
    return x * 3.0


_triple.defvjp(lambda x: (np.float32(x * 3.0) if isinstance(x, float) else x * 3.0, None),
               lambda res, g: (g * 3.0,))


@pytest.mark.parametrize("jit", [False, True])
def test_a_float32_output_of_fwd_is_float64_onward(jit):
    # round 35: under jit the rest of the forward pass ran in float32 (1e8)
    f = fm.value_and_grad(lambda x: _triple(x) + 1e8)
    value, slope = (fm.jit(f) if jit else f)(0.1)
    assert value == 1e8 + float(np.float32(0.3)) and slope == 3.0


def test_a_torch_cotangent_is_a_float():
    @fm.custom_vjp
    def f(x):
        return 2.0 * x

    f.defvjp(lambda x: (2.0 * x, None), lambda r, g: (torch.tensor(2.0, dtype=torch.float64),))
    got = fm.grad(f)(1.0)
    assert got == 2.0 and type(got) is float


@pytest.mark.parametrize("value", [np.array(0.1, np.float32),
                                   torch.tensor(0.1, dtype=torch.float32)],
                         ids=["0-d float32 array", "float32 tensor"])
def test_a_var_holds_a_float(value):
    # round 35: the Var kept the array or tensor, and the graph computed in float32
    a = fm.Var(value)
    assert type(a.value) is float and a.value == float(np.float32(0.1))
    y = a * 1e8 + a * a
    assert y.value == a.value * 1e8 + a.value * a.value
    assert type(fm.Const(value).value) is float


def test_a_var_refuses_an_int_a_float64_cannot_hold():
    with pytest.raises(TypeError, match="beyond 2\\*\\*53"):
        fm.Var(2 ** 53 + 1)
    assert fm.Var(2 ** 53).value == 2.0 ** 53


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_apply_updates_steps_a_float32_parameter_in_float64(dtype):
    # round 35: eagerly a stayed float32(10000.0) for every step; jit moved it
    loss = lambda p: (p["a"] - 10000.123456789) ** 2 * 1e-3  # noqa: E731
    opt = fm.optim.sgd(1e-2)

    def step(p, st):
        u, st = opt.update(fm.grad(loss)(p), st, p)
        return fm.optim.apply_updates(p, u), st

    results = []
    for s in (step, fm.jit(step)):
        p = {"a": dtype(10000.0)}
        st = opt.init(p)
        for _ in range(5):
            p, st = s(p, st)
        results.append(p["a"])
    assert results[0] == results[1] and results[0] > 10000.0
    assert type(results[0]) is float


def test_apply_updates_widens_float32_arrays_and_keeps_float64_ones():
    out = fm.optim.apply_updates((np.zeros(2, np.float32), np.zeros(2)), (1e-9, 1e-9))
    assert out[0].dtype == np.float64 and out[0][0] == 1e-9 and out[1][0] == 1e-9


def test_vmap_refuses_a_masked_array():
    # round 35: the hidden entries were mapped (14.0 where numpy's sum is 10.0)
    m = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    with pytest.raises(TypeError, match="MaskedArray.*x.filled"):
        fm.vmap(lambda x: x * x)(m)
    assert fm.sum(fm.vmap(lambda x: x * x)(m.compressed())) == 10.0


@fm.custom_jvp
def _shifted(x, n):
    return x * (n - 2 ** 60)


_shifted.defjvp(lambda p, t: (_shifted(*p), t[0] * (p[1] - 2 ** 60)))


def _cv(x, n):
    return x * (n - 2 ** 60)


_cvjp = fm.custom_vjp(_cv)
_cvjp.defvjp(lambda x, n: (x * (n - 2 ** 60), n), lambda n, c: (c * (n - 2 ** 60), 0.0))


@pytest.mark.parametrize("how", ["grad", "jit(grad)"])
@pytest.mark.parametrize("f", [_shifted, _cvjp, fm.checkpoint(_cv)],
                         ids=["custom_jvp", "custom_vjp", "checkpoint"])
def test_a_huge_int_argument_of_a_rule_is_refused(how, f):
    # round 35: rounded to a float node (jvp's tangent 0.0, jit(grad) 0.0, for 1.0)
    with pytest.raises(TypeError, match="beyond 2\\*\\*53.*(nondiff|static)_argnums"):
        TRANSFORMS[how](f)(1.0, 2 ** 60 + 1)


def test_a_huge_int_listed_as_static_is_exact():
    f = fm.checkpoint(_cv, static_argnums=1)
    assert fm.grad(f)(1.0, 2 ** 60 + 1) == 1.0
    assert fm.jit(fm.grad(f), static_argnums=1)(1.0, 2 ** 60 + 1) == 1.0


def test_item_on_a_node_is_a_float_or_names_static_argnums_under_jit():
    # round 35: AttributeError naming TracedVar
    f = lambda w, lr: w * lr.item()  # noqa: E731
    assert fm.grad(f)(3.0, np.float32(0.5)) == 0.5 and fm.Var(0.25).item() == 0.25
    with pytest.raises(TypeError, match="static_argnums"):
        fm.jit(f)(3.0, np.float32(0.5))
    assert fm.jit(f, static_argnums=1)(3.0, np.float32(0.5)) == 1.5


def test_jit_names_the_fix_for_a_memoryview_argument():
    # round 35: "cannot hash writable memoryview object"
    f = lambda w, xs: fm.sum([w * v for v in xs])  # noqa: E731
    with pytest.raises(TypeError, match="memoryview; pass np.asarray"):
        fm.jit(f)(1.0, memoryview(np.array([1.0, 2.0])))
    assert fm.jit(f)(1.0, np.asarray(memoryview(np.array([1.0, 2.0])))) == 3.0


def test_exact_huge_ints_are_taken_and_int_parameters_stay_ints():
    assert fm.Var(2 ** 60).value == 2.0 ** 60
    with pytest.raises(TypeError, match="beyond 2\\*\\*53"):
        fm.Var(np.array(2 ** 60 + 1))
    params = {"idx": np.array([0, 1]), "step": np.int64(0), "small": np.int8(100)}
    out = fm.optim.apply_updates(params, {"idx": np.zeros(2, np.int64), "step": np.int64(1),
                                          "small": np.int8(100)})
    assert out["idx"].dtype == np.int64 and out["step"] == 1 and out["small"] == 200


@fm.custom_vjp
def _int_residual(x):
    return x * 3.0


_int_residual.defvjp(lambda x: (x * 3.0, (np.int8(100), np.array([0, 1], np.int32))),
                     lambda r, g: ((r[0] + r[0]) * g * float(np.ones(2)[r[1]].sum()),))


def test_a_narrow_int_residual_does_not_wrap_and_still_indexes():
    assert fm.grad(_int_residual)(0.5) == 400.0


@fm.custom_jvp
def _sin2(x):
    return fm.sin(x)


@_sin2.defjvp
def _sin2_jvp(p, t):
    return _sin2(p[0]), fm.cos(p[0]) * t[0]


def test_a_batch_of_tangents_under_vmap_is_not_refused():
    # (reviews: the array-tangent check refused vmap's tangents)
    ts = np.array([1.0, 2.0, 3.0])
    want = tuple(np.cos(0.5) * ts)
    assert fm.vmap(lambda t: fm.jvp(_sin2, (0.5,), (t,))[1])(ts) == pytest.approx(want)
    lin = fm.linearize(_sin2, 0.5)[1]
    assert fm.vmap(lin)(ts) == pytest.approx(want)
    assert fm.jit(fm.vmap(lambda t: fm.jvp(_sin2, (0.5,), (t,))[1]))(ts) == pytest.approx(want)
