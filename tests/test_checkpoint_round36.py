"""Round 36: what ``fm.checkpoint``'s rerun reads beyond its closure cells
(a closed-over array refilled in place, an argument array refilled, a helper
of the same module, a comprehension, a wrapped function), and a
``custom_jvp`` rule's array tangent for a number output. Each gave another
function's derivative, with no error, in round 35's code."""

from __future__ import annotations

import numpy as np
import pytest

import fmicrograd as fm

X = 0.3
SECH2 = 1.0 - np.tanh(X) ** 2
HOW = {"grad": fm.grad, "jit(grad)": lambda f: fm.jit(fm.grad(f)), "jacfwd": fm.jacfwd,
       "hessian": fm.hessian}


def _refilled_closure(x, size=2):
    buf = np.zeros(size)
    total = 0.0
    for d in (1.0, 3.0):
        buf[:] = d
        total = total + fm.checkpoint(lambda h: fm.tanh(h) * float(np.sum(buf)))(x)
    return total


@pytest.mark.parametrize("how", HOW)
def test_a_closed_over_array_refilled_in_place_is_an_error(how):
    # round 35: every rerun read the last fill (grad 5.47 for 7.30)
    with pytest.raises(ValueError, match="`buf`, whose numbers were changed in place"):
        HOW[how](_refilled_closure)(X)


def test_a_refilled_array_beyond_a_megabyte_is_seen_too():
    with pytest.raises(ValueError, match="changed in place"):
        fm.grad(lambda x: _refilled_closure(x, size=200_000))(X)


def test_an_array_read_unchanged_is_not_refused():
    data = np.array([1.0, np.nan, -0.0])
    f = fm.checkpoint(lambda h: fm.tanh(h) * float(np.nansum(data)))
    assert fm.grad(lambda x: f(x) + f(2.0 * x))(X) == pytest.approx(
        SECH2 + 2.0 * (1.0 - np.tanh(2 * X) ** 2), rel=1e-12)


@pytest.mark.parametrize("how", HOW)
def test_an_array_argument_refilled_before_the_rerun_is_an_error(how):
    # round 35: the rerun read the caller's array refilled (grad 12.81 for 9.15)
    def loss(x, copy=False):
        buf = np.zeros(2)
        total = 0.0
        for d in ([1.0, 2.0], [3.0, 4.0]):
            buf[:] = d
            total = total + fm.checkpoint(
                lambda h, b: fm.sum([v * fm.tanh(h) for v in b]))(x, buf.copy() if copy else buf)
        return total

    with pytest.raises(ValueError, match="`argument 1`, whose numbers were changed"):
        HOW[how](loss)(X)
    want = {"grad": 10.0 * SECH2, "jit(grad)": 10.0 * SECH2, "jacfwd": 10.0 * SECH2,
            "hessian": 10.0 * -2.0 * np.tanh(X) * SECH2}[how]
    assert HOW[how](lambda x: loss(x, copy=True))(X) == pytest.approx(want, rel=1e-12)


def _layer(h):
    return fm.tanh(W * h)


def test_a_helper_of_the_same_module_reading_a_loop_variable_is_an_error():
    # round 35: the helper's global read at the rerun (grad 2.61, no error)
    def f(x):
        global W
        for W in (0.5, 2.0):  # noqa: B007 -- _layer reads it
            x = fm.checkpoint(lambda h: _layer(h))(x)
        return x

    with pytest.raises(ValueError, match="reads `W`"):
        fm.grad(f)(X)


def test_a_helper_reading_an_unchanged_global_is_not_refused():
    global W
    W = 0.5
    f = fm.checkpoint(lambda h: _layer(h))
    assert fm.grad(lambda x: f(f(x)))(X) == pytest.approx(
        0.25 * (1 - np.tanh(0.5 * np.tanh(0.5 * X)) ** 2) * (1 - np.tanh(0.5 * X) ** 2),
        rel=1e-12)


W = 0.5
K = 1.0


def test_a_comprehension_reading_a_loop_variable_is_an_error():
    # round 35: the comprehension's global read at the rerun (7.2 for 4.8)
    def f(x):
        global K
        out = 0.0
        for K in (1.0, 3.0):
            out = out + fm.checkpoint(lambda h: fm.sum([K * t for t in (h, h)]))(  # noqa: B023
                x * x)
        return out

    with pytest.raises(ValueError, match="reads `K`"):
        fm.grad(f)(X)


def test_a_checkpointed_grad_reading_a_loop_variable_is_an_error():
    # round 35: fm.grad's wrapper hid the lambda's closure (12.0 for 8.0)
    def f(x):
        out = 0.0
        for c in (1.0, 3.0):
            out = out + fm.checkpoint(fm.grad(lambda h: c * h * h))(x)  # noqa: B023
        return out

    with pytest.raises(ValueError, match="reads `c`"):
        fm.grad(f)(X)
    g = lambda x: sum(fm.checkpoint(fm.grad(lambda h, c=c: c * h * h))(x)  # noqa: E731
                      for c in (1.0, 3.0))
    assert fm.grad(g)(X) == pytest.approx(8.0, rel=1e-12)


@fm.custom_jvp
def _sin(x):
    return fm.sin(x)


@_sin.defjvp
def _sin_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return fm.sin(x), np.array([1.0, 2.0]) * t * fm.cos(x)


@pytest.mark.parametrize("how", ["grad", "jit(grad)", "jacfwd"])
def test_a_rules_array_tangent_for_a_number_is_an_error(how):
    # round 35: reverse mode summed it (2.87 for 0.96), jacfwd gave an array
    with pytest.raises(TypeError, match=r"leaf 0 is an array of shape \(2,\) for an output"):
        HOW[how](_sin)(X)


@fm.custom_jvp
def _scaled(x):
    return 2.0 * x


@_scaled.defjvp
def _scaled_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return 2.0 * x, np.float64(2.0) * t


def test_rules_with_numpy_numbers_and_under_vmap_are_not_refused():
    assert fm.grad(_scaled)(X) == 2.0
    xs = np.array([1.0, 2.0, 3.0])
    assert list(fm.vmap(fm.grad(_scaled))(xs)) == [2.0, 2.0, 2.0]
    assert fm.grad(lambda v: fm.sum(fm.vmap(_scaled)(v)))((1.0, 2.0)) == (2.0, 2.0)
    assert fm.grad(lambda a: fm.sum(fm.vmap(lambda x: _scaled(a * x))(xs)))(X) == 12.0


class _Model:
    def f(self, h):
        return fm.tanh(W * h)

    def __call__(self, h):
        return fm.tanh(W * h)


@pytest.mark.parametrize("which", ["method", "callable object", "partial", "jit"])
def test_a_method_callable_partial_or_jitted_helper_reading_a_loop_variable_is_an_error(which):
    import functools

    def make():
        m = _Model()
        return {"method": m.f, "callable object": m, "partial": functools.partial(_layer),
                "jit": fm.jit(_layer)}[which]

    block = make()

    def f(x):
        global W
        for W in (0.5, 2.0):  # noqa: B007 -- the block reads it
            x = fm.checkpoint(block)(x)
        return x

    with pytest.raises(ValueError, match="reads `W`"):
        fm.grad(f)(X)
    W_ = globals()["W"] = 0.5
    block = make()  # (a jitted function keeps the globals of its trace, as in JAX)
    assert fm.grad(lambda x: fm.checkpoint(block)(x))(X) == pytest.approx(
        W_ * (1 - np.tanh(W_ * X) ** 2), rel=1e-12)


def test_a_grad_of_a_helper_held_in_a_global_is_followed():
    global DG
    DG = fm.grad(lambda h: _layer(h) * h)

    def f(x):
        global W
        for W in (0.5, 2.0):  # noqa: B007 -- DG's function reads it
            x = fm.checkpoint(lambda h: DG(h) * 0.5)(x)
        return x

    with pytest.raises(ValueError, match="reads `W`"):
        fm.grad(f)(X)


DG = None
T = (np.zeros(1),)


def test_an_array_in_a_tuple_or_a_default_refilled_in_place_is_an_error():
    def f(x, how):
        total = 0.0
        for d in (1.0, 3.0):
            T[0][0] = d
            block = (lambda h: fm.tanh(h) * float(T[0][0])) if how == "tuple" else (
                lambda h, b=T[0]: fm.tanh(h) * float(b[0]))
            total = total + fm.checkpoint(block)(x)
        return total

    for how in ("tuple", "default"):
        with pytest.raises(ValueError, match="changed in place"):
            fm.grad(lambda x, how=how: f(x, how))(X)


def test_an_array_the_function_writes_itself_is_not_refused():
    # a log or scratch buffer the checkpointed function fills (reviews: refused)
    acts = np.zeros(3)

    def block(h, i):
        y = fm.tanh(h)
        acts[i] = y.value if hasattr(y, "value") else y
        return y * 1.1

    def f(x):
        for i in range(3):
            x = fm.checkpoint(block, static_argnums=1)(x, i)
        return x

    want = fm.grad(lambda x: block(block(block(x, 0), 1), 2))(X)
    assert fm.grad(f)(X) == pytest.approx(want, rel=1e-12)
    assert np.all(acts != 0.0)


def test_a_random_generator_the_function_draws_from_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="drew from `rng`, a Generator"):
        fm.grad(lambda x: fm.checkpoint(lambda h: h * float(rng.random()))(x))(X)

    def dropout(h, p):  # (reviews: refused for reading rng, though it drew nothing)
        return h if p == 0.0 else h * float(rng.random() > p) / (1 - p)

    assert fm.grad(lambda x: fm.checkpoint(lambda h: fm.tanh(dropout(h, 0.0)))(x))(X) == \
        pytest.approx(SECH2, rel=1e-12)


def test_side_effects_through_a_rules_array_argument_reach_the_callers_array():
    # (reviews: copying the argument arrays lost them, and an identity test changed)
    store = np.zeros(1)
    key = np.zeros(1)

    @fm.custom_vjp
    def tap(x, buf):
        return x * 2.0

    tap.defvjp(lambda x, buf: (x * 2.0, buf),
               lambda buf, g: (buf.__setitem__(0, g) or (3.0 if buf is store else 1.0) * g,
                               None))
    assert fm.grad(lambda x: tap(x, store))(X) == 3.0 and store[0] == 1.0
    assert fm.grad(lambda x: tap(x, key))(X) == 1.0


SCALE = None


def _lazy_init():
    global SCALE
    if SCALE is None:
        SCALE = 0.5


def test_a_helper_that_binds_a_global_lazily_is_not_refused_and_a_later_change_is():
    # (review 3: a check read before the function ran refused the first, missed the second)
    global SCALE
    SCALE = None

    def block(h):
        _lazy_init()
        return fm.tanh(SCALE * h)

    assert fm.grad(lambda x: fm.checkpoint(block)(x))(X) == pytest.approx(
        0.5 * (1 - np.tanh(0.5 * X) ** 2), rel=1e-12)

    def f(x):
        global SCALE
        SCALE = None
        y = fm.checkpoint(block)(x)
        SCALE = 2.0
        return y

    with pytest.raises(ValueError, match="reads `SCALE`"):
        fm.grad(f)(X)


def test_arrays_in_dicts_and_nested_containers_are_checked():
    d = {"w": np.zeros(1)}

    def f(x):
        total = 0.0
        for v in (1.0, 3.0):
            d["w"][0] = v
            total = total + fm.checkpoint(lambda h: fm.tanh(h) * float(d["w"][0]))(x)
        return total

    with pytest.raises(ValueError, match=r"`d\['w'\]`, whose numbers were changed"):
        fm.grad(f)(X)


def test_a_generator_as_an_argument_drawn_from_is_refused_and_systemrandom_is_fine():
    import random

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="drew from `argument 1`"):
        fm.grad(lambda x: fm.checkpoint(
            lambda h, r: h * float(r.random()), static_argnums=1)(x, rng))(X)
    sysrand = random.SystemRandom()
    assert fm.grad(lambda x: fm.checkpoint(
        lambda h: h * (1.0 if sysrand is not None else 2.0))(x))(X) == 1.0


class _NoRepr:
    def __repr__(self):
        raise RuntimeError("no repr")

    def __hash__(self):
        return 1


CFG = {_NoRepr(): 1.0, "scale": 2.0}


def test_a_dict_with_an_odd_key_is_walked_without_its_repr():
    # (review 4: the names were built for every key, and a raising repr broke the call)
    def blk(h):
        return fm.tanh(h * CFG["scale"])

    assert fm.grad(lambda x: fm.checkpoint(blk)(x))(X) == pytest.approx(
        2.0 * (1 - np.tanh(2.0 * X) ** 2), rel=1e-12)


def test_a_function_that_advances_its_own_global_is_refused_after_one_call():
    # (review 4: checked before the rerun only, one call passed: 0.2486 for 0.4889)
    global ADV
    ADV = 1.0

    def blk(h):
        global ADV
        ADV = ADV * 0.5
        return fm.tanh(ADV * h)

    with pytest.raises(ValueError, match="assigns `ADV` itself"):
        fm.grad(lambda x: fm.checkpoint(blk)(x))(X)


ADV = 1.0
LST = [np.zeros(1)]


def test_an_array_in_a_global_list_refilled_in_place_is_an_error():
    def f(x):
        total = 0.0
        for v in (1.0, 3.0):
            LST[0][0] = v
            total = total + fm.checkpoint(lambda h: fm.tanh(h) * float(LST[0][0]))(x)
        return total

    with pytest.raises(ValueError, match=r"`LST\[0\]`, whose numbers were changed"):
        fm.grad(f)(X)


LASTIN = None
CACHE: dict = {}


def test_names_only_written_or_rebuilt_equal_are_not_refused():
    # (review 5: the check after the rerun refused a debug store, an empty cache rebuilt)
    def blk(h):
        global LASTIN, CACHE
        LASTIN = h
        CACHE = CACHE or {}
        return fm.tanh(h)

    assert fm.grad(lambda x: fm.checkpoint(blk)(x))(X) == pytest.approx(SECH2, rel=1e-12)
    assert fm.hessian(lambda x: fm.checkpoint(blk)(x))(X) == pytest.approx(
        -2.0 * np.tanh(X) * SECH2, rel=1e-12)


def _deco(fn):
    import functools

    @functools.wraps(fn)
    def wrapper(h):
        return fn(h)

    return wrapper


@_deco
def _advancing(h):
    global ADV
    ADV = ADV * 0.5
    return fm.tanh(ADV * h)


def test_a_decorated_function_that_advances_its_global_is_refused():
    # (review 5: reached first as the wrapper's helper, its own store was skipped)
    global ADV
    ADV = 1.0
    with pytest.raises(ValueError, match="assigns `ADV` itself"):
        fm.grad(lambda x: fm.checkpoint(_advancing)(x))(X)
