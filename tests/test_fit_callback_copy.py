"""``fit``'s callback gets a copy of the parameters' containers under
``jit=True`` as it does eagerly (round 47): changing them in place changes
neither the run, nor the caller's pytree, nor a checkpoint."""

import numpy as np
import pytest

import fmicrograd as fm


def _loss(p, batch):
    return (p["w"][0] - 3.0) ** 2


def _meddle(epoch, p, metrics):
    p["w"][0] = 100.0


@pytest.mark.parametrize("jit", [False, True])
def test_a_callback_that_changes_its_parameters_changes_nothing(jit):
    params = {"w": [0.0]}
    out, history = fm.train.fit(_loss, params, fm.optim.sgd(0.1), [None], epochs=3,
                                callback=_meddle, jit=jit)
    quiet, _ = fm.train.fit(_loss, {"w": [0.0]}, fm.optim.sgd(0.1), [None], epochs=3, jit=jit)
    assert out == quiet and params == {"w": [0.0]}
    np.testing.assert_allclose(list(history["loss"]), [9.0, 5.76, 3.6864], rtol=1e-12)


@pytest.mark.parametrize("jit", [False, True])
def test_after_a_stop_the_callback_does_not_get_the_callers_pytree(jit):
    params = {"w": [0.0]}
    seen = []

    def callback(epoch, p, metrics):
        seen.append(p is params)
        p["w"][0] = 100.0

    fm.train.fit(lambda p, b: _loss(p, b) * float("nan"), params, fm.optim.sgd(0.1), [None],
                 epochs=2, callback=callback, jit=jit, on_instability="stop")
    assert seen == [False] and params == {"w": [0.0]}


def test_a_compiled_array_step_checkpoints_the_runs_numbers(tmp_path):
    # a step over a batch that jit compiles to array code keeps the parameters in its
    # flat layout between steps: the pytree the callback sees is built from it, and a
    # checkpoint written after the callback holds the run's numbers, not the callback's
    xs = np.linspace(-1.0, 1.0, 256)

    def loss(p, batch):
        return fm.mean(fm.vmap(lambda x: (p["w"][0] * x + p["w"][1] - 2.0 * x) ** 2)(batch))

    def run(callback, where):
        return fm.train.fit(loss, {"w": [0.5, 0.1]}, fm.optim.sgd(0.1), [xs], epochs=2,
                            callback=callback, jit=True, checkpoint_dir=where)

    quiet, _ = run(None, tmp_path / "quiet")
    out, _ = run(lambda e, p, m: p["w"].__setitem__(0, 100.0), tmp_path / "meddled")
    assert out == quiet
    assert fm.io.load(tmp_path / "meddled" / "epoch-000002.json")["params"] == \
        fm.io.load(tmp_path / "quiet" / "epoch-000002.json")["params"]
