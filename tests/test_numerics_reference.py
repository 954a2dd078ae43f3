"""Numbers of fm.losses, fm.optim and fm.train.fit against torch (float64),
where the other tests do not look: logits far from 0, schedules
applied step by step, and the same under fm.jit."""

import functools
import math

import pytest
import torch
import torch.nn.functional as tF

import fmicrograd as fm
from fmicrograd import losses, optim


def _rel(a, b):
    return abs(a - b) / abs(b) if b else abs(a)


OFFSETS = [0.0, 1e3, 1e6, 1e10]
SMALL = [((5.0, 0.0), 0), ((0.1, 0.2, -0.3), 1), ((0.0, 0.0), 0), ((-2.0, 3.0, 0.5, 1.0), 3)]


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("case", range(len(SMALL)))
def test_softmax_cross_entropy_keeps_its_precision_at_logits_far_from_zero(offset, case):
    # lse - z rounds the large lse first: relative errors of 5e-9 at 1e6 and 6e-5 at
    # 1e10 where torch (log_softmax) is exact to 1e-14
    small, c = SMALL[case]
    z = tuple(v + offset for v in small)
    t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    t_loss = tF.cross_entropy(t[None], torch.tensor([c]))
    t_loss.backward()
    want, want_grad = t_loss.item(), t.grad.tolist()
    onehot = tuple(1.0 if k == c else 0.0 for k in range(len(z)))
    runs = {
        "index": fm.value_and_grad(lambda q: losses.softmax_cross_entropy(q, c))(z),
        "probabilities": fm.value_and_grad(lambda q: losses.softmax_cross_entropy(q, onehot))(z),
        "traced index": fm.jit(fm.value_and_grad(losses.softmax_cross_entropy))(z, c),
        "batch": fm.value_and_grad(lambda q: losses.softmax_cross_entropy([q], [c]))(z),
    }
    for name, (value, grad) in runs.items():
        assert _rel(value, want) < 1e-13, (name, value, want)
        assert tuple(grad) == pytest.approx(want_grad, rel=1e-12, abs=1e-15), name


def test_softmax_cross_entropy_of_a_sure_class_is_plus_zero():
    value = losses.softmax_cross_entropy((1000.0, -1000.0), 0)
    assert value == 0.0 and math.copysign(1.0, value) == 1.0


GRADS = [fm.random.normal(k, 4) for k in fm.random.split(fm.random.key(7), 20)]
SCHEDULES = [
    optim.linear_schedule(0.1, 0.01, 10, transition_begin=3),
    optim.cosine_decay_schedule(0.1, 12, alpha=0.2),
    optim.exponential_decay(0.1, 4, 0.5, transition_begin=2, staircase=True, end_value=0.02),
    optim.micrograd_schedule(0.1, 0.9, 8),
]
OPTIMIZERS = {
    "sgd_momentum": (lambda lr: optim.sgd(lr, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.9)),
    "sgd_nesterov": (lambda lr: optim.sgd(lr, momentum=0.8, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.8, nesterov=True)),
    "adam": (optim.adam, lambda p: torch.optim.Adam(p, lr=1.0)),
    "adamw": (lambda lr: optim.adamw(lr, weight_decay=0.3),
              lambda p: torch.optim.AdamW(p, lr=1.0, weight_decay=0.3)),
    "rmsprop_momentum": (lambda lr: optim.rmsprop(lr, momentum=0.5),
                         lambda p: torch.optim.RMSprop(p, lr=1.0, alpha=0.9, momentum=0.5)),
}


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("schedule", range(len(SCHEDULES)))
def test_scheduled_optimizers_match_torch_with_the_lr_set_each_step(schedule, name, jit):
    sched = SCHEDULES[schedule]
    make, make_torch = OPTIMIZERS[name]
    opt = make(sched)
    update = fm.jit(opt.update) if jit else opt.update
    params = (0.5, -1.0, 2.0, 0.1)
    state = opt.init(params)
    t_params = torch.tensor(params, dtype=torch.float64, requires_grad=True)
    t_opt = make_torch([t_params])
    for k, g in enumerate(GRADS):
        updates, state = update(g, state, params)
        params = optim.apply_updates(params, updates)
        t_opt.param_groups[0]["lr"] = sched(k)
        t_params.grad = torch.tensor(g, dtype=torch.float64)
        t_opt.step()
        assert params == pytest.approx(tuple(t_params.tolist()), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_is_the_loop_it_documents(jit, shuffle):
    """Every example once per epoch, the last batch smaller, ``loss`` and
    ``grad_norm`` the means over the epoch's steps, a schedule counted in steps."""
    xs = tuple((0.1 * i, (-0.05 * i * i) % 1.3) for i in range(11))
    ys = tuple(math.sin(i) for i in range(11))
    key = fm.random.key(3) if shuffle else None

    def loss(p, batch):
        bx, by = batch
        return losses.mse([p["w"][0] * x[0] + p["w"][1] * x[1] + p["b"] for x in bx], by)

    opt = optim.adam(optim.cosine_decay_schedule(0.05, 5))
    p0 = {"w": (0.3, -0.2), "b": 0.1}
    seen = []

    def record(p, batch):
        seen.append(tuple(batch[1]))
        return 0.0

    p, h = fm.train.fit(loss, p0, opt, (xs, ys), epochs=3, batch_size=4, key=key, jit=jit,
                        metrics={"record": record})
    for e in range(3):
        epoch = seen[3 * e:3 * e + 3]
        assert [len(b) for b in epoch] == [4, 4, 3]
        assert sorted(v for b in epoch for v in b) == sorted(ys)

    q, state, vg = p0, opt.init(p0), fm.value_and_grad(loss)
    for e in range(3):
        batches = (fm.train.batches((xs, ys), 4, key=fm.random.fold_in(key, e)) if shuffle
                   else fm.train.batches((xs, ys), 4))
        values, norms = [], []
        for b in batches:
            value, g = vg(q, b)
            values.append(value)
            norms.append(optim.global_norm(g))
            updates, state = opt.update(g, state, q)
            q = optim.apply_updates(q, updates)
        assert h["loss"][e] == pytest.approx(sum(values) / 3, rel=1e-13)
        assert h["grad_norm"][e] == pytest.approx(sum(norms) / 3, rel=1e-13)
    assert fm.tree.leaves(p) == pytest.approx(fm.tree.leaves(q), rel=1e-13)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("lr, patience, min_delta", [(0.3, 2, 0.0), (0.95, 2, 0.0),
                                                     (0.95, 3, 0.05), (1.02, 2, 0.0)])
def test_patience_and_restore_best_with_validation_are_the_documented_loop(lr, patience,
                                                                           min_delta, jit):
    loss = lambda p, b: (p["w"] - b) ** 2  # noqa: E731
    p, h = fm.train.fit(loss, {"w": 0.0}, optim.sgd(lr), [1.0], epochs=30, val_data=0.5,
                        patience=patience, min_delta=min_delta, restore_best=True, jit=jit,
                        monitor=False)

    def loop(acc, _):
        w, best, best_w, wait, vals = acc
        if wait >= patience:
            return acc
        w = w - lr * 2.0 * (w - 1.0)
        v = (w - 0.5) ** 2
        better = v < best - min_delta
        return (w, v if better else best, w if better else best_w, 0 if better else wait + 1,
                vals + (v,))

    _, _, best_w, _, vals = functools.reduce(loop, range(30), (0.0, math.inf, None, 0, ()))
    assert tuple(h["val_loss"]) == pytest.approx(vals, rel=1e-14)
    assert p["w"] == pytest.approx(best_w, rel=1e-14)
