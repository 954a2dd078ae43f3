"""Trees fm.tree cannot walk give errors that say why and where."""

import pytest

import fmicrograd as fm


def _cyclic():
    a = [1.0, {"k": (2.0,)}]
    a[1]["k"] = (2.0, a)
    return a


@pytest.mark.parametrize("walk", [fm.tree.leaves, fm.tree.structure, fm.tree.flatten,
                                  fm.tree.flatten_with_paths,
                                  lambda t: fm.tree.map(lambda x: x, t)])
def test_a_tree_holding_itself_names_the_path(walk):
    with pytest.raises(ValueError, match=r"contains itself: \[1\]\['k'\]\[1\] is the "
                                         r"container at <root>"):
        walk(_cyclic())


def test_a_tree_deeper_than_the_recursion_limit():
    deep = 1.0
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested deeper than fm can walk"):
        fm.tree.leaves(deep)


def test_a_shared_subtree_is_not_a_cycle():
    shared = (1.0, 2.0)
    assert fm.tree.leaves([shared, shared]) == [1.0, 2.0, 1.0, 2.0]


def test_unflatten_with_its_arguments_swapped():
    td = fm.tree.structure((1.0, 2.0))
    with pytest.raises(TypeError, match="first argument must be a TreeDef.*got list"):
        fm.tree.unflatten([3.0, 4.0], td)
    assert fm.tree.unflatten(td, [3.0, 4.0]) == (3.0, 4.0)


def test_keys_of_mixed_types_have_one_order_whatever_the_insertion_order():
    # a dict's own order was kept: the PMap grad returns for {1: ., "a": .} iterates
    # ("a", 1), and updating the parameters was "tree structures differ"
    params = {1: 1.0, "a": 2.0}
    grads = fm.grad(lambda p: p[1] * p["a"])(params)
    assert fm.optim.apply_updates(params, grads) == {1: 3.0, "a": 3.0}
    assert fm.tree.structure({1: 0.0, "a": 0.0}) == fm.tree.structure({"a": 0.0, 1: 0.0})
    assert fm.tree.leaves({"a": 2.0, 1: 1.0}) == fm.tree.leaves(params) == [1.0, 2.0]


@pytest.mark.parametrize("transform", ["grad", "jit", "vmap"])
def test_a_tree_nested_600_deep_is_handled(transform):
    # grad and jit raised a bare RecursionError between about 500 and 999 levels, where
    # fm.tree itself takes the tree (round 30's probe)
    t = 1.5
    for _ in range(600):
        t = [t, 0.5]

    def f(t):
        s = 0.0
        while not isinstance(t, (float, fm.Expr)):
            s = s + t[1]
            t = t[0]
        return s + t * t

    try:
        got = getattr(fm, transform)(f)(t if transform != "vmap" else [t, t])
    except ValueError as e:  # (a clear refusal is allowed; a RecursionError is not)
        assert "nested deeper than fm can walk" in str(e)
        return
    if transform == "vmap":  # (its examples' structures compare in C: near the limit)
        assert got == (f(t), f(t))
    elif transform == "jit":
        assert got == f(t)
    else:
        inner = got
        for _ in range(600):
            inner = inner[0]
        assert inner == 3.0
