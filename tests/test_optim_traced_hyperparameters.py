"""Hyper-parameters that are nodes (differentiated, traced, one per example
under ``vmap``) in the schedules' checks and in ``clip_by_global_norm``; and
``fit(jit=True)``'s advice when a schedule reads its traced step count."""

import functools
import math

import pytest

import fmicrograd as fm

optim = fm.optim

SCHEDULES = {
    "cosine": lambda h: optim.cosine_decay_schedule(h, 3),
    "linear": lambda h: optim.linear_schedule(h, 0.01, 5),
    "exponential": lambda h: optim.exponential_decay(h, 3, 0.5, end_value=0.001),
}


def _three_steps(schedule):
    def f(lr0):
        opt = optim.sgd(schedule(lr0))
        p = (1.0,)
        state = opt.init(p)
        for _ in range(3):
            u, state = opt.update((0.5,), state, p)
            p = optim.apply_updates(p, u)
        return p[0]

    return f


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_a_schedule_whose_value_is_one_per_example_under_vmap(name):
    # the schedule's check of its least value read an array of examples as one number
    # (numpy's "truth value of an array ... is ambiguous"; an outside probe)
    f = _three_steps(SCHEDULES[name])
    loop = tuple(f(h) for h in (0.05, 0.1))
    assert fm.vmap(f)((0.05, 0.1)) == loop
    assert fm.jit(fm.vmap(f))((0.05, 0.1)) == pytest.approx(loop, rel=1e-15)
    assert fm.vmap(fm.grad(f))((0.05, 0.1)) == tuple(fm.grad(f)(h) for h in (0.05, 0.1))


def test_a_negative_learning_rate_in_one_example_is_still_refused():
    f = _three_steps(lambda h: optim.linear_schedule(h, 0.01, 5))
    with pytest.raises(ValueError, match="goes down to -0.1; a learning rate must be >= 0"):
        fm.vmap(f)((0.05, -0.1))


def _clipped(max_norm):
    opt = optim.chain(optim.clip_by_global_norm(max_norm), optim.sgd(0.1))
    return opt.update((3.0, 4.0), opt.init((0.0, 0.0)))[0][0]


def test_clip_by_global_norm_with_a_differentiated_max_norm():
    # it called float() on max_norm: the error blamed the user's code for fmicrograd's own
    # float() (an outside probe); -0.1 * 3 * h / max(5, h) has derivative -0.06 below 5
    assert fm.grad(_clipped)(1.0) == pytest.approx(-0.06, rel=1e-15)
    assert fm.jit(fm.grad(_clipped))(1.0) == fm.grad(_clipped)(1.0)
    assert fm.grad(_clipped)(8.0) == 0.0  # above the norm: no clipping, no dependence
    assert fm.vmap(_clipped)((1.0, 10.0)) == (_clipped(1.0), _clipped(10.0))
    assert fm.jit(_clipped)(2.0) == _clipped(2.0) == pytest.approx(-0.12, rel=1e-15)


def test_clip_by_global_norm_refuses_what_is_not_a_number():
    with pytest.raises(TypeError, match="max_norm must be a number, got str"):
        optim.clip_by_global_norm("1")
    with pytest.raises(ValueError, match="max_norm must be > 0, got 0.0"):
        optim.clip_by_global_norm(0.0)


@pytest.mark.parametrize("schedule", [lambda k: ([0.1, 0.05, 0.01] * 9)[k],
                                      lambda k: 0.1 * math.cos(k)])
def test_fit_jit_says_how_to_write_a_schedule_it_can_trace(schedule):
    xs, ys = fm.datasets.moons(20, 0.1, seed=0)
    model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))

    def loss(m, batch):
        return fm.losses.hinge([m(x) for x in batch[0]], batch[1])

    with pytest.raises(TypeError, match=r"\. Under fit\(jit=True\) the whole step is compiled "
                                        r"\(there is no static_argnums to pass\)"):
        fm.train.fit(loss, model, optim.sgd(schedule), data=[(xs, ys)], epochs=1, jit=True,
                     progress=False)
    # the advice is fit's alone: a plain jit's error does not carry it
    with pytest.raises(TypeError) as plain:
        fm.jit(lambda k: schedule(k) * 1.0)(1.0)
    assert "Under fit" not in str(plain.value)


def _steps_at_momentum(make, m):
    opt = make(m)
    p = (1.0,)
    s = opt.init(p)
    for _ in range(3):
        u, s = opt.update(fm.grad(lambda q: q[0] ** 2)(p), s, p)
        p = fm.optim.apply_updates(p, u)
    return p[0]


@pytest.mark.parametrize("make", [lambda m: fm.optim.sgd(0.1, momentum=m),
                                  lambda m: fm.optim.rmsprop(0.1, momentum=m)])
def test_momentum_zero_keeps_its_derivative(make):
    # at momentum 0 the optimizer skipped its trace: the derivative in the momentum was
    # 0.0 under grad and jit(grad) (the slope just above 0 is -0.32 for sgd), and vmap
    # over momenta including 0 raised a per-example `!=` the user never wrote
    f = functools.partial(_steps_at_momentum, make)
    h = 1e-7
    slope = (f(h) - f(0.0)) / h
    assert fm.grad(f)(0.0) == pytest.approx(slope, rel=1e-5)
    assert fm.jit(fm.grad(f))(0.0) == pytest.approx(slope, rel=1e-5)
    assert fm.vmap(f)([0.9, 0.0]) == (f(0.9), f(0.0))
