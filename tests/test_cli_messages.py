"""What ``fmicrograd train`` says when something is wrong: a bad value is one
line and exit code 2, a failed run one line and exit code 1 (with the
traceback under FMICROGRAD_TRACEBACK=1), advice names flags and never what
the run uses already, ``--resume`` names only the options that differ, and
epochs are counted the same way in events and in what is printed."""

import io
import os
import re
import subprocess
import sys
import warnings

import pytest

import fmicrograd as fm
from fmicrograd.cli import build_parser, main
from fmicrograd.cli.advice import diagnose
from fmicrograd.cli.main import _as_flags

UNSTABLE = ("train", "--dataset", "moons", "--n", "30", "--lr", "50", "--steps", "6",
            "--on-instability", "raise")


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fmicrograd", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def call(*args):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def refused(args, capsys):
    """stderr of a command line that must exit 2 before training."""
    with pytest.raises(SystemExit) as info:
        main(list(args), out=io.StringIO())
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    return captured.err


# ---------------------------------------------------------------- 1. bad values
@pytest.mark.parametrize("args", [
    ["train", "--lr", "nan"], ["train", "--steps", "0"], ["train", "--n", "1e30"],
    ["train", "--save", "/nonexistent/dir/m.json"], ["train", "--resume", "/nonexistent"],
    ["train", "--resume"], ["train", "--hidden", "100000000000"], ["train", "--bogus"],
    ["train", "--dataset", "spirals"], [],
])
def test_a_bad_value_is_one_line_and_exit_2(args, capsys):
    # it was argparse's 11-line usage block, then the error
    err = refused(args, capsys)
    assert len(err.splitlines()) == 1 and err.endswith(" (see --help)\n"), err
    assert "usage:" not in err and "Traceback" not in err


def test_a_bad_value_in_a_subprocess_is_exactly_one_line():
    r = run("train", "--lr", "nan")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("fmicrograd train: error: argument --lr: expected a number > 0, got "
                        "'nan' (see --help)\n")


def test_help_keeps_its_usage_block():
    r = run("train", "--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: fmicrograd train [-h]")
    assert "--on-instability" in r.stdout and r.stderr == ""


# ---------------------------------------------------------------- 2. a failed run
def test_an_unstable_run_under_raise_is_one_line_of_cli_advice(monkeypatch):
    # it was 4 lines, and told a command-line user to call fm.train.diagnose(err.history)
    monkeypatch.delenv("FMICROGRAD_TRACEBACK", raising=False)
    code, out, err = call(*UNSTABLE)
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("fmicrograd: error: explosion at epoch 2: loss ")
    assert "--on-instability raise" in err and "advice: lower the learning rate 10x (--lr 5)" in err
    assert "--on-instability rollback" in err
    assert "fm.train" not in err and "err.history" not in err and "Traceback" not in err
    assert "explosion at epoch 2" in out  # as it happened, on stdout


def test_fmicrograd_traceback_shows_the_traceback_of_a_failed_run(monkeypatch):
    monkeypatch.setenv("FMICROGRAD_TRACEBACK", "1")
    with pytest.raises(fm.train.InstabilityError, match="epoch 2: explosion"):
        main(list(UNSTABLE), out=io.StringIO(), err=io.StringIO())
    r = run(*UNSTABLE, env={**os.environ, "FMICROGRAD_TRACEBACK": "1"})
    assert r.returncode == 1 and r.stderr.startswith("Traceback (most recent call last):")
    assert "InstabilityError: fit: epoch 2: explosion" in r.stderr


def test_fmicrograd_traceback_shows_where_saving_failed(monkeypatch, tmp_path):
    def save(path, tree):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fm.io, "save", save)
    args = ("train", "--dataset", "xor", "--steps", "2", "--quiet", "--save",
            str(tmp_path / "m.json"))
    monkeypatch.delenv("FMICROGRAD_TRACEBACK", raising=False)
    code, _, err = call(*args)
    assert code == 1 and err == ("fmicrograd: error: cannot save the model: [Errno 28] No space "
                                 "left on device\n")
    monkeypatch.setenv("FMICROGRAD_TRACEBACK", "1")
    with pytest.raises(OSError, match="No space left"):
        call(*args)


# ---------------------------------------------------------------- 3. --resume
@pytest.mark.parametrize("extra", [("--lr", "0.5"), ("--steps", "4", "--lr", "0.5")])
def test_resume_names_only_the_options_that_differ(extra, tmp_path, capsys):
    # it said "a run with lr None (now 0.5), steps 4 (now None)": --steps did not change
    base = ("train", "--dataset", "xor", "--hidden", "4", "--quiet", "--checkpoint-dir",
            str(tmp_path))
    assert call(*base, "--steps", "4")[0] == 0
    err = refused([*base, "--resume", *extra], capsys)
    assert len(err.splitlines()) == 1 and "None" not in err
    assert ("are of a run with other options: --lr not given (sgd's default schedule 1.0 - "
            "0.9*k/steps with --steps 4), now 0.5. Resume with the same options") in err
    assert "--steps 4," not in err and "now 4" not in err


def test_resume_takes_a_default_given_explicitly_as_the_same_option(tmp_path, capsys):
    base = ("train", "--dataset", "xor", "--hidden", "4", "--steps", "3", "--quiet",
            "--optimizer", "adam", "--checkpoint-dir", str(tmp_path))
    assert call(*base, "--steps", "2")[0] == 0
    # adam's default learning rate, and a noise that xor does not use
    assert call(*base, "--resume", "--lr", "0.05", "--noise", "0.3")[0] == 0
    err = refused([*base, "--resume", "--lr", "0.1", "--batch-size", "2"], capsys)
    assert "--batch-size not given (the whole dataset), now 2; --lr not given (adam's default " \
           "0.05), now 0.1." in err


# ---------------------------------------------------------------- 4. advice
def test_advice_never_suggests_the_optimizer_in_use():
    # `train --dataset circles --optimizer adam` advised "... or adam"
    # (at --lr 0.1 for 60 steps the oscillation it showed was a converged run's noise, at
    # a loss below 0.1x the first epoch's, which the detector no longer takes)
    code, out, _ = call("train", "--dataset", "circles", "--n", "30", "--optimizer", "adam",
                        "--lr", "0.15", "--steps", "100", "--jit", "--quiet")
    assert code == 0 and "- oscillation (epoch" in out
    advice = out.split("advice: ", 1)[1].splitlines()[0]
    assert advice == "lower the learning rate 10x (--lr 0.015)"
    assert "adam" not in out.split("diagnosis: ", 1)[1]


def args_of(*flags):
    return build_parser().parse_args(["train", *flags])


OSCILLATION = {"loss": [1.0], "events": [{"epoch": 0, "kind": "oscillation", "message": "m"}]}
EXPLOSION = {"loss": [1.0], "events": [{"epoch": 0, "kind": "explosion", "message": "m",
                                        "action": "rollback", "lr_scale": 0.1}]}


@pytest.mark.parametrize("flags, history, advice", [
    (("--lr", "0.3"), OSCILLATION, "lower the learning rate 10x (--lr 0.03); leave out --lr: "
     "sgd's default schedule decays it from 1.0 to 0.1; use --optimizer adam"),
    ((), OSCILLATION, "lower the learning rate 10x (--lr 0.1, a constant rate in place of the "
     "default schedule); use --optimizer adam"),  # the default schedule decays already
    (("--optimizer", "adam"), OSCILLATION, "lower the learning rate 10x (--lr 0.005)"),
    (("--lr", "50", "--on-instability", "rollback"), EXPLOSION,
     "lower the learning rate 10x (--lr 5)"),  # not "use --on-instability rollback"
])
def test_the_command_lines_advice_names_flags_not_in_use(flags, history, advice):
    assert diagnose(args_of(*flags), history).findings[0]["advice"] == advice


def test_diagnose_leaves_out_what_is_in_use():
    osc = fm.train.diagnose(OSCILLATION).findings[0]["advice"]
    assert "adam" in osc and "schedule" in osc
    adam = fm.train.diagnose(OSCILLATION, using={"adam"}).findings[0]["advice"]
    assert "adam" not in adam and "schedule" in adam
    # rollbacks are read from the events: no "use on_instability='rollback'" after them
    assert "rollback" not in fm.train.diagnose(EXPLOSION).findings[0]["advice"]
    worded = fm.train.diagnose(OSCILLATION, say={"adam": "use --optimizer adam",
                                                  "schedule": None})
    assert worded.findings[0]["advice"] == "lower the learning rate 2-10x; use --optimizer adam"


# ---------------------------------------------------------------- 5. epochs
def nan_at_the_second_epoch(on_instability):
    loss = lambda p, batch: fm.sqrt(p["w"])  # noqa: E731  (w goes negative after one step)
    return fm.train.fit(loss, {"w": 1.0}, fm.optim.sgd(2.0), [None], epochs=4,
                        on_instability=on_instability)


def test_events_are_history_indices_and_messages_say_so():
    # history["events"][0]["epoch"] was 1 while the warning said "epoch 2", with nothing to
    # tell which counted from where
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, history = nan_at_the_second_epoch("warn")
    (event,) = history["events"]
    assert event["epoch"] == 1 and history["loss"][0] == 1.0  # 0-based, as the contract's lists
    assert [str(w.message) for w in caught] == [
        f"fit: epoch 2: nan: {event['message']} (history index 1, its \"epoch\")"]
    with pytest.raises(fm.train.InstabilityError) as info:
        nan_at_the_second_epoch("raise")
    assert str(info.value).startswith(f"fit: epoch 2: nan: {event['message']} (history index "
                                      f"1, its \"epoch\"; fm.train.diagnose(err.history)")
    assert info.value.events[0]["epoch"] == 1
    assert fm.train.diagnose(history).findings[0]["epochs"] == (1,)
    assert "- nan (epoch 2): " in str(fm.train.diagnose(history))


def test_quiet_prints_no_event_lines_and_errors_from_fit_name_the_flags(tmp_path):
    # --quiet printed every detector's event line; fit's errors named its own parameters
    # (epochs=, checkpoint_dir) where the command line has flags (an outside probe)
    code, out, err = call("train", "--lr", "1e6", "--on-instability", "rollback", "--steps",
                          "30", "--quiet")
    assert code == 0 and out.startswith("final training accuracy")
    assert not re.search(r"^\w+ at epoch \d+: ", out, re.M)  # (an event line)
    assert "diagnosis:" in out and "3 rollback(s)" in out
    folder = str(tmp_path / "ck")
    assert call("train", "--steps", "4", "--lr", "0.3", "--checkpoint-dir", folder,
                "--quiet")[0] == 0
    code, _, err = call("train", "--steps", "2", "--lr", "0.3", "--checkpoint-dir", folder,
                        "--resume")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("fmicrograd train: error: the checkpoint resumed from has 4 epochs "
                          "done, more than --steps 2 (--steps counts the whole run); pass "
                          "--steps >= 4, or a new --checkpoint-dir")


def test_fit_messages_keep_their_words_on_the_command_line(tmp_path):
    # "fit: " and "checkpoint_dir=" were replaced anywhere: "fm.train.m.json is not a training
    # checkpoint ... resume from the directory fit(--checkpoint-dir ...) wrote", and
    # "fm.train.the checkpoint P3/epoch-000009.json cannot be read" (an outside probe)
    args = ("train", "--dataset", "xor", "--hidden", "4", "--optimizer", "adam", "--quiet")
    folder = tmp_path / "P3"
    assert call(*args, "--steps", "2", "--checkpoint-dir", str(folder))[0] == 0
    fm.io.save(folder / "m.json", fm.nn.MLP.init(2, [1], key=fm.random.key(0)))
    code, _, err = call(*args, "--steps", "2", "--resume", str(folder / "m.json"))
    assert code == 2 and err == (
        f"fmicrograd train: error: {folder / 'm.json'} is not a training checkpoint (an fm.io "
        'file without "checkpoint": "fmicrograd-checkpoint"); resume from the directory a run '
        "with --checkpoint-dir wrote\n")
    (folder / "epoch-000009.json").mkdir()
    code, _, err = call(*args, "--steps", "12", "--checkpoint-dir", str(folder), "--resume")
    assert code == 2 and err.startswith(
        f"fmicrograd train: error: the checkpoint {folder / 'epoch-000009.json'} cannot be read "
        "(IsADirectoryError: fm.io.load: ")
    assert err.endswith("; remove it, or resume from a directory that a run with "
                        "--checkpoint-dir wrote\n")
    assert _as_flags("fm.train.fit: resume='/r/epochs=3/resume=' holds no checkpoint; pass "
                     "epochs=3 or resume=checkpoint_dir") == (
        "--resume '/r/epochs=3/resume=' holds no checkpoint; pass --steps 3 or --resume (alone)")
