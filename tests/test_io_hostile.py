"""fm.io.load against crafted files: every one loads or is a ValueError naming
the file (never RecursionError, TypeError, IndexError, ...), and whatever loads
passed its constructor's checks."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, PVector

import fmicrograd as fm

HEAD = '{"format": "fmicrograd-tree", "version": 1, "tree": %s}'


def neuron(w=(1.0,), b=0.0, activation="relu"):
    """The JSON text of a hand-written Neuron; fields are JSON texts or Python values."""
    return tagged("fmicrograd.nn.Neuron", w=tagged_tuple(w), b=b, activation=activation)


def layer(*neurons):
    return tagged("fmicrograd.nn.Layer", neurons=tagged_tuple(neurons))


def mlp(*layers):
    return tagged("fmicrograd.nn.MLP", layers=tagged_tuple(layers))


def tagged(cls, **fields):
    return json.dumps({"type": "dataclass", "class": cls,
                       "fields": {k: json.loads(text(v)) for k, v in fields.items()}})


def tagged_tuple(items):
    return items if isinstance(items, str) else \
        json.dumps({"type": "tuple", "items": [json.loads(text(v)) for v in items]})


def text(v):
    return v if isinstance(v, str) and v[:1] in "[{" else json.dumps(v)


def load_text(tmp_path, text, name="crafted.json"):
    path = tmp_path / name
    path.write_text(text)
    return fm.io.load(path)


def rejects(tmp_path, text, match):
    with pytest.raises(ValueError, match=match) as info:
        load_text(tmp_path, text)
    assert "crafted.json" in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("depth", [600, 5000, 100_000])
def test_deeply_nested_lists(depth, tmp_path):
    text = HEAD % ("[" * depth + "]" * depth)
    assert "nest" in rejects(tmp_path, text, "nest")


def test_deeply_nested_tagged_tuples_and_dicts(tmp_path):
    tup = '{"type": "tuple", "items": [' * 400 + "]}" * 400
    rejects(tmp_path, HEAD % tup, "nested deeper than 100")
    pairs = '{"type": "dict", "items": [["k", ' * 300 + "1" + "]]}" * 300
    rejects(tmp_path, HEAD % pairs, "nested deeper than 100")


def test_depth_limit_is_the_same_on_save_and_load(tmp_path):
    def nested(depth):
        tree = 1.0
        for _ in range(depth):
            tree = [tree]
        return tree

    deepest = nested(fm.io.MAX_DEPTH)
    assert fm.io.load(fm.io.save(tmp_path / "ok.json", deepest)) == deepest
    with pytest.raises(ValueError, match="nests deeper than 100"):
        fm.io.save(tmp_path / "deep.json", nested(fm.io.MAX_DEPTH + 1))
    assert not (tmp_path / "deep.json").exists()
    rejects(tmp_path, HEAD % json.dumps(nested(fm.io.MAX_DEPTH + 1)), "nested deeper")


def test_load_deep_inside_a_recursion_is_still_a_value_error(tmp_path):
    path = tmp_path / "crafted.json"
    path.write_text(HEAD % ("[" * 90 + "]" * 90))
    outcomes = []

    def recurse(n):
        if n:
            return recurse(n - 1)
        try:
            outcomes.append(fm.io.load(path))
        except ValueError as e:
            outcomes.append(e)

    recurse(sys.getrecursionlimit() - 80)
    assert len(outcomes) == 1
    assert not isinstance(outcomes[0], ValueError) or "crafted.json" in str(outcomes[0])


@pytest.mark.parametrize("tree, match", [
    ('{"type": [1], "items": []}', "tagged object"),
    ('{"type": {"a": 1}, "items": []}', "tagged object"),
    ('{"type": "float", "value": [1]}', "'inf', '-inf', 'nan' or 'nan:'"),
    ('{"type": "float", "value": {"x": 1}}', "'inf', '-inf', 'nan' or 'nan:'"),
    ('{"type": "dataclass", "class": ["fmicrograd.nn.MLP"], "fields": {}}', "'class' name"),
    ('{"type": "dict", "items": [[[1, 2], 3]]}', "key must be"),
    ('{"type": "dict", "items": [[{"type": "tuple", "items": [[1]]}, 3]]}', "key must be"),
    ('{"type": "pmap", "items": [[{"type": "pvector", "items": []}, 3]]}', "key must be"),
    ('{"type": "dict", "items": [[{"type": "dict", "items": []}, 3]]}', "key must be"),
    (neuron(activation=[1]), "Neuron rejects"),
    (neuron(activation='{"type": "tuple", "items": []}'), "Neuron rejects"),
])
def test_unhashable_tags_and_keys(tree, match, tmp_path):
    rejects(tmp_path, HEAD % tree, match)


def test_huge_integers(tmp_path):
    rejects(tmp_path, HEAD % ("1" * 5000), "digits")
    rejects(tmp_path, HEAD % ('{"format": 1, "version": %s}' % ("9" * 5000)), "digits")
    rejects(tmp_path, HEAD.replace('"version": 1', '"version": ' + "7" * 5000) % "1", "digits")
    rejects(tmp_path, HEAD % "1e400", "beyond the float range")
    rejects(tmp_path, HEAD % mlp(layer(neuron(w=[10 ** 400]))), "beyond the float")
    big = 10 ** 400  # a big int is a fine leaf of a plain tree
    assert load_text(tmp_path, HEAD % big) == big
    with pytest.raises(ValueError, match=r"int at <root>\[1\] has too many digits"):
        fm.io.save(tmp_path / "x.json", [1, 10 ** 5000])


@pytest.mark.parametrize("tree, match", [
    ('{"type": "tuple", "items": [1], "items": [2]}', "key 'items' twice"),
    ('{"type": "dict", "type": "tuple", "items": []}', "key 'type' twice"),
    ('{"type": "dict", "items": [["a", 1], ["a", 2]]}', "same key twice"),
    ('{"type": "dict", "items": [[1, "int"], [1.0, "float"]]}', "same key twice"),
    ('{"type": "pmap", "items": [[{"type": "tuple", "items": [1]}, 0], '
     '[{"type": "tuple", "items": [1]}, 1]]}', "same key twice"),
    ('{"type": "namedtuple", "class": "fmicrograd.optim.EmptyState", "fields": {}, '
     '"fields": {}}', "twice"),
])
def test_duplicate_keys(tree, match, tmp_path):
    rejects(tmp_path, HEAD % tree, match)


def test_duplicate_top_level_keys(tmp_path):
    rejects(tmp_path, '{"format": "fmicrograd-tree", "version": 1, "tree": 1, "tree": 2}',
            "twice")


@pytest.mark.parametrize("tree, match", [
    ('{"type": "tuple", "items": {"a": 1}}', "'items' list"),
    ('{"type": "tuple", "items": "abc"}', "'items' list"),
    ('{"type": "tuple", "items": [], "extra": 1}', "adds"),
    ('{"type": "dict", "items": [1, 2]}', "pairs"),
    ('{"type": "dict", "items": [["a"]]}', "pairs"),
    ('{"type": "dataclass", "class": "fmicrograd.nn.MLP", "fields": [1]}', "'fields' object"),
    ('{"type": "dataclass", "class": "fmicrograd.nn.MLP", "fields": {"layers": 5}}',
     "MLP rejects"),
    ('{"type": "dataclass", "class": "fmicrograd.nn.MLP", "fields": {"layers": '
     '{"type": "tuple", "items": [1.0]}}}', "MLP rejects.*must be a Layer"),
    ('{"type": "dataclass", "class": "fmicrograd.nn.Layer", "fields": {"neurons": '
     '{"type": "tuple", "items": [null]}}}', "Layer rejects.*must be a Neuron"),
    ('{"type": 5}', "tagged object"),
    ('{"type": null}', "tagged object"),
    ('{}', "tagged object"),
    ('{"type": "__class__"}', "unknown type tag"),
])
def test_wrong_types_everywhere(tree, match, tmp_path):
    rejects(tmp_path, HEAD % tree, match)


@pytest.mark.parametrize("tree, match", [
    (mlp(), "MLP: needs at least one layer"),
    (mlp(layer()), "Layer: needs at least one neuron"),
    (layer(), "Layer: needs at least one neuron"),
    (neuron(activation="swish"), "unknown activation 'swish'"),
    (neuron(w=()), "at least one weight"),
    (neuron(w=["1.0"]), r"w\[0\] must be a number, got str"),
    (neuron(w=[1.0, None]), r"w\[1\] must be a number"),
    (neuron(w=[True]), r"w\[0\] must be a number, got bool"),
    (neuron(b=[0.5]), "b must be a number, got list"),
    (neuron(b='{"type": "tuple", "items": []}'), "b must be a number, got tuple"),
    (layer(neuron(), neuron(w=[1.0, 2.0])), r"same number of weights, got \[1, 2\]"),
    (mlp(layer(neuron(w=[1.0, 2.0]), neuron(w=[3.0, 4.0])), layer(neuron(w=[1.0]))),
     "layer 1 takes 1 inputs but layer 0 gives 2"),
    (tagged("fmicrograd.random.Key", data="abc"), "Key: data must be a 64-bit unsigned int"),
    (tagged("fmicrograd.random.Key", data=-1), "Key: data must be"),
    (tagged("fmicrograd.random.Key", data=2 ** 64), "Key: data must be"),
    (tagged("fmicrograd.random.Key", data=None), "Key: data must be"),
])
def test_loaded_models_pass_the_constructor_checks(tree, match, tmp_path):
    rejects(tmp_path, HEAD % tree, match)


def test_a_sound_hand_written_model_loads_and_runs(tmp_path):
    model = load_text(tmp_path, HEAD % mlp(
        layer(neuron(w=[1.0, 2], b=-1), neuron(w=[0.5, 0.5])),
        layer(neuron(w=[1.0, 1.0], activation="linear"))))
    assert model.nouts == (2, 1) and model((1.0, 1.0)) == 2.0 + 1.0


def test_non_regular_files_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    code = f"import fmicrograd as fm; fm.io.load({str(fifo)!r})"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "ValueError: fm.io.load: " in r.stderr and "is a FIFO, not a regular file" in r.stderr
    with pytest.raises(ValueError, match="character device"):
        fm.io.load("/dev/null")
    with pytest.raises(IsADirectoryError):
        fm.io.load(tmp_path)


# ---------------------------------------------------------------- fuzzing
def sample_files():
    model = fm.nn.MLP.init(2, [3, 2, 1], key=fm.random.key(0), activation="tanh")
    opt = fm.optim.adam(0.1)
    state = opt.init(model)
    return [fm.io.dumps(model),
            fm.io.dumps({"model": model, "opt": state, "key": fm.random.key(1),
                         "history": fm.train.fit(lambda m, b: m((1.0, 0.0)) ** 2, model,
                                                 fm.optim.sgd(0.1), [None], epochs=2)[1]})]


SAMPLES = sample_files()
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4),
              st.sampled_from(["tuple", "dict", "pmap", "pvector", "float", "dataclass",
                               "namedtuple", "inf", "nan", "relu", "fmicrograd.nn.MLP",
                               "fmicrograd.nn.Layer", "fmicrograd.nn.Neuron", "items",
                               "type", "class", "fields"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["type", "items", "class", "fields",
                                                             "value", "w", "b"]), inner,
                                            max_size=3)),
    max_leaves=8)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*prefix, i))
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*prefix, k))


def replaced(node, path, value):
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        return [replaced(v, rest, value) if i == head else v for i, v in enumerate(node)]
    return {k: replaced(v, rest, value) if k == head else v for k, v in node.items()}


def deleted(node, path):
    head, rest = path[0], path[1:]
    if rest:
        return replaced(node, path[:1], deleted(node[head], rest))
    if isinstance(node, list):
        return [v for i, v in enumerate(node) if i != head]
    return {k: v for k, v in node.items() if k != head}


def check_outcome(text, tmp_path):
    path = tmp_path / "fuzzed.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    try:
        tree = fm.io.load(path)
    except ValueError as e:
        assert "fuzzed.json" in str(e)
        return
    for model in models(tree):  # a model that loads also runs
        out = model((0.5,) * model.nin)
        assert all(isinstance(o, float) for o in (out if isinstance(out, tuple) else [out]))


def models(tree):
    if isinstance(tree, fm.nn.MLP):
        yield tree
    elif isinstance(tree, dict | PMap):
        for v in tree.values():
            yield from models(v)
    elif isinstance(tree, list | tuple | PVector):
        for v in tree:
            yield from models(v)
    elif dataclasses.is_dataclass(tree):
        for f in dataclasses.fields(tree):
            yield from models(getattr(tree, f.name))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_load_or_raise_value_error(data, tmp_path):
    doc = json.loads(data.draw(st.sampled_from(SAMPLES)))
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(list(paths(doc))))
        action = data.draw(st.sampled_from(["replace", "delete", "wrap", "duplicate"]))
        if action == "delete" and where:
            doc = deleted(doc, where)
        elif action == "wrap":
            depth = data.draw(st.sampled_from([1, 99, 700]))
            node = doc
            for k in where:
                node = node[k]
            doc = replaced(doc, where, json.loads("[" * depth + json.dumps(node) + "]" * depth))
        else:
            doc = replaced(doc, where, data.draw(json_values))
    text = json.dumps(doc)
    if data.draw(st.booleans()):  # text-level damage: a cut, a duplicated key, a stray byte
        cut = data.draw(st.integers(0, len(text)))
        text = data.draw(st.sampled_from([
            text[:cut], text.replace('"items":', '"items": [], "items":', 1),
            text.replace('"type":', '"type": "tuple", "type":', 1),
            text[:cut] + data.draw(st.sampled_from(["\x00", "]", "{", "NaN", "1e999", "\ud800"]))
            + text[cut:]]))
    check_outcome(text, tmp_path)


def test_check_outcome_runs_loaded_models(tmp_path):
    # the fuzz oracle really calls a loaded model (so a bad one would fail there)
    calls = []
    model = fm.nn.MLP.init(2, [1], key=fm.random.key(0))
    original = type(model).__call__
    try:
        type(model).__call__ = lambda self, x: calls.append(x) or original(self, x)
        check_outcome(fm.io.dumps({"m": model}), tmp_path)
    finally:
        type(model).__call__ = original
    assert calls == [(0.5, 0.5)]
    assert math.isfinite(model((0.5, 0.5)))


def test_classes_must_be_dataclasses_or_namedtuples(tmp_path):
    path = fm.io.save(tmp_path / "t.json", [1.0])
    for bad in (1, "Point", dict, lambda: None):
        with pytest.raises(TypeError, match="classes must be dataclasses or NamedTuples"):
            fm.io.load(path, classes=[bad])
