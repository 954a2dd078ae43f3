"""Transform compositions on pytree arguments and outputs: cases a probe
against JAX and plain Python found wrong (or crashing without a clear error)."""

import numpy as np
import pytest

import fmicrograd as fm


def test_jit_numpy_array_output_is_not_frozen_at_the_first_call():
    f = fm.jit(lambda a: a * 2.0)
    a = np.array([1.0, 2.0])
    np.testing.assert_array_equal(f(a), [2.0, 4.0])
    out = f(a + 1.0)  # same structure: the compiled variant runs
    assert isinstance(out, np.ndarray) and out.dtype == float
    np.testing.assert_array_equal(out, [4.0, 6.0])
    np.testing.assert_array_equal(f(np.array([[1.0, 2.0], [3.0, 5.0]])),
                                  [[2.0, 4.0], [6.0, 10.0]])


def test_jit_returns_array_arguments_and_mixed_pytrees_as_numbers():
    def f(x, a):
        return {"x": x * 2.0, "same": a, "s": "text", "n": None,
                "mix": np.array([x, 1.0], dtype=object)}

    jf = fm.jit(f)
    a = np.array([1.0, 2.0])
    for x, arr in [(1.0, a), (-3.0, a + 1.0), (0.5, a * 3.0)]:
        got = jf(x, arr)
        want = f(x, arr)
        assert got["s"] == "text" and got["n"] is None and got["x"] == want["x"]
        np.testing.assert_array_equal(got["same"], arr)
        np.testing.assert_array_equal(got["mix"], np.array(want["mix"], dtype=float))


def test_jit_node_times_array_argument_is_not_frozen():
    # ``array * node`` lifts the object array of the traced entries into one
    # constant: compiled, it would keep the first call's array
    a = np.array([1.0, 2.0])
    f = fm.jit(lambda x, a: a * x)
    np.testing.assert_array_equal(f(1.0, a), [1.0, 2.0])
    np.testing.assert_array_equal(f(-3.0, a + 1.0), [-6.0, -9.0])
    g = fm.jit(lambda x, a: {"arr": a * x, "s": fm.sum(list(a)) * x})
    out = g(-3.0, a + 1.0)
    np.testing.assert_array_equal(out["arr"], [-6.0, -9.0])
    assert float(out["s"]) == -15.0


def test_jit_static_tuples_with_equal_items_of_other_types_are_not_reused():
    f = fm.jit(lambda x, s: x * (1.0 if type(s[0]) is int else 2.0), static_argnums=1)
    assert [f(1.0, (0,)), f(1.0, (0.0,)), f(1.0, (False,)), f(1.0, (0,))] == \
        [1.0, 2.0, 2.0, 1.0]
    g = fm.jit(lambda x, s: x * (1.0 if s[1][0] is True else 3.0), static_argnums=1)
    assert [g(1.0, (2, (True,))), g(1.0, (2, (1,))), g(1.0, (2, (True,)))] == [1.0, 3.0, 1.0]


@pytest.mark.parametrize("wrap", [lambda f: f, fm.jit])
def test_vmap_output_leaf_that_is_not_a_number_is_a_clear_type_error(wrap):
    f = fm.vmap(lambda x: {"y": x * 2.0, "s": "text"})
    with pytest.raises(TypeError, match=r"output has a leaf at \['s'\] that is str"):
        wrap(f)((1.0, 2.0))
    g = fm.vmap(fm.grad(lambda x: (x * x, {"tag": "a", "y": x}), has_aux=True))
    with pytest.raises(TypeError, match=r"\[1\]\['tag'\]"):
        wrap(g)((1.0, 2.0))


def test_vmap_returning_a_comparison_whose_examples_disagree_names_fm_where():
    with pytest.raises(TypeError, match="fm.where"):
        fm.vmap(lambda x: x > 0.0)((1.0, -2.0))
    # a comparison all examples agree on is a bool, as the loop gives
    assert fm.vmap(lambda x: (x > 0.0, x))((1.0, 2.0)) == ((1.0, 1.0), (1.0, 2.0))
    assert fm.vmap(lambda x: fm.where(x > 0.0, 1.0, 0.0))((1.0, -2.0)) == (1.0, 0.0)


def test_vmap_of_jit_tells_static_zero_from_negative_zero_and_item_types():
    xs = (0.5, 1.0)
    f = fm.jit(lambda x, s: x * (1.0 if str(s) == "0.0" else 2.0), static_argnums=1)
    run = fm.vmap(f, in_axes=(0, None))
    assert run(xs, 0.0) == (0.5, 1.0)
    assert run(xs, -0.0) == (1.0, 2.0)  # was the 0.0 variant's (0.5, 1.0)
    assert run(xs, 0.0) == (0.5, 1.0)
    g = fm.jit(lambda x, s: x * (1.0 if type(s[0]) is int else 2.0), static_argnums=1)
    run = fm.vmap(g, in_axes=(0, None))
    assert [run(xs, (0,)), run(xs, (0.0,)), run(xs, (False,))] == \
        [(0.5, 1.0), (1.0, 2.0), (1.0, 2.0)]
    h = fm.jit(lambda x, s: x * s[0], static_argnums=1)
    run = fm.vmap(h, in_axes=(0, None))
    assert [str(v) for v in run(xs, (-0.0,)) + run(xs, (0.0,))] == ["-0.0", "-0.0", "0.0", "0.0"]
    # and grad of jit (compiled node) agrees with the plain function
    for s in [(0,), (0.0,), (False,)]:
        assert fm.grad(lambda x, s=s: g(x, s))(1.0) == (1.0 if type(s[0]) is int else 2.0)


def test_jit_keeps_integers_beyond_float64_exact():
    big = 2 ** 53
    f = lambda x, n: (n - big) * x  # noqa: E731
    jf = fm.jit(f)
    for x, n in [(1.0, big + 1), (1.0, big + 3), (2.0, 5), (1.0, np.int64(big + 1)),
                 (2.0, big + 1)]:
        assert jf(x, n) == f(x, n)
    g = fm.jit(lambda p: (p["n"] - big) * p["x"])
    assert [g({"n": 3, "x": 1.0}), g({"n": big + 1, "x": 1.0}), g({"n": big + 2, "x": 1.0})] \
        == [3.0 - big, 1.0, 2.0]
    t = fm.jit(lambda p: p[0] * (p[1] - big))
    assert [t((1.0, 5)), t((1.0, big + 1)), t((2.0, big + 5))] == [5.0 - big, 1.0, 10.0]
    assert fm.vmap(jf, in_axes=(0, None))((1.0, 2.0), big + 3) == (3.0, 6.0)
    assert fm.grad(jf)(1.0, big + 3) == 3.0


@pytest.mark.parametrize("wrap", [lambda f: f, fm.jit])
def test_vmap_and_jit_refuse_mapped_integers_a_float64_would_round(wrap):
    big = 2 ** 53
    f = fm.vmap(lambda n: (n - big) * 1.0)
    for arg in [(big + 1, big + 3), [{"n": big + 1}, {"n": 2}], np.array([big + 1, 3])]:
        g = f if not isinstance(arg, list) else fm.vmap(lambda e: (e["n"] - big) * 1.0)
        with pytest.raises((ValueError, TypeError), match="2\\*\\*53"):
            wrap(g)(arg)
    assert wrap(f)(np.array([1, 3])) == (1.0 - big, 3.0 - big)
    with pytest.raises(TypeError, match="2\\*\\*53"):
        fm.jit(lambda a: a * 1.0)(np.array([big + 1, 3]))
    h = fm.jit(lambda a: a * 1.0)
    np.testing.assert_array_equal(h(np.array([1, 3])), [1.0, 3.0])
    with pytest.raises(TypeError, match="2\\*\\*53"):  # the compiled variant does not take it
        h(np.array([big + 1, 3]))


def test_custom_jvp_rule_with_a_tangent_of_another_structure_names_the_rule():
    @fm.custom_jvp
    def h(x):
        return {"a": x * 2.0, "b": x}

    h.defjvp(lambda primals, tangents: (h(*primals), {"a": tangents[0] * 2.0}))
    for call in [lambda: fm.grad(lambda x: h(x)["a"])(1.0), lambda: fm.jacfwd(h)(1.0),
                 lambda: fm.jit(fm.grad(lambda x: h(x)["a"]))(1.0)]:
        with pytest.raises(ValueError, match="custom_jvp: h's rule must return a tangent_out"):
            call()


def test_jit_returning_an_object_array_of_nodes_composes_with_vmap_and_grad():
    a = np.array([1.0, 2.0])
    g = fm.jit(lambda x, a: np.array([ai * x * x for ai in a]))
    np.testing.assert_array_equal(g(3.0, a + 1.0), [18.0, 27.0])

    def total(x, a):
        return fm.sum(list(g(x, a)))

    assert fm.vmap(total, in_axes=(0, None))((1.0, 2.0), a) == (3.0, 12.0)
    assert fm.vmap(total, in_axes=(0, None))((1.0, 2.0), a + 1.0) == (5.0, 20.0)
    step = fm.jit(fm.vmap(fm.grad(total), in_axes=(0, None)))
    assert step((1.0, 2.0), a) == (6.0, 12.0)
    assert step((1.0, 2.0), a + 1.0) == (10.0, 20.0)
    assert fm.vmap(lambda x: g(x, a)[1] * 1.0)((1.0, 2.0)) == (2.0, 8.0)
    def second(x):
        return g(x, a)[1]

    for xs in [(1.0, 2.0), (1.0, 2.0, 3.0)]:  # a batch as long as the array, and not
        loss = lambda w, xs=xs: fm.sum(fm.vmap(lambda u: second(u * w))(xs))  # noqa: E731
        want = 4.0 * sum(v * v for v in xs)
        assert fm.grad(loss)(1.0) == want
        assert fm.jit(fm.grad(loss))(1.0) == want


def test_jit_static_argnums_given_by_keyword_is_static_by_its_name():
    f = fm.jit(lambda x, mode: x if mode == "id" else -x, static_argnums=1)
    assert f(2.0, "id") == 2.0 and f(2.0, mode="neg") == -2.0 and f(2.0, mode="id") == 2.0
    assert f.static_argnames == ("mode",)


def test_static_values_equal_in_python_but_not_alike_compile_apart():
    # a variant compiled for Cfg(0.0) served Cfg(-0.0), frozenset({-0.0}), pmap({"k": -0.0}),
    # np.float64(-0.0), complex(-0.0, 1), and Cfg(1) served Cfg(True)
    import dataclasses
    import math

    from pyrsistent import pmap

    @dataclasses.dataclass(frozen=True)
    class Cfg:
        c: float

    sign = lambda s: math.copysign(1.0, s)
    cases = [
        (lambda c: c.c, Cfg(0.0), Cfg(-0.0)),
        (lambda s: next(iter(s)), frozenset({0.0}), frozenset({-0.0})),
        (lambda s: s["k"], pmap({"k": 0.0}), pmap({"k": -0.0})),
        (lambda s: s, np.float64(0.0), np.float64(-0.0)),
    ]
    for pick, plus, minus in cases:
        f = fm.jit(lambda x, s, pick=pick: x + sign(pick(s)), static_argnums=1)
        assert (f(1.0, plus), f(1.0, minus)) == (2.0, 0.0)
    leaf = fm.jit(lambda x, z: x + sign(z.real))  # a static leaf inside the arguments
    assert (leaf(1.0, complex(0.0, 1.0)), leaf(1.0, complex(-0.0, 1.0))) == (2.0, 0.0)
    kind = fm.jit(lambda x, c: x * 2.0 if type(c.c) is int else x * 3.0, static_argnums=1)
    assert (kind(1.0, Cfg(1.0)), kind(1.0, Cfg(1)), kind(1.0, Cfg(True))) == (3.0, 2.0, 3.0)


def test_an_int_enum_argument_is_static_and_an_array_subclass_is_refused(tmp_path):
    # Mode.A was traced as the float 1.0: `m is Mode.A` was False under jit
    import enum

    class Mode(enum.IntEnum):
        A = 1
        B = 2

    f = fm.jit(lambda x, m: x * 2.0 if m is Mode.A else x * 3.0)
    assert (f(1.0, Mode.A), f(1.0, Mode.B), f(1.0, Mode.A)) == (2.0, 3.0, 2.0)
    masked = np.ma.masked_array([1.0, 2.0], mask=[False, True])  # its masked entry was read
    with pytest.raises(TypeError, match="MaskedArray.*np.asarray"):
        fm.jit(lambda a: fm.sum(a.tolist()))(masked)
    mapped = np.memmap(tmp_path / "data", dtype=float, mode="w+", shape=(2,))
    mapped[:] = [1.0, 2.0]
    assert fm.jit(lambda a: fm.sum([v for v in a]))(mapped) == 3.0  # a memmap is an array
