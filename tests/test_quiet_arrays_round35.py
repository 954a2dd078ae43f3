"""Round 35: numpy's floating-point warnings stay off under ``vmap``, as in
eager float code and compiled code (round 34's special-values probe: about
90 function/transform combinations warned, an exception under
``np.seterr(all="raise")`` or ``warnings.simplefilter("error")``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fmicrograd as fm

XS = [1e200, 1.0]
ZERO_ONE = [0.0, 1.0]

CASES = {
    "vmap overflow": (lambda: fm.vmap(lambda x: x * x)(XS), (math.inf, 1.0)),
    "vmap of grad": (lambda: fm.vmap(fm.grad(lambda x: 0.0 ** x))([0.7, 1.0]), (0.0, 0.0)),
    "jit of vmap": (lambda: fm.jit(lambda xs: fm.vmap(lambda x: x * x)(xs))(np.array(XS)),
                    (math.inf, 1.0)),
    "vmap of jit": (lambda: fm.vmap(fm.jit(lambda x: x * x))(XS), (math.inf, 1.0)),
    "grad of vmap": (lambda: fm.grad(
        lambda w: fm.sum(fm.vmap(lambda x: (w * x) ** 2)(XS)))(1.0), math.inf),
    "grad sweep's 0 * inf": (lambda: fm.grad(
        lambda w: fm.sum(fm.vmap(lambda x: fm.sqrt(w * x))(ZERO_ONE)))(1.0), math.nan),
    "jit of grad of vmap": (lambda: fm.jit(fm.grad(
        lambda w: fm.sum(fm.vmap(lambda x: fm.sqrt(w * x))(np.array(ZERO_ONE)))))(1.0),
        math.nan),
    "jvp of vmap": (lambda: fm.jvp(
        lambda w: fm.sum(fm.vmap(lambda x: fm.sqrt(w * x))(ZERO_ONE)), (1.0,), (1.0,)),
        (1.0, math.nan)),
    "hessian of vmap": (lambda: fm.hessian(
        lambda w: fm.sum(fm.vmap(lambda x: fm.sqrt(w * x))(ZERO_ONE)))(1.0), math.nan),
    # round 44: the sum of a vmap result over inf and -inf (fm.sum's own batch sum)
    "grad of a sum over inf and -inf": (lambda: fm.grad(
        lambda a: fm.sum(fm.vmap(lambda x: x * 2.0)(a)))((math.inf, -math.inf)), (2.0, 2.0)),
}


def _same(a: object, b: object) -> bool:
    if isinstance(b, tuple):
        return isinstance(a, tuple) and len(a) == len(b) and all(map(_same, a, b))
    return (math.isnan(b) and math.isnan(a)) or a == b  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_numpy_warning_under_vmap(name: str) -> None:
    run, expected = CASES[name]
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        got = run()  # (round 34: FloatingPointError from numpy's multiply)
    assert _same(got, expected), got


def test_the_users_settings_come_back() -> None:
    with np.errstate(all="raise"):
        fm.vmap(lambda x: x * x)(XS)
        assert np.geterr()["over"] == "raise"
        with pytest.raises(FloatingPointError):
            np.array([1e200]) * np.array([1e200])
