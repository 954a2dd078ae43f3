"""fm's functions take numbers (and nodes): a list of rows given to ``fm.softmax``,
``fm.logsumexp`` or an elementwise function is a ``TypeError`` naming the
per-row form, and a torch number is a float64 as a numpy scalar is.

Until round 30 numpy broadcast such a list: ``fm.softmax([[1.0, 2.0], [3.0,
4.0]])`` normalised down the columns (JAX normalises each row), ``fm.jit(
fm.logsumexp)`` of it gave ``array([3.127, 4.127])``, and ``fm.logsumexp`` of a
torch tensor raised numpy's ``AttributeError``."""

from __future__ import annotations

import math

import pytest
import torch

import fmicrograd as fm

ROWS = [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize("call", [
    lambda: fm.softmax(ROWS), lambda: fm.log_softmax(ROWS), lambda: fm.logsumexp(ROWS),
    lambda: fm.jit(fm.logsumexp)(ROWS), lambda: fm.exp([1.0, 2.0]),
    lambda: fm.maximum((1.0,), 2.0), lambda: fm.grad(lambda x: fm.logsumexp([x, [1.0]]))(1.0),
], ids=["softmax", "log_softmax", "logsumexp", "jit", "exp", "maximum", "grad"])
def test_a_list_of_rows_is_refused(call):
    with pytest.raises(TypeError, match=r"several rows of scores|apply fm\.\w+ to each item"):
        call()


def test_each_row_as_the_message_says():
    got = [fm.softmax(row) for row in ROWS]
    assert got[0] == pytest.approx((1 / (1 + math.e), math.e / (1 + math.e)))


def test_torch_numbers():
    t = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert fm.logsumexp(t) == pytest.approx(math.log(math.e + math.e ** 2))
    assert fm.sum(t) == 3.0 and type(fm.sum(t)) is float


def test_where_of_a_bool_chooses_a_branch_of_several_numbers():
    assert fm.where(True, (1.0, 2.0), (3.0, 4.0)) == (1.0, 2.0)


def test_the_message_fits_the_function():
    with pytest.raises(TypeError, match=r"\[fm\.softmax\(row\) for row in rows\]"):
        fm.softmax(ROWS)
    with pytest.raises(TypeError, match=r"apply fm\.where to each item"):
        fm.vmap(lambda x: fm.where(x > 0.0, (x, x), (x, 2.0 * x)))([1.0, -2.0])


def test_trace_keeps_a_torch_tensor_as_eager_fm_does():
    t = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert fm.trace(lambda x: x * t)(2.0).value.tolist() == [2.0, 4.0]
