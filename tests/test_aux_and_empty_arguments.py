"""An output that depends on an enclosing transform's variable stays a graph
for that transform (an outer ``grad`` differentiates it, ``jit`` computes it
on every call), also when nothing this transform differentiates reaches it:
``has_aux``'s extra output beside an output that does not reach the enclosing
variable, and every output when the differentiated argument holds no numbers.

Until round 31 both came back as plain numbers: the outer ``grad`` was 0.0
where the slope is 6.0, and ``jit`` returned the first call's value (9.0 at
5.0); jax gives 6.0 and 25.0."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm


def _pair(p, a):
    return p * 2.0, a * a


AUX = {
    "grad": lambda a: fm.grad(_pair, has_aux=True)(1.0, a)[1],
    "value_and_grad": lambda a: fm.value_and_grad(_pair, has_aux=True)(1.0, a)[0][1],
    "vjp": lambda a: fm.vjp(lambda p: _pair(p, a), 1.0, has_aux=True)[2],
    "jvp": lambda a: fm.jvp(lambda p: _pair(p, a), (1.0,), (1.0,), has_aux=True)[2],
    "linearize": lambda a: fm.linearize(lambda p: _pair(p, a), 1.0, has_aux=True)[2],
    "jacfwd": lambda a: fm.jacfwd(lambda p: _pair(p, a), has_aux=True)(1.0)[1],
    "jacrev": lambda a: fm.jacrev(lambda p: _pair(p, a), has_aux=True)(1.0)[1],
}

EMPTY = {
    "value_and_grad of []": lambda a: fm.value_and_grad(lambda p, a: a * a)([], a)[0],
    "value_and_grad of {}": lambda a: fm.value_and_grad(lambda p, a: a * a)({}, a)[0],
    "vjp of []": lambda a: fm.vjp(lambda p: a * a, [])[0],
    "jvp of []": lambda a: fm.jvp(lambda p: a * a, ([],), ([],))[0],
    "linearize of []": lambda a: fm.linearize(lambda p: a * a, [])[0],
}


@pytest.mark.parametrize("f", list(AUX.values()) + list(EMPTY.values()),
                         ids=list(AUX) + list(EMPTY))
def test_enclosing_grad_and_jit_see_the_output(f):
    assert fm.grad(f)(3.0) == 6.0
    j = fm.jit(f)
    assert j(3.0) == 9.0
    assert j(5.0) == 25.0


def test_an_empty_layer_in_a_jitted_step():
    def loss(p, ys):
        per = fm.vmap(lambda p, t: (fm.dot(p, []) - t) ** 2, in_axes=(None, 0))(p, ys)
        return fm.mean(per)

    step = fm.jit(fm.value_and_grad(loss))
    step([], np.array([1.0, 2.0, 3.0]))
    value, g = step([], np.array([10.0, 20.0, 30.0]))
    assert value == pytest.approx(1400.0 / 3.0, rel=1e-15) and g == []


def test_an_aux_of_own_variables_is_still_a_number():
    (value, aux), g = fm.value_and_grad(lambda x: (x * x, {"x2": x * 2.0}), has_aux=True)(3.0)
    assert (value, aux, g) == (9.0, {"x2": 6.0}, 6.0)
    assert type(aux["x2"]) is float
