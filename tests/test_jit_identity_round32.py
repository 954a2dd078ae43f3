"""A jit-cache probe of round 32: an object with no attribute of its own at
the trace (a ``self`` reading a class default, a token, an unset slot, the
object of a bound method or a partial) was keyed by identity, so an attribute
set on it later was ignored (``s.jitted(2.0)`` stayed 6.0 for 10.0); and a
NamedTuple subclass, which takes attributes, passed again was not walked
again. Both are now the error naming the fix, at the call that would have
been wrong; a token that stays empty stays static."""

from __future__ import annotations

import functools
from typing import NamedTuple

import pytest

import fmicrograd as fm


class Scaler:
    k = 3.0

    def plain(self, x):
        return x * self.k

    jitted = fm.jit(plain)


def test_a_self_that_gains_an_attribute_is_not_read_from_the_trace():
    s = Scaler()
    assert s.jitted(2.0) == 6.0
    s.k = 5.0
    with pytest.raises(TypeError, match=r"a Scaler object, which Python hashes by identity"):
        s.jitted(2.0)


class _Slot:
    __slots__ = ("k",)


class _E:
    def scale(self, x):
        return x * getattr(self, "k", 1.0)


@pytest.mark.parametrize("make, wrap", [
    (_Slot, lambda o: o),
    (_E, lambda o: o.scale),
    (_E, lambda o: functools.partial(lambda o, x: x * getattr(o, "k", 1.0), o)),
], ids=["unset slot", "bound method", "partial"])
def test_an_empty_object_that_gains_an_attribute_is_refused(make, wrap):
    o = make()
    arg = wrap(o)  # (one object, passed at both calls)
    f = (lambda x, a: x * getattr(a, "k", 1.0)) if make is _Slot else (lambda x, fn: fn(x))
    jf = fm.jit(f)
    assert jf(2.0, arg) == 2.0
    o.k = 4.0
    with pytest.raises(TypeError, match="hashes by identity|hashed by identity|hashes it by "
                                        "identity"):
        jf(2.0, arg)


def test_a_token_that_stays_empty_stays_static():
    class Token:
        pass

    t = Token()
    h = fm.jit(lambda t, x: x * 2.0)
    assert (h(t, 1.0), h(t, 3.0)) == (2.0, 6.0)


class _P(NamedTuple):
    a: float
    b: float


class _Q(_P):
    pass


def test_a_namedtuple_subclass_passed_again_is_walked_again():
    f = lambda t: t.a + t.b * getattr(t, "extra", 0.0)
    jf = fm.jit(f)
    q = _Q(1.0, 2.0)
    assert jf(q) == jf(q) == 1.0
    q.extra = 7.0
    with pytest.raises(TypeError, match=r"a _Q holds the attribute 'extra'"):
        jf(q)


def test_to_torch_refuses_a_complex_tensor():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"fm\.to_torch: an argument is complex"):
        fm.to_torch(lambda x: x * 2.5)(torch.tensor([1j, 2 + 3j]))


def test_methods_of_mutable_objects_are_refused():
    # (a review's catches: d.get and a plain dataclass's method kept the trace's numbers)
    import dataclasses

    import numpy as np

    @dataclasses.dataclass
    class Model:
        w: np.ndarray

        def predict(self, x):
            return x * float(self.w[0])

    g = fm.jit(lambda fn, x: fn(x))
    for arg in ({"k": 2.0}.get, Model(np.array([2.0])).predict):
        with pytest.raises(TypeError, match=r"fm\.jit: an argument leaf is the (method get of a "
                                            r"dict|bound method Model\.predict)"):
            g(arg, 3.0)


class _StrSlot:
    __slots__ = "scale"


class _Mangled:
    __slots__ = ("__k",)

    def get(self):
        return getattr(self, "_Mangled__k", 1.0)


def test_slots_named_by_a_string_or_mangled_count():
    jf = fm.jit(lambda a, x: x * getattr(a, "scale", 1.0))
    a = _StrSlot()
    assert jf(a, 2.0) == 2.0
    a.scale = 5.0
    with pytest.raises(TypeError, match="hashes by identity"):
        jf(a, 2.0)
    jm = fm.jit(lambda b, x: x * b.get())
    b = _Mangled()
    assert jm(b, 2.0) == 2.0
    b._Mangled__k = 5.0
    with pytest.raises(TypeError, match="hashes by identity"):
        jm(b, 2.0)


def test_to_torch_refuses_a_complex_numpy_array():
    pytest.importorskip("torch")
    import numpy as np
    with pytest.raises(TypeError, match=r"fm\.to_torch: an argument is complex"):
        fm.to_torch(lambda x: x * 2.5)(np.array([1j, 2 + 3j]))
