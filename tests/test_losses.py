"""fm.losses against torch.nn.functional: values, gradients, stability."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from hypothesis import given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd import losses

SETTINGS = settings(max_examples=40, deadline=None)
floats = st.floats(-30.0, 30.0, allow_nan=False)
REDUCTIONS = ["mean", "sum"]


def _torch_value_and_grad(fn, preds, *rest):
    t = torch.tensor(preds, dtype=torch.float64, requires_grad=True)
    out = fn(t, *rest)
    out.backward()
    return out.item(), tuple(t.grad.flatten().tolist())


def _agree(fm_fn, torch_fn, preds, *rest, rel=1e-12, abs=1e-12):
    value, grads = fm.value_and_grad(fm_fn)(preds)
    t_value, t_grads = _torch_value_and_grad(torch_fn, preds, *rest)
    assert value == pytest.approx(t_value, rel=rel, abs=abs)
    flat = tuple(g for row in grads for g in row) if isinstance(grads[0], tuple) else grads
    assert flat == pytest.approx(t_grads, rel=rel, abs=abs)


def _t(xs):
    return torch.tensor(xs, dtype=torch.float64)


@SETTINGS
@given(st.lists(st.tuples(floats, floats), min_size=1, max_size=6), st.sampled_from(REDUCTIONS))
def test_mse_matches_torch(pairs, reduction):
    preds, targets = map(tuple, zip(*pairs))
    _agree(lambda p: losses.mse(p, targets, reduction),
           lambda t: tF.mse_loss(t, _t(targets), reduction=reduction), preds)


@SETTINGS
@given(st.lists(st.tuples(floats, st.sampled_from([-1.0, 1.0])), min_size=1, max_size=6),
       st.sampled_from(REDUCTIONS))
def test_hinge_matches_torch(pairs, reduction):
    scores, labels = map(tuple, zip(*pairs))
    reduce = {"mean": torch.mean, "sum": torch.sum}[reduction]
    _agree(lambda s: losses.hinge(s, labels, reduction),
           lambda t: reduce(tF.relu(1.0 - _t(labels) * t)), scores)


@SETTINGS
@given(st.lists(st.tuples(floats, st.floats(0.0, 1.0)), min_size=1, max_size=6),
       st.sampled_from(REDUCTIONS))
def test_binary_cross_entropy_matches_torch(pairs, reduction):
    logits, labels = map(tuple, zip(*pairs))
    _agree(lambda z: losses.binary_cross_entropy_with_logits(z, labels, reduction),
           lambda t: tF.binary_cross_entropy_with_logits(t, _t(labels), reduction=reduction),
           logits, rel=1e-9, abs=1e-12)


@SETTINGS
@given(st.integers(2, 5).flatmap(lambda k: st.tuples(
    st.lists(st.lists(floats, min_size=k, max_size=k), min_size=1, max_size=4),
    st.lists(st.integers(0, k - 1), min_size=4, max_size=4))),
    st.sampled_from(REDUCTIONS))
def test_softmax_cross_entropy_with_class_indices_matches_torch(case, reduction):
    logits, labels = case
    logits = tuple(map(tuple, logits))
    labels = tuple(labels[:len(logits)])
    _agree(lambda z: losses.softmax_cross_entropy(z, labels, reduction),
           lambda t: tF.cross_entropy(t, torch.tensor(labels), reduction=reduction),
           logits, rel=1e-9, abs=1e-12)


@SETTINGS
@given(st.lists(floats, min_size=3, max_size=3), st.lists(st.floats(0.01, 1.0), min_size=3,
                                                         max_size=3))
def test_softmax_cross_entropy_with_probabilities_matches_torch(logits, weights):
    probs = tuple(w / sum(weights) for w in weights)
    logits = (tuple(logits),)
    _agree(lambda z: losses.softmax_cross_entropy(z, (probs,)),
           lambda t: tF.cross_entropy(t, _t([probs])), logits, rel=1e-9, abs=1e-12)


def test_single_example_softmax_cross_entropy():
    z = (1.0, 2.0, 0.5)
    got = losses.softmax_cross_entropy(z, 1)
    assert got == pytest.approx(tF.cross_entropy(_t([z]), torch.tensor([1])).item(), rel=1e-14)


@pytest.mark.parametrize("z", [1000.0, -1000.0, 0.0, 700.0, -745.0])
@pytest.mark.parametrize("y", [0.0, 1.0, 0.3])
def test_binary_cross_entropy_is_finite_and_exact_at_extreme_logits(z, y):
    value, grad = fm.value_and_grad(lambda z: losses.binary_cross_entropy_with_logits(z, y))(z)
    t_value, (t_grad,) = _torch_value_and_grad(
        lambda t: tF.binary_cross_entropy_with_logits(t, _t([y])), [z])
    assert math.isfinite(value) and math.isfinite(grad)
    assert value == pytest.approx(t_value, rel=1e-12, abs=1e-300)
    assert grad == pytest.approx(t_grad, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("y", [0.0, 1.0, 0.25])
def test_binary_cross_entropy_gradient_at_zero_has_no_kink(y):
    assert fm.grad(lambda z: losses.binary_cross_entropy_with_logits(z, y))(0.0) == 0.5 - y


def test_binary_cross_entropy_second_derivative_matches_torch():
    for z in (-3.0, 0.0, 2.5, 1000.0):
        d2 = fm.grad(fm.grad(lambda z: losses.binary_cross_entropy_with_logits(z, 1.0)))(z)
        t = _t([z]).requires_grad_()
        (g,) = torch.autograd.grad(tF.binary_cross_entropy_with_logits(t, _t([1.0])), t,
                                   create_graph=True)
        (t_d2,) = torch.autograd.grad(g.sum(), t)
        assert d2 == pytest.approx(t_d2.item(), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("logits", [(1000.0, -1000.0, 0.0), (-1000.0, -1000.0, 1000.0),
                                    (1000.0, 1000.0, 1000.0), (-1000.0, -1000.0, -1000.0)])
@pytest.mark.parametrize("label", [0, 1, 2])
def test_softmax_cross_entropy_is_finite_and_exact_at_extreme_logits(logits, label):
    value, grads = fm.value_and_grad(
        lambda z: losses.softmax_cross_entropy(z, (label,)))((logits,))
    t_value, t_grads = _torch_value_and_grad(
        lambda t: tF.cross_entropy(t, torch.tensor([label])), [logits])
    assert math.isfinite(value) and all(map(math.isfinite, grads[0]))
    assert value == pytest.approx(t_value, rel=1e-12, abs=1e-12)
    assert grads[0] == pytest.approx(t_grads, rel=1e-12, abs=1e-12)


def test_reduction_none_gives_per_example_losses():
    assert losses.mse((1.0, 3.0), (0.0, 0.0), "none") == (1.0, 9.0)
    assert losses.hinge((2.0, 0.0), (1.0, -1.0), "none") == (0.0, 1.0)
    per = losses.softmax_cross_entropy(((0.0, 0.0), (5.0, 5.0)), (0, 1), "none")
    assert per == pytest.approx((math.log(2.0), math.log(2.0)), rel=1e-15)


def test_hinge_is_micrograds_max_margin():
    scores, labels = (0.3, -2.0, 1.5, -0.1), (1.0, -1.0, -1.0, 1.0)
    want = sum(max(0.0, 1.0 - y * s) for s, y in zip(scores, labels)) / 4
    assert losses.hinge(scores, labels) == pytest.approx(want, rel=1e-15)


def test_losses_build_graphs_on_exprs():
    out = fm.trace(lambda s: losses.hinge(s, (1.0, -1.0)))((0.5, 0.5))
    assert isinstance(out, fm.Expr) and out.value == 1.0


def test_l2_is_the_sum_of_squares_with_gradient_2p():
    params = {"w": (1.0, -2.0), "b": [3.0]}
    assert losses.l2(params) == 14.0
    g = fm.grad(losses.l2)(params)
    assert g["w"] == (2.0, -4.0) and list(g["b"]) == [6.0]


def test_errors():
    with pytest.raises(ValueError, match="2 predictions but 3 targets"):
        losses.mse((1.0, 2.0), (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="reduction"):
        losses.mse((1.0,), (1.0,), "avg")
    with pytest.raises(ValueError, match="out of range"):
        losses.softmax_cross_entropy((1.0, 2.0), 2)
    with pytest.raises(ValueError, match="class index"):
        losses.softmax_cross_entropy((1.0, 2.0), (1.0,))


def test_log_sum_exp_of_infinities_is_torchs():
    assert fm.losses.log_sum_exp((-math.inf, -math.inf)) == -math.inf
    assert fm.losses.log_sum_exp((math.inf, 0.0)) == math.inf


def test_softmax_cross_entropy_with_class_indices_under_jit_and_vmap():
    import numpy as np
    xs = [(0.5, -1.0), (1.0, 2.0), (-0.3, 0.2)]
    ys = [0, 2, 1]
    model = fm.nn.MLP.init(2, [4, 3], key=fm.random.key(0))
    loss = lambda m, b: fm.losses.softmax_cross_entropy([m(x) for x in b[0]], b[1])
    eager, grads = fm.value_and_grad(loss)(model, (xs, ys))
    traced, traced_grads = fm.jit(fm.value_and_grad(loss))(model, (xs, ys))
    assert traced == eager
    assert fm.tree.leaves(traced_grads) == pytest.approx(fm.tree.leaves(grads), abs=1e-15)
    per = lambda m, x, y: fm.losses.softmax_cross_entropy(m(x), y)
    mapped = fm.mean(fm.vmap(per, in_axes=(None, 0, 0))(model, np.array(xs), np.array(ys)))
    assert mapped == pytest.approx(eager, rel=1e-15)
    compiled = fm.jit(loss)
    assert compiled(model, (xs, ys)) == traced
    for bad in ([0, 2, 3], [0, 2, 0.5]):
        with pytest.raises(ValueError, match=r"label is (3\.0|0\.5).*class indices 0 \.\. 2"):
            fm.jit(loss)(model, (xs, bad))  # the call that traces checks its labels
        # and so do the compiled calls after it (they gave NaN until round 27)
        with pytest.raises(ValueError, match=r"label is (3\.0|0\.5).*class indices 0 \.\. 2"):
            compiled(model, (xs, bad))
    _, h1 = fm.train.fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], epochs=5)
    _, h2 = fm.train.fit(loss, model, fm.optim.adam(0.05), [(xs, ys)], epochs=5, jit=True)
    assert list(h2["loss"]) == pytest.approx(list(h1["loss"]), rel=1e-12)


def _softplus_exact(u):
    return u + math.log1p(math.exp(-u)) if u > 0 else math.log1p(math.exp(u))


def _sigmoid_exact(u):
    return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))


@pytest.mark.parametrize("z", [-700.0, -40.0, -37.0, -20.5, -1.0, 1.0, 20.5, 37.0, 40.0, 700.0])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_binary_cross_entropy_keeps_the_tails_that_cancellation_loses(z, y):
    # softplus(z) - z * y gave 0.0 at z = 40, y = 1, where the loss is 4.2e-18
    value, grad = fm.value_and_grad(lambda z: losses.binary_cross_entropy_with_logits(z, y))(z)
    assert value == pytest.approx(y * _softplus_exact(-z) + (1 - y) * _softplus_exact(z),
                                  rel=1e-14, abs=0.0)
    assert grad == pytest.approx(-y * _sigmoid_exact(-z) + (1 - y) * _sigmoid_exact(z),
                                 rel=1e-14, abs=0.0)


def test_binary_cross_entropy_compiled_gives_the_eager_bits():
    zs = [-40.0, -3.0, 0.0, 2.5, 40.0, 700.0]
    ys = [0.0, 1.0, 0.3, 1.0, 1.0, 0.0]

    def loss(w):
        return losses.binary_cross_entropy_with_logits([w * z for z in zs], ys)

    def per_example(w, z, y):
        return losses.binary_cross_entropy_with_logits(w * z, y)

    eager = fm.value_and_grad(loss)(1.0)
    assert fm.jit(fm.value_and_grad(loss))(1.0) == eager
    mapped = fm.jit(fm.grad(lambda w: fm.sum(fm.vmap(per_example, in_axes=(None, 0, 0))(
        w, np.array(zs), np.array(ys)))))(1.0)
    assert mapped == pytest.approx(eager[1] * len(zs), rel=1e-15)


@pytest.mark.parametrize("z", [1e-17, 1e-8, -3e-5, 0.7, 40.0, -40.0])
def test_binary_cross_entropy_slope_in_the_label_is_exactly_minus_the_logit(z):
    # log_sigmoid(-z) - log_sigmoid(z) cancels near z = 0 (5e-9 relative at 1e-8)
    bce = losses.binary_cross_entropy_with_logits
    assert fm.grad(bce, argnums=1)(z, 0.3) == -z
    assert fm.jit(fm.grad(bce, argnums=1))(z, 1.0) == -z
    assert fm.vmap(fm.grad(bce, argnums=1))(np.array([z]), np.array([0.0])) == (-z,)
    assert fm.hessian(bce, argnums=(0, 1))(z, 0.25)[0][1] == -1.0
    value, slope = fm.value_and_grad(bce, argnums=1)(z, 1.0)
    assert value == bce(z, 1.0)  # the label's slope does not move the value


def _torch_bce_derivatives(z, y):
    """torch's (float64) value, gradient in (z, y) and Hessian, flattened."""
    zt, yt = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (z, y))
    value = tF.binary_cross_entropy_with_logits(zt, yt)
    gz, gy = torch.autograd.grad(value, (zt, yt), create_graph=True)
    rows = [torch.autograd.grad(g, (zt, yt), allow_unused=True, retain_graph=True)
            for g in (gz, gy)]
    return [value.item(), gz.item(), gy.item(),
            *[0.0 if h is None else h.item() for row in rows for h in row]]


def _fm_bce_derivatives(run, z, y):
    bce = losses.binary_cross_entropy_with_logits
    grads = run(fm.grad(bce, argnums=(0, 1)))(z, y)
    hess = run(fm.hessian(bce, argnums=(0, 1)))(z, y)
    return [float(g) for g in (*grads, *hess[0], *hess[1])]


def _same_float(a, b):
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _vmapped(f):
    return lambda z, y: fm.vmap(f)(np.array([z]), np.array([y]))[0]  # one example's


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # 0 * inf in the value, as torch's nan
@pytest.mark.parametrize("run", [lambda f: f, fm.jit, _vmapped], ids=["eager", "jit", "vmap"])
@pytest.mark.parametrize("z", [-math.inf, -800.0, -3.0, 0.0, 0.5, 800.0, math.inf])
@pytest.mark.parametrize("y", [0.0, 0.3, 1.0])
def test_binary_cross_entropy_derivatives_in_logit_and_label_are_torchs(run, z, y):
    # at an infinite logit the slope in the label was -+1.8e308 (the logit clipped to the
    # finite floats) where torch's is -z = -+inf, and d2/dz dy was 0 where torch's is -1
    want = _torch_bce_derivatives(z, y)[1:]
    got = _fm_bce_derivatives(run, z, y)
    # the label's slope and every second derivative but d2/dz2: torch's formula, bitwise
    assert all(map(_same_float, got[1:2] + got[3:], want[1:2] + want[3:])), (got, want)
    # d/dz and d2/dz2: fm's tail-exact form, within rounding of torch's
    assert got[0] == pytest.approx(want[0], rel=1e-12, abs=0.0)
    assert got[2] == pytest.approx(want[2], rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("z", [-math.inf, math.inf])
@pytest.mark.parametrize("y", [0.0, 0.3, 1.0])
def test_binary_cross_entropy_value_at_an_infinite_logit_with_a_differentiated_label(z, y):
    # torch's value is nan at (-inf, y > 0) ((1 - y) * z - log_sigmoid(z) is inf - inf);
    # fm keeps the loss's limit there, and the label's slope does not move it
    bce = losses.binary_cross_entropy_with_logits
    want = _torch_bce_derivatives(z, y)[0]
    value, _ = fm.value_and_grad(bce, argnums=(0, 1))(z, y)
    assert _same_float(value, bce(z, y))
    assert _same_float(value, want) or (want != want and value == math.inf)


def test_labels_that_are_jit_inputs_are_checked_at_every_compiled_call():
    import numpy as np

    hinge = fm.jit(fm.losses.hinge)
    assert hinge(2.0, 1.0) == 0.0
    # a label 3.0 after a first call with 1.0 gave relu(1 - 3 * 2) = 0.0
    with pytest.raises(ValueError, match=r"hinge: the label is 3\.0, but hinge expects labels -1 "
                                         r"or \+1"):
        hinge(2.0, 3.0)
    assert hinge(0.5, -1.0) == 1.5
    bce = fm.jit(fm.losses.binary_cross_entropy_with_logits)
    assert bce(1.0, 1.0) == pytest.approx(0.31326168751822286, rel=1e-15)
    with pytest.raises(ValueError, match=r"the label is -1\.0, but binary_cross_entropy_with_"):
        bce(1.0, -1.0)  # it gave 2.313
    assert bce(1.0, 0.5) == fm.losses.binary_cross_entropy_with_logits(1.0, 0.5)

    # a batch of labels that vmap maps, as an array argument's column or a tuple
    X, Y = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([1.0, -1.0, 1.0])
    per = lambda w, x, y: fm.losses.hinge(w * x[0], y)  # noqa: E731
    loss = lambda w, X, Y: fm.mean(fm.vmap(per, in_axes=(None, 0, 0))(w, X, Y))  # noqa: E731
    for eager in (loss, fm.grad(loss)):
        f = fm.jit(eager)
        assert f(0.5, X, Y) == pytest.approx(eager(0.5, X, Y), rel=1e-15)
        bad = Y.copy()
        bad[1] = 0.0
        with pytest.raises(ValueError, match=r"label at batch index 1 is 0\.0"):
            f(0.5, X, bad)
        assert f(0.5, X, -Y) == pytest.approx(eager(0.5, X, -Y), rel=1e-15)
    pairs = fm.jit(lambda w, xs, ys: fm.mean(fm.vmap(lambda x, y: fm.losses.hinge(w * x, y))(
        xs, ys)))
    assert pairs(0.5, (1.0, 2.0), (1.0, -1.0)) == 1.25
    with pytest.raises(ValueError, match=r"label at batch index 1 is 2\.0"):
        pairs(0.5, (1.0, 2.0), (1.0, 2.0))


@pytest.mark.parametrize("loss", [fm.losses.mse, fm.losses.hinge,
                                  fm.losses.binary_cross_entropy_with_logits])
def test_several_numbers_per_example_are_refused(loss):
    # a (B, K) array's rows went through as arrays: mse gave array([5., 10.]) (one mean
    # per column) for what torch's mse_loss gives as 7.5, and grad then blamed the
    # user's arithmetic; tuples per example raised a bare TypeError from `-`
    with pytest.raises(ValueError, match=r"prediction 0 is an array of shape \(2,\), not one"):
        loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="prediction 0 is a tuple of length 2"):
        loss([(1.0, 2.0)], [1.0])
    with pytest.raises(ValueError, match="target 1 is a list of length 1"):
        loss([1.0, 1.0], [1.0, [1.0]])


@pytest.mark.parametrize("loss", [fm.losses.mse, fm.losses.hinge,
                                  fm.losses.binary_cross_entropy_with_logits])
def test_zero_d_arrays_are_numbers(loss):
    # a 0-d array counted as a sequence: len() of unsized object
    assert loss(np.array(0.5), np.array(1.0)) == loss(0.5, 1.0)
    assert loss([np.array(0.5)], np.array([1.0])) == loss([0.5], [1.0])


@pytest.mark.parametrize("loss, good, bad, said", [
    (lambda s, y: losses.hinge(s, 2.0 * y - 1.0), (1.0, 0.0), (0.5, 0.0), "hinge expects"),
    (lambda s, y: losses.binary_cross_entropy_with_logits(s, (y + 1.0) / 2.0), (1.0, -1.0),
     (3.0, -1.0), "binary_cross_entropy_with_logits expects"),
])
def test_a_label_computed_in_a_jitted_function_is_checked_at_every_call(loss, good, bad, said):
    # it was checked at the trace only: a later call with a label of 0 gave hinge's
    # number, where the function raises (an outside probe, round 45)
    import numpy as np

    scores = (0.3, -2.0)
    plain = lambda s, y: fm.sum([loss(a, b) for a, b in zip(s, y)])  # noqa: E731
    mapped = lambda s, y: fm.sum(fm.vmap(loss)(s, y))  # noqa: E731
    for f, args in [(plain, lambda y: (scores, y)),
                    (mapped, lambda y: (np.array(scores), np.array(y)))]:
        compiled = fm.jit(f)
        assert compiled(*args(good)) == pytest.approx(f(*args(good)), rel=1e-15)
        with pytest.raises(ValueError, match=said):
            f(*args(bad))
        with pytest.raises(ValueError, match=said):
            compiled(*args(bad))
        assert compiled(*args(good)) == pytest.approx(f(*args(good)), rel=1e-15)
        step = fm.jit(fm.value_and_grad(lambda w, s, y, f=f: f(s * w, y)))  # (a derivative too)
        s, y = args(good)
        step(0.5, np.array(s), y)
        with pytest.raises(ValueError, match=said):
            step(0.5, np.array(s), args(bad)[1])


@pytest.mark.parametrize("label", [lambda y: 2.0 * y - 1.0, lambda y: y])
def test_labels_under_vmap_of_a_jitted_function_are_checked_at_every_call(label):
    # vmap(jit(f)) checked them at the trace only: a later label of 0 gave hinge's
    # numbers where the loop raises (a re-review of round 45)
    import numpy as np

    f = fm.vmap(fm.jit(lambda w, s, y: losses.hinge(w * s, label(y))), in_axes=(None, 0, 0))
    s = np.array([0.3, -2.0, 0.5])
    good = np.array([1.0, 0.0, 1.0]) if label(0.0) == -1.0 else np.array([1.0, -1.0, 1.0])
    bad = np.array([1.0, 0.5, 1.0]) if label(0.0) == -1.0 else np.array([1.0, 0.0, 1.0])
    expected = tuple(losses.hinge(0.5 * a, label(b)) for a, b in zip(s, good))
    assert f(0.5, s, good) == pytest.approx(expected, rel=1e-15)
    with pytest.raises(ValueError, match="hinge expects labels -1 or"):
        f(0.5, s, bad)
    assert f(0.5, s, good) == pytest.approx(expected, rel=1e-15)
