"""Readable pytree paths, the user's container kinds in messages, and
tree.map_with_path / tree.at / tree.stack."""

import math

import numpy as np
import pytest
from pyrsistent import PMap, pmap

import fmicrograd as fm
from fmicrograd import tree

MODEL = fm.nn.MLP.init(2, [3, 2, 1], key=fm.random.key(0))


def test_model_paths_read_like_python():
    _, paths, _ = tree.flatten_with_paths(MODEL)
    names = [tree.keystr(p) for p in paths]
    assert names[:4] == [".layers[0].neurons[0].w[0]", ".layers[0].neurons[0].w[1]",
                         ".layers[0].neurons[0].b", ".layers[0].neurons[1].w[0]"]
    assert names[-1] == ".layers[2].neurons[0].b" and len(set(names)) == len(names)


def test_errors_and_viz_labels_show_readable_paths():
    bad = tree.at(lambda m: m.layers[1].neurons[0].b, MODEL, "oops")
    with pytest.raises(TypeError, match=r"leaf at \.layers\[1\]\.neurons\[0\]\.b that is str"):
        fm.grad(lambda m: m((1.0, 2.0)))(bad)
    dot = fm.viz.to_dot(fm.trace(lambda m: m((1.0, 2.0)))(MODEL))
    assert "args[0].layers[2].neurons[0].b | data" in dot


def test_messages_name_the_users_containers():
    grads = fm.grad(lambda p: p["w"][0] * p["b"])({"w": [1.0], "b": 2.0})
    assert isinstance(grads, PMap)
    with pytest.raises(ValueError) as info:
        tree.map(lambda a, b: a, {"w": [1.0, 2.0], "b": 0.0}, grads)
    msg = str(info.value)
    assert "at ['w']: the first tree has list of 2 children, the other has PVector of 1" in msg
    assert "first:  dict{'b': *, 'w': list(*, *)}" in msg
    with pytest.raises(ValueError, match=r"dict with keys \['a'\].*dict with keys \['b'\]"):
        tree.map(lambda a, b: a, {"a": 1.0}, {"b": 1.0})
    with pytest.raises(ValueError, match=r"list of 2 children.*list of 1 children"):
        fm.optim.apply_updates([1.0, 2.0], [1.0])


def test_map_with_path_gets_paths_and_matches_map():
    zero_bias = tree.map_with_path(lambda p, x: 0.0 if p.endswith(".b") else x, MODEL)
    assert all(n.b == 0.0 for layer in zero_bias.layers for n in layer.neurons)
    assert zero_bias.layers[0].neurons[0].w == MODEL.layers[0].neurons[0].w
    seen = tree.map_with_path(lambda p, a, b: (p, a + b), {"x": (1.0, 2.0)}, {"x": (3.0, 4.0)})
    assert seen == {"x": (("['x'][0]", 4.0), ("['x'][1]", 6.0))}
    with pytest.raises(ValueError, match="tree.map_with_path"):
        tree.map_with_path(lambda p, a, b: a, (1.0,), (1.0, 2.0))


def test_at_replaces_leaves_and_subtrees_without_touching_the_input():
    before = fm.nn.parameters(MODEL)
    out = tree.at(lambda m: m.layers[0].neurons[1].w[0], MODEL, 9.0)
    assert out.layers[0].neurons[1].w == (9.0, MODEL.layers[0].neurons[1].w[1])
    assert fm.nn.parameters(MODEL) == before  # never mutated
    changed = [i for i, (a, b) in enumerate(zip(before, fm.nn.parameters(out))) if a != b]
    assert changed == [3]

    new_layer = fm.nn.Layer.init(2, 1, key=fm.random.key(5), activation="linear")
    swapped = tree.at(lambda m: m.layers[2], MODEL, new_layer)
    assert swapped.layers[2] is new_layer and swapped.layers[:2] == MODEL.layers[:2]

    both = tree.at(lambda t: (t["a"], t["b"][1]), {"a": 1.0, "b": [2.0, 3.0]}, (10.0, 30.0))
    assert both == {"a": 10.0, "b": [2.0, 30.0]} and type(both["b"]) is list
    same_zero = {"p": 0.0, "q": 0.0}  # equal (even identical) leaves are told apart
    assert tree.at(lambda t: t["q"], same_zero, 1.0) == {"p": 0.0, "q": 1.0}
    assert tree.at(lambda t: t.w, MODEL.layers[0].neurons[0], replace_fn=lambda w: w[::-1]).w \
        == MODEL.layers[0].neurons[0].w[::-1]
    assert tree.at(lambda t: t[0], pmap({0: 1.0}), 2.0) == pmap({0: 2.0})


def test_at_misuse_is_explained():
    with pytest.raises(ValueError, match="not a node of the tree"):
        tree.at(lambda t: 1.0, (1.0, 2.0), 0.0)
    with pytest.raises(ValueError, match="2 parts but replace has 3"):
        tree.at(lambda t: (t[0], t[1]), (1.0, 2.0), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="inside another"):
        tree.at(lambda t: (t[0], t[0][1]), ((1.0, 2.0),), (0.0, 0.0))
    with pytest.raises(TypeError, match="exactly one of"):
        tree.at(lambda t: t[0], (1.0,))


def test_stack_turns_per_example_results_into_arrays():
    f = lambda m, x: m(x) * m(x)  # noqa: E731
    xs = ((1.0, 2.0), (0.5, -1.0), (0.0, 3.0))
    per_example = fm.vmap(fm.grad(f), in_axes=(None, 0))(MODEL, xs)
    stacked = tree.stack(per_example)
    assert type(stacked) is fm.nn.MLP
    b = stacked.layers[2].neurons[0].b
    assert isinstance(b, np.ndarray) and b.shape == (3,)
    loop = [fm.grad(f)(MODEL, x) for x in xs]
    assert list(b) == [g.layers[2].neurons[0].b for g in loop]
    w = stacked.layers[0].neurons[1].w[0]
    assert list(w) == [g.layers[0].neurons[1].w[0] for g in loop]


def test_stack_checks_structures_and_leaves():
    assert tree.stack([{"a": 1.0}, pmap({"a": 2.0})])["a"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"tree 1 against tree 0.*\['b'\]"):
        tree.stack([{"a": 1.0, "b": (1.0,)}, {"a": 1.0, "b": (1.0, 2.0)}])
    with pytest.raises(TypeError, match=r"leaf at \['a'\] is a graph node \(Var"):
        tree.stack([{"a": fm.Var(1.0)}])
    with pytest.raises(ValueError, match="at least one"):
        tree.stack([])


def test_contract_names_still_work():
    leaves, td = tree.flatten({"w": (1.0, 2.0)})
    assert tree.unflatten(td, leaves) == {"w": (1.0, 2.0)}
    assert tree.structure([1.0]) == td.__class__(list, None, (td.children[0].children[0],))
    assert tree.leaves(MODEL) == list(fm.nn.parameters(MODEL))
    assert callable(tree.register) and callable(tree.map)


def test_at_refuses_an_object_that_stands_at_several_places():
    # None and () are one object each: the first one visited was replaced, not the one picked
    from collections import namedtuple

    State = namedtuple("State", "mu count")
    with pytest.raises(ValueError, match="stands at several places"):
        fm.tree.at(lambda s: s.count, State(None, None), 3)
    with pytest.raises(ValueError, match="stands at several places"):
        fm.tree.at(lambda t: t[1], (None, None, 1.0), 5.0)
    assert fm.tree.at(lambda s: s.mu, State(None, 2.0), 3.0) == State(3.0, 2.0)  # only one None


def test_stack_refuses_integers_float64_cannot_hold():
    # 2**53 + 1 became 2**53 in the float64 array, silently (round 45's open list)
    with pytest.raises(ValueError, match=r"leaf at \['n'\].*9007199254740993.*2\*\*53"):
        tree.stack([{"n": 2 ** 53 + 1}, {"n": 1}])
    with pytest.raises(ValueError, match=r"leaf at \[0\].*4611686018427387905"):
        tree.stack([(np.array([1, 2 ** 62 + 1]),), (np.array([1, 2]),)])
    import torch

    with pytest.raises(ValueError, match="9007199254740993"):  # (a torch dtype has no kind)
        tree.stack([(torch.tensor([2 ** 53 + 1]),), (torch.tensor([1]),)])
    with pytest.raises(ValueError, match="9007199254740993"):
        tree.stack([(np.array([2 ** 53 + 1], dtype=object),), (np.array([1], dtype=object),)])
    with pytest.raises(ValueError, match="18446744073709551615"):
        tree.stack([(np.array([2 ** 64 - 1], dtype=np.uint64),), (np.zeros(1, np.uint64),)])
    # integers float64 holds exactly stack as before, big powers of two included
    out = tree.stack([{"n": 2 ** 53, "m": np.array([-(2 ** 63)])}, {"n": 3, "m": np.array([5])}])
    assert out["n"].tolist() == [2.0 ** 53, 3.0] and out["m"].tolist() == [[-(2.0 ** 63)], [5.0]]
    assert tree.stack([(True,), (np.bool_(False),)])[0].tolist() == [1.0, 0.0]


def test_stack_keeps_infinities_and_float_arrays():
    # the integer check read every float leaf as an array of integers: an infinity was
    # int(inf), an OverflowError (the round's own review)
    import torch

    out = tree.stack([(math.inf, np.array([-math.inf, 1.0])), (1.0, np.array([2.0, 3.0]))])
    assert out[0].tolist() == [math.inf, 1.0] and out[1].tolist() == [[-math.inf, 1.0], [2.0, 3.0]]
    assert tree.stack([(torch.tensor(math.inf),), (1,)])[0].tolist() == [math.inf, 1.0]
    assert tree.stack(fm.vmap(fm.grad(fm.sqrt))((0.0, 1.0))).tolist() == [math.inf, 0.5]
