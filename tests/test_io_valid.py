"""fm.io.save writes only what fm.io.load reads back (a tree load would refuse
is a ValueError naming where it is wrong, before any file is touched), and
paths that cannot be read or written are errors that name the user's path."""

import dataclasses
import os

import pytest

import fmicrograd as fm

MODEL = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))
HINT = "fm.tree.map, fm.tree.at or fm.tree.unflatten skips its constructor's checks"


def listing(directory):
    return sorted(p.name for p in directory.iterdir())


def refused(tmp_path, tree):
    """Save ``tree`` over an existing file and as a new one; both must raise and
    leave the directory as it was. Returns the message of the new one."""
    old = tmp_path / "old.json"
    fm.io.save(old, MODEL)
    before = old.read_bytes()
    with pytest.raises(ValueError, match=f"fm.io.save: {old} was not written"):
        fm.io.save(old, tree)
    with pytest.raises(ValueError) as err:
        fm.io.save(tmp_path / "new.json", tree)
    with pytest.raises(ValueError, match="fm.io.dumps: the tree was not written"):
        fm.io.dumps(tree)
    assert listing(tmp_path) == ["old.json"] and old.read_bytes() == before
    message = str(err.value)
    assert message.startswith(f"fm.io.save: {tmp_path / 'new.json'} was not written: "
                              "fm.io.load would refuse it, at <root>")
    return message


def unchecked(cls, **fields):
    return fm.nn._new(cls, fields)  # as fm.tree.unflatten builds: no __post_init__


def test_neurons_of_different_widths_are_refused(tmp_path):
    wider = fm.tree.at(lambda m: m.layers[0].neurons[1].w, MODEL, (1.0, 2.0, 3.0))
    message = refused(tmp_path, {"model": wider})
    assert "at <root>['model'].layers[0]: fmicrograd.nn.Layer rejects its fields" in message
    assert "every neuron must have the same number of weights, got [2, 3, 2]" in message
    assert HINT in message


def test_layers_that_do_not_connect_are_refused(tmp_path):
    other = fm.tree.at(lambda m: m.layers[1], MODEL, fm.nn.Layer.init(4, 1, key=fm.random.key(1)))
    message = refused(tmp_path, other)
    assert "at <root>: fmicrograd.nn.MLP rejects its fields" in message
    assert "layer 1 takes 4 inputs but layer 0 gives 3 outputs" in message
    built = unchecked(fm.nn.MLP, layers=(MODEL.layers[1], MODEL.layers[0]))
    assert "layer 1 takes 2 inputs but layer 0 gives 1 outputs" in refused(tmp_path, built)


def test_a_wrong_activation_or_leaf_is_refused(tmp_path):
    neuron = unchecked(fm.nn.Neuron, w=(1.0, 2.0), b=0.0, activation="swish")
    layer = unchecked(fm.nn.Layer, neurons=(neuron,))
    message = refused(tmp_path, (unchecked(fm.nn.MLP, layers=(layer,)),))
    assert "at <root>[0].layers[0].neurons[0]: fmicrograd.nn.Neuron rejects its fields" in message
    assert "unknown activation 'swish'" in message
    message = refused(tmp_path, fm.tree.map(str, MODEL))
    assert "at <root>.layers[0].neurons[0]: fmicrograd.nn.Neuron" in message
    assert "w[0] must be a number, got str" in message
    message = refused(tmp_path, unchecked(fm.nn.Layer, neurons=()))
    assert "Layer: needs at least one neuron" in message


def test_a_key_that_load_refuses_is_refused(tmp_path):
    message = refused(tmp_path, {fm.nn.Neuron((1.0,)): 1.0})
    assert "a dict key must be a number, string, None or a tuple of them" in message


@dataclasses.dataclass(frozen=True)
class Positive:
    x: float

    def __post_init__(self):
        if not self.x > 0:
            raise ValueError(f"Positive: x must be > 0, got {self.x}")


def test_a_users_class_is_checked_by_its_own_constructor(tmp_path):
    good = tmp_path / "good.json"
    fm.io.save(good, {"p": Positive(2.0)})
    assert fm.io.load(good, classes=[Positive]) == {"p": Positive(2.0)}
    os.unlink(good)
    bad = fm.tree.map(lambda v: -v, Positive(2.0))  # dataclasses are pytrees: no check
    message = refused(tmp_path, [bad])
    assert f"at <root>[0]: {Positive.__module__}.Positive rejects its fields" in message
    assert "x must be > 0, got -2.0" in message


def test_valid_trees_still_round_trip(tmp_path):
    opt = fm.optim.adam(0.1)
    tree = {"model": MODEL, "state": opt.init(MODEL), "key": fm.random.key(3),
            "grad": fm.grad(lambda m: m((1.0, -1.0)) ** 2)(MODEL)}
    path = fm.io.save(tmp_path / "t.json", tree)
    assert fm.io.load(path) == tree and listing(tmp_path) == ["t.json"]


# ---------------------------------------------------------------- paths
def test_loading_a_directory_names_it(tmp_path):
    with pytest.raises(IsADirectoryError) as err:
        fm.io.load(tmp_path)
    assert str(err.value) == (f"[Errno 21] fm.io.load: {tmp_path} is a directory; pass a file "
                              "written by fm.io.save")
    with pytest.raises(ValueError, match="fm.io.load: the path is empty; pass a file written"):
        fm.io.load("")


def test_saving_into_a_missing_directory_names_the_path(tmp_path):
    path = tmp_path / "missing" / "m.json"
    for attempt in (lambda: fm.io.save(path, MODEL), lambda: fm.io.check_writable(path)):
        with pytest.raises(FileNotFoundError) as err:
            attempt()
        assert str(err.value) == (f"[Errno 2] cannot write {path}: its directory "
                                  f"{tmp_path / 'missing'} does not exist; create it first, or "
                                  "choose another directory")
    assert listing(tmp_path) == []


def test_saving_below_a_file_names_the_path(tmp_path):
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file" / "m.json", tmp_path / "file" / "sub" / "m.json"):
        with pytest.raises(NotADirectoryError) as err:
            fm.io.save(path, MODEL)
        assert f"cannot write {path}: its directory {path.parent} is not a directory" \
            in str(err.value)
        assert ".tmp" not in str(err.value)
    assert listing(tmp_path) == ["file"] and (tmp_path / "file").read_text() == "x"


def test_a_directory_that_takes_no_file_names_the_path():
    with pytest.raises(OSError) as err:  # /proc exists, but takes no new file, even for root
        fm.io.save("/proc/m.json", MODEL)
    assert "cannot write /proc/m.json: its directory /proc takes no new file (" in str(err.value)
    assert "does not exist" not in str(err.value)


def test_saving_onto_a_directory_or_an_empty_path(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError) as err:
        fm.io.save(tmp_path / "d", MODEL)
    assert f"{tmp_path / 'd'} is a directory; pass the path of a file" in str(err.value)
    monkeypatch.chdir(tmp_path)
    for empty in ("", b""):
        with pytest.raises(ValueError) as err:
            fm.io.save(empty, MODEL)
        assert str(err.value) == "the path is empty; pass a file name, such as 'model.json'"
        with pytest.raises(ValueError, match="the path is empty"):
            fm.io.check_writable(empty)
    assert listing(tmp_path) == ["d"] and listing(tmp_path / "d") == []


def test_a_name_ending_in_a_separator_is_refused_and_replaces_nothing(tmp_path):
    # (pathlib drops the separator: "old.json/" replaced old.json, "new.json/" wrote
    # new.json, which load("new.json/") then could not read; round 44's review)
    fm.io.save(tmp_path / "old.json", {"w": 2.0})
    before = (tmp_path / "old.json").read_bytes()
    for name in ("old.json/", "new.json/"):
        with pytest.raises(IsADirectoryError, match="ends with a path separator"):
            fm.io.save(f"{tmp_path}/{name}", MODEL)
        with pytest.raises(IsADirectoryError, match="ends with a path separator"):
            fm.io.check_writable(f"{tmp_path}/{name}")
    assert listing(tmp_path) == ["old.json"]
    assert (tmp_path / "old.json").read_bytes() == before
