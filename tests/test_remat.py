"""fm.checkpoint / fm.remat: same values and derivatives at every order and under
every transform; the reverse sweep recomputes the inner nodes instead of keeping them."""

import gc
import math
import tracemalloc

import numpy as np
import pytest

import fmicrograd as fm


def block(x, w):
    for _ in range(30):
        x = fm.tanh(x * w + 0.1)
    return x


def chain(x, w, wrap=lambda f: f, n=5):
    for _ in range(n):
        x = wrap(block)(x, w)
    return x * x


def test_values_and_derivatives_equal_the_plain_function():
    f = lambda x, w: chain(x, w)
    g = lambda x, w: chain(x, w, fm.checkpoint)
    args = (0.3, 1.2)
    assert g(*args) == f(*args)
    assert fm.grad(g, argnums=(0, 1))(*args) == fm.grad(f, argnums=(0, 1))(*args)
    assert fm.jvp(g, args, (1.0, 0.5)) == pytest.approx(fm.jvp(f, args, (1.0, 0.5)), rel=1e-14)
    hg = fm.hessian(g, argnums=(0, 1))(*args)
    hf = fm.hessian(f, argnums=(0, 1))(*args)
    assert np.allclose(hg, hf, rtol=1e-13, atol=0)
    third = lambda h: fm.grad(fm.grad(fm.grad(h)))(0.3, 1.2)
    assert third(g) == pytest.approx(third(f), rel=1e-12)


def test_remat_is_checkpoint():
    assert fm.remat is fm.checkpoint


def test_under_vmap_and_jit():
    f = lambda x, w: chain(x, w, n=2)
    g = lambda x, w: chain(x, w, fm.checkpoint, n=2)
    xs = np.linspace(-1.0, 1.0, 4)
    want = fm.vmap(fm.grad(f), in_axes=(0, None))(xs, 1.1)
    assert np.allclose(fm.vmap(fm.grad(g), in_axes=(0, None))(xs, 1.1), want, rtol=1e-14)
    assert fm.jit(fm.grad(g))(0.2, 1.1) == pytest.approx(fm.grad(f)(0.2, 1.1), rel=1e-14)
    assert fm.grad(fm.jit(g))(0.2, 1.1) == pytest.approx(fm.grad(f)(0.2, 1.1), rel=1e-14)
    loss = lambda w: fm.mean(fm.vmap(lambda x: g(x, w))(xs))
    assert fm.grad(loss)(1.1) == pytest.approx(
        fm.grad(lambda w: fm.mean(fm.vmap(lambda x: f(x, w))(xs)))(1.1), rel=1e-14)


def test_the_reverse_sweep_recomputes_the_function():
    calls = []

    def f(x):
        calls.append(x)
        return fm.sin(x) * 2.0

    g = fm.checkpoint(f)
    assert fm.grad(g)(1.0) == pytest.approx(2 * math.cos(1.0), rel=1e-15)
    assert len(calls) == 2  # the forward pass on values, then the recomputation


def test_static_argnums():
    def power(x, n):
        return x ** n

    g = fm.checkpoint(power, static_argnums=(1,))
    assert fm.grad(g)(2.0, 3) == 12.0
    assert fm.grad(fm.grad(g))(2.0, 3) == 12.0


def test_closing_over_a_differentiated_value_is_an_error():
    def outer(w):
        return fm.checkpoint(lambda x: x * w)(fm.sin(w))

    with pytest.raises(TypeError, match="checkpoint: .*pass that value as an argument"):
        fm.grad(outer)(2.0)


def _peak(fn):
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_of_a_deep_chain_shrinks():
    f = lambda x, w: chain(x, w, n=20)
    g = lambda x, w: chain(x, w, fm.checkpoint, n=20)
    plain = _peak(lambda: fm.grad(f)(0.3, 1.2))
    remat = _peak(lambda: fm.grad(g)(0.3, 1.2))
    assert remat < 0.5 * plain, (remat, plain)


def test_memory_of_a_hessian_shrinks():
    """Inside the outer sweep the inner gradient is itself checkpointed, so reverse
    over reverse keeps one node per block as well."""
    f = lambda x, w: chain(x, w, n=10)
    g = lambda x, w: chain(x, w, fm.checkpoint, n=10)
    plain = _peak(lambda: fm.hessian(f, argnums=(0, 1))(0.3, 1.2))
    remat = _peak(lambda: fm.hessian(g, argnums=(0, 1))(0.3, 1.2))
    assert remat < 0.5 * plain, (remat, plain)


def test_a_numpy_data_argument_reaches_the_rerun_as_it_was_passed():
    # it came back as a variable holding the whole array: 'Var' object is not iterable
    import numpy as np

    data = np.array([1.0, 2.0, 3.0])
    f = lambda w, a: w * w * fm.sum(tuple(a))
    g = fm.checkpoint(f)
    assert fm.grad(g)(2.0, data) == fm.jit(fm.grad(g))(2.0, data) == fm.grad(f)(2.0, data) == 24.0
    assert fm.hessian(g)(2.0, data) == fm.jit(fm.hessian(g))(2.0, data) == 12.0
    assert data.tolist() == [1.0, 2.0, 3.0]


def test_a_custom_jvp_with_a_numpy_data_argument_composes():
    import numpy as np

    data = np.array([1.0, 2.0, 3.0])

    @fm.custom_jvp
    def scaled(w, a):
        return w * fm.sum(tuple(a))

    @scaled.defjvp
    def _(primals, tangents):
        (w, a), (tw, ta) = primals, tangents
        return scaled(w, a), tw * fm.sum(tuple(a)) + w * fm.sum(tuple(ta))

    h = lambda w: scaled(w, data) * w  # 6 w ** 2
    assert fm.grad(h)(2.0) == fm.jit(fm.grad(h))(2.0) == 24.0
    assert fm.hessian(h)(2.0) == fm.jit(fm.hessian(h))(2.0) == 12.0
    assert fm.jvp(h, (2.0,), (1.0,))[1] == 24.0


def test_static_argnums_may_be_an_int_as_for_jit():
    f = fm.checkpoint(lambda x, n: x ** n, static_argnums=1)
    assert fm.grad(f)(2.0, 3) == 12.0
