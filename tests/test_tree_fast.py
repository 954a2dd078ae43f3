"""The fast paths of ``fm.tree`` (runs of floats flattened and rebuilt as one
slice, shared TreeDefs) agree with the general walk on any tree."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import pmap, pvector

import fmicrograd as fm
from fmicrograd import tree
from fmicrograd.core import pytree_map as tree_map


@dataclasses.dataclass(frozen=True)
class Box:
    a: object
    b: object


LEAVES = st.one_of(st.floats(allow_nan=False), st.integers(-3, 3), st.booleans(),
                   st.just(np.float64(2.5)), st.just("s"))
TREES = st.recursive(
    LEAVES | st.none(),
    lambda kids: st.one_of(
        st.lists(kids, max_size=5), st.lists(kids, max_size=5).map(tuple),
        st.lists(st.floats(allow_nan=False), min_size=1, max_size=6).map(tuple),
        st.dictionaries(st.sampled_from("abc"), kids, max_size=3),
        st.dictionaries(st.sampled_from("xy"), kids, max_size=2).map(pmap),
        st.lists(kids, max_size=3).map(pvector), st.tuples(kids, kids).map(lambda t: Box(*t))),
    max_leaves=25)


@settings(max_examples=60, deadline=None)
@given(TREES)
def test_fast_flatten_agrees_with_the_walk_that_records_paths(t):
    leaves, td = tree.flatten(t)
    walked, paths, walked_td = tree.flatten_with_paths(t)  # the general walk
    assert leaves == walked and [type(x) for x in leaves] == [type(x) for x in walked]
    assert td == walked_td and len(paths) == len(leaves) == td.num_leaves
    rebuilt = tree.unflatten(td, leaves)
    assert rebuilt == t and type(rebuilt) is type(t)
    assert tree.map(lambda x: x, t) == t
    with pytest.raises(ValueError, match=f"needs {len(leaves)} leaves, got {len(leaves) + 1}"):
        tree.unflatten(td, [*leaves, 0.0])
    if leaves:
        with pytest.raises(ValueError, match=f"needs {len(leaves)} leaves, got "):
            tree.unflatten(td, leaves[:-1])


def test_runs_of_floats_share_their_treedef_and_rebuild_as_new_containers():
    a, b = tree.structure((1.0, 2.0, 3.0)), tree.structure((4.0, 5.0, 6.0))
    assert a is b and a == tree.structure((1.0, 2.0, 3.0))
    assert tree.structure([1.0, 2.0]) != tree.structure((1.0, 2.0))
    leaves = [7.0, 8.0]
    rebuilt = tree.unflatten(tree.structure([0.0, 0.0]), leaves)
    assert rebuilt == leaves and rebuilt is not leaves  # never the caller's list
    rebuilt.append(9.0)
    assert leaves == [7.0, 8.0]
    # not a run: None is a node, an Expr or an int a leaf of its own type
    x = fm.Var(1.0)
    assert tree.flatten((1.0, None, 2.0))[0] == [1.0, 2.0]
    assert tree.leaves([1.0, x, 2]) == [1.0, x, 2]


def test_map_over_persistent_twins_keeps_the_first_trees_types():
    params = {"w": [1.0, 2.0], "b": (3.0,)}
    grads = pmap({"w": pvector([0.5, 0.5]), "b": (1.0,)})
    new = tree.map(lambda p, g: p - g, params, grads)
    assert new == {"w": [0.5, 1.5], "b": (2.0,)} and type(new["w"]) is list
    with pytest.raises(ValueError, match=r"differ at \['w'\]: the first tree has list of 2 "
                                         r"children, the other has PVector of 3"):
        tree.map(lambda p, g: p - g, params, pmap({"w": pvector([1.0] * 3), "b": (1.0,)}))


def test_big_nested_float_trees_round_trip():
    # the shape of benchmarks/scale.py's parameters: layers of (weights row, bias) neurons
    rng = np.random.default_rng(0)
    params = tuple(tuple((tuple(rng.standard_normal(a).tolist()), float(rng.standard_normal()))
                         for _ in range(b)) for a, b in ((16, 32), (32, 32), (32, 1)))
    leaves, td = tree.flatten(params)
    assert len(leaves) == td.num_leaves == 17 * 32 + 33 * 32 + 33
    assert tree.unflatten(td, leaves) == params
    halved = tree.map(lambda p, g: p - 0.5 * g, params, params)
    assert tree.leaves(halved) == [0.5 * x for x in leaves]


def twin(t):
    """``t`` with dicts as PMap and lists as PVector (what gradients come back as)."""
    if type(t) is dict:
        return pmap({k: twin(v) for k, v in t.items()})
    if type(t) is list:
        return pvector([twin(v) for v in t])
    if type(t) is tuple:
        return tuple(twin(v) for v in t)
    if isinstance(t, Box):
        return Box(twin(t.a), twin(t.b))
    return t


def outcome(run):
    try:
        return "ok", run()
    except ValueError as e:
        return "error", str(e)


def pair(*leaves):
    return leaves


@settings(max_examples=60, deadline=None)
@given(TREES)
def test_map_over_several_trees_agrees_with_mapping_the_flattened_leaves(t):
    u = tree.map(lambda x: f"other {x!r}", t)
    for other in (u, twin(t)):
        assert tree.map(pair, t, other) == tree_map._flat_map(pair, t, (other,))
        assert tree.map(pair, t, other, t) == tree_map._flat_map(pair, t, (other, t))


@settings(max_examples=60, deadline=None)
@given(TREES, TREES)
def test_map_of_two_unrelated_trees_fails_as_the_flattening_map_does(a, b):
    flattening = outcome(lambda: tree_map._flat_map(pair, a, (b,)))
    assert outcome(lambda: tree.map(pair, a, b)) == flattening


def test_a_structure_error_wins_over_an_error_of_f():
    add = lambda a, b: a + b
    with pytest.raises(ValueError, match=r"differ at \[1\]: the first tree has a leaf"):
        tree.map(add, ("s", "t"), (1.0, (2.0,)))  # "s" + 1.0 would be a TypeError
    with pytest.raises(TypeError, match="concatenate"):
        tree.map(add, ("s", 1.0), (1.0, 2.0))


def test_a_class_seen_as_a_leaf_can_still_become_a_node():
    class Late:
        def __init__(self, v):
            self.v = v

    class LateDataclass:
        v: float = 1.0

    x, y = Late(2.0), LateDataclass()
    assert tree.leaves([x, y, 3, np.float64(4.0)]) == [x, y, 3, np.float64(4.0)]
    tree.register(Late, lambda t: ((t.v,), None), lambda _, c: Late(*c))
    dataclasses.dataclass(LateDataclass)  # the class itself becomes a dataclass
    assert tree.leaves([x, y, 3, np.float64(4.0)]) == [2.0, 1.0, 3, np.float64(4.0)]
    assert tree.map(lambda v: v * 2, [x])[0].v == 4.0
