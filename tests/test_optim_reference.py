"""Optimizers and schedules against references written out here or taken from
torch.optim: learning-rate schedules driving every alias (torch's
``LambdaLR``), the conventions ``rmsprop`` documents where optax differs, the
schedules' closed forms (optax's formulas), and ``fit`` (eager and compiled)
against the update loop written by hand. All in float64, to 1e-12."""

import math

import pytest
import torch

import fmicrograd as fm
from fmicrograd import optim

RTOL = 1e-12


def _grads(steps, n, seed):
    keys = fm.random.split(fm.random.key(seed), steps)
    gs = [list(fm.random.normal(k, n)) for k in keys]
    for k, g in enumerate(gs):  # a leaf whose gradient is exactly 0 at some steps
        if k % 3 == 1:
            g[0] = 0.0
    return [tuple(g) for g in gs]


def _close(a, b, scale):
    return abs(a - b) <= RTOL * scale


SCHEDULES = {
    "linear": optim.linear_schedule(0.1, 0.001, 20, transition_begin=5),
    "exponential": optim.exponential_decay(0.1, 4, 0.7, transition_begin=3, staircase=True,
                                           end_value=0.02),
    "cosine": optim.cosine_decay_schedule(0.1, 25, alpha=0.2),
    "micrograd": optim.micrograd_schedule(0.1, 0.9, 30),
}

# (fm optimizer from a schedule, torch optimizer at lr=0.1 that LambdaLR scales)
ALIASES = {
    "sgd nesterov": (lambda s: optim.sgd(s, momentum=0.9, nesterov=True),
                     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)),
    "adam": (lambda s: optim.adam(s, b1=0.8, b2=0.99, eps=1e-6),
             lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.99), eps=1e-6)),
    "adamw": (lambda s: optim.adamw(s, weight_decay=0.05),
              lambda p: torch.optim.AdamW(p, lr=0.1, weight_decay=0.05)),
    "rmsprop momentum": (lambda s: optim.rmsprop(s, decay=0.99, eps=1e-8, momentum=0.9),
                         lambda p: torch.optim.RMSprop(p, lr=0.1, alpha=0.99, momentum=0.9)),
}


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_aliases_follow_a_schedule_as_torch_lambdalr(alias, schedule):
    # the learning rate of step k is schedule(k) (k updates made before), in torch
    # as in fm; rmsprop's momentum buffer holds unscaled steps (torch's convention)
    make_fm, make_torch = ALIASES[alias]
    sched = SCHEDULES[schedule]
    opt = make_fm(sched)
    params = (0.5, -1.25, 2.0)
    state = opt.init(params)
    t_params = torch.tensor(params, dtype=torch.float64, requires_grad=True)
    t_opt = make_torch([t_params])
    lr_of = torch.optim.lr_scheduler.LambdaLR(t_opt, lambda k: sched(k) / 0.1)
    scale = max(map(abs, params))
    for g in _grads(40, 3, 7):
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
        t_params.grad = torch.tensor(g, dtype=torch.float64)
        t_opt.step()
        lr_of.step()
        scale = max(scale, *map(abs, params), *map(abs, updates))
        for a, b in zip(params, t_params.tolist()):
            assert _close(a, b, scale), (alias, schedule, params, t_params.tolist())


def test_rmsprop_momentum_buffer_takes_the_current_learning_rate():
    # torch's order (documented): buffer = 0.9 * buffer + g / sqrt(v), step = -lr_k * buffer.
    # optax.rmsprop scales by lr before its trace and would give -(0.01 + 0.9 * 0.1) here
    opt = optim.rmsprop(lambda k: 0.1 if k == 0 else 0.01, decay=0.0, eps=0.0, momentum=0.9)
    u1, state = opt.update((2.0,), opt.init((0.0,)))
    u2, state = opt.update((-3.0,), state)
    assert u1[0] == pytest.approx(-0.1 * 1.0, rel=RTOL)
    assert u2[0] == pytest.approx(-0.01 * (-1.0 + 0.9 * 1.0), rel=RTOL)


@pytest.mark.parametrize("decay, eps, g", [(0.9, 1e-8, 1e-4), (0.5, 0.1, 3.0), (0.0, 1e-3, -2e-3)])
def test_rmsprop_adds_eps_outside_the_root(decay, eps, g):
    # documented convention (torch's): g / (sqrt((1 - decay) g^2) + eps), not sqrt(. + eps)
    opt = optim.rmsprop(0.1, decay=decay, eps=eps)
    u, state = opt.update((g,), opt.init((0.0,)))
    assert u[0] == pytest.approx(-0.1 * g / (math.sqrt((1 - decay) * g * g) + eps), rel=RTOL)
    assert state[0].nu[0] == pytest.approx((1 - decay) * g * g, rel=RTOL)


# optax's formulas, written out
def _linear(init, end, steps, begin, k):
    done = min(max(k - begin, 0), steps)
    return (init - end) * (1 - done / steps) + end


def _exponential(init, steps, rate, begin, staircase, end, k):
    if k - begin <= 0:
        value = init
    else:
        p = (k - begin) / steps
        value = init * rate ** (math.floor(p) if staircase else p)
    if end is None:
        return value
    return max(value, end) if rate < 1.0 else min(value, end)


def _cosine(init, steps, alpha, k):
    k = min(k, steps)
    return init * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * k / steps)) + alpha)


@pytest.mark.parametrize("args", [(0.1, 0.001, 20, 5), (2.5, 5.0, 1, 0), (0.0, 0.01, 7, 50)])
def test_linear_schedule_closed_form(args):
    s = optim.linear_schedule(*args)
    for k in range(120):
        assert s(k) == pytest.approx(_linear(*args, k), rel=RTOL, abs=1e-300)


@pytest.mark.parametrize("args", [
    (0.1, 7, 0.5, 0, False, None), (0.1, 4, 0.7, 3, True, 0.02),
    (0.01, 5, 1.3, 0, False, 0.05), (2.0, 33, 1.7, 5, True, 1.0), (1.0, 1, 1.0, 2, False, 0.5),
])
def test_exponential_decay_closed_form(args):
    s = optim.exponential_decay(*args)
    for k in range(120):
        assert s(k) == pytest.approx(_exponential(*args, k), rel=RTOL, abs=1e-300)


@pytest.mark.parametrize("args", [(0.1, 25, 0.0), (0.1, 25, 0.2), (1.0, 1, 0.5), (0.3, 77, 1.0)])
def test_cosine_decay_schedule_closed_form(args):
    s = optim.cosine_decay_schedule(*args)
    for k in range(120):
        assert s(k) == pytest.approx(_cosine(*args, k), rel=RTOL, abs=1e-15)


def _loss(p, batch):
    total = 0.0
    for x, y in batch:
        pred = p["w"][0] * x + p["w"][1] * fm.tanh(p["b"] * x) + 0.1 * p["c"] ** 2
        total = total + (pred - y) ** 2
    return total / len(batch)


_DATA = [[(0.5, 1.0), (-1.0, 0.2)], [(2.0, -1.0), (0.1, 0.3), (1.5, 1.5)], [(-0.3, 0.0)]]
_PARAMS = {"w": (0.3, -0.2), "b": 0.7, "c": 0.0}

FIT_OPTIMIZERS = {
    "adamw exponential": lambda: optim.adamw(
        optim.exponential_decay(0.05, 4, 0.9, 2, True, 0.01), weight_decay=0.05),
    "rmsprop momentum schedule": lambda: optim.rmsprop(
        optim.linear_schedule(0.01, 0.001, 30, 4), momentum=0.5),
    "chain": lambda: optim.chain(
        optim.add_decayed_weights(0.01), optim.clip_by_global_norm(0.5),
        optim.scale_by_rms(0.9, 1e-5), optim.trace(0.7, nesterov=True),
        optim.scale_by_learning_rate(optim.cosine_decay_schedule(0.02, 40, 0.1))),
}


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", FIT_OPTIMIZERS)
def test_fit_is_the_update_loop_written_by_hand(name, jit):
    epochs = 15
    opt = FIT_OPTIMIZERS[name]()
    p, state = _PARAMS, opt.init(_PARAMS)
    for _ in range(epochs):
        for batch in _DATA:
            updates, state = opt.update(fm.grad(_loss)(p, batch), state, p)
            p = optim.apply_updates(p, updates)
    got, _ = fm.train.fit(_loss, _PARAMS, FIT_OPTIMIZERS[name](), _DATA, epochs=epochs,
                          jit=jit, monitor=False)
    want_leaves, got_leaves = fm.tree.leaves(p), fm.tree.leaves(got)
    assert len(got_leaves) == len(want_leaves)
    for a, b in zip(got_leaves, want_leaves):
        assert a == pytest.approx(b, rel=RTOL, abs=1e-15)
