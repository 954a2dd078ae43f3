"""A checkpoint whose counters, flags or history were hand-edited or corrupted is
a ValueError naming the file and the entry, and the file is left as it was."""

import json

import pytest
from test_checkpoint import XS, YS, fit, line_loss  # noqa: F401 -- the same run

NAME = "epoch-000002.json"
DROP = object()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("written")
    fit(2, checkpoint_dir=path)
    return json.loads((path / NAME).read_text())


def _set(items, name, value):
    """The [name, value] pairs ``items`` with ``name`` set to ``value`` (or dropped)."""
    kept = [[k, v] for k, v in items if k != name]
    return kept if value is DROP else [*kept, [name, value]]


def _tuple(*items):
    return {"type": "tuple", "items": list(items)}


def _history(doc, name, value):
    history = dict(doc["tree"]["items"])["history"]
    return {**history, "items": _set(history["items"], name, value)}


BAD = [("epoch", DROP, r"lacks \['epoch'\]"),
       ("epoch", "x", "its epoch is 'x', expected an int >= 0"),
       ("epoch", 2.5, "its epoch is 2.5"),
       ("epoch", True, "its epoch is True"),
       ("epoch", -2, "its epoch is -2"),
       ("epoch", 10**6, r"history\[.*holds 2 values, .*its epoch is 1000000"),
       ("epoch", 1, r"history\[.*holds 2 values, .*its epoch is 1\)"),
       ("history", 3, "its history is 3, expected a pmap"),
       ("history", lambda doc: _history(doc, "loss", DROP), "its history is pmap"),
       ("history", lambda doc: _history(doc, "loss", [0.5, 0.25]),
        r"its history\['loss'\] is \[0.5, 0.25\], expected a pvector"),
       ("history", lambda doc: _history(doc, "grad_norm", {"type": "pvector", "items": [1.0]}),
        r"its history\['grad_norm'\] holds 1 values"),
       ("history", lambda doc: _history(doc, "loss", {"type": "pvector", "items": [0.5, "x"]}),
        r"its history\['loss'\] is pvector.*expected numbers"),
       ("history", lambda doc: _history(doc, "param_norm", {"type": "pvector", "items": []}),
        r"its history\['param_norm'\] holds 0 values"),
       ("history", lambda doc: _history(doc, "events", 3), r"its history\['events'\] is 3"),
       # a monitored run's column dropped: fit went on, and an epoch later an IndexError
       ("history", lambda doc: _history(doc, "param_norm", DROP),
        r"its history lacks 'param_norm', expected the columns a monitored run"),
       ("history", lambda doc: {**_history(doc, "update_norm", DROP), "items": _set(
           _history(doc, "update_norm", DROP)["items"], "nonfinite_grads", DROP)},
        "its history lacks 'nonfinite_grads', 'update_norm'"),
       # a column name that is not a string: an AttributeError (startswith) in same_options
       ("history", lambda doc: _history(doc, 7, {"type": "pvector", "items": [1.0, 2.0]}),
        "its history has the key 7, expected column names that are strings"),
       # the other columns and the events were taken as they were: a later
       # format_history or diagnose failed on them
       ("history", lambda doc: _history(doc, "param_norm", {"type": "pvector",
                                                            "items": [1.0, "x"]}),
        r"its history\['param_norm'\] is pvector.*expected numbers"),
       ("history", lambda doc: _history(doc, "events", {"type": "pvector", "items": [5]}),
        r"its history\['events'\] holds 5, expected events that are maps"),
       ("best", "x", "its best is 'x', expected a number"),
       # an int beyond float64: an OverflowError at fit's first comparison with it
       ("best", 10**400, "its best is .*expected a number a float64 holds"),
       ("history", lambda doc: _history(doc, "loss", {"type": "pvector", "items": [0.5, 10**400]}),
        r"its history\['loss'\] is pvector.*expected numbers a float64 holds"),
       ("best", None, "its best is None"),
       ("since", 1000, "its since is 1000, expected an int from 0 to its epoch, 2"),
       ("since", -1, "its since is -1"),
       ("wait", -1, "its wait is -1, expected an int >= 0"),
       ("wait", 0.5, "its wait is 0.5"),
       ("rollbacks", "2", "its rollbacks is '2'"),
       ("rollbacks", False, "its rollbacks is False"),
       ("stopped", 1, "its stopped is 1, expected true or false"),
       ("stopped", "no", "its stopped is 'no'"),
       ("active", 3, "its active is 3, expected a tuple of strings"),
       ("active", _tuple("nan_loss", 1), r"its active is \('nan_loss', 1\)")]


IDS = [f"{n}-edit{i}" if callable(v) else f"{n}={v!r:.20}" for i, (n, v, _) in enumerate(BAD)]


@pytest.mark.parametrize("name,value,match", BAD, ids=IDS)
def test_bad_entries_are_value_errors_naming_file_and_entry(tmp_path, written, name, value,
                                                            match):
    value = value(written) if callable(value) else value
    doc = {**written, "tree": {**written["tree"],
                               "items": _set(written["tree"]["items"], name, value)}}
    path = tmp_path / NAME
    path.write_text(json.dumps(doc))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=NAME) as err:
        fit(4, checkpoint_dir=tmp_path, resume=tmp_path)
    assert err.match(match)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [NAME]


def test_an_unedited_round_trip_still_resumes(tmp_path, written):
    (tmp_path / NAME).write_text(json.dumps(written))
    assert fit(4, resume=tmp_path) == fit(4)


@pytest.mark.parametrize("wrote, resumed, match", [
    ({"monitor": False}, {}, "without its 'events'"),
    ({}, {"monitor": False}, "with its 'events'"),
    ({}, {"val_data": (XS, YS)}, "without its 'val_loss'"),
    ({"val_data": (XS, YS)}, {}, "with its 'val_loss'"),
    ({"metrics": {"m": line_loss}}, {}, r"with metrics \['m'\]"),
    ({}, {"metrics": {"m": line_loss}}, "without its 'm'")])
def test_resuming_with_other_options_is_an_error(tmp_path, wrote, resumed, match):
    fit(2, checkpoint_dir=tmp_path, **wrote)
    with pytest.raises(ValueError, match=match):
        fit(4, resume=tmp_path, **resumed)


def test_a_monitored_mlp_run_without_a_layer_column_is_refused(tmp_path):
    # the per-layer grad_norm.layers[i] columns: an IndexError an epoch after the resume
    import fmicrograd as fm

    model = fm.nn.MLP.init(1, [3, 1], key=fm.random.key(0))

    def run(epochs, **kw):
        return fm.train.fit(lambda m, b: fm.mean([(m((x,)) - y) ** 2 for x, y in zip(*b)]),
                            model, fm.optim.sgd(0.1), [(XS, YS)], epochs=epochs, **kw)

    run(2, checkpoint_dir=tmp_path)
    path = tmp_path / NAME
    doc = json.loads(path.read_text())
    items = dict(doc["tree"]["items"])
    assert "grad_norm.layers[1]" in dict(items["history"]["items"])
    doc["tree"]["items"] = _set(doc["tree"]["items"], "history",
                                _history(doc, "grad_norm.layers[1]", DROP))
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"lacks the monitor's 'grad_norm.layers\[1\]' column"):
        run(4, resume=tmp_path)
