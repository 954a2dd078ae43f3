"""``fmicrograd train`` compiles every step by default; ``--eager`` runs the
scalar eager path. Both give the same trajectory (per-epoch history and final
parameters to 1e-12) for each optimizer, loss and recovery policy it offers."""

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
    ("--optimizer", "adam"),
    ("--optimizer", "adam", "--lr", "0.02", "--batch-size", "7"),
    ("--loss", "logistic"),
    ("--loss", "mse", "--batch-size", "7", "--activation", "tanh", "--lr", "0.1"),
], ids=lambda flags: " ".join(flags) or "default")
def test_the_default_compiled_run_follows_the_eager_trajectory(monkeypatch, flags):
    compiled = recorded_run(monkeypatch, *flags)
    eager = recorded_run(monkeypatch, *flags, "--eager")
    assert compiled[0] is True and eager[0] is False
    assert_same_trajectory(compiled, eager)
    assert compiled[2]["loss"][-1] < compiled[2]["loss"][0]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_rollback_is_the_same_compiled_and_eager(monkeypatch, optimizer):
    flags = ("--optimizer", optimizer, "--lr", "50", "--on-instability", "rollback")
    compiled = recorded_run(monkeypatch, *flags)
    eager = recorded_run(monkeypatch, *flags, "--eager")
    assert compiled[0] is True and eager[0] is False
    assert [e["action"] for e in eager[2]["events"]][:1] == ["rollback"]
    assert_same_trajectory(compiled, eager)


def test_jit_and_eager_flags_the_last_one_counts():
    parse = build_parser().parse_args
    assert parse(["train"]).eager is False
    assert parse(["train", "--eager"]).eager is True
    assert parse(["train", "--jit"]).eager is False
    assert parse(["train", "--eager", "--jit"]).eager is False
    assert parse(["train", "--jit", "--eager"]).eager is True


def test_help_tells_about_eager_and_jit(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--eager run every step on the scalar eager path, to watch it" in text
    assert "Without it each step is compiled with fm.jit" in text
    assert "--jit compile every step with fm.jit: the default" in text
