"""What ``fm.jit`` does with argument leaves that look like numbers but are
not Python floats: 0-d arrays are numbers read at every call; bool arrays,
complex arrays and other libraries' arrays are refused, naming the fix and
where the leaf sits in the call."""

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
