"""Pytrees: round trips for every node kind, registration, errors that show both sides."""

import dataclasses
from typing import NamedTuple

import pytest
from pyrsistent import pmap, pvector

import fmicrograd as fm
from fmicrograd import tree


class P(NamedTuple):
    a: float
    b: tuple


@dataclasses.dataclass(frozen=True)
class D:
    x: float
    y: list


TREES = [
    1.0,
    None,
    (),
    (1.0, 2.0),
    [1.0, [2.0, (3.0,)]],
    {"b": 1.0, "a": (2.0, None)},
    P(1.0, (2.0, 3.0)),
    D(1.0, [2.0, {"k": 3.0}]),
    pmap({"z": 1.0, "y": pvector([2.0, 3.0])}),
    {"mixed": [P(1.0, ()), D(2.0, []), None, pvector([4.0])]},
]


@pytest.mark.parametrize("t", TREES, ids=repr)
def test_round_trip(t):
    leaves, treedef = tree.flatten(t)
    rebuilt = tree.unflatten(treedef, leaves)
    assert rebuilt == t and type(rebuilt) is type(t)
    assert tree.structure(t) == treedef
    assert tree.leaves(t) == leaves


@pytest.mark.parametrize("t", TREES, ids=repr)
def test_map_preserves_structure(t):
    doubled = tree.map(lambda x: x * 2, t)
    assert tree.structure(doubled) == tree.structure(t)
    assert tree.leaves(doubled) == [2 * x for x in tree.leaves(t)]


def test_dict_keys_in_sorted_order():
    assert tree.leaves({"b": 1.0, "a": 2.0, "c": 3.0}) == [2.0, 1.0, 3.0]


def test_none_has_no_leaves_and_exprs_are_leaves():
    x = fm.Var(1.0)
    assert tree.leaves((None, x)) == [x]


def test_register_custom_class():
    class Box:
        def __init__(self, items, label):
            self.items, self.label = items, label

    tree.register(Box, lambda b: (b.items, b.label), lambda label, items: Box(tuple(items), label))
    b = Box((1.0, 2.0), "lbl")
    leaves, td = tree.flatten({"box": b})
    assert leaves == [1.0, 2.0]
    back = tree.unflatten(td, [5.0, 6.0])["box"]
    assert isinstance(back, Box) and back.items == (5.0, 6.0) and back.label == "lbl"
    g = fm.grad(lambda p: p.items[0] * p.items[1])(b)
    assert isinstance(g, Box) and g.items == (2.0, 1.0)


def test_map_with_several_trees():
    assert tree.map(lambda a, b, c: a + b * c, (1.0, [2.0]), (3.0, [4.0]), (5.0, [6.0])) == \
        (16.0, [26.0])


def test_map_accepts_persistent_twins_and_keeps_first_types():
    out = tree.map(lambda a, b: a - b, {"w": [1.0, 2.0]}, pmap({"w": pvector([0.5, 0.5])}))
    assert out == {"w": [0.5, 1.5]} and type(out["w"]) is list


def test_structure_mismatch_shows_path_and_both_sides():
    with pytest.raises(ValueError) as info:
        tree.map(lambda a, b: a, {"w": (1.0, 2.0)}, {"w": (1.0,)})
    msg = str(info.value)
    assert "['w']" in msg and "tuple of 2" in msg and "tuple of 1" in msg
    assert "first:" in msg and "other:" in msg


def test_structure_mismatch_in_dict_keys():
    with pytest.raises(ValueError, match=r"keys \['a'\].*keys \['b'\]"):
        tree.map(lambda a, b: a, {"a": 1.0}, {"b": 1.0})


def test_unflatten_wrong_leaf_count():
    with pytest.raises(ValueError, match="needs 2 leaves, got 3"):
        tree.unflatten(tree.structure((1.0, 2.0)), [1.0, 2.0, 3.0])


def test_flatten_is_not_recursive_over_graphs():
    x = fm.Var(0.0)
    for _ in range(10_000):
        x = x + 1.0
    assert tree.leaves([x]) == [x]


def test_keystr():
    _, paths, _ = tree.flatten_with_paths({"layers": [P(1.0, (2.0,))]})
    assert [tree.keystr(p) for p in paths] == ["['layers'][0].a", "['layers'][0].b[0]"]


def test_a_mismatch_in_a_registered_nodes_metadata_is_named():
    class Tagged:
        def __init__(self, v, tag):
            self.v, self.tag = v, tag

    fm.tree.register(Tagged, lambda t: ((t.v,), t.tag), lambda tag, ch: Tagged(ch[0], tag))
    with pytest.raises(ValueError, match=r"at \[0\]: the first tree has Tagged of 1 children "
                                         r"and metadata 'x', the other has Tagged of 1 "
                                         r"children and metadata 'y'"):
        fm.tree.map(lambda a, b: a + b, (Tagged(1.0, "x"),), (Tagged(2.0, "y"),))
    assert fm.tree.map(lambda a, b: a + b, Tagged(1.0, "x"), Tagged(2.0, "x")).v == 3.0
