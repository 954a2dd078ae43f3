"""``fmicrograd train`` compiles SGD steps by default, Adam's with ``--jit``;
``--eager`` runs the scalar eager path. Compiled and eager give the same
trajectory (per-epoch history and final parameters to 1e-12) for each
optimizer, loss and recovery policy it offers."""

import io

import pytest

import fmicrograd as fm
from fmicrograd.cli import build_parser, main

BASE = ("train", "--n", "30", "--hidden", "8,8", "--steps", "8", "--quiet")


def recorded_run(monkeypatch, *args):
    """Run the command line; return (fit's jit flag, final parameters, history)."""
    seen = []
    fit = fm.train.fit

    def spy(*a, **kw):
        result = fit(*a, **kw)
        seen.append((kw["jit"], *result))
        return result

    monkeypatch.setattr(fm.train, "fit", spy)
    out = io.StringIO()
    assert main([*BASE, *args], out=out, err=io.StringIO()) == 0, out.getvalue()
    [record] = seen
    return record


def assert_same_trajectory(a, b):
    (_, params_a, history_a), (_, params_b, history_b) = a, b
    assert set(history_a) == set(history_b)
    for key in history_a:
        if key == "events":  # what fired when, and the numbers it saw
            assert [dict(e) for e in history_a[key]] == [
                {k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v
                 for k, v in e.items()} for e in history_b[key]]
        else:
            assert list(history_a[key]) == pytest.approx(list(history_b[key]), rel=1e-12,
                                                         abs=1e-12), key
    leaves_a, leaves_b = fm.tree.leaves(params_a), fm.tree.leaves(params_b)
    assert len(leaves_a) == len(leaves_b) == 105
    assert leaves_a == pytest.approx(leaves_b, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("flags", [
    (),                                    # sgd with micrograd's schedule
    ("--lr", "0.3"),                       # sgd, constant rate
    ("--loss", "logistic", "--dataset", "circles"),
    ("--loss", "mse", "--batch-size", "7", "--activation", "tanh", "--lr", "0.1"),
    ("--dataset", "blobs", "--activation", "sigmoid", "--batch-size", "8", "--lr", "0.5"),
], ids=lambda flags: " ".join(flags) or "default")
def test_the_default_compiled_run_follows_the_eager_trajectory(monkeypatch, flags):
    compiled = recorded_run(monkeypatch, *flags)
    eager = recorded_run(monkeypatch, *flags, "--eager")
    assert compiled[0] is True and eager[0] is False
    assert_same_trajectory(compiled, eager)
    assert compiled[2]["loss"][-1] < compiled[2]["loss"][0]


def test_rollback_is_the_same_compiled_and_eager(monkeypatch):
    flags = ("--lr", "50", "--on-instability", "rollback")
    compiled = recorded_run(monkeypatch, *flags)
    eager = recorded_run(monkeypatch, *flags, "--eager")
    assert compiled[0] is True and eager[0] is False
    assert [e["action"] for e in eager[2]["events"]][:2] == ["rollback", "rollback"]
    assert_same_trajectory(compiled, eager)


@pytest.mark.parametrize("flags", [(), ("--lr", "50", "--on-instability", "rollback")])
def test_adam_runs_eager_unless_jit_and_then_follows_the_eager_trajectory(monkeypatch, flags):
    adam = ("--optimizer", "adam", *flags)
    default = recorded_run(monkeypatch, *adam)
    compiled = recorded_run(monkeypatch, *adam, "--jit")
    assert default[0] is False and compiled[0] is True
    # a program this small is compiled to straight-line code in the eager order
    assert_same_trajectory(compiled, default)


def test_a_compiled_run_resumed_from_a_checkpoint_is_the_uninterrupted_one(monkeypatch,
                                                                            tmp_path):
    flags = ("--lr", "0.3", "--batch-size", "7")  # a constant rate: the schedule is per run
    whole = recorded_run(monkeypatch, *flags)
    ck = str(tmp_path)
    cut = recorded_run(monkeypatch, *flags, "--steps", "5", "--checkpoint-dir", ck,
                       "--checkpoint-every", "2")
    assert len(cut[2]["loss"]) == 5 and sorted(p.name for p in tmp_path.iterdir())[-1] == \
        "epoch-000005.json"
    resumed = recorded_run(monkeypatch, *flags, "--checkpoint-dir", ck, "--resume")
    eager = recorded_run(monkeypatch, *flags, "--eager")
    assert whole[0] is resumed[0] is True
    assert fm.tree.leaves(resumed[1]) == fm.tree.leaves(whole[1])  # bit for bit
    assert list(resumed[2]["loss"]) == list(whole[2]["loss"])
    assert_same_trajectory(resumed, eager)


def test_the_first_line_says_which_path_runs():
    for flags, path in [((), "compiled with fm.jit"), (("--eager",), "eager"),
                        (("--optimizer", "adam"), "eager"),
                        (("--optimizer", "adam", "--jit"), "compiled with fm.jit")]:
        out = io.StringIO()
        assert main(["train", "--dataset", "xor", "--steps", "2", *flags], out=out) == 0
        assert out.getvalue().splitlines()[0].endswith(f", 2 epochs, {path}")


def test_jit_and_eager_flags_the_last_one_counts():
    parse = build_parser().parse_args
    assert parse(["train"]).engine is None
    assert parse(["train", "--eager"]).engine == "eager"
    assert parse(["train", "--jit"]).engine == "jit"
    assert parse(["train", "--eager", "--jit"]).engine == "jit"
    assert parse(["train", "--jit", "--eager"]).engine == "eager"


def test_help_tells_about_eager_and_jit(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--eager run every step on the scalar eager path, to watch it" in text
    assert "By default sgd steps are compiled with fm.jit" in text
    assert "while adam runs eager" in text
    assert "--jit compile every step with fm.jit, adam's too" in text
