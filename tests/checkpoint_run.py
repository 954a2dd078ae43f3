"""A training run for test_checkpoint.py: killed with SIGKILL at a chosen
point, then resumed. Usage: checkpoint_run.py MODE K DIR OUT

MODE "epoch": SIGKILL in the callback of epoch K (before its checkpoint);
MODE "write": SIGKILL at the K-th file replace (a checkpoint fully written to
its temporary file, not yet in place); MODE "none": run (resuming from DIR)
and save the final parameters and history to OUT.
"""

import os
import signal
import sys

import fmicrograd as fm


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def kill_at_replace(k):
    real_replace, calls = os.replace, []

    def replace(src, dst, *a, **kw):
        calls.append(dst)
        if len(calls) == k:
            die()
        return real_replace(src, dst, *a, **kw)

    os.replace = replace


def loss(m, batch):
    bx, by = batch
    return fm.losses.hinge([m(x) for x in bx], by) + 1e-4 * fm.losses.l2(m)


def main(mode, k, directory, out):
    if mode == "write":
        kill_at_replace(k)

    def callback(epoch, params, row):
        if mode == "epoch" and epoch == k:
            die()

    xs, ys = fm.datasets.moons(24, 0.1, seed=1)
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(2))
    params, history = fm.train.fit(
        loss, model, fm.optim.sgd(0.3, momentum=0.9), (xs, ys), epochs=8, batch_size=8,
        key=fm.random.key(3), on_instability="rollback", checkpoint_dir=directory,
        checkpoint_every=2, resume=directory, callback=callback)
    fm.io.save(out, {"params": params, "history": history})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
