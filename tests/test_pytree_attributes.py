"""An object fm rebuilds from its fields (a dataclass, a NamedTuple subclass)
that holds another attribute is refused wherever fm flattens it, including a
call of a jitted function whose matcher has seen its structure before.

Until round 30 a cached ``fm.jit`` call took such a dataclass as its fields alone
(``p.scale * p.w ** 2`` was 4.0 for 12.0, its gradient too), ``fm.grad`` and
``fm.jit`` rebuilt a NamedTuple subclass without its attribute, and ``fm.vmap``
mapped over a ``PMap``'s keys (a gradient of a dict is one)."""

from __future__ import annotations

import dataclasses
import functools
import typing

import pytest
from pyrsistent import pmap

import fmicrograd as fm


@dataclasses.dataclass
class P:
    w: float
    scale = 1.0  # a class attribute, not a field


class NT(typing.NamedTuple):
    w: float


class NT2(NT):
    scale = 1.0


def _f(p):
    return p.scale * p.w * p.w


@pytest.mark.parametrize("make", [P, NT2])
@pytest.mark.parametrize("transform", [fm.jit, lambda f: fm.jit(fm.grad(f)), fm.grad])
def test_an_extra_attribute_is_refused_after_a_first_call(make, transform):
    t = transform(_f)
    plain = make(2.0)
    t(plain)  # the structure is now known
    odd = make(2.0)
    odd.scale = 3.0
    with pytest.raises(TypeError, match="holds the attribute 'scale'"):
        t(odd)
    assert t(make(3.0)) == transform(_f)(make(3.0))  # plain ones still run


@dataclasses.dataclass(frozen=True)
class Cached:
    w: float

    @functools.cached_property
    def square(self):
        return self.w * self.w


def test_a_cached_property_is_computed_again():
    g = fm.jit(lambda q: q.square + q.w)
    q = Cached(2.0)
    assert g(q) == 6.0
    assert q.square == 4.0  # (now held by q)
    assert g(q) == 6.0 and g(Cached(3.0)) == 12.0


@pytest.mark.parametrize("arg", [pmap({0: 10.0, 1: 20.0}), {1.0, 2.0}, frozenset({1.0})],
                         ids=["pmap", "set", "frozenset"])
def test_vmap_does_not_map_over_a_mapping_or_a_set(arg):
    with pytest.raises(ValueError, match="not a sequence of examples"):
        fm.vmap(lambda e: e * 2.0)(arg)
    if isinstance(arg, set):  # (an unhashable leaf to fm.jit: its own TypeError)
        return
    with pytest.raises(ValueError, match="not a sequence of examples"):
        fm.jit(fm.vmap(lambda e: e * 2.0))(arg)


def test_vmap_of_a_gradient_of_a_dict_is_refused():
    g = fm.grad(lambda p: p["a"] ** 2 + p["b"])({"a": 1.0, "b": 2.0})
    with pytest.raises(ValueError, match="PMap, not a sequence of examples"):
        fm.vmap(lambda e: e * 2.0)(g)


def test_vmap_maps_over_ordered_dict_views():
    d = {1.0: 10.0, 2.0: 20.0}  # (a dict's views are in insertion order, as its loop)
    assert fm.vmap(lambda k: k * 2.0)(d.keys()) == (2.0, 4.0)
    assert fm.vmap(lambda v: v * 2.0)(d.values()) == (20.0, 40.0)
    assert fm.vmap(lambda kv: kv[0] * kv[1])(d.items()) == (10.0, 40.0)


def test_a_read_cached_property_keeps_the_fast_match():
    q = Cached(2.0)
    g = fm.jit(lambda q: q.square + q.w)
    g(q)
    q.square  # noqa: B018 -- (now held by q)
    entry = g._entries.order[0]
    assert entry.match((q,), {}) is not None  # matched, not sent down the slow path
