"""What ``fm.jit`` does with argument leaves that look like numbers but are
not Python floats: 0-d arrays are numbers read at every call; bool arrays,
complex arrays and other libraries' arrays are refused, naming the fix and
where the leaf sits in the call."""

import math

import numpy as np
import pytest

import fmicrograd as fm


def test_a_zero_d_array_is_a_number_read_at_every_call():
    f = fm.jit(lambda x, y: x * 2.0 + y)
    a = np.array(2.0)
    assert f(a, 1.0) == 5.0
    a[...] = 10.0  # changed in place: the next call reads it
    assert f(a, 1.0) == 21.0
    assert f(np.array(3), 1.0) == 7.0  # an int one too
    assert fm.jit(fm.grad(lambda w, c: w * c))(1.0, np.array(3.0)) == 3.0
    nested = fm.jit(lambda p: p["w"][0] * p["w"][1])
    b = np.array(4.0)
    assert nested({"w": (2.0, b)}) == 8.0
    b[...] = 5.0
    assert nested({"w": (2.0, b)}) == 10.0


def test_another_librarys_array_is_refused_with_the_fix_and_its_place():
    import torch  # (a test dependency)

    t = torch.tensor(2.0, dtype=torch.float64)
    f = fm.jit(lambda s, p, y: p["w"][1] * 2.0 + y, static_argnums=0)
    # its hash is its identity: as a static leaf it froze its first numbers into the
    # compiled code (t.fill_(10.0) then gave the old result)
    with pytest.raises(TypeError, match=r"torch\.Tensor.*x\.numpy\(\).*args\[1\]\['w'\]\[1\]"):
        f("key", {"w": (1.0, t)}, 1.0)
    assert f("key", {"w": (1.0, 2.0)}, 1.0) == 5.0  # then a float there: matched afresh
    with pytest.raises(TypeError, match="torch.Tensor"):  # not read by the existing match
        f("key", {"w": (1.0, t)}, 1.0)
    g = fm.jit(fm.grad(lambda w, c: w * c))
    with pytest.raises(TypeError, match=r"torch\.Tensor.*args\[1\]"):
        g(1.0, torch.tensor([3.0, 4.0]))


def test_vmap_and_grad_name_another_librarys_array_and_the_fix():
    import torch  # (a test dependency)

    t = torch.tensor([1.0, 2.0], dtype=torch.float64)
    # vmap iterated the tensor and named one of its items: "a leaf that is Tensor tensor(1.)"
    with pytest.raises(TypeError, match=r"argument 0 is a torch\.Tensor.*np\.asarray\(x\)"
                                        r".*fm\.to_torch"):
        fm.vmap(lambda x: x * 2.0)(t)
    with pytest.raises(TypeError, match=r"at <root> that is Tensor.*torch\.Tensor: pass "
                                        r"float\(x\).*fm\.to_torch"):
        fm.grad(lambda x: x * 2.0)(t[0])
    assert fm.vmap(lambda x: x * 2.0)(t.numpy()) == (2.0, 4.0)  # the fix
    assert t.tolist() == [1.0, 2.0]


def test_bool_and_complex_arrays_are_refused_naming_the_fix():
    f = fm.jit(lambda x, m: x * 2.0)
    with pytest.raises(TypeError, match=r"dtype bool \(shape \(2,\)\).*astype\(float\)"
                                        r".*fm\.where.*kwargs\['m'\]"):
        f(1.0, m=np.array([True, False]))
    with pytest.raises(TypeError, match=r"dtype complex128.*a\.real.*args\[1\]"):
        f(1.0, np.array([1 + 2j]))
    # a complex number stays a static leaf (a hashable value, part of the key)
    assert fm.jit(lambda x, z: x * z.real)(2.0, 3 + 1j) == 6.0


class _Float32Duck:
    """Another library's float32 scalar (jax's): numpy reads it through __array__."""

    def __array__(self, dtype=None, copy=None):
        return np.array(1.0, dtype=np.float32 if dtype is None else dtype)


def test_another_librarys_float32_scalar_computes_as_float64():
    # it stayed float32 inside the node: log(x * jnp.array(1.0)) at 1 + 1e-9 gave 0.0
    x = 1.0 + 1e-9
    value, slope = fm.value_and_grad(lambda x: fm.log(x * _Float32Duck()))(x)
    assert (value, slope) == (math.log(x), 1.0 / x)
    assert value.__class__ is float


def test_jit_returns_an_object_whose_slot_cannot_be_read():
    class Slotted:
        __slots__ = ("p",)

    def unreadable(self):
        raise TypeError("descriptor 'p' does not apply")  # (jax's arrays: '__weakref__')

    Slotted.p = property(unreadable)
    thing = Slotted()
    f = fm.jit(lambda x: (x * 2.0, thing))
    out = f(1.5)
    assert out[0] == 3.0 and out[1] is thing


def test_a_two_dimensional_array_is_not_read_row_by_row_as_examples():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    # its rows were per-example values: softmax normalised the columns, sum gave [4. 6.]
    for fn in (fm.softmax, fm.sum, fm.mean, fm.logsumexp):
        with pytest.raises(TypeError, match=r"shape \(2, 2\).*a\.ravel\(\)"):
            fn(a)
    with pytest.raises(TypeError, match=r"fm\.dot.*fm\.dot\(a\.ravel\(\), b\.ravel\(\)\)"):
        fm.dot(a, a)
    assert fm.sum(a.ravel()) == 10.0 and fm.jit(lambda m: fm.sum(m.ravel()))(a) == 10.0
    assert fm.vmap(fm.softmax)(a) == (fm.softmax((1.0, 2.0)), fm.softmax((3.0, 4.0)))


@pytest.mark.parametrize("cond", [[True, False], "no", None, (1,)], ids=repr)
def test_where_refuses_a_condition_whose_truth_is_its_length(cond):
    # fm.where([True, False], 1.0, 2.0) gave 1.0 (numpy and JAX choose per entry)
    with pytest.raises(TypeError, match="fm.where: cond is .*np.array\\(cond\\)"):
        fm.where(cond, 1.0, 2.0)
    assert fm.where(np.array([True, False]), 1.0, 2.0).tolist() == [1.0, 2.0]


def test_second_review_cases_keep_working():
    import fractions

    import torch

    # a torch nn.Parameter is a tensor: under grad, fm's error (numpy's RuntimeError)
    p = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
    with pytest.raises(TypeError, match="meets a torch tensor"):
        fm.grad(lambda x: x * p)(1.5)

    class Column:  # a sequence that numpy reads too (a pandas Series): its items map
        def __init__(self, items):
            self.items = items

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

        def __array__(self, dtype=None, copy=None):
            return np.array(self.items, dtype=dtype)

    assert fm.vmap(lambda x: x * x)(Column([1.0, 2.0, 3.0])) == (1.0, 4.0, 9.0)
    assert fm.jit(lambda x, n: x * n, static_argnames={"n"})(2.0, n=3) == 6.0
    fm.testing.check_grads(fm.tanh, (0.5,), atol=np.finfo(np.float32).eps)
    fm.testing.check_grads(fm.tanh, (0.5,), eps=fractions.Fraction(1, 1000))
    assert fm.where(True, {"a": 1.0}, {"a": 2.0}) == {"a": 1.0}
    assert fm.nn.parameters({"w": np.matrix([[1.0, 2.0]])}) == (1.0, 2.0)
