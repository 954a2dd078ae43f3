"""Optimizer hyper-parameters and states as users hand them in: numpy
numbers compute in float64 as Python's do, "no clipping" is inf, and a
state or schedule argument that cannot mean what it says is refused."""

import functools
import math

import numpy as np
import pytest

import fmicrograd as fm


def test_clipping_at_inf_leaves_the_updates_as_they_are():
    c = fm.optim.clip_by_global_norm(math.inf)  # every update was NaN (inf / inf)
    assert c.update({"w": 3.0, "b": 4.0}, c.init(None))[0] == {"w": 3.0, "b": 4.0}
    opt = fm.optim.chain(fm.optim.clip_by_global_norm(math.inf), fm.optim.sgd(0.1))
    plain = fm.optim.sgd(0.1)
    p, g = {"w": 1.0}, {"w": 2.5}
    assert fm.optim.apply_updates(p, opt.update(g, opt.init(p), p)[0]) == \
        fm.optim.apply_updates(p, plain.update(g, plain.init(p), p)[0]) == {"w": 0.75}


@pytest.mark.parametrize("make", [
    lambda h: fm.optim.sgd(h), lambda h: fm.optim.sgd(0.1, momentum=h),
    lambda h: fm.optim.adam(0.1, b1=h), lambda h: fm.optim.adamw(0.1, weight_decay=h),
    lambda h: fm.optim.rmsprop(h), lambda h: fm.optim.sgd(fm.optim.exponential_decay(h, 2, 0.5))],
    ids=["lr", "momentum", "b1", "weight_decay", "rmsprop_lr", "schedule"])
def test_float32_hyperparameters_compute_in_float64_as_under_jit(make):
    h = np.float32(0.3)

    def run(opt, steps=5):
        p = {"w": 1.0, "b": -0.5}
        state = opt.init(p)
        for _ in range(steps):
            g = {"w": p["w"] * 2.0, "b": p["b"] - 1.0}
            u, state = opt.update(g, state, p)
            p = fm.optim.apply_updates(p, u)
        return p

    eager = run(make(h))
    assert all(type(v) is float for v in eager.values())  # not np.float32 leaves
    assert eager == run(make(float(h)))  # the float32's exact value, in float64 arithmetic
    step = fm.jit(lambda p, s: (lambda u, s: (fm.optim.apply_updates(p, u), s))(
        *make(h).update({"w": p["w"] * 2.0, "b": p["b"] - 1.0}, s, p)))
    opt = make(h)
    p, s = {"w": 1.0, "b": -0.5}, opt.init({"w": 1.0, "b": -0.5})
    for _ in range(5):
        p, s = step(p, s)
    assert p["w"] == pytest.approx(eager["w"], rel=1e-14) and \
        p["b"] == pytest.approx(eager["b"], rel=1e-14)


def test_another_optimizers_state_is_named():
    p = g = {"w": 1.0}
    with pytest.raises(TypeError, match=r"adam\.update: the optimizer state is EmptyState.*"
                                        r"ScaleByAdamState.*opt\.init\(params\)"):
        fm.optim.adam(0.1).update(g, fm.optim.sgd(0.1).init(p), p)
    scheduled = fm.optim.sgd(fm.optim.cosine_decay_schedule(0.1, 10))
    with pytest.raises(TypeError, match=r"state is EmptyState.*ScaleByScheduleState"):
        scheduled.update(g, fm.optim.sgd(0.1).init(p), p)
    with pytest.raises(TypeError, match=r"state is .*TraceState"):
        fm.optim.sgd(0.1, momentum=0.9).update(g, fm.optim.adam(0.1).init(p), p)


def test_schedules_refuse_a_negative_begin_and_take_numpy_ints():
    for make in (lambda: fm.optim.linear_schedule(0.1, 0.01, 10, transition_begin=-3),
                 lambda: fm.optim.exponential_decay(0.1, 3, 0.7, transition_begin=-5)):
        with pytest.raises(ValueError, match=r"transition_begin .* must be an int >= 0, got -"):
            make()  # it shifted the schedule (optax clamps it to 0)
    with pytest.raises(ValueError, match="decay_rate must be > 0, got nan"):
        fm.optim.exponential_decay(0.1, 3, math.nan)
    with pytest.raises(TypeError, match="staircase must be True or False"):
        fm.optim.exponential_decay(0.1, 3, 0.5, staircase="no")
    s = fm.optim.cosine_decay_schedule(1.0, np.int64(100))
    assert (s(50), type(s.decay_steps)) == (0.5, int)
    assert fm.optim.exponential_decay(1.0, np.int64(10), 0.5, np.int32(2))(12) == 0.5


@pytest.mark.parametrize("schedule, said", [
    (lambda: 0.1, "too many positional arguments"),
    (lambda k, total: 0.1, "missing a required argument: 'total'"),
    (lambda k, *, warmup: 0.1, "missing a required argument: 'warmup'")])
def test_a_schedule_that_cannot_take_the_step_is_refused_where_the_optimizer_is_made(
        schedule, said):
    # Python's "<lambda>() takes 0 positional arguments" came at the first update
    for make in (fm.optim.sgd, fm.optim.adam, lambda s: fm.optim.scale_by_schedule(s)):
        with pytest.raises(TypeError, match=rf"schedule .* cannot be called as schedule\(step\): "
                                            rf"{said}; a schedule takes the number of updates"):
            make(schedule)
    # what can be called with the step alone is taken (defaults, *args, a partial, built-ins)
    for fine in (lambda k, a=0.5: a, lambda *ks: 0.5, functools.partial(lambda a, k: a, 0.5)):
        opt = fm.optim.sgd(fine)
        assert opt.update((1.0,), opt.init((0.0,)))[0] == (-0.5,)
    assert fm.optim.sgd(abs).update((1.0,), fm.optim.sgd(abs).init((0.0,)))[0] == (-0.0,)


def test_fit_takes_numpy_counts_and_refuses_a_file_as_checkpoint_dir(tmp_path):
    data = (((1.0, 2.0), (2.0, 1.0)), (3.0, 1.0))  # a dataset: (xs, ys)
    loss = lambda p, b: fm.mean([(p[0] * x[0] + p[1] * x[1] - y) ** 2 for x, y in zip(*b)])
    a, h1 = fm.train.fit(loss, (0.1, 0.2), fm.optim.sgd(0.05), data, epochs=np.int64(3),
                         batch_size=np.int64(1), rollback_lr_factor=np.float32(0.5))
    b, h2 = fm.train.fit(loss, (0.1, 0.2), fm.optim.sgd(0.05), data, epochs=3, batch_size=1)
    assert len(h1["loss"]) == 3
    assert a == b and list(h1["loss"]) == list(h2["loss"])
    f = tmp_path / "run"
    f.write_text("mine")
    with pytest.raises(ValueError, match=r"checkpoint_dir=.* is a file, not a directory"):
        fm.train.fit(loss, (0.1, 0.2), fm.optim.sgd(0.05), [data], epochs=1, checkpoint_dir=f)
    assert f.read_text() == "mine"


def test_the_pytree_reducers_count_every_entry_of_an_array_leaf():
    # an array leaf was read as a vmap batch: l2 gave array([2., 5.]) for 6.0, global_norm
    # array([30., 40.]) for 50.0, and clipping turned the other leaves into arrays
    p = {"w": np.array([1.0, 2.0]), "b": 1.0}
    assert fm.losses.l2(p) == 6.0
    assert fm.optim.global_norm({"w": np.array([30.0, 40.0])}) == 50.0
    assert fm.nn.count_params(p) == 3 and fm.nn.parameters(p) == (1.0, 1.0, 2.0)
    tx = fm.optim.clip_by_global_norm(1.0)
    clipped, _ = tx.update({"w": np.array([30.0, 40.0]), "b": 0.0}, tx.init(None))
    assert clipped["b"] == 0.0 and clipped["b"].__class__ is float
    assert clipped["w"].tolist() == [0.6, 0.8]
    # under jit an array argument is an array of traced entries: the same sums
    assert fm.jit(lambda a: fm.losses.l2({"w": a, "b": 1.0}))(np.array([1.0, 2.0])) == 6.0
    assert fm.jit(fm.grad(lambda w, a: fm.losses.l2((w, a))))(1.0, np.array([1.0, 2.0])) == 2.0
    assert p["w"].tolist() == [1.0, 2.0]


def test_registering_a_class_fm_tree_handles_itself_is_refused():
    # registering tuple gave every tuple in the process no leaves, and grad an IndexError
    for cls in (tuple, list, dict, float, fm.Var):
        with pytest.raises(TypeError, match=f"{cls.__name__} is one fm.tree handles itself"):
            fm.tree.register(cls, lambda x: ((), None), lambda meta, children: None)
    with pytest.raises(TypeError, match="cls must be a class, got str"):
        fm.tree.register("Pair", lambda x: ((), None), lambda meta, children: None)
    assert fm.grad(lambda t: t[0] * t[1])((2.0, 3.0)) == (3.0, 2.0)

    class Wrapped:
        def __init__(self, a):
            self.a = a

    fm.tree.register(Wrapped, lambda w: w.a, lambda meta, children: Wrapped(*children))
    with pytest.raises(TypeError, match="registered for Wrapped must return \\(children, meta\\)"):
        fm.tree.leaves(Wrapped(1.0))  # (a bare "cannot unpack non-iterable float object")


@pytest.mark.parametrize("make, who", [
    (lambda: fm.optim.adam(0.1), "adam.update"),
    (lambda: fm.optim.sgd(0.1), "scale.update"),
    (lambda: fm.optim.sgd(0.1, momentum=0.9), "trace.update"),
    (lambda: fm.optim.sgd(fm.optim.constant_schedule(0.1)), "scale_by_schedule.update"),
    (lambda: fm.optim.chain(fm.optim.clip_by_global_norm(1.0), fm.optim.sgd(0.1)),
     "clip_by_global_norm.update"),
    (lambda: fm.optim.adamw(0.1), "adam.update"),
])
def test_a_gradient_leaf_that_is_no_number_is_named_by_its_path(make, who):
    # it was Python's bare "can't multiply sequence by non-int of type 'float'"
    opt, params = make(), {"a": 1.0, "b": (2.0,)}
    with pytest.raises(TypeError, match=rf"{who}: the leaf of the gradient tree at "
                                        r"\['b'\]\[0\] is str 'x'"):
        opt.update({"a": 1.0, "b": ("x",)}, opt.init(params), params)
