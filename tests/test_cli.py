"""The command line, in-process (fast checks) and as ``python -m fmicrograd``
in a subprocess (what a user runs)."""

import io
import os
import re
import shutil
import subprocess
import sys

import pytest

import fmicrograd as fm
from fmicrograd.cli import accuracy, main

PNG = b"\x89PNG\r\n\x1a\n"
FINAL = re.compile(r"final training accuracy (\d+\.\d)% \((\d+)/(\d+) points\), loss (\S+?),?\s")


def run(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "fmicrograd", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


def call(*args, err=None):
    out = io.StringIO()
    code = main(list(args), out=out, err=err if err is not None else io.StringIO())
    return code, out.getvalue()


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_default_run_trains_the_micrograd_demo_to_100_percent(tmp_path):
    r = run("train", "--dataset", "moons", "--plot", "moons.png", "--save", "model.json",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "moons (100 points), MLP 2-16-16-1 relu (337 parameters), hinge loss + 0.0001 L2, " \
           "sgd lr 1.0 - 0.9*k/100, 100 epochs" in r.stdout
    assert "final training accuracy 100.0% (100/100 points)" in r.stdout
    model = fm.io.load(tmp_path / "model.json")
    assert type(model) is fm.nn.MLP and model.nouts == (16, 16, 1)
    assert accuracy(model, fm.datasets.moons(100, 0.1, seed=0)) == 1.0
    assert (tmp_path / "moons.png").read_bytes()[:8] == PNG


def test_short_run_writes_model_and_pictures(tmp_path):
    r = run("train", "--dataset", "circles", "--n", "30", "--hidden", "4", "--steps", "4",
            "--seed", "3", "--save", str(tmp_path / "m.json"), "--plot", str(tmp_path / "b.png"),
            "--loss-plot", str(tmp_path / "l.png"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    lines = r.stdout.splitlines()
    assert [ln.split()[1] for ln in lines if ln.startswith("epoch")] == ["1/4", "4/4"]
    acc, right, total, _ = FINAL.search(r.stdout).groups()
    model = fm.io.load(tmp_path / "m.json")
    assert model.nouts == (4, 1)
    data = fm.datasets.circles(30, 0.05, seed=3)
    assert round(accuracy(model, data) * 30) == int(right) and total == "30"
    assert f"{100 * accuracy(model, data):.1f}" == acc
    for png in ("b.png", "l.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "l.png", "m.json"]


def test_help():
    r = run("--help")
    assert r.returncode == 0 and "train" in r.stdout and "info" in r.stdout
    r = run("train", "--help")
    assert r.returncode == 0
    for flag in ("--dataset", "--hidden", "--steps", "--lr", "--seed", "--save", "--plot",
                 "--loss-plot", "--optimizer", "--activation", "--noise", "--n", "--quiet"):
        assert flag in r.stdout
    assert "1.0 - 0.9*k/steps" in r.stdout and "(default: 100)" in r.stdout


def test_console_script():
    exe = shutil.which("fmicrograd", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    assert exe is not None, "the fmicrograd console script is not installed (pip install -e .)"
    r = subprocess.run([exe, "train", "--dataset", "xor", "--steps", "2", "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and FINAL.search(r.stdout)


@pytest.mark.parametrize("args, message", [
    (["train", "--dataset", "spirals"], "invalid choice: 'spirals'"),
    (["train", "--hidden", "16,x"], "comma-separated positive layer sizes"),
    (["train", "--hidden", "0"], "comma-separated positive layer sizes"),
    (["train", "--steps", "-3"], "expected an int >= 1"),
    (["train", "--lr", "fast"], "expected a number > 0"),
    (["train", "--n", "1"], "expected an int >= 2"),
    (["train", "--save", "no/such/dir/m.json"], "--save: cannot write .* no such directory"),
    (["train", "--plot", "."], "--plot: cannot write '\\.': it is a directory"),
    (["train", "--loss-plot", "curve.xyz"], "--loss-plot: cannot write 'curve.xyz': matplotlib "
                                            "has no '.xyz' format"),
    (["train", "--noise", "-0.1"], "expected a number >= 0"),
    (["train", "--optimizer", "lbfgs"], "invalid choice"),
    (["train", "--bogus"], "unrecognized arguments"),
    ([], "required: COMMAND"),
])
def test_bad_arguments_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_bad_arguments_exit_2_in_a_subprocess():
    # one line, no usage block (the contract's "one-line message"; --help shows the usage)
    r = run("train", "--steps", "zero")
    assert r.returncode == 2 and r.stderr == (
        "fmicrograd train: error: argument --steps: expected an int >= 1, got 'zero' "
        "(see --help)\n")


def test_missing_matplotlib_still_saves_the_model(tmp_path):
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    r = run("train", "--dataset", "xor", "--steps", "3", "--save", str(tmp_path / "m.json"),
            "--plot", str(tmp_path / "b.png"), env=env)
    assert r.returncode == 1
    assert "pip install 'fmicrograd[plot]'" in r.stderr and "model was saved" in r.stderr
    assert type(fm.io.load(tmp_path / "m.json")) is fm.nn.MLP
    assert not (tmp_path / "b.png").exists()


def test_epoch_lines_quiet_and_determinism():
    code, out = call("train", "--dataset", "xor", "--steps", "3", "--log-every", "1")
    assert code == 0
    assert [ln.split()[1] for ln in out.splitlines() if ln.startswith("epoch")] == \
        ["1/3", "2/3", "3/3"]
    code, quiet = call("train", "--dataset", "xor", "--steps", "3", "--quiet")
    assert len(quiet.splitlines()) == 1 and quiet.startswith("final training accuracy")
    assert FINAL.search(quiet).groups() == FINAL.search(out).groups()
    assert call("train", "--dataset", "xor", "--steps", "3", "--quiet")[1] == quiet


def test_progress_bar_only_on_a_terminal():
    term = Terminal()
    code, out = call("train", "--dataset", "xor", "--steps", "12", err=term)
    bar = term.getvalue()
    assert code == 0 and "\r\x1b[K" in bar and "epoch 12/12 [########################]" in bar
    assert bar.endswith("\n") and "\x1b" not in out
    term = Terminal()
    call("train", "--dataset", "xor", "--steps", "2", "--quiet", err=term)
    assert term.getvalue() == ""


@pytest.mark.parametrize("args, header", [
    (["--dataset", "blobs", "--n", "20"], "blobs (20 points)"),
    (["--dataset", "moons", "--n", "20", "--optimizer", "adam"], "adam lr 0.05"),
    (["--dataset", "xor", "--lr", "0.3"], "sgd lr 0.3,"),
    (["--dataset", "moons", "--n", "20", "--batch-size", "5"], "sgd lr 1.0 - 0.9*k/8,"),
    (["--dataset", "xor", "--loss", "logistic", "--l2", "0"], "logistic loss, sgd"),
    (["--dataset", "xor", "--loss", "mse", "--activation", "tanh", "--hidden", "3,2"],
     "MLP 2-3-2-1 tanh (20 parameters), mse loss"),
])
def test_options(args, header):
    code, out = call("train", *args, "--steps", "2")
    assert code == 0 and header in out
    assert FINAL.search(out)


def test_training_improves_with_adam():
    code, out = call("train", "--dataset", "xor", "--optimizer", "adam", "--steps", "40",
                     "--log-every", "1")
    losses = [float(ln.split()[3]) for ln in out.splitlines() if ln.startswith("epoch")]
    assert code == 0 and len(losses) == 40 and losses[-1] < losses[0] / 10
    assert "final training accuracy 100.0% (4/4 points)" in out


def test_info():
    r = run("info")
    assert r.returncode == 0
    assert f"fmicrograd {fm.__version__}" in r.stdout
    for name in ("numpy", "matplotlib", "graphviz", "torch", "dot"):
        assert re.search(rf"^  {name} +(yes|no)", r.stdout, re.M)
    assert re.search(r"^  matplotlib +yes", r.stdout, re.M)  # installed for the tests
    from fmicrograd.compiler.threads import CORES, blas
    b = blas()
    line = re.search(r"^numpy's BLAS: (.*)$", r.stdout, re.M)
    assert line and f"use {CORES} core" in line.group(1)
    if b["name"] == "OpenBLAS":  # numpy's wheels: its version and the kernels it picked
        assert b["version"] and b["core"] and f"({b['core']} kernels)" in line.group(1)
    assert ("note: " in r.stdout) == bool(b["advice"])
    from fmicrograd.compiler.threads import cpu
    assert re.search(r"^CPU: (.+)$", r.stdout, re.M).group(1) == cpu()


def test_cpu_names_the_model_and_its_family_from_proc_cpuinfo_fields():
    from fmicrograd.compiler.threads import _cpuinfo, cpu
    fields = {"model name": "AMD EPYC 9R45", "cpu family": "26", "model": "2"}
    assert cpu(fields) == "AMD EPYC 9R45 (family 26, model 2)"
    assert cpu({"model name": "Some CPU"}) == "Some CPU"  # no family: the name alone
    assert cpu({}) != ""  # no /proc/cpuinfo: platform's name, or "unknown CPU"
    here = _cpuinfo()
    if here.get("model name"):  # Linux: this machine's own first processor
        assert cpu().startswith(here["model name"])
        assert f"family {here['cpu family']}" in cpu()


def test_blas_advice_names_the_variable_only_for_avx512_cpus_on_other_kernels():
    from fmicrograd.compiler.threads import advice
    zen5 = frozenset("avx2 avx512f avx512dq avx512vl avx512bw avx512cd avx512_bf16".split())
    assert "OPENBLAS_CORETYPE=SkylakeX" in advice("Haswell", zen5)
    assert "Zen kernels" in advice("Zen", zen5)
    assert advice("SkylakeX", zen5) == advice("Cooperlake", zen5) == ""
    assert advice("Haswell", frozenset({"avx2", "fma"})) == ""  # no AVX-512 to use
    assert advice("", zen5) == ""  # not OpenBLAS


def test_blas_advice_names_the_environments_own_setting_when_it_forces_the_kernels():
    from fmicrograd.compiler.threads import advice, blas
    zen5 = frozenset("avx2 avx512f avx512dq avx512vl avx512bw avx512cd".split())
    told = advice("Haswell", zen5, forced="Haswell")
    assert "OPENBLAS_CORETYPE=Haswell is set in the environment" in told and "unset" in told
    assert "=SkylakeX" not in told  # (not: set another value on top of it)
    assert advice("SkylakeX", zen5, forced="SkylakeX") == ""  # AVX-512 kernels: nothing to say
    assert advice("Haswell", frozenset({"avx2"}), forced="Haswell") == ""
    b = blas(zen5, environ={"OPENBLAS_CORETYPE": "Haswell"})
    assert b["forced"] == "Haswell" and blas(zen5, environ={})["forced"] == ""
    if b["core"] == "Haswell":  # (numpy's OpenBLAS here runs those kernels)
        assert b["advice"] == told


def test_interrupt_exits_130_without_a_traceback(monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fm.train, "fit", interrupted)
    err = io.StringIO()
    code, _ = call("train", "--dataset", "xor", err=err)
    assert code == 130 and err.getvalue() == "\nfmicrograd: interrupted\n"


def test_eager_jit_and_default_print_the_same_training_run():
    # the default compiles (as --jit, kept for old scripts); --eager runs the scalar graph
    # (trajectories to 1e-12: tests/test_cli_compiled.py)
    args = ("train", "--dataset", "circles", "--n", "30", "--steps", "8", "--log-every", "1")
    code, compiled = call(*args)
    code_jit, jit = call(*args, "--jit")
    code_eager, eager = call(*args, "--eager")
    assert code == code_jit == code_eager == 0
    strip = lambda text: [ln.rsplit(", in ", 1)[0] for ln in text.splitlines()[1:]]
    assert strip(compiled) == strip(jit) == strip(eager)
    assert len(strip(eager)) == 9


def test_lr_50_rollback_recovers_to_95_percent():
    # `--jit` is the default, kept for old scripts (the same run as --eager, faster)
    code, out = call("train", "--dataset", "moons", "--lr", "50", "--on-instability",
                     "rollback", "--jit", "--log-every", "50")
    assert code == 0
    lines = out.splitlines()
    events = [ln for ln in lines if " at epoch " in ln]
    assert events[0].startswith("explosion at epoch 2: loss 1667 is over 5x the best")
    # two rollbacks: a third went to an "oscillation" of the converged run's late swings
    # at a loss of 0.04 (below 0.1x the first epoch's), no longer an instability
    assert [ln.rsplit("learning rate now ", 1)[1] for ln in events] == [
        "0.1x the first", "0.01x the first"]
    assert lines.index(events[0]) < lines.index(next(ln for ln in lines if "epoch  50/" in ln))
    pct, right, total, _ = FINAL.search(out).groups()
    assert float(pct) >= 95.0 and int(total) == 100
    assert "diagnosis: " in out and "advice: lower the learning rate 10x" in out
    assert "recovered" in out and "the learning rate ended at 0.01x the first" in out


def test_unstable_runs_warn_raise_or_stop():
    code, out = call("train", "--dataset", "moons", "--n", "30", "--lr", "50", "--steps", "6",
                     "--jit")
    assert code == 0 and "explosion at epoch 2" in out and "diagnosis: " in out
    err = io.StringIO()
    code, out = call("train", "--dataset", "moons", "--n", "30", "--lr", "50", "--steps", "6",
                     "--on-instability", "raise", err=err)
    assert code == 1 and "Traceback" not in err.getvalue()
    assert err.getvalue().startswith("fmicrograd: error: explosion at epoch 2: ")
    assert "advice:" in err.getvalue() and len(err.getvalue().splitlines()) == 1
    code, out = call("train", "--dataset", "moons", "--n", "30", "--lr", "50", "--steps", "6",
                     "--on-instability", "stop", "--log-every", "1")
    assert code == 0 and "explosion at epoch 2: " in out and out.count("epoch ") >= 2


def test_checkpoint_dir_and_resume(tmp_path):
    args = ("train", "--dataset", "moons", "--n", "20", "--steps", "6", "--batch-size", "5",
            "--quiet", "--optimizer", "adam")  # sgd's default schedule depends on --steps
    code, whole = call(*args)
    code, _ = call(*args[:6], "4", *args[7:], "--checkpoint-dir", str(tmp_path),
                   "--checkpoint-every", "2")
    assert code == 0 and sorted(p.name for p in tmp_path.iterdir()) == [
        "cli-run.json", "epoch-000000.json", "epoch-000002.json", "epoch-000004.json"]
    code, resumed = call(*args, "--checkpoint-dir", str(tmp_path), "--resume")
    assert code == 0 and resumed == whole
    assert call(*args, "--resume", str(tmp_path / "epoch-000002.json"))[1] == whole
    (tmp_path / "epoch-000006.json").write_text("{")
    err = io.StringIO()
    code, _ = call(*args, "--resume", str(tmp_path), err=err)
    assert code == 2 and "epoch-000006.json" in err.getvalue()


def test_resume_with_other_options_is_refused_before_training(tmp_path, capsys):
    # it went on with the new options, and the result was neither run's
    args = ("train", "--dataset", "xor", "--hidden", "4", "--steps", "4", "--quiet")
    assert call(*args, "--checkpoint-dir", str(tmp_path))[0] == 0
    for extra, said in [(("--l2", "0.5"), "--l2 0.0001, now 0.5."),
                        (("--loss", "mse"), "--loss hinge, now mse."),
                        (("--steps", "8"), "--steps 4, now 8."),  # the default schedule reads it
                        (("--eager",), "compiled steps (--jit), now eager steps (--eager)."),
                        (("--seed", "1"), "--seed 0, now 1.")]:
        with pytest.raises(SystemExit) as info:
            call(*args, *extra, "--checkpoint-dir", str(tmp_path), "--resume")
        captured = capsys.readouterr()
        assert info.value.code == 2 and captured.out == ""
        assert f"checkpoints in {str(tmp_path)!r} are of a run with other options: " \
            f"{said}" in captured.err
    assert call(*args, "--checkpoint-dir", str(tmp_path), "--resume")[0] == 0  # the same: runs


def test_checkpoint_arguments_fail_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for args, message in [
        (["--resume"], "--resume: give a PATH, or a --checkpoint-dir"),
        (["--checkpoint-dir", str(tmp_path / "file" / "ck")],
         "--checkpoint-dir: cannot write checkpoints to"),
        (["--resume", str(tmp_path / "missing")], "does not exist"),
    ]:
        with pytest.raises(SystemExit) as info:
            call("train", "--dataset", "xor", "--steps", "2", *args)
        captured = capsys.readouterr()
        assert info.value.code == 2 and message in captured.err and captured.out == ""
        assert captured.err.splitlines()[-1].startswith("fmicrograd train: error:")


@pytest.mark.parametrize("content", ["5", "null", '{"hidden": 5}', "[[1, 2]]",
                                     '{"activation": "relu", "batch_',
                                     '{"format": "fmicrograd-tree", "version": 1, "tree": 1.0}'])
def test_resume_with_a_damaged_run_file_exits_2_naming_it(tmp_path, content, capsys):
    # a JSON value that is not the options was an internal error (exit 1), and a
    # truncated file was taken as no file: a resume with another --lr went on
    args = ("train", "--dataset", "xor", "--hidden", "4", "--steps", "4", "--quiet")
    assert call(*args, "--checkpoint-dir", str(tmp_path))[0] == 0
    (tmp_path / "cli-run.json").write_text(content)
    with pytest.raises(SystemExit) as info:
        call(*args, "--lr", "0.5", "--resume", str(tmp_path))
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    assert "cli-run.json' is not the options file" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    if "tree" in content:  # another program's file: its keys were listed as options
        assert "holds 'format', 'tree', 'version', which are no options" in captured.err
        assert "--tree" not in captured.err


@pytest.mark.parametrize("written_by", ["command", "fit"])
def test_resume_without_a_run_file_is_refused_before_training(written_by, tmp_path, capsys):
    # the options could not be checked: --lr 0.5 --seed 3 trained on from the old run's
    # checkpoint and were then recorded as the run's own (an outside probe)
    args = ("train", "--dataset", "xor", "--hidden", "4", "--steps", "4", "--quiet",
            "--optimizer", "adam")
    if written_by == "command":
        assert call(*args, "--steps", "2", "--checkpoint-dir", str(tmp_path))[0] == 0
        (tmp_path / "cli-run.json").unlink()
    else:
        model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
        fm.train.fit(lambda p, b: fm.mean([(p(x) - y) ** 2 for x, y in zip(*b)]), model,
                     fm.optim.adam(0.05), [fm.datasets.xor()], epochs=2,
                     checkpoint_dir=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for extra in [("--lr", "0.5", "--seed", "3"), ()]:
        with pytest.raises(SystemExit) as info:
            call(*args, *extra, "--checkpoint-dir", str(tmp_path), "--resume")
        captured = capsys.readouterr()
        assert info.value.code == 2 and captured.out == ""
        assert f"argument --resume: the options of the run in {str(tmp_path)!r} cannot be " \
            "checked: it has no cli-run.json" in captured.err
        assert "Start a new run in another --checkpoint-dir, or resume it with " \
            "fm.train.fit(..., resume=...) in Python" in captured.err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_resume_from_a_saved_model_says_it_is_not_a_checkpoint(tmp_path):
    # (it was told its folder had no cli-run.json; round 44's review)
    args = ("train", "--dataset", "xor", "--hidden", "4", "--steps", "2", "--quiet")
    model = tmp_path / "model.json"
    assert call(*args, "--save", str(model))[0] == 0
    before = model.read_bytes()
    err = io.StringIO()
    code, _ = call(*args, "--resume", str(model), err=err)
    assert code == 2 and f"{model} is not a training checkpoint" in err.getvalue()
    assert "cli-run.json" not in err.getvalue()
    assert model.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == \
        ["model.json"]


@pytest.mark.parametrize("other", [("--seed", "3"), ("--steps", "6")])
def test_resume_from_a_checkpoint_file_checks_the_options_as_from_its_folder(tmp_path, other,
                                                                                capsys):
    # round 44 looked for the checkpoint mark at the top of the file, where fm.io keeps it
    # in its tree: every checkpoint file was taken for something else and skipped the
    # check, so --seed 3 trained on from the seed-0 run and recorded seed 3 as its own
    args = ["train", "--dataset", "xor", "--hidden", "4", "--steps", "4", "--quiet"]
    run = tmp_path / "run"
    assert call(*args, "--checkpoint-dir", str(run))[0] == 0
    with pytest.raises(SystemExit) as info:  # (argparse: the last --steps counts)
        call(*args, *other, "--resume", str(run / "epoch-000002.json"),
             "--checkpoint-dir", str(tmp_path / "next"))
    captured = capsys.readouterr()
    assert info.value.code == 2 and captured.out == ""
    assert f"the checkpoints in {str(run)!r} are of a run with other options: " \
        f"{other[0]} " in captured.err
    assert not (tmp_path / "next").exists()
    assert call(*args, "--resume", str(run / "epoch-000002.json"),
                "--checkpoint-dir", str(tmp_path / "same"))[0] == 0  # the same options go on


def test_a_refused_resume_writes_no_run_file(tmp_path):
    # cli-run.json was written before fit checked the checkpoint resumed from: a refused
    # command left one with its own options (which locked out the right resume)
    args = ("train", "--dataset", "xor", "--hidden", "4", "--quiet", "--optimizer", "adam")
    first, other = tmp_path / "first", tmp_path / "other"
    assert call(*args, "--steps", "4", "--checkpoint-dir", str(first))[0] == 0
    err = io.StringIO()
    code, _ = call(*args, "--steps", "2", "--checkpoint-dir", str(other), "--resume",
                   str(first), err=err)
    assert code == 2 and "more than --steps 2" in err.getvalue()
    assert not other.exists()
    # the resume that fit accepts records the run's options there
    assert call(*args, "--steps", "6", "--checkpoint-dir", str(other), "--resume",
                str(first))[0] == 0
    assert (other / "cli-run.json").read_text() == (first / "cli-run.json").read_text()
    assert call(*args, "--steps", "8", "--checkpoint-dir", str(other), "--resume")[0] == 0
