"""One checkpoint directory, one run: a new run (or a run resumed from
elsewhere) never writes among another run's checkpoints, a resume with another
model is refused, and the refusals leave the directory as it was."""

import io
import os

import pytest
from test_checkpoint import XS, YS, fit, line_loss

import fmicrograd as fm
from fmicrograd.cli import main


def snapshot(directory):
    """Every file under ``directory`` with its bytes and modification time."""
    return {p.relative_to(directory): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_a_new_run_into_a_directory_of_checkpoints_is_refused(tmp_path):
    whole = fit(7)
    fit(3, checkpoint_dir=tmp_path)  # the run to continue later
    before = snapshot(tmp_path)
    with pytest.raises(ValueError) as err:
        fit(2, checkpoint_dir=tmp_path)  # a new run (no resume) into the same directory
    message = str(err.value)
    assert f"checkpoint_dir={str(tmp_path)!r} already holds the checkpoints" in message
    assert "epoch-000003.json" in message and f"resume={str(tmp_path)!r}" in message
    assert "new or empty checkpoint_dir" in message and "delete" in message
    with pytest.raises(ValueError, match="already holds the checkpoints"):
        fit(0, checkpoint_dir=tmp_path)  # even a run of no epoch would write epoch 0
    with pytest.raises(ValueError, match="already holds the checkpoints"):  # another model
        fm.train.fit(line_loss, {"w": 1.0}, fm.optim.sgd(0.1), [(XS, YS)], epochs=2,
                     checkpoint_dir=tmp_path)
    assert snapshot(tmp_path) == before
    # the run the directory holds still resumes to the uninterrupted result
    assert fit(7, checkpoint_dir=tmp_path, resume=tmp_path) == whole


def test_a_directory_without_checkpoints_takes_a_new_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "epoch-7.json").write_text("{}")  # not a checkpoint's name (6 digits)
    assert fit(2, checkpoint_dir=tmp_path) == fit(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch-000000.json", "epoch-000001.json", "epoch-000002.json", "epoch-7.json",
        "notes.txt"]


def test_a_run_resumed_from_elsewhere_writes_only_where_no_run_is(tmp_path):
    whole = fit(6)
    first, other, fresh = tmp_path / "first", tmp_path / "other", tmp_path / "fresh"
    fit(2, checkpoint_dir=first)
    fit(1, checkpoint_dir=other)
    before = snapshot(tmp_path)
    for resume in (first, first / "epoch-000002.json"):
        with pytest.raises(ValueError) as err:
            fit(6, checkpoint_dir=other, resume=resume)
        message = str(err.value)
        assert f"checkpoint_dir={str(other)!r} holds the checkpoints of another run" in message
        assert f"resume={str(resume)!r}" in message and "epoch-000001.json" in message
        assert f"checkpoint_dir={str(first)!r}" in message and "new or empty" in message
    assert snapshot(tmp_path) == before
    assert fit(6, checkpoint_dir=fresh, resume=first) == whole  # a new directory is fine
    assert sorted(p.name for p in fresh.iterdir()) == [f"epoch-00000{k}.json" for k in (3, 4, 5, 6)]


def test_a_resume_from_a_file_of_the_directory_may_write_there(tmp_path):
    whole = fit(5)
    fit(4, checkpoint_dir=tmp_path, checkpoint_every=2)
    (tmp_path / "epoch-000004.json").unlink()
    assert fit(5, checkpoint_dir=tmp_path, resume=tmp_path / "epoch-000002.json") == whole


def test_the_same_directory_under_another_name_is_the_same_run(tmp_path):
    whole = fit(5)
    fit(2, checkpoint_dir=tmp_path / "run")
    os.symlink(tmp_path / "run", tmp_path / "link")
    assert fit(5, checkpoint_dir=tmp_path / "link", resume=tmp_path / "run") == whole


def test_a_resume_with_another_model_is_refused(tmp_path):
    xs, ys = fm.datasets.xor()

    def hinge(m, batch):
        return fm.losses.hinge([m(x) for x in batch[0]], batch[1])

    def train(model, epochs, **kw):
        return fm.train.fit(hinge, model, fm.optim.sgd(0.1), [(xs, ys)], epochs=epochs,
                            monitor=False, **kw)

    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
    whole = train(model, 4)
    train(model, 2, checkpoint_dir=tmp_path)
    before = snapshot(tmp_path)
    others = [(fm.nn.MLP.init(2, [5, 1], key=fm.random.key(0)), "Layer of 5 children"),
              (fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0), activation="tanh"), "Neuron"),
              (fm.nn.MLP.init(2, [4, 2, 1], key=fm.random.key(0)), "MLP of 3 children")]
    for other, difference in others:
        with pytest.raises(ValueError, match="does not belong to this run: its params") as err:
            train(other, 4, checkpoint_dir=tmp_path, resume=tmp_path)
        assert "epoch-000002.json" in str(err.value) and difference in str(err.value)
        assert "start a new checkpoint_dir" in str(err.value)
    assert snapshot(tmp_path) == before
    # the same structure with other values resumes: the parameters come from the checkpoint
    again = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(9))
    assert train(again, 4, checkpoint_dir=tmp_path, resume=tmp_path) == whole


# ---------------------------------------------------------------- the command line
ARGS = ("train", "--dataset", "xor", "--steps", "4", "--quiet", "--optimizer", "adam")


def call(*args):
    out, err = io.StringIO(), io.StringIO()
    code = main([*ARGS, *args], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def refused(args, capsys):
    with pytest.raises(SystemExit) as info:
        main([*ARGS, *args])
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    assert captured.err.splitlines()[-1].startswith("fmicrograd train: error: argument "
                                                     "--checkpoint-dir: ")
    return captured.err.splitlines()[-1]


def test_the_command_line_refuses_to_mix_runs_before_training(tmp_path, capsys, monkeypatch):
    ck, other = str(tmp_path / "ck"), str(tmp_path / "other")
    code, whole, _ = call()
    assert call("--steps", "2", "--checkpoint-dir", ck)[0] == 0
    assert call("--steps", "1", "--checkpoint-dir", other)[0] == 0
    before = snapshot(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(fm.train, "fit", lambda *a, **k: pytest.fail("training started"))
        line = refused(["--checkpoint-dir", ck], capsys)
        assert f"{ck!r} already holds the checkpoints of an earlier run" in line
        assert "epoch-000002.json" in line and "add --resume" in line and "new or empty" in line
        line = refused(["--checkpoint-dir", other, "--resume", ck], capsys)
        assert f"{other!r} holds the checkpoints of another run" in line
        assert f"--resume {ck!r}" in line and "new or empty --checkpoint-dir" in line
    assert snapshot(tmp_path) == before
    code, resumed, err = call("--checkpoint-dir", ck, "--resume")
    assert code == 0 and resumed == whole and err == ""


def test_a_resume_from_an_older_checkpoint_of_the_directory_is_refused(tmp_path):
    # it overwrote epoch 2 with a new branch and kept the old run's epochs 3 and 4, so
    # that the next resume from the directory continued the old run (an outside probe)
    fit(4, checkpoint_dir=tmp_path)
    before = snapshot(tmp_path)
    older = tmp_path / "epoch-000001.json"
    with pytest.raises(ValueError) as err:
        fit(2, checkpoint_dir=tmp_path, resume=older)
    message = str(err.value)
    assert f"resume={str(older)!r} is not the latest checkpoint" in message
    assert "epoch-000002.json, epoch-000003.json, epoch-000004.json after it" in message
    assert "another checkpoint_dir" in message and "remove the later checkpoints" in message
    assert snapshot(tmp_path) == before
    other = tmp_path / "other"
    assert fit(5, checkpoint_dir=other, resume=older) == fit(5)  # elsewhere: fine
    latest = tmp_path / "epoch-000004.json"
    assert fit(5, checkpoint_dir=tmp_path, resume=latest) == fit(5)  # the latest: fine
