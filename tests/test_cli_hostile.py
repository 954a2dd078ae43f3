"""The command line against hostile input: bad values exit 2 before training,
unwritable outputs are found first, a closed pipe and Ctrl-C at any moment end
quietly (no traceback)."""

import contextlib
import io
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fm.__file__)))


@pytest.fixture
def no_training(monkeypatch):
    def fit(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(fm.train, "fit", fit)


def exits_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", *args])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("fmicrograd train: error: argument --")
    assert "Traceback" not in err
    return errors[0]


@pytest.mark.parametrize("args, message", [
    (["--lr", "inf"], "finite"), (["--lr", "nan"], "> 0"), (["--lr=-inf"], "> 0"),
    (["--lr", "1e999"], "finite"), (["--noise", "nan"], ">= 0"), (["--noise", "inf"], "finite"),
    (["--noise", "Infinity"], "finite"), (["--l2", "inf"], "finite"), (["--l2", "nan"], ">= 0"),
    (["--l2", "-inf"], "expected one argument"), (["--optimizer", "adam", "--lr", "inf"], "finite"),
    (["--noise", "1e300"], "1e\\+300 is too large"), (["--lr", "1e300"], "at most 1e\\+06"),
    (["--l2", "1e7"], "--l2: 1e\\+07 is too large"),
])
def test_non_finite_hyperparameters_exit_2(args, message, capsys, no_training):
    assert re.search(message, exits_2(args, capsys))


@pytest.mark.parametrize("args, message", [
    (["--n", "1e30"], "expected an int >= 2"),
    (["--n", "100000000000"], "--n: 100,000,000,000 is too large \\(at most 1,000,000\\)"),
    (["--n", "-5"], ">= 2"), (["--n", "0"], ">= 2"),
    (["--hidden", "100000000000"], "2-100000000000-1 has 4e\\+11 parameters"),
    (["--hidden", "16,5000000"], "parameters, at most 1,000,000"),
    (["--hidden", "16,-1"], "positive layer sizes"), (["--hidden", "16,,16"], "positive"),
    (["--hidden", ""], "positive layer sizes"), (["--hidden", "1e3"], "positive layer sizes"),
    (["--steps", "100000000000"], "too large"), (["--steps", "0"], ">= 1"),
    (["--steps", "-1"], ">= 1"), (["--steps=-2"], ">= 1"),
    (["--batch-size", "0"], ">= 1"), (["--batch-size", "10000000000"], "too large"),
    (["--log-every", "0"], ">= 1"), (["--seed", "1.5"], "invalid int"),
    (["--lr", "0"], "> 0"),
])
def test_absurd_sizes_exit_2(args, message, capsys, no_training):
    assert re.search(message, exits_2(args, capsys))


def test_unwritable_outputs_are_found_before_training(tmp_path, capsys, no_training):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    (tmp_path / "dev.json").symlink_to("/dev/null")
    (tmp_path / "file").write_text("")
    cases = [
        (["--save", str(tmp_path / "missing" / "m.json")], "--save: cannot write .*no such dir"),
        (["--plot", "/proc/boundary.png"], "--plot: cannot write '/proc/boundary.png'"),
        (["--save", str(fifo)], "is a FIFO, not a regular file"),
        (["--save", str(tmp_path / "dev.json")], "is a character device"),
        (["--loss-plot", str(tmp_path / "file" / "l.png")], "not a directory"),
        (["--plot", str(tmp_path)], "it is a directory"),
        (["--save", ""], "the path is empty"),
        (["--save", str(tmp_path / "a"), "--loss-plot", str(tmp_path / "a")],
         "--loss-plot: .* is also the --save file"),
    ]
    for args, message in cases:
        assert re.search(message, exits_2(args, capsys)), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.json", "fifo.json", "file"]


def test_an_unusable_checkpoint_dir_is_found_before_training(tmp_path, capsys, no_training):
    (tmp_path / "file").write_text("")
    cases = [(str(tmp_path / "file"), "it is not a directory"),
             (str(tmp_path / "file" / "runs"), "a part of the path is not a directory"),
             ("/proc/runs", "cannot write checkpoints to '/proc/runs'"),
             ("/dev/null", "it is not a directory"), ("", "the path is empty")]
    for path, message in cases:
        assert message in exits_2(["--checkpoint-dir", path], capsys), path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_new_checkpoint_dir_is_fine(tmp_path):
    code = main(["train", "--dataset", "xor", "--steps", "2", "--quiet", "--checkpoint-dir",
                 str(tmp_path / "runs" / "a")], out=io.StringIO(), err=io.StringIO())
    assert code == 0 and (tmp_path / "runs" / "a" / "epoch-000002.json").is_file()


def command(*args):
    return [sys.executable, "-m", "fmicrograd", *args]


def default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # even if the test runner ignores it


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen(command("train", "--dataset", "xor", "--steps", "300",
                                    "--log-every", "1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # what `| head -1` reads, then it closes the pipe
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert first.startswith("fmicrograd ") and err == ""


def test_ctrl_c_during_training_exits_130_quietly():
    proc = subprocess.Popen(command("train", "--dataset", "moons", "--steps", "1000",
                                    "--log-every", "1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    while not proc.stdout.readline().startswith("epoch"):
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err == "\nfmicrograd: interrupted\n"
    assert "final training accuracy" not in out


# A sitecustomize that sends this process SIGINT at the moment a given module
# starts importing (twice with "double": a second Ctrl-C while cleaning up).
HOOK = textwrap.dedent("""
    import os, signal, sys
    AT, DOUBLE = os.environ["FM_SIGINT_AT"], os.environ.get("FM_SIGINT_DOUBLE")

    class Interrupt:
        def find_spec(self, name, path=None, target=None):
            if name == AT:
                sys.meta_path.remove(self)
                sys.stderr.write(f"hook: SIGINT at {name}\\n")
                sys.stderr.flush()
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                finally:
                    if DOUBLE:
                        os.kill(os.getpid(), signal.SIGINT)

    sys.meta_path.insert(0, Interrupt())
""")


@pytest.mark.parametrize("at, double, extra", [
    ("fmicrograd.core.expr", False, []),  # while the package imports
    ("fmicrograd.cli", False, []),  # after the package, before main
    ("fmicrograd.datasets", False, []),  # inside main, before training
    ("fmicrograd.datasets", True, []),  # a second Ctrl-C while cleaning up
    ("fmicrograd.plot", False, ["--plot", "b.png", "--save", "m.json"]),  # writing outputs
])
def test_ctrl_c_at_any_moment_exits_130_quietly(at, double, extra, tmp_path):
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "hook"), ROOT]),
           "FM_SIGINT_AT": at, **({"FM_SIGINT_DOUBLE": "1"} if double else {})}
    r = subprocess.run(command("train", "--dataset", "xor", "--steps", "3", *extra),
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
                       preexec_fn=default_sigint)
    assert r.returncode == 130, r.stderr
    assert r.stderr == f"hook: SIGINT at {at}\n\nfmicrograd: interrupted\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == \
        (["hook", "m.json"] if "--save" in extra else ["hook"])  # no temporary files


def test_ctrl_c_while_the_console_script_starts(tmp_path):
    exe = shutil.which("fmicrograd", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    assert exe is not None, "the fmicrograd console script is not installed (pip install -e .)"
    (tmp_path / "sitecustomize.py").write_text(HOOK)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT]),
           "FM_SIGINT_AT": "fmicrograd.core.expr"}
    r = subprocess.run([exe, "info"], capture_output=True, text=True, env=env, timeout=120,
                       preexec_fn=default_sigint)
    assert r.returncode == 130 and r.stderr.endswith("\nfmicrograd: interrupted\n"), r.stderr
    assert "Traceback" not in r.stderr


def test_an_unexpected_error_is_one_line(monkeypatch, capsys):
    def fit(*args, **kwargs):
        raise OverflowError("math range error")

    monkeypatch.setattr(fm.train, "fit", fit)
    monkeypatch.delenv("FMICROGRAD_TRACEBACK", raising=False)
    assert main(["train", "--dataset", "xor"]) == 1
    err = capsys.readouterr().err
    assert err == ("fmicrograd: error: OverflowError: math range error (set "
                   "FMICROGRAD_TRACEBACK=1 to see where)\n")
    monkeypatch.setenv("FMICROGRAD_TRACEBACK", "1")
    with pytest.raises(OverflowError):
        main(["train", "--dataset", "xor"])


def test_library_users_keep_their_sigint_handler():
    code = ("import signal, fmicrograd as fm; from fmicrograd.cli import main; "
            "main(['train', '--dataset', 'xor', '--steps', '1', '--quiet']); "
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, preexec_fn=default_sigint)
    assert r.stdout.splitlines()[-1] == "True", r.stderr


# ---------------------------------------------------------------- every flag, fuzzed
class Started(KeyboardInterrupt):
    """Raised by the stand-in for fit: the arguments got through to training."""


ODD = ["inf", "-inf", "nan", "NaN", "1e999", "1e30", "-0", "0", "", "abc", "1_000", " 5",
       "0x10", "\u0663", "1e-320", "-1", "2", "3.5", "100000000000", "9" * 30, "16,16", "4,,4",
       "1e300", "2e6", "1e7"]
# valid sizes stay small (fast to build), invalid ones are huge
VALUES = st.one_of(st.sampled_from(ODD), st.sampled_from(ODD), st.integers(-10, 40).map(str),
                   st.floats(allow_nan=True).map(repr),
                   st.integers().filter(lambda v: abs(v) < 1000 or abs(v) > 10 ** 7).map(str))
BOUNDS = {"--lr": 1e6, "--l2": 1e6, "--noise": 1e6, "--n": 1e6, "--steps": 1e7,
          "--batch-size": 1e6}
FLAGS = ["--n", "--noise", "--seed", "--hidden", "--lr", "--l2", "--steps", "--batch-size",
         "--log-every", "--activation", "--loss", "--optimizer", "--dataset"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FLAGS), VALUES), max_size=4))
@example(pairs=[("--noise", "1e30"), ("--noise", "-0")])  # argparse: the last value counts
def test_any_flag_values_exit_2_or_reach_training_with_sane_values(pairs):
    args = ["train", *(f"{flag}={value}" for flag, value in pairs)]
    seen = {}

    def fit(loss_fn, model, optimizer, *, epochs, **kwargs):
        seen.update(params=fm.nn.count_params(model), epochs=epochs)
        raise Started

    err = io.StringIO()
    with mock.patch.object(fm.train, "fit", fit), contextlib.redirect_stderr(err):
        try:
            code = main(args, out=io.StringIO(), err=err)
        except SystemExit as e:
            code = e.code
    if code == 2:
        assert len([ln for ln in err.getvalue().splitlines() if "error:" in ln]) == 1
    else:
        assert code == 130 and err.getvalue() == "\nfmicrograd: interrupted\n", err.getvalue()
        assert seen["params"] <= 1_000_000 and 1 <= seen["epochs"] <= 10_000_000
        for flag, value in dict(pairs).items():  # a repeated flag: the last value counts
            if flag in BOUNDS:
                assert math.isfinite(float(value)) and 0 <= float(value) <= BOUNDS[flag]


@pytest.mark.parametrize("name", ["cli-run.json", "epoch-000003.json"])
def test_an_output_among_the_checkpoints_is_refused(name, tmp_path, capsys, no_training):
    # --save replaced the run file (or a checkpoint), and a later --resume failed with a
    # message of several KB (an outside probe)
    folder = tmp_path / "ck"
    line = exits_2(["--checkpoint-dir", str(folder), "--save", str(folder / name)], capsys)
    assert "is a file of the --checkpoint-dir (a checkpoint, or cli-run.json that --resume " \
        "reads); write it elsewhere" in line
    exits_2(["--checkpoint-dir", str(folder), "--plot", str(folder / "epoch-000001.json")],
            capsys)


@pytest.mark.parametrize("flag", ["--checkpoint-every", "--checkpoint-keep"])
def test_checkpoint_options_without_a_checkpoint_dir_are_refused(flag, capsys, no_training):
    assert "it needs --checkpoint-dir" in exits_2([flag, "2"], capsys)  # (silently ignored)


def test_paths_in_messages_keep_their_case(tmp_path, capsys, no_training):
    # the reason was lowercased whole, paths included ("ro/model.json"), and said
    # "cannot write" twice
    line = exits_2(["--save", str(tmp_path / "Missing" / "Model.json")], capsys)
    assert "Missing" in line and line.count("cannot write") == 1
    line = exits_2(["--save", "/proc/Foo.json"], capsys)
    assert "'/proc/Foo.json': its directory /proc takes no new file" in line


def test_a_failed_command_leaves_no_run_file_that_a_fresh_run_keeps(tmp_path, capsys):
    # a run refused after writing cli-run.json left it; the next fresh run kept the old file,
    # and a --resume of that run was refused for options it had not changed
    folder, empty = tmp_path / "ck", tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--steps", "2", "--quiet", "--checkpoint-dir", str(folder),
                 "--resume", str(empty)]) != 0
    assert "holds no checkpoint" in capsys.readouterr().err
    assert main(["train", "--steps", "2", "--quiet", "--lr", "0.5", "--checkpoint-dir",
                 str(folder)]) == 0
    assert main(["train", "--steps", "3", "--quiet", "--lr", "0.5", "--checkpoint-dir",
                 str(folder), "--resume"]) == 0
    assert "error" not in capsys.readouterr().err


def test_an_output_in_a_checkpoint_dir_made_by_the_run_is_accepted(tmp_path):
    # the directory does not exist before the run: --save into it said "no such directory"
    folder = tmp_path / "new"
    assert main(["train", "--steps", "2", "--quiet", "--checkpoint-dir", str(folder),
                 "--save", str(folder / "model.json")]) == 0
    assert (folder / "model.json").exists() and (folder / "epoch-000002.json").exists()


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_run_file_that_is_not_a_regular_file_is_refused_before_training(kind, tmp_path,
                                                                           capsys, no_training):
    # a directory named cli-run.json was a raw IsADirectoryError (exit 1), a FIFO was replaced
    folder = tmp_path / "ck"
    folder.mkdir()
    (folder / "cli-run.json").mkdir() if kind == "directory" else os.mkfifo(folder / "cli-run.json")
    line = exits_2(["--checkpoint-dir", str(folder)], capsys)
    assert f"argument --checkpoint-dir: cannot write {str(folder / 'cli-run.json')!r}, the " \
        "run's options that --resume reads: " in line
    assert os.listdir(folder) == ["cli-run.json"]


def test_the_run_file_is_written_only_where_it_belongs(tmp_path):
    # it was written to a fixed cli-run.json.part: a symlink of that name wrote through
    # to the file it points to (a FIFO of that name hung the run)
    folder, outside = tmp_path / "ck", tmp_path / "outside.txt"
    folder.mkdir()
    outside.write_text("mine")
    os.symlink(outside, folder / "cli-run.json.part")
    assert main(["train", "--dataset", "xor", "--steps", "2", "--quiet", "--checkpoint-dir",
                 str(folder)], out=io.StringIO()) == 0
    assert outside.read_text() == "mine" and (folder / "cli-run.json.part").is_symlink()
    assert '"dataset": "xor"' in (folder / "cli-run.json").read_text()
    assert not [p for p in os.listdir(folder) if p.endswith(".tmp")]
