"""fit(data_parallel=True) on torch.distributed (gloo, loopback): 2 and 3 local
processes give every rank the one-process parameters and history to 1e-12."""

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fmicrograd as fm
from fmicrograd import distributed

torch = pytest.importorskip("torch")
HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from distributed_worker import train  # noqa: E402

TIMEOUT = 55  # seconds for a whole group (under a minute); then every process is killed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rank_env(rank: int, world: int, port: int) -> dict:
    return {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}


def run_group(commands: list, envs: list, cwd: Path, check: bool = True) -> list:
    """Run the processes together in their own sessions; kill them all on a
    failure or after TIMEOUT seconds. Their outputs; without ``check``, the
    pairs (exit code, stderr)."""
    procs = [subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
             for cmd, env in zip(commands, envs)]
    outputs = []
    deadline = time.monotonic() + TIMEOUT
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=max(deadline - time.monotonic(), 0.1)))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    if not check:
        return [(p.returncode, err) for p, (_, err) in zip(procs, outputs)]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, f"exit {p.returncode}\n{out}\n{err[-3000:]}"
    return [out for out, _ in outputs]


def run_ranks(world: int, config: dict, tmp_path: Path) -> list:
    port = free_port()
    paths = [tmp_path / f"rank{r}.json" for r in range(world)]
    run_group([[sys.executable, str(HERE / "distributed_worker.py"), json.dumps(config),
                str(path)] for path in paths],
              [rank_env(r, world, port) for r in range(world)], tmp_path)
    return [json.loads(path.read_text()) for path in paths]


def assert_close(a, b, tol=1e-12):
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst <= tol, f"largest difference {worst:.3g}"


@pytest.mark.parametrize("world, config", [
    (2, {"batch_size": None, "epochs": 4, "jit": False}),  # full batch, eager
    (3, {"batch_size": 32, "epochs": 2, "jit": True}),  # shards of 10/11 and 1/1/2, jit
    # a last batch of 1 for 2 ranks: the second adds nothing (it raised a ValueError)
    (2, {"batch_size": 33, "epochs": 1, "jit": False}),
])
def test_every_rank_ends_where_one_process_does(world, config, tmp_path):
    ranks = run_ranks(world, config, tmp_path)
    alone = train(config, data_parallel=False)
    assert [r["rank"] for r in ranks] == list(range(world))
    for result in ranks:
        assert result["params"] == ranks[0]["params"]  # bit-identical across ranks
        assert result["history"] == ranks[0]["history"]
        assert_close(result["params"], alone["params"])
        assert set(result["history"]) == set(alone["history"])
        for name, values in alone["history"].items():
            assert_close(result["history"][name], values)
        assert result["events"] == alone["events"]
    start = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.split(fm.random.key(0))[0])
    assert alone["params"] != list(fm.nn.parameters(start))  # it trained


def test_only_rank_0_writes_checkpoints(tmp_path):
    config = {"batch_size": None, "epochs": 2, "jit": False, "checkpoint": True}
    ranks = run_ranks(2, config, tmp_path)
    assert ranks[0]["params"] == ranks[1]["params"]
    assert sorted(p.name for p in (tmp_path / "checkpoints-rank0").iterdir()) == [
        "epoch-000000.json", "epoch-000001.json", "epoch-000002.json"]
    assert not (tmp_path / "checkpoints-rank1").exists()


def test_ranks_that_start_from_different_models_are_told_so(tmp_path):
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": None, "epochs": 1, "jit": False, "seed_per_rank": 1},
                  tmp_path)
    assert "the parameters of rank(s) [1] differ from rank 0's" in str(failed.value)
    assert "build the model from the same key on every rank" in str(failed.value)


@pytest.mark.parametrize("examples", [[96, 100], [97, 100]])
def test_ranks_that_load_different_data_are_told_so(examples, tmp_path):
    # without a shuffling key the first batches agree; only the later steps differed,
    # and every rank trained to parameters neither one-process run gives (an outside probe)
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": 8, "epochs": 1, "jit": False, "no_key": True,
                      "examples_per_rank": examples}, tmp_path)
    assert "the data or settings (the whole dataset, batch_size, epochs, key, val_data, " \
        "resume, and the settings that stop or roll back a run) of rank(s) [1] differ from " \
        "rank 0's" in str(failed.value)


@pytest.mark.parametrize("config", [{"pvector": True, "examples_per_rank": [96, 100]},
                                    {"values_view": True, "examples_per_rank": [96, 100]},
                                    {"val_per_rank": [10, 20]},
                                    {"patience_per_rank": [2, 3]},
                                    {"resume_rank": 1}],
                         ids=["pvector data", "dict.values() data", "validation data", "patience",
                              "one rank resumes"])
def test_ranks_that_differ_in_pvector_data_validation_or_stopping_are_told_so(config, tmp_path):
    # a pvector's contents were not fingerprinted, and validation data and stopping
    # settings not at all: rank 0 stopped early while rank 1 stepped on with half the
    # gradient (a helper's probe); data given as dict.values() were not read either, and
    # every rank trained on rank 1's (round 46); a rank that resumed beside one that did not
    # was told to build the model from the same key
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": 8, "epochs": 2, "jit": False, "no_key": True, **config},
                  tmp_path)
    assert "the data or settings (the whole dataset" in str(failed.value)
    assert "of rank(s) [1] differ from rank 0's" in str(failed.value)


def test_ranks_given_different_optimizers_are_told_so(tmp_path):
    # the first step compared parameters and data only: with momentum 0.5 on one rank and
    # 0.6 on the other, both trained to different parameters without an error
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": None, "epochs": 2, "jit": False,
                      "momentum_per_rank": [0.5, 0.6]}, tmp_path)
    assert "the optimizer (its first updates of a probe gradient) of rank(s) [1] differ from " \
        "rank 0's" in str(failed.value)
    assert "pass the same optimizer, with the same settings, on every rank" in str(failed.value)


def test_ranks_whose_optimizers_part_later_are_told_so(tmp_path):
    # schedules that agree for the first-step probe's two updates and differ after: both
    # ranks trained on to different parameters with no error (round 30's probe)
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": None, "epochs": 5, "jit": False,
                      "decay_steps_per_rank": [3, 30]}, tmp_path)
    assert "the parameters of rank(s) [1] differ from rank 0's after the same steps" \
        in str(failed.value)


def test_ranks_whose_optimizers_part_at_the_last_step_are_told_so(tmp_path):
    # staircase schedules that first differ at the third and last full-batch step: no
    # later step's check saw it, and the ranks returned different parameters with no
    # error (round 35's probe); ``finish`` compares what each rank returns
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": None, "epochs": 3, "jit": False,
                      "decay_steps_per_rank": [2, 3]}, tmp_path)
    assert "the parameters of rank(s) [1] differ from rank 0's after the same steps" \
        in str(failed.value)


def test_ranks_whose_models_differ_in_a_setting_are_told_so(tmp_path):
    # a relu model on one rank and a tanh one on the other have the same parameters: their
    # gradients were averaged with no error (round 30's probe)
    with pytest.raises(AssertionError) as failed:
        run_ranks(2, {"batch_size": None, "epochs": 1, "jit": False,
                      "activation_per_rank": ["relu", "tanh"]}, tmp_path)
    assert "the model's structure or settings (an fm.nn activation" in str(failed.value)


@pytest.mark.parametrize("config, failed, error", [
    # rank 0 alone checks the checkpoint_dir: the others waited in the first collective
    # for the process group's timeout (30 minutes), then got a raw gloo error
    ({"checkpoint": True, "occupied": True}, 0,
     "ValueError: fit: checkpoint_dir="),
    # patience=0 on rank 1 alone, refused by fit's own checks before any exchange: rank 0
    # waited until rank 1's process ended, then got gloo's "Connection closed by peer"
    # (a helper's probe, round 46)
    ({"bad_patience_rank": 1}, 1, "ValueError: fit: patience must be None or a positive int"),
    ({"bad_patience_rank": 1, "dp_as_one": True}, 1, "ValueError: fit: patience must be"),
], ids=["rank 0's checkpoint_dir", "rank 1's patience", "data_parallel=1"])
def test_a_rank_that_fails_before_training_stops_every_rank_at_once(config, failed, error,
                                                                     tmp_path):
    config = {"batch_size": None, "epochs": 1, "jit": False, **config}
    port, started = free_port(), time.monotonic()
    results = run_group(
        [[sys.executable, str(HERE / "distributed_worker.py"), json.dumps(config),
          str(tmp_path / f"rank{r}.json")] for r in range(2)],
        [rank_env(r, 2, port) for r in range(2)], tmp_path, check=False)
    assert time.monotonic() - started < TIMEOUT / 2  # not killed at the deadline
    (code_failed, err_failed), (code_other, err_other) = results[failed], results[1 - failed]
    assert code_failed == 1 and error in err_failed
    assert code_other == 1 and f"RuntimeError: fit(data_parallel=True): rank {failed} failed " \
        f"before training ({error}" in err_other


@pytest.mark.parametrize("failure, who", [
    ({"fail_loss": [1, 1]}, 1),  # rank 1's loss raises at its first step, before any exchange
    ({"fail_loss": [1, 3]}, 1),  # rank 1's loss raises at its third step
    ({"fail_callback": [0, 1]}, 0),  # rank 0's callback raises after epoch 1 (of 3)
    ({"fail_callback": [1, 2]}, 1),  # after the last epoch: the others had finished
])
def test_a_rank_that_fails_during_training_stops_every_rank_at_once(failure, who, tmp_path):
    # the others waited in their next all_reduce for the process group's timeout
    # (30 minutes), or finished as if nothing had happened
    config = {"batch_size": 25, "epochs": 3, "jit": False, **failure}
    port, started = free_port(), time.monotonic()
    results = run_group(
        [[sys.executable, str(HERE / "distributed_worker.py"), json.dumps(config),
          str(tmp_path / f"rank{r}.json")] for r in range(2)],
        [rank_env(r, 2, port) for r in range(2)], tmp_path, check=False)
    assert time.monotonic() - started < TIMEOUT / 2  # not killed at the deadline
    (code, err), (other_code, other_err) = results[who], results[1 - who]
    assert code == 1 and "failed on rank" in err
    assert other_code == 1 and f"PeerFailed: fit(data_parallel=True): rank {who} failed " \
        f"during training (its error is in its own output); this is rank {1 - who}" in other_err
    assert not any((tmp_path / f"rank{r}.json").exists() for r in range(2))


def test_a_rank_whose_process_dies_during_training_is_named_as_such(tmp_path):
    config = {"batch_size": 25, "epochs": 3, "jit": False, "exit_callback": [1, 0]}
    port, started = free_port(), time.monotonic()
    (code0, err0), (code1, _) = run_group(
        [[sys.executable, str(HERE / "distributed_worker.py"), json.dumps(config),
          str(tmp_path / f"rank{r}.json")] for r in range(2)],
        [rank_env(r, 2, port) for r in range(2)], tmp_path, check=False)
    assert time.monotonic() - started < TIMEOUT / 2
    assert code1 == 3
    assert code0 == 1 and "PeerFailed: fit(data_parallel=True): the exchange with the other " \
        "ranks failed: a rank stopped without telling (it was killed, or its process died); " \
        "this is rank 0" in err0


def test_without_a_process_group_the_error_says_how_to_start_one():
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
    loss = lambda m, b: fm.losses.hinge([m(x) for x in b[0]], b[1])  # noqa: E731
    with pytest.raises(RuntimeError, match="torchrun --nproc-per-node 2"):
        fm.train.fit(loss, model, fm.optim.sgd(0.1), [fm.datasets.xor()], epochs=1,
                     data_parallel=True)


def test_shards_cover_the_batch_in_order_and_differ_in_size_by_at_most_one():
    for n in range(0, 12):
        for world in range(1, 5):
            bounds = [distributed.shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [stop - start for start, stop in bounds]
            assert max(sizes) - min(sizes) <= 1
    with pytest.raises(TypeError, match=r"tuple of equal-length columns such as \(xs, ys\)"):
        distributed.shard("not columns", 0, 2)
    with pytest.raises(ValueError, match="differ in length"):
        distributed.shard(((1.0, 2.0), (1.0,)), 0, 2)


def test_the_command_line_under_torchrun_trains_as_one_process_and_rank_0_writes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = "torchrun"
    flags = ["train", "--steps", "3", "--batch-size", "25", "--quiet"]
    env = {**rank_env(0, 1, 0), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        del env[name]
    [out] = run_group([[str(torchrun), "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
                        "--master-port", str(free_port()), "-m", "fmicrograd", *flags,
                        "--data-parallel", "--save", "parallel.json"]], [env], tmp_path)
    alone = tmp_path / "alone.json"
    lines = io.StringIO()
    assert fm.cli.main([*flags, "--save", str(alone)], out=lines) == 0
    assert out == lines.getvalue()  # one rank printed, the same line as one process
    assert_close(fm.nn.parameters(fm.io.load(tmp_path / "parallel.json")),
                 fm.nn.parameters(fm.io.load(alone)))


def test_the_command_line_says_how_to_start_the_processes(capsys):
    with pytest.raises(SystemExit) as exit_:
        fm.cli.main(["train", "--data-parallel", "--steps", "1"])
    assert exit_.value.code == 2
    assert "torchrun --nproc-per-node 2 -m fmicrograd train --data-parallel" in (
        capsys.readouterr().err)


def _moons_rows():
    xs, ys = fm.datasets.moons(12, 0.1, seed=0)
    return xs, ys, list(zip(xs, ys))


@pytest.mark.parametrize("form", ["examples as data", "examples as a batch",
                                  "examples as the dataset"])
def test_a_list_of_examples_is_refused_before_any_process_group_work(form):
    # a batch of rows [(x0, y0), ...] passed the columns check (each row has a length) and
    # was cut row by row into "columns" between ranks: the loss failed with "too many values
    # to unpack"; here no process group exists, so the check comes before any is asked for
    xs, ys, rows = _moons_rows()
    data, extra, name, fix = {
        "examples as data": (rows, {}, r"data\[0\] is a tuple of \(tuple, float\): one "
                             r"example's fields", r"zip\(\*data\)"),
        "examples as a batch": ([rows], {}, r"data\[0\] is a list of 12 examples \(rows\): "
                                r"its item \[0\], a tuple of \(tuple, float\)",
                                r"zip\(\*data\[0\]\)"),
        "examples as the dataset": (tuple(rows), {"batch_size": 4},
                                    r"data is a tuple of 12 examples \(rows\)",
                                    r"zip\(\*data\)"),
    }[form]
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
    loss = lambda m, b: fm.losses.hinge([m(x) for x in b[0]], b[1])  # noqa: E731
    message = (r"fit\(data_parallel=True\): .*must be a tuple of equal-length columns such as "
               r"\(xs, ys\), to be split between ranks; " + name + ".*Make columns with xs, ys "
               r"= " + fix + r", then pass data=\[\(xs, ys\)\], or data=\(xs, ys\) with "
               r"batch_size=")
    with pytest.raises(TypeError, match=message):
        fm.train.fit(loss, model, fm.optim.sgd(0.1), data, epochs=1, data_parallel=True,
                     **extra)
    with pytest.raises(TypeError, match=message):
        distributed.check_data(data, extra.get("batch_size"))


def test_batches_of_columns_pass_the_data_check():
    np = pytest.importorskip("numpy")
    xs, ys, rows = _moons_rows()
    for data, batch_size in [([(xs, ys)], None), ([[xs, ys], (xs[:3], ys[:3])], None),
                             ((xs, ys), 4), ((np.array(xs), np.array(ys)), 5),
                             ([(list(xs), [None] + list(ys[1:]))], None),
                             # columns mixing numbers with 0-d arrays or tensors, or labels
                             # mixing strings and ints: one kind of value each, not records
                             ([(xs[:3], (1.0, np.asarray(0.0), -1.0))], None),
                             ([(xs[:2], (torch.tensor(1.0), 2.0))], None),
                             ([(xs[:3], ("a", 1, "b"))], None)]:
        distributed.check_data(data, batch_size)
    with pytest.raises(ValueError, match=r"columns differ in length: \[12, 3\]"):
        distributed.check_data([(xs, ys[:3])], None)


def test_the_structure_check_compares_settings_by_value_not_identity():
    # the first version compared unpickled copies of the structure: a functools.partial
    # or a callable object as a model's setting never equalled its own copy, so identical
    # ranks were refused (a review's catch)
    import functools
    import pickle

    from fmicrograd.distributed import _shape_of

    class Dense:
        def __init__(self, w, act):
            self.w, self.act = w, act

    fm.tree.register(Dense, lambda d: ((d.w,), d.act), lambda act, c: Dense(c[0], act))
    model = Dense(0.5, functools.partial(max, 0.0))
    assert pickle.loads(pickle.dumps(_shape_of(model))) == _shape_of(model)
    relu = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0), activation="relu")
    tanh = fm.nn.MLP.init(2, [3, 1], key=fm.random.key(0), activation="tanh")
    assert _shape_of(relu) != _shape_of(tanh)
