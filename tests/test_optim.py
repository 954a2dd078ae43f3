"""fm.optim: every optimizer through the same convergence tests, step values
against torch.optim, schedules, clipping, purity and types."""

import functools
import math

import pytest
import torch
from pyrsistent import PMap

import fmicrograd as fm
from fmicrograd import optim


def parabola(p):
    return (p["x"] - 3.0) ** 2 + 10.0 * (p["y"] + 1.0) ** 2


def rosenbrock(p):
    return (1.0 - p["x"]) ** 2 + 100.0 * (p["y"] - p["x"] ** 2) ** 2


def minimize(opt, f, params, steps):
    grad = fm.grad(f)

    def step(carry, _):
        p, state = carry
        updates, state = opt.update(grad(p), state, p)
        return optim.apply_updates(p, updates), state

    return functools.reduce(step, range(steps), (params, opt.init(params)))[0]


# name: (optimizer for the parabola, parabola tolerance, optimizer for Rosenbrock, its steps)
CASES = {
    "sgd": (optim.sgd(0.04), 1e-6, optim.sgd(1.9e-3), 8000),
    "sgd_momentum": (optim.sgd(0.01, momentum=0.9), 1e-6,
                     optim.sgd(1e-3, momentum=0.9), 3000),
    "sgd_nesterov": (optim.sgd(0.01, momentum=0.9, nesterov=True), 1e-6,
                     optim.sgd(1e-3, momentum=0.9, nesterov=True), 3000),
    "sgd_schedule": (optim.sgd(optim.cosine_decay_schedule(0.04, 500, alpha=0.1)), 1e-6,
                     optim.sgd(optim.linear_schedule(1.9e-3, 1e-3, 8000, 4000)), 8000),
    "adam": (optim.adam(0.1), 1e-6, optim.adam(0.02), 3000),
    # decoupled weight decay pulls the fixed point towards 0 by ~ weight_decay
    "adamw": (optim.adamw(0.1), 1e-3, optim.adamw(0.02), 3000),
    "rmsprop": (optim.rmsprop(0.01), 1e-6,
                optim.rmsprop(optim.cosine_decay_schedule(3e-3, 8000), decay=0.99), 8000),
    "rmsprop_momentum": (optim.rmsprop(optim.cosine_decay_schedule(0.01, 500), momentum=0.5),
                         1e-6,
                         optim.rmsprop(optim.exponential_decay(1e-3, 1000, 0.1), momentum=0.9),
                         3000),
    "clipped_sgd": (optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.04)), 1e-6,
                    optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(1.9e-3)), 8000),
}


@pytest.mark.parametrize("name", CASES)
def test_converges_on_a_parabola(name):
    opt, tol, _, _ = CASES[name]
    p = minimize(opt, parabola, {"x": 0.0, "y": 0.0}, 500)
    assert type(p) is dict
    assert abs(p["x"] - 3.0) < tol and abs(p["y"] + 1.0) < tol


@pytest.mark.parametrize("name", CASES)
def test_converges_on_rosenbrock(name):
    _, _, opt, steps = CASES[name]
    p = minimize(opt, rosenbrock, {"x": -1.0, "y": 1.0}, steps)
    assert abs(p["x"] - 1.0) < 5e-3 and abs(p["y"] - 1.0) < 5e-3


GRADS = [fm.random.normal(k, 3) for k in fm.random.split(fm.random.key(0), 6)]
TORCH_CASES = [
    (optim.sgd(0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (optim.sgd(0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    (optim.sgd(0.1, momentum=0.8, nesterov=True),
     lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True)),
    (optim.adam(0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (optim.adam(0.05, b1=0.8, b2=0.99, eps=1e-4),
     lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.8, 0.99), eps=1e-4)),
    (optim.adamw(0.01, weight_decay=0.1),
     lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1)),
    (optim.rmsprop(0.01), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9)),
    (optim.rmsprop(0.01, decay=0.99, eps=1e-3, momentum=0.5),
     lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-3, momentum=0.5)),
]


@pytest.mark.parametrize("case", range(len(TORCH_CASES)))
def test_step_values_match_torch_optim(case):
    opt, make_torch = TORCH_CASES[case]
    params = (0.5, -1.0, 2.0)
    state = opt.init(params)
    t_params = torch.tensor(params, dtype=torch.float64, requires_grad=True)
    t_opt = make_torch([t_params])
    for g in GRADS:
        updates, state = opt.update(g, state, params)
        params = optim.apply_updates(params, updates)
        t_params.grad = torch.tensor(g, dtype=torch.float64)
        t_opt.step()
        assert params == pytest.approx(tuple(t_params.tolist()), rel=1e-12, abs=1e-14)


def test_schedule_values():
    lin = optim.linear_schedule(1.0, 0.1, 100, transition_begin=10)
    assert [lin(k) for k in (0, 10, 60, 110, 500)] == pytest.approx([1.0, 1.0, 0.55, 0.1, 0.1])
    exp = optim.exponential_decay(2.0, 10, 0.5)
    assert [exp(k) for k in (0, 5, 10, 30)] == pytest.approx([2.0, 2.0 * 0.5 ** 0.5, 1.0, 0.25])
    stair = optim.exponential_decay(2.0, 10, 0.5, staircase=True, end_value=0.3)
    assert [stair(k) for k in (0, 9, 10, 19, 20, 100)] == [2.0, 2.0, 1.0, 1.0, 0.5, 0.3]
    grow = optim.exponential_decay(1.0, 1, 2.0, transition_begin=2, end_value=5.0)
    assert [grow(k) for k in (0, 2, 3, 4, 10)] == [1.0, 1.0, 2.0, 4.0, 5.0]
    cos = optim.cosine_decay_schedule(2.0, 100, alpha=0.1)
    assert [cos(k) for k in (0, 50, 100, 150)] == pytest.approx([2.0, 1.1, 0.2, 0.2])
    assert cos(25) == pytest.approx(2.0 * (0.9 * 0.5 * (1 + math.cos(math.pi / 4)) + 0.1))
    assert optim.constant_schedule(0.3)(12345) == 0.3


def test_micrograd_schedule_is_exactly_micrograds_formula():
    s = optim.micrograd_schedule()
    assert [s(k) for k in range(100)] == [1.0 - 0.9 * k / 100 for k in range(100)]
    assert s(500) == s(100) == pytest.approx(0.1)


@pytest.mark.parametrize("make", [optim.sgd, optim.adam, optim.rmsprop])
def test_schedules_are_accepted_wherever_a_learning_rate_is(make):
    sched = optim.exponential_decay(0.1, 1, 0.5)
    with_schedule, fixed = make(sched), make(0.1)
    s1, s2 = with_schedule.init((0.0,)), fixed.init((0.0,))
    for k, g in enumerate([1.0, -2.0, 0.5]):
        (u1,), s1 = with_schedule.update((g,), s1)
        (u2,), s2 = fixed.update((g,), s2)
        assert u1 == pytest.approx(u2 * sched(k) / 0.1, rel=1e-14)


def test_clip_by_global_norm():
    clip = optim.clip_by_global_norm(2.0)
    grads = {"a": [3.0, 0.0], "b": (4.0,)}
    clipped, state = clip.update(grads, clip.init(grads))
    assert optim.global_norm(clipped) == pytest.approx(2.0, rel=1e-15)
    assert clipped == {"a": pytest.approx([1.2, 0.0]), "b": pytest.approx((1.6,))}
    small = {"a": [0.3, 0.0], "b": (0.4,)}
    assert clip.update(small, state)[0] == small
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_by_global_norm(0.0)


def test_types_dicts_stay_dicts_and_states_are_persistent():
    params = {"w": [1.0, 2.0], "b": 0.5}
    opt = optim.adam(0.1)
    state = opt.init(params)
    grads = fm.grad(lambda p: p["w"][0] * p["w"][1] + p["b"])(params)
    updates, new_state = opt.update(grads, state, params)
    new_params = optim.apply_updates(params, updates)
    assert type(new_params) is dict and type(new_params["w"]) is list
    adam_state = new_state[0]
    assert isinstance(adam_state, optim.ScaleByAdamState) and adam_state.count == 1
    assert isinstance(adam_state.mu, PMap) and isinstance(state[0].mu, PMap)
    assert params == {"w": [1.0, 2.0], "b": 0.5}


@pytest.mark.parametrize("name", CASES)
def test_update_is_pure(name):
    opt = CASES[name][0]
    params = {"x": 1.0, "y": 2.0}
    state = opt.init(params)
    state = opt.update({"x": 0.5, "y": -1.0}, state, params)[1]
    first = opt.update({"x": 0.3, "y": 0.1}, state, params)
    again = opt.update({"x": 0.3, "y": 0.1}, state, params)
    assert first == again  # the same state replays to the same result


def test_differentiating_through_an_optimizer_step():
    f = lambda x: x * x

    def loss_after_steps(lr):
        opt = optim.sgd(lr, momentum=0.5)
        p, s = 1.5, opt.init(1.5)
        for _ in range(2):
            (u, s) = opt.update(fm.grad(f)(p), s)
            p = p + u
        return f(p)

    eps = 1e-6
    numeric = (loss_after_steps(0.1 + eps) - loss_after_steps(0.1 - eps)) / (2 * eps)
    assert fm.grad(loss_after_steps)(0.1) == pytest.approx(numeric, rel=1e-7)


def test_errors_teach():
    with pytest.raises(TypeError, match="GradientTransformation"):
        optim.chain(optim.sgd(0.1), lambda g: g)
    opt = optim.chain(optim.sgd(0.1), optim.sgd(0.1))
    with pytest.raises(ValueError, match="expected the state of 2"):
        opt.update((1.0,), ())
    with pytest.raises(ValueError, match="needs the parameters"):
        w = optim.adamw(0.1)
        w.update((1.0,), w.init((1.0,)))
    with pytest.raises(TypeError, match="learning rate must be a number or a schedule"):
        optim.sgd("0.1")
    with pytest.raises(ValueError, match="apply_updates"):
        optim.apply_updates({"a": 1.0}, {"b": 1.0})
    # the two trees are named (round 44's review: "the first tree ... the other")
    opt = optim.adam(0.1)
    with pytest.raises(ValueError, match=r"adam.update: tree structures differ at \['w'\]: the "
                                         r"gradient tree has list of 2 children, the optimizer "
                                         r"state \(as opt.init made it"):
        opt.update({"w": [1.0, 2.0]}, opt.init({"w": [1.0]}))
    with pytest.raises(ValueError, match=r"the parameter tree has list of 2 children, the "
                                         r"update tree has list of 1"):
        optim.apply_updates({"w": [1.0, 2.0]}, {"w": [1.0]})
    # a leaf that is not a number is named by its path ("x" + "y" was "xy", silently)
    with pytest.raises(TypeError, match=r"the leaf of params at \['a'\] is str 'x'"):
        optim.apply_updates({"a": "x"}, {"a": "y"})
    with pytest.raises(TypeError, match=r"the leaf of updates at \['a'\]\[1\] is str"):
        optim.apply_updates({"a": [1.0, 2.0]}, {"a": [0.1, "z"]})


@pytest.mark.parametrize("make, words", [
    (lambda: optim.sgd(-0.1), "lr must be a number >= 0"),  # silently climbed the gradient
    (lambda: optim.sgd(float("nan")), "lr must be"),
    (lambda: optim.adam(float("inf")), "lr must be a finite number"),  # a first step of -inf
    (lambda: optim.sgd(0.1, momentum=float("inf")), "momentum must be a finite number"),
    (lambda: optim.adam(0.1, eps=float("inf")), "eps must be a finite number"),  # steps of 0
    (lambda: optim.sgd(0.1, momentum=-0.5), "momentum must be a number >= 0"),
    (lambda: optim.sgd(0.1, nesterov=True), "nesterov=True needs a momentum > 0"),
    (lambda: optim.rmsprop(0.1, nesterov=True), "nesterov=True needs a momentum > 0"),
    (lambda: optim.adam(0.1, b1=1.0), r"b1 must be a number in \[0.0, 1.0\)"),  # ZeroDivision
    (lambda: optim.adam(0.1, b2=1.5), r"b2 must be a number in \[0.0, 1.0\)"),
    (lambda: optim.adam(0.1, eps=-1e-8), "eps must be a number >= 0"),
    (lambda: optim.adamw(0.1, weight_decay=-1.0), "weight_decay must be a number >= 0"),
    (lambda: optim.rmsprop(0.1, decay=1.0), r"decay must be a number in \[0.0, 1.0\)"),
])
def test_hyper_parameters_out_of_range_are_refused_as_torch_does(make, words):
    with pytest.raises(ValueError, match=words):
        make()


def test_hyper_parameter_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="b1 must be a number, got str"):
        optim.adam(0.1, b1="0.9")


def test_a_differentiated_hyper_parameter_is_not_checked_by_value():
    # a learning rate being differentiated is a node: its updates stay differentiable in it
    def after_one_step(lr):
        opt = optim.sgd(lr, momentum=0.5, nesterov=True)
        u, _ = opt.update((2.0,), opt.init((1.0,)))
        return optim.apply_updates((1.0,), u)[0]

    assert fm.grad(after_one_step)(0.1) == pytest.approx(-3.0, rel=1e-15)  # -(2 + 0.5 * 2)
