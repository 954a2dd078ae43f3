"""One rank of the data-parallel tests (started by tests/test_distributed.py).

``python distributed_worker.py CONFIG_JSON OUT_JSON`` with torchrun's variables
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) set: trains the moons demo with
``fit(data_parallel=True)`` and writes its parameters and history as JSON.
``train(config, data_parallel=False)`` is the one-process reference.
"""

import json
import os
import sys

import fmicrograd as fm


def train(config: dict, data_parallel: bool, rank: int = 0) -> dict:
    xs, ys = fm.datasets.moons(100, 0.1, seed=0)
    if "examples_per_rank" in config:  # ranks that load different amounts of data
        n = config["examples_per_rank"][rank]
        xs, ys = xs[:n], ys[:n]
    key_model, key_batches = fm.random.split(fm.random.key(rank * config.get("seed_per_rank", 0)))
    model = fm.nn.MLP.init(2, [16, 16, 1], key=key_model,
                           activation=config.get("activation_per_rank", ["relu"] * 8)[rank])

    calls = []

    def loss(m, batch):  # the README's: mean hinge + 1e-4 L2
        bx, by = batch
        calls.append(1)
        if config.get("fail_loss") == [rank, len(calls)]:  # this rank's loss raises, once
            raise ValueError(f"the loss failed on rank {rank}")
        return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)

    def callback(epoch, m, row):
        if config.get("fail_callback") == [rank, epoch]:  # this rank's callback raises
            raise OSError(f"the callback failed on rank {rank} at epoch {epoch}")
        if config.get("exit_callback") == [rank, epoch]:  # this rank's process dies
            os._exit(3)

    def accuracy(m, batch):
        bx, by = batch
        return sum((float(m(x)) > 0) == (y > 0) for x, y in zip(bx, by)) / len(by)

    if config["batch_size"] is None:
        data = {"data": [(xs, ys)]}
    else:
        data = {"data": (xs, ys), "batch_size": config["batch_size"],
                "key": None if config.get("no_key") else key_batches}
    if config.get("pvector"):  # batches of 8 in a pyrsistent vector
        from pyrsistent import pvector
        data = {"data": pvector([(xs[i:i + 8], ys[i:i + 8]) for i in range(0, len(xs), 8)])}
    if config.get("values_view"):  # batches of 8 as a dict's values (an iterable, re-read)
        data = {"data": {i: (xs[i:i + 8], ys[i:i + 8]) for i in range(0, len(xs), 8)}.values()}
    if config.get("bad_patience_rank") == rank:  # this rank alone fails fit's own checks
        data["patience"] = 0
    if config.get("resume_rank") == rank:  # this rank alone resumes (from an empty directory)
        data["checkpoint_dir"] = data["resume"] = f"checkpoints-rank{rank}"
    if "val_per_rank" in config:  # ranks given different validation data
        n = config["val_per_rank"][rank]
        data["val_data"] = (xs[:n], ys[:n])
    if "patience_per_rank" in config:  # ranks given different early stopping
        data["patience"] = config["patience_per_rank"][rank]
    optimizer = fm.optim.sgd(fm.optim.micrograd_schedule(1.0, 0.9, 100), momentum=0.5)
    if config.get("decay_steps_per_rank"):  # schedules that differ after the first steps
        optimizer = fm.optim.sgd(fm.optim.exponential_decay(
            0.1, config["decay_steps_per_rank"][rank], 0.1, staircase=True))
    if config.get("momentum_per_rank"):  # ranks given different optimizer settings
        optimizer = fm.optim.sgd(fm.optim.micrograd_schedule(1.0, 0.9, 100),
                                 momentum=config["momentum_per_rank"][rank])
    if config.get("checkpoint"):  # each rank its own directory: only rank 0's may fill
        data["checkpoint_dir"] = f"checkpoints-rank{rank}"
        if config.get("occupied") and rank == 0:  # an earlier run's: rank 0 alone refuses it
            fm.train.checkpoint.save(data["checkpoint_dir"], 0, {"params": (1.0,)})
    model, history = fm.train.fit(loss, model, optimizer, epochs=config["epochs"],
                                  metrics={"accuracy": accuracy}, jit=config["jit"],
                                  data_parallel=1 if data_parallel and config.get("dp_as_one")
                                  else data_parallel, callback=callback, **data)
    return {"params": fm.nn.parameters(model),
            "history": {k: list(v) for k, v in history.items() if k != "events"},
            "events": [e["kind"] for e in history.get("events", ())]}


if __name__ == "__main__":
    import torch.distributed as dist

    fm.distributed.init_from_env()
    try:
        result = train(json.loads(sys.argv[1]), data_parallel=True, rank=dist.get_rank())
        result["rank"] = dist.get_rank()
        with open(sys.argv[2], "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()
