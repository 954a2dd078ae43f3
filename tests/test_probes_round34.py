"""Round 34's probes of numpy interop and pytrees: each fails on round 33's code."""

from typing import NamedTuple

import numpy as np
import pytest

import fmicrograd as fm


def test_under_vmap_an_array_of_per_example_nodes_is_refused_not_read_along_the_batch():
    # (np.array([x, 2x]) > y counted one entry per example: (3.0, 3.0) for (6.0, 3.0))
    def f(x, y):
        return x * np.sum(np.array([x, 2.0 * x]) > y)

    assert [f(3.0, 2.0), f(3.0, 5.0)] == [6.0, 3.0]
    for run in (lambda: fm.vmap(f)((3.0, 3.0), (2.0, 5.0)),
                lambda: fm.jit(fm.vmap(f))((3.0, 3.0), (2.0, 5.0)),
                lambda: fm.vmap(lambda x: x * np.sum(np.array([x, 10.0]) < x))((12.0, 13.0)),
                lambda: fm.vmap(lambda x: fm.sum(list(np.array([x, 1.0]) * x)))((1.0, 2.0))):
        with pytest.raises(TypeError, match="numpy array of fm nodes .* inside fm.vmap"):
            run()


def test_under_vmap_an_array_of_floats_or_unmapped_nodes_is_as_before():
    # (documented: a float array meets per-example values example by example)
    assert fm.vmap(lambda x: x * np.array([2.0, 3.0]))((1.0, 1.0)) == (2.0, 3.0)
    w = fm.Var(2.0)
    out = fm.vmap(lambda x: x * w)((1.0, 2.0))
    assert [v.value for v in out] == [2.0, 4.0]


class _Deg(NamedTuple):
    rad: float


class _Angle(_Deg):
    __slots__ = ()

    def __new__(cls, deg):
        return super().__new__(cls, deg * np.pi / 180.0)


def test_a_namedtuple_with_its_own_new_is_rebuilt_from_its_fields():
    a = _Angle(90.0)

    def f(a):
        return fm.sin(a.rad)

    assert f(a) == 1.0
    assert fm.jit(f)(a) == 1.0  # (was 0.0274: __new__ ran again on the radians)
    value, g = fm.value_and_grad(f)(a)
    assert value == 1.0 and type(g) is _Angle and abs(g.rad) < 1e-15
    assert fm.vmap(f)([a]) == (1.0,)
    assert fm.tree.map(lambda x: x, a) == a


def test_a_registered_node_with_unhashable_aux_data_names_it_under_jit():
    class Unhashable:
        def __init__(self, a):
            self.a = a

    fm.tree.register(Unhashable, lambda u: ((u.a,), ["m"]), lambda m, c: Unhashable(c[0]))
    assert fm.grad(lambda u: u.a * 2.0)(Unhashable(3.0)).a == 2.0
    with pytest.raises(TypeError, match="Unhashable's flatten .* aux data of type list"):
        fm.jit(lambda u: u.a * 2.0)(Unhashable(3.0))


def test_vmap_names_where_a_non_number_leaf_is():
    with pytest.raises(TypeError, match=r"str 'y' \(example 1, at \[0\]\)"):
        fm.vmap(lambda p: p[1])([(1.0, 1.0), ("y", 1.0)])


def test_jit_running_as_python_gets_float64_copies_of_its_array_arguments():
    # (the arrays probe's: a branch jit cannot compile sent the caller's own array, which
    # the function wrote into, and a uint8 array wrapped around)
    def f(xs):
        xs[0] += 1.0
        return fm.sum(fm.vmap(lambda r: r * (1.0 if r > 0 else 2.0))(xs))

    xs = np.array([1.0, 2.0, 3.0])
    jf = fm.jit(f)
    assert [jf(xs) for _ in range(3)] == [7.0, 7.0, 7.0]
    assert xs.tolist() == [1.0, 2.0, 3.0]

    def g(xs):
        return fm.sum(fm.vmap(lambda r: r * (1.0 if r > 0 else 2.0))(xs)) + (xs[0] + xs[1])

    assert fm.jit(g)(np.array([254, 4], dtype=np.uint8)) == 516.0


def test_jit_names_the_fix_for_an_int_array_argument_used_as_indices():
    xs, idx = np.array([1.0, 2.0, 3.0]), np.array([2, 0])

    def f(xs, idx):
        return fm.sum(tuple(xs[idx]))

    assert f(xs, idx) == 4.0
    with pytest.raises(IndexError, match="pass the indices as a tuple of ints in static_argnums"):
        fm.jit(f)(xs, idx)
    g = fm.jit(lambda xs, idx: fm.sum(tuple(xs[list(idx)])), static_argnums=1)
    assert g(xs, (2, 0)) == 4.0


def _branchy(xs):
    # a branch on a value computed over a vmap batch: jit runs the function as Python
    return fm.sum(fm.vmap(lambda r: r * (1.0 if r > 0 else 2.0))(xs))


def test_jit_as_python_under_transforms_gets_copies_too():
    # (review 4: grad(jit(f)) and jit(f) inside grad still wrote into the caller's array)
    def writes(w, xs):
        xs[0] += 1.0
        return w * _branchy(xs)

    xs = np.array([1.0, 2.0, 3.0])
    jf = fm.jit(writes)
    for run in (lambda: fm.grad(jf)(1.0, xs), lambda: fm.grad(lambda w: jf(w, xs))(1.0),
                lambda: fm.grad(lambda w: w * jf(1.0, xs))(1.0)):
        assert [run() for _ in range(3)] == [7.0, 7.0, 7.0]
        assert xs.tolist() == [1.0, 2.0, 3.0]
    u = np.array([254, 4], dtype=np.uint8)

    def g(w, xs):
        return w * (_branchy(xs) + xs[0] + xs[1])

    assert fm.grad(fm.jit(g))(1.0, u) == 516.0
    assert fm.vmap(fm.jit(g), in_axes=(0, None))((1.0, 2.0), u) == (516.0, 1032.0)


def test_jit_as_python_reads_numpy_numbers_and_memmaps_in_float64(tmp_path):
    def g(xs, a, b):
        return _branchy(xs) + (a + b)

    xs = np.array([1.0])
    assert fm.jit(g)(xs, np.uint8(254), np.uint8(4)) == 259.0
    assert fm.jit(g)(xs, np.int8(127), np.int8(1)) == 129.0
    m = np.memmap(tmp_path / "m.bin", dtype=np.uint8, mode="w+", shape=(2,))
    m[:] = [254, 4]

    def h(m):
        m[0] += 1
        return _branchy(np.array([1.0])) + (m[0] + m[1])

    assert [fm.jit(h)(m) for _ in range(2)] == [260.0, 260.0]
    assert m.tolist() == [254, 4]


def test_the_index_hint_is_only_for_int_arrays_used_as_indices():
    def f(xs, counts):
        return fm.sum(tuple(xs * counts)) + xs[5]

    with pytest.raises(IndexError) as e:
        fm.jit(f)(np.array([1.0, 2.0, 3.0]), np.array([1, 2, 3]))
    assert "out of bounds" in str(e.value) and "static_argnums" not in str(e.value)


def test_jit_as_python_keeps_ints_as_ints():
    # (review 5: the first version made every numpy int a float: an int64 beyond 2**53 was
    # rounded, and an index array or a count that worked as Python no longer did)
    n = np.int64(2 ** 53 + 1)
    j = fm.jit(lambda x, n: x * float(n - 2 ** 53))
    assert j(2.0, n) == 2.0
    assert fm.grad(lambda x: x * j(2.0, n))(1.0) == 2.0
    xs, idx = np.array([1.0, 2.0, 3.0]), np.array([2, 0])

    def f(w, xs, idx):
        return w * fm.sum(tuple(xs[idx]))

    assert fm.vmap(fm.jit(f), in_axes=(0, None, None))((1.0, 2.0), xs, idx) == (4.0, 8.0)
    assert fm.grad(lambda w: w * fm.jit(f)(2.0, xs, idx))(1.0) == 8.0

    def counted(w, n):
        return fm.sum(tuple(w * k for k in range(n)))

    assert fm.grad(lambda w: w * fm.jit(counted)(2.0, np.int64(3)))(1.0) == 6.0


def test_a_zero_d_object_array_holding_a_per_example_node_still_compares_under_vmap():
    def f(x):
        y = np.where(True, 2.0 * x, 0.0)  # a 0-d object array holding the node
        return fm.where(x > y, 1.0, 0.0) + x * y

    assert fm.vmap(f)(np.array([6.0, 3.0])) == (f(6.0), f(3.0)) == (72.0, 18.0)


def test_custom_rules_fill_a_left_out_nondiff_default():
    # (the keywords probe's: a left-out default at a nondiff position was an IndexError)
    from functools import partial

    @partial(fm.custom_vjp, nondiff_argnums=(1,))
    def g(x, n=2):
        return fm.sin(x) * n

    g.defvjp(lambda x, n=2: (g(x, n), x), lambda n, x, ct: (fm.cos(x) * n * ct,))
    want = 2 * np.cos(0.5)
    assert fm.grad(lambda x: g(x))(0.5) == fm.grad(lambda x: g(x, n=2))(0.5)
    assert abs(fm.grad(lambda x: g(x))(0.5) - want) < 1e-15

    @fm.custom_jvp
    def kw(x, y=1.0, *, s=2.0):  # (review 7: a keyword-only default was a TypeError)
        return fm.sin(x) * y * s

    kw.defjvp(lambda p, t: (kw(*p), fm.cos(p[0]) * 2.0 * t[0]))
    assert abs(fm.grad(lambda x: kw(x))(0.5) - want) < 1e-15
    w = np.array([1.0, 2.0])

    @fm.custom_jvp
    def arr(x, w=w):  # (review 7: an array default was a batch of examples under vmap)
        return fm.sin(x * w[0]) + fm.sin(x * w[1])

    arr.defjvp(lambda p, t: (arr(*p), (fm.cos(p[0]) + 2.0 * fm.cos(2.0 * p[0])) * t[0]))
    got = fm.vmap(fm.grad(lambda x: arr(x)))(np.array([0.5, 0.3]))
    assert got == tuple(fm.grad(lambda x: arr(x))(v) for v in (0.5, 0.3))



def test_checkpoint_leaves_defaults_not_passed_to_the_function():
    def f(x, y=2.0, n=3):
        return fm.sum(tuple(fm.sin(x * y) * k for k in range(n)))

    want = fm.grad(lambda x: f(x, y=1.5))(0.7)
    assert fm.grad(lambda x: fm.checkpoint(f)(x, y=1.5))(0.7) == want  # (n was a node)
    assert fm.grad(fm.checkpoint(f, static_argnums=2))(0.7) == fm.grad(lambda x: f(x))(0.7)
    with pytest.raises(ValueError, match="names position 3"):
        fm.grad(fm.checkpoint(lambda x: x * 2.0, static_argnums=3))(1.0)
