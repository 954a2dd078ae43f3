"""Trees a few hundred levels deep, where flatten, grad and jit work, work in
the rest of fm.tree too (round 47's probe: a RecursionError from inside the
library between 250 and 500 levels); a tree too deep fails fast, with an
error that says so; str() of a node with a huge fan-in builds only what it
prints."""

import time

import numpy as np
import pytest

import fmicrograd as fm
from fmicrograd.core import formula


def nest(depth, leaf=1.0):
    t = leaf
    for i in range(depth):
        t = (t, float(i))
    return t


def innermost(t):
    while isinstance(t, tuple):
        t = t[0]
    return t


def test_the_text_of_a_deep_structure():
    # TreeDef.__repr__ recursed: a RecursionError at about 250 levels
    assert str(fm.tree.structure(nest(600))) == "tuple(" * 600 + "*" + ", *)" * 600
    # (ordinary structures read as before)
    assert repr(fm.tree.structure({"b": (1.0, [2.0, None]), "a": {}})) == \
        "dict{'a': dict{}, 'b': tuple(*, list(*, NoneType()))}"


def test_map_over_deep_trees_that_differ_is_the_structure_error():
    # the mismatch message printed both structures: a RecursionError, not the ValueError
    with pytest.raises(ValueError, match=r"tree.map: tree structures differ at (\[0\]){300}: "
                                         r"the first tree has a leaf, the other has tuple"):
        fm.tree.map(lambda a, b: a + b, nest(300), nest(300, leaf=(1.0, 2.0)))


def test_map_and_stack_of_a_tree_600_deep_with_itself():
    # _flat_map's and stack's rd != td compared the structures recursively in C
    t = nest(600)
    doubled = fm.tree.map(lambda a, b: a + b, t, t)
    assert fm.tree.leaves(doubled) == [2 * x for x in fm.tree.leaves(t)]
    assert fm.tree.map_with_path(lambda p, a, b: a - b, t, t) == fm.tree.map(lambda a: 0.0, t)
    stacked = fm.tree.stack([t, doubled])
    assert np.array_equal(innermost(stacked), [1.0, 2.0]) and np.array_equal(stacked[1],
                                                                             [599.0, 1198.0])


def test_paths_of_a_tree_600_deep():
    # flatten_with_paths took two frames a level: "deeper than Python's recursion limit
    # (1000)" at 500 levels
    leaves, paths, _ = fm.tree.flatten_with_paths(nest(600))
    assert leaves[0] == 1.0 and fm.tree.keystr(paths[0]) == "[0]" * 600
    assert fm.tree.keystr(paths[-1]) == "[1]"


def total(t):
    return fm.sum(fm.tree.leaves(t))


def test_grad_of_a_checkpoint_on_a_tree_600_deep():
    # custom.py's _holds_batch recursed (a RecursionError from 330 levels), and its
    # structure comparisons recursed in C (from about 500)
    g = fm.grad(fm.checkpoint(total))(nest(600))
    assert fm.tree.leaves(g) == [1.0] * 601
    assert str(fm.tree.structure(g)) == str(fm.tree.structure(nest(600)))


def test_vmap_over_examples_600_deep():
    # their structures compared in C: refused as too deep from about 500 levels
    t = nest(600)
    assert fm.vmap(total)([t, fm.tree.map(lambda x: 2 * x, t)]) == (total(t), 2 * total(t))


def test_a_tree_too_deep_says_how_deep_without_a_wrong_limit():
    with pytest.raises(ValueError) as e:
        fm.tree.flatten_with_paths(nest(1500))
    text = str(e.value)
    assert text.startswith("fm.tree: the tree is nested deeper than fm can walk (at least "
                           "1500 levels;") and "keep long sequences flat" in text
    assert "recursion limit (" not in text  # (it said "(1000)" for trees 500 deep)


def test_a_very_deep_tree_is_refused_in_linear_time():
    # _too_deep built a path tuple per level: 12,000 levels took 2.5 s (40,000 a MemoryError)
    t = nest(12_000)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="at least 12000 levels"):
        fm.tree.leaves(t)
    assert time.perf_counter() - start < 0.5


def test_a_deep_tree_holding_itself_names_both_paths():
    inner = [1.0]
    t = inner
    for _ in range(3000):
        t = [t]
    inner.append(t)  # the innermost list holds the outermost
    with pytest.raises(ValueError, match=r"contains itself: (\[0\]){3000}\[1\] is the "
                                         r"container at <root>$"):
        fm.tree.leaves(t)


class _Counted(tuple):
    """Children that count how many of them are read."""

    read = 0

    def __getitem__(self, i):
        _Counted.read += 1
        return tuple.__getitem__(self, i)

    def __iter__(self):
        for x in tuple.__iter__(self):
            _Counted.read += 1
            yield x


@pytest.mark.parametrize("op", ["sum", "dot", "call"])
def test_str_of_a_huge_fan_in_reads_only_the_terms_it_prints(op):
    # every term was built before the cut: str(fm.dot(vs, vs)) of a million took 2.5 s
    vs = [fm.Var(float(i)) for i in range(4000)]
    y = {"sum": lambda: fm.sum(vs), "dot": lambda: fm.dot(vs, vs),
         "call": lambda: fm.mean(vs)}[op]()
    before = str(y)
    object.__setattr__(y, "children", _Counted(y.children))
    _Counted.read = 0
    assert str(y) == before
    assert _Counted.read <= 2 * formula.MAX_TERMS + 2
    assert before.endswith({"sum": "Var(6.0) + … + Var(3999.0)",
                            "dot": "Var(6.0)*Var(6.0) + … + Var(3999.0)*Var(3999.0)",
                            "call": "Var(6.0), …, Var(3999.0))"}[op])


def test_an_optimizer_updates_a_tree_600_deep():
    t = 1.5
    for _ in range(600):
        t = (t, 2.0)
    opt = fm.optim.adam(0.1)
    updates, _ = opt.update(t, opt.init(t), t)
    leaves = fm.tree.leaves(fm.optim.apply_updates(t, updates))
    assert len(leaves) == 601 and all(abs(v - w + 0.1) < 1e-9 for v, w in
                                      zip(leaves, fm.tree.leaves(t)))
