"""A jitted function that reads values it was not handed as arguments: a
per-example value of an enclosing ``vmap`` and ``debug_nans``'s check must
never be compiled in as constants."""

from __future__ import annotations

import pytest

import fmicrograd as fm


def _reads_cell() -> tuple:
    cell: dict = {}
    g = fm.jit(lambda y: cell["x"] * y)

    def h(x):
        cell["x"] = x
        return g(1.0)

    return h, cell


def test_vmap_value_read_by_a_jitted_closure_is_not_frozen() -> None:
    h, _ = _reads_cell()
    assert fm.vmap(h)((1.0, 2.0, 5.0)) == (1.0, 2.0, 5.0)
    assert fm.vmap(h)((7.0, 8.0, 9.0)) == (7.0, 8.0, 9.0)  # was the first batch again
    assert h(4.0) == 4.0  # was the first batch, as an array
    assert fm.vmap(h)((7.0, 8.0)) == (7.0, 8.0)  # was a broadcast error


def test_vmap_value_read_by_a_jitted_closure_with_a_batched_argument() -> None:
    cell: dict = {}
    g = fm.jit(lambda y: cell["x"] * y)

    def h(x, y):
        cell["x"] = x
        return g(y)

    assert fm.vmap(h)((1.0, 2.0), (1.0, 3.0)) == (1.0, 6.0)
    assert fm.vmap(h)((7.0, 8.0), (1.0, 1.0)) == (7.0, 8.0)


def test_grad_through_vmap_of_a_jitted_closure() -> None:
    h, _ = _reads_cell()
    f = lambda w: fm.sum(fm.vmap(lambda x: h(x * w) * x)((1.0, 2.0)))  # noqa: E731
    assert fm.grad(f)(3.0) == pytest.approx(1.0 + 4.0, abs=1e-15)


def test_jit_still_compiles_a_vmap_it_runs_itself() -> None:
    import numpy as np
    xs = np.array([1.0, -2.0, 3.0])
    f = fm.jit(lambda w: fm.sum(fm.vmap(lambda x: fm.relu(w * x))(xs)))
    assert f(2.0) == 8.0 and f(-1.0) == 2.0
    assert "python" not in f.lower(2.0).as_text().splitlines()[0]


@pytest.mark.parametrize("wrap", [lambda f: f, fm.grad], ids=["value", "grad"])
def test_debug_nans_inside_jit_checks_every_call(wrap) -> None:
    f = lambda x: fm.log(x) * 0.0 + x  # noqa: E731
    jitted = fm.jit(fm.debug_nans(wrap(f)))
    assert jitted(2.0) == (2.0 if wrap is not fm.grad else 1.0)
    with pytest.raises(FloatingPointError, match="'log' produced nan"):
        jitted(-1.0)  # the first call was clean: the check used to be gone


def test_debug_nans_inside_jit_under_grad_and_vmap() -> None:
    f = lambda x: fm.log(x) * 0.0 + x  # noqa: E731
    g = fm.grad(fm.jit(fm.debug_nans(f)))
    assert g(2.0) == 1.0
    with pytest.raises(FloatingPointError):
        g(-1.0)
    v = fm.vmap(fm.jit(fm.debug_nans(f)))
    assert v((2.0, 3.0)) == (2.0, 3.0)
    with pytest.raises(FloatingPointError):
        v((2.0, -1.0))


def test_a_jitted_closure_compiled_before_sees_the_transform_node() -> None:
    """Compiled by a plain call with a float in the cell, then called under
    grad with the transform's node there: the compiled code held 3.0 and the
    derivative came out 0.0."""
    h, cell = _reads_cell()
    assert h(3.0) == 3.0
    assert fm.grad(h)(5.0) == 1.0
    assert fm.jvp(h, (5.0,), (2.0,)) == (5.0, 2.0)
    assert fm.vmap(h)((7.0, 8.0)) == (7.0, 8.0)
    assert fm.jit(fm.grad(h))(5.0) == 1.0
    g = fm.jit(lambda y: cell["x"] * fm.grad(lambda z: cell["x"] * z * z)(y))
    cell["x"] = 2.0
    assert g(3.0) == 24.0

    def outer(x):
        cell["x"] = x
        return g(3.0)

    assert fm.grad(outer)(2.0) == 24.0  # d/dx of 6 x^2 at 2


def test_a_jitted_call_on_constants_under_grad_still_compiles_when_differentiated() -> None:
    traces = []

    def f(x):
        traces.append(1)
        return fm.tanh(x) * x

    j = fm.jit(f)
    g = fm.grad(j)
    assert g(0.5) == pytest.approx(fm.grad(f)(0.5), rel=1e-14)
    n = len(traces)
    for v in (0.25, 0.75, 1.5):
        assert g(v) == pytest.approx(fm.grad(f)(v), rel=1e-14)
    assert len(traces) == n + 3  # only the plain fm.grad(f) reference calls ran f


@pytest.mark.parametrize("wrap", [lambda f: f, fm.vmap], ids=["call", "vmap"])
def test_debug_nans_around_jit_names_the_op(wrap) -> None:
    g = fm.debug_nans(wrap(fm.jit(lambda x: fm.sqrt(x - 10.0))))
    args = (2.0,) if wrap is not fm.vmap else ((2.0, 12.0),)
    with pytest.raises(FloatingPointError, match="'sqrt' produced nan"):
        g(*args)  # was "'custom_vjp plain' produced nan"
    assert fm.debug_nans(fm.jit(lambda x: fm.sqrt(x - 10.0)))(14.0) == 2.0
