"""``fit``'s callback gets the parameters training goes on from; a checkpoint
holding an int no float64 holds, and a ``checkpoint_dir`` below a file, are
``ValueError``s naming the file.

Until round 31 a callback after a rollback got the abandoned parameters (-8.0
where fit went on from -2.0), a 400-digit int in a checkpoint was reported by
``value_and_grad`` without the file, and a ``checkpoint_dir`` below a file
raised ``mkdir``'s ``NotADirectoryError``."""

from __future__ import annotations

import json
import warnings

import pytest

import fmicrograd as fm


def _loss(p, b):
    return (p["w"] - b) ** 2


def test_the_callback_after_a_rollback_gets_the_parameters_fit_goes_on_from():
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, h = fm.train.fit(_loss, {"w": 1.0}, fm.optim.sgd(1.5), [0.0], epochs=4,
                            on_instability="rollback",
                            callback=lambda e, q, r: seen.append((e, q["w"])))
    events = [(e["epoch"], e["action"]) for e in h["events"]]
    assert events == [(2, "rollback")]
    assert seen == [(0, -2.0), (1, 4.0), (2, -2.0), (3, -1.4)]  # (at 2: rolled back to -2.0)
    assert p == {"w": seen[-1][1]}


def test_a_checkpoint_int_beyond_float64_names_the_file(tmp_path):
    fm.train.fit(_loss, {"w": 1.0}, fm.optim.sgd(0.1), [0.0], epochs=1, checkpoint_dir=tmp_path)
    f = tmp_path / "epoch-000001.json"
    doc = json.loads(f.read_text())
    for item in doc["tree"]["items"]:
        if item[0] == "params":
            item[1]["items"][0][1] = 10 ** 400
    f.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"epoch-000001.json holds int 1000.*\.\.\..* at params"):
        fm.train.fit(_loss, {"w": 1.0}, fm.optim.sgd(0.1), [0.0], epochs=2,
                     checkpoint_dir=tmp_path, resume=tmp_path)


def test_a_checkpoint_dir_below_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"'.*file' is a file, not a directory"):
        fm.train.fit(_loss, {"w": 1.0}, fm.optim.sgd(0.1), [0.0], epochs=1,
                     checkpoint_dir=blocker / "sub")
    assert blocker.read_text() == "x"
