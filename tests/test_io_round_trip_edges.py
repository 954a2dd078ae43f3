"""fm.io.save writes only what load reads back as the same value: trees that
would come back different, or that a file cannot tell apart, are refused
before anything is written (an outside probe found each)."""

import dataclasses
import enum

import numpy as np
import pytest

import fmicrograd as fm


@dataclasses.dataclass(frozen=True)
class Doubled:
    a: float

    def __post_init__(self):  # computes its field: load's constructor call doubles it again
        object.__setattr__(self, "a", self.a * 2)


@dataclasses.dataclass(frozen=True)
class Checked:
    a: float

    def __post_init__(self):  # checks only: saved and loaded as it is
        if self.a != self.a:
            raise ValueError("NaN")


def _two_classes_named_alike():
    def make():
        @dataclasses.dataclass(frozen=True)
        class P:
            x: float
        return P

    return make(), make()


def test_a_class_whose_constructor_changes_its_fields_is_refused(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("old")
    with pytest.raises(ValueError, match=r"would load back as a different value, at "
                                         r"<root>\[1\]\.a: load builds each dataclass"):
        fm.io.save(path, (1.0, Doubled(1.0)))  # (it saved Doubled(2.0), loaded Doubled(4.0))
    assert path.read_text() == "old"
    fm.io.save(path, {"c": Checked(1.5), "m": fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0))})
    back = fm.io.load(path, classes=[Checked])
    assert back["c"] == Checked(1.5) and fm.nn.parameters(back["m"]) == fm.nn.parameters(
        fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0)))


def test_a_dict_with_two_nan_keys_is_refused_and_says_why(tmp_path):
    with pytest.raises(ValueError, match="more than one NaN key; a file holds a NaN as a "
                                         "number") as refused:
        fm.io.save(tmp_path / "t.json", {float("nan"): 1.0, float("nan"): 2.0})
    assert "fm.nn.MLP" not in str(refused.value)  # (it gave advice about model constructors)
    fm.io.save(tmp_path / "t.json", {float("nan"): 1.0, 2.0: 3.0})  # one NaN key is fine
    back = fm.io.load(tmp_path / "t.json")
    (key, value), other = back.items()
    assert key != key and value == 1.0 and other == (2.0, 3.0)


def test_two_classes_with_one_name_are_refused_on_save_and_load(tmp_path):
    a, b = _two_classes_named_alike()
    with pytest.raises(ValueError, match="two different classes named"):
        fm.io.save(tmp_path / "t.json", [a(1.0), b(2.0)])  # (both loaded back as b)
    fm.io.save(tmp_path / "t.json", [a(1.0)])
    with pytest.raises(TypeError, match="classes has two different classes named"):
        fm.io.load(tmp_path / "t.json", classes=[a, b])
    assert fm.io.load(tmp_path / "t.json", classes=[a]) == [a(1.0)]


def test_numpy_bools_save_as_bools_and_enum_members_are_refused(tmp_path):
    fm.io.save(tmp_path / "t.json", (np.bool_(True), np.bool_(False), True))
    assert fm.io.load(tmp_path / "t.json") == (True, False, True)
    color = enum.IntEnum("Color", "RED GREEN")
    with pytest.raises(TypeError, match="enum member <Color.RED: 1>.*save x.value or x.name"):
        fm.io.save(tmp_path / "t.json", {"c": color.RED})  # (it came back as the int 1)
