"""fm.io: exact, typed, atomic JSON round trips, and clear errors for bad files."""

import dataclasses
import json
import math
import struct
import sys
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrsistent import PMap, PVector, pmap, pvector

import fmicrograd as fm


class Point(NamedTuple):
    x: float
    y: float


@dataclasses.dataclass(frozen=True)
class Box:
    lo: float
    hi: tuple
    label: str = "box"


def same(a, b):
    """Equal values of identical types all the way down; floats bit for bit
    (NaNs equal if both are NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):  # a dict keeps its order
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, PMap):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list | PVector):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def roundtrip(tree, tmp_path, **kw):
    path = fm.io.save(tmp_path / "t.json", tree)
    return fm.io.load(path, **kw)


TRICKY_FLOATS = [0.0, -0.0, 1 / 3, 0.1, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                 -1e-300, math.pi, math.inf, -math.inf, math.nan, 1.0 + 2 ** -52]


def test_floats_bit_for_bit(tmp_path):
    back = roundtrip(tuple(TRICKY_FLOATS), tmp_path)
    assert same(back, tuple(TRICKY_FLOATS))
    assert math.copysign(1.0, back[1]) == -1.0


def _from_bits(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def test_a_nan_keeps_its_sign_and_payload(tmp_path):
    # (until round 22 every NaN read back as math.nan: a run whose parameters went
    # to the -nan that inf - inf makes on x86 did not resume bit for bit)
    nans = (-math.nan, math.inf - math.inf, _from_bits(0x7FF0000000000001),
            _from_bits(0xFFF4000000000abc), math.nan)
    back = roundtrip(nans, tmp_path)
    assert [struct.pack("<d", x) for x in back] == [struct.pack("<d", x) for x in nans]
    assert math.copysign(1.0, back[0]) == -1.0
    text = (tmp_path / "t.json").read_text()
    assert '"nan:fff8000000000000"' in text and '"nan"' in text  # math.nan stays "nan"


@pytest.mark.parametrize("tree", [
    None, True, 3, 2 ** 80, -7, "relu", "ünïcode\n\"quoted\"",
    (1.0, 2.0), [1.0, [2.0, (3.0,)]], (), [],
    {"b": 1.0, "a": (2.0, None)},
    {1: "int key", (2, "x"): "tuple key", 0.5: "float key", None: "none key"},
    pmap({"w": pvector([1.0, 2.0]), "b": 0.5}), pvector([pmap({"a": 1.0})]),
    {"nested": [{"deep": (None, [math.inf])}]},
], ids=repr)
def test_round_trip_keeps_types(tree, tmp_path):
    back = roundtrip(tree, tmp_path)
    assert same(back, tree)


def test_dict_keeps_insertion_order(tmp_path):
    tree = {"z": 1.0, "a": 2.0, "m": 3.0}
    assert list(roundtrip(tree, tmp_path)) == ["z", "a", "m"]


def test_mlp_round_trip_same_classes_and_floats(tmp_path):
    model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(3), activation="tanh")
    back = roundtrip(model, tmp_path)
    assert type(back) is fm.nn.MLP
    assert all(type(layer) is fm.nn.Layer for layer in back.layers)
    assert all(type(n) is fm.nn.Neuron for layer in back.layers for n in layer.neurons)
    assert same(back, model) and back == model
    assert [n.activation for layer in back.layers for n in layer.neurons] == \
        [n.activation for layer in model.layers for n in layer.neurons]
    assert back((0.3, -0.7)) == model((0.3, -0.7))
    # and it is still a pytree the transforms accept
    g = fm.grad(lambda m: m((0.3, -0.7)))(back)
    assert type(g) is fm.nn.MLP and fm.nn.count_params(g) == 337


def test_key_round_trip(tmp_path):
    k = fm.random.split(fm.random.key(5))[1]
    back = roundtrip({"key": k}, tmp_path)
    assert back["key"] == k and type(back["key"]) is type(k)


def test_user_classes_need_to_be_passed(tmp_path):
    tree = {"p": Point(1.0, -0.0), "box": Box(0.0, (1.0, math.nan))}
    path = fm.io.save(tmp_path / "u.json", tree)
    with pytest.raises(ValueError, match=r"classes=\[Point\]|classes=\[Box\]"):
        fm.io.load(path)
    back = fm.io.load(path, classes=[Point, Box])
    assert same(back, tree)
    assert type(back["p"]) is Point and type(back["box"]) is Box


def test_unknown_class_is_rejected_without_importing_it(tmp_path):
    tree = {"type": "dataclass", "class": "evil_module_xyz.Payload", "fields": {}}
    path = tmp_path / "evil.json"
    path.write_text(json.dumps({"format": fm.io.FORMAT, "version": 1, "tree": tree}))
    with pytest.raises(ValueError, match=r"evil\.json.*evil_module_xyz\.Payload.*not one of"):
        fm.io.load(path)
    assert "evil_module_xyz" not in sys.modules
    path.write_text(json.dumps({"format": fm.io.FORMAT, "version": 1, "tree": {
        "type": "namedtuple", "class": "os.stat_result", "fields": {}}}))
    with pytest.raises(ValueError, match="os.stat_result"):
        fm.io.load(path)
    # fmicrograd's graph nodes and private classes are not data a file may build
    for name in ("fmicrograd.core.expr.Expr", "fmicrograd.core.expr.Var", "fmicrograd.train._Fold"):
        write_doc(path, {"type": "dataclass", "class": name, "fields": {}})
        with pytest.raises(ValueError, match="not one of fmicrograd's own classes"):
            fm.io.load(path)


def write_doc(path, tree, **top):
    doc = {"format": fm.io.FORMAT, "version": 1, "tree": tree, **top}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("tree, message", [
    ({"type": "frozenset", "items": []}, "unknown type tag 'frozenset'"),
    ({"items": [1]}, "tagged object"),
    ({"type": "float", "value": "1.5"}, "'inf', '-inf', 'nan' or 'nan:'"),
    ({"type": "float", "value": "nan:0000000000000000"}, "16 hex digits of a NaN"),
    ({"type": "float", "value": "nan:7ff8"}, "16 hex digits of a NaN"),
    ({"type": "float", "value": "nan:7FF8000000000000"}, "16 hex digits of a NaN"),
    ({"type": "tuple"}, "'items' list"),
    ({"type": "dict", "items": [[1, 2, 3]]}, r"\[key, value\] pairs"),
    ({"type": "dataclass", "class": "fmicrograd.nn.Neuron", "fields": {"w": []}},
     "has fields"),
    ({"type": "namedtuple", "class": "fmicrograd.nn.Neuron", "fields": {}}, "not one"),
    ([1.0, {"type": "tuple", "items": [{"type": "nope"}]}], r"<root>\[1\]\[0\]"),
])
def test_malformed_trees_name_the_place(tree, message, tmp_path):
    path = write_doc(tmp_path / "bad.json", tree)
    with pytest.raises(ValueError, match=message) as info:
        fm.io.load(path)
    assert "bad.json" in str(info.value)


def test_truncated_file(tmp_path):
    path = fm.io.save(tmp_path / "m.json", fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0)))
    text = path.read_text()
    for cut in (len(text) // 2, len(text) - 2, 1):
        path.write_text(text[:cut])
        with pytest.raises(ValueError, match=r"m\.json is not valid JSON.*truncated or corrupt"):
            fm.io.load(path)


@pytest.mark.parametrize("content, message", [
    (b"", "not valid JSON"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a text file"),
    (b'{"hello": "world"}', "not an fmicrograd parameter file"),
    (b"[1, 2, 3]", "not an fmicrograd parameter file"),
    (b'{"format": "fmicrograd-tree", "version": 99, "tree": null}', "upgrade fmicrograd"),
    (b'{"format": "fmicrograd-tree", "version": "1", "tree": null}', "bad format version"),
    (b'{"format": "fmicrograd-tree", "version": 1}', "no 'tree' field"),
    (b'{"format": "fmicrograd-tree", "version": 1, "tree": NaN}', "bare NaN"),
])
def test_foreign_or_corrupt_files(content, message, tmp_path):
    path = tmp_path / "foreign.json"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        fm.io.load(path)
    assert "foreign.json" in str(info.value)


def test_failed_save_leaves_old_file_and_no_temp_files(tmp_path):
    path = fm.io.save(tmp_path / "params.json", {"w": 1.0})
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"<root>\['w'\]\[1\]"):
        fm.io.save(path, {"w": [1.0, object()]})
    with pytest.raises(TypeError, match="graph node"):
        fm.io.save(path, {"w": fm.Var(1.0)})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["params.json"]


def test_failed_write_leaves_old_file_and_no_temp_files(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def half_then_fail(f):
        f.write(b"half of the new cont")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fm.io.atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
    fm.io.atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_the_file_is_plain_versioned_json(tmp_path):
    path = fm.io.save(tmp_path / "p.json", {"w": (0.1, -math.inf)})
    doc = json.loads(path.read_text())
    assert doc["format"] == "fmicrograd-tree" and doc["version"] == fm.io.VERSION
    assert doc["tree"]["items"][0][1] == {"type": "tuple",
                                          "items": [0.1, {"type": "float", "value": "-inf"}]}


leaves = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(),
                   st.none(), st.booleans(), st.text(max_size=5))
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=3), inner, max_size=4),
    st.lists(inner, max_size=4).map(pvector),
    st.dictionaries(st.integers(), inner, max_size=3).map(pmap)), max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(trees)
def test_any_tree_round_trips(tree):
    assert same(fm.io.loads(fm.io.dumps(tree)), tree)


def test_optimizer_state_round_trip_resumes_training(tmp_path):
    model = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(1))
    opt = fm.optim.adam(0.1)

    def loss(m):
        return m((1.0, 2.0)) ** 2

    state = opt.update(fm.grad(loss)(model), opt.init(model), model)[1]
    checkpoint = {"model": model, "opt_state": state,
                  "schedule": fm.optim.micrograd_schedule(1.0, 0.9, 50)}
    back = roundtrip(checkpoint, tmp_path)
    assert same(back, checkpoint)
    assert type(back["opt_state"][0]) is fm.optim.ScaleByAdamState
    assert type(back["schedule"]) is type(checkpoint["schedule"]) \
        and back["schedule"](10) == checkpoint["schedule"](10)
    g = fm.grad(loss)(model)
    assert same(opt.update(g, back["opt_state"], back["model"]),
                opt.update(g, state, model))


def test_training_history_round_trip(tmp_path):
    xs, ys = fm.datasets.xor()
    _, history = fm.train.fit(lambda m, b: fm.losses.hinge([m(x) for x in b[0]], b[1]),
                              fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0)),
                              fm.optim.sgd(0.1), [(xs, ys)], epochs=3)
    back = roundtrip(history, tmp_path)
    assert isinstance(back, PMap) and isinstance(back["loss"], PVector)
    assert same(back, history)
