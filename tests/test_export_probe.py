"""fm.to_torch: torch autograd of the exported function gives fm's derivatives
where the lowered program used to differ (found by a differential fuzzer)."""

import numpy as np
import pytest
import torch

import fmicrograd as fm


def t64(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


def torch_grads(f, point):
    xs = [t64([v], grad=True) for v in point]
    out = fm.to_torch(f)(*xs).sum()
    grads = torch.autograd.grad(out, xs, allow_unused=True)
    return [0.0 if g is None else g.item() for g in grads]


def torch_hessian(f, point):
    xs = [t64([v], grad=True) for v in point]
    out = fm.to_torch(f)(*xs).sum()
    grads = torch.autograd.grad(out, xs, create_graph=True)
    rows = []
    for g in grads:
        second = torch.autograd.grad(g.sum(), xs, retain_graph=True, allow_unused=True)
        rows.append([0.0 if h is None else h.item() for h in second])
    return rows


@pytest.mark.parametrize("f", [
    lambda x, y: fm.stop_gradient(fm.sqrt(x)) + fm.sqrt(y),
    lambda x, y: fm.stop_gradient(fm.log(x)) * y + fm.log(y),
    lambda x, y: fm.greater(fm.sqrt(x), 0.5) + fm.sqrt(y),
    lambda x, y: fm.where(fm.greater(fm.sqrt(x), 0.5), y, 2.0 * y) + fm.sqrt(y),
])
def test_a_value_only_stop_gradient_or_a_comparison_reads_gets_no_nan_derivative(f):
    # sqrt(x) and sqrt(y) ran as one torch operation: x's row got a zero
    # cotangent times sqrt's infinite slope at 0, NaN, where fm gives 0
    point = (0.0, 1.0)
    want = fm.grad(f, argnums=(0, 1))(*point)
    assert np.isfinite(want[0])
    np.testing.assert_allclose(torch_grads(f, point), want, rtol=1e-12, atol=0)


def test_a_cut_program_still_computes_the_gradient():
    # detaching a value both a select's branch and a cut node read (softplus's
    # rule under a maximum) must not merge two rows of one operation
    def f(x0, x2):
        v4 = fm.softplus((x0 * x0 + 0.5) ** -2)
        return fm.maximum(v4, -0.545) * 1.45 + (2.0 ** fm.tanh(fm.cos(x2))) * -0.606

    g = fm.grad(f, argnums=(0, 1))
    xs, ys = [0.3, 1.1, -0.7], [0.7, -0.5, 2.0]
    got = fm.to_torch(g)(t64(xs), t64(ys))
    want = [g(x, y) for x, y in zip(xs, ys)]
    np.testing.assert_allclose(torch.stack(got, 1).numpy(), want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("point", [(0.3, 0.0), (0.3, 0.7), (-1.2, 0.0), (2.0, -0.4)])
def test_a_traced_exponent_has_fms_hessian(point):
    # torch's pow masks d/da where the exponent is 0, so d2/da db was 0 there,
    # not 1 / a: an asymmetric Hessian with one wrong corner
    def f(x, y):
        return (x * x + 0.5) ** fm.tanh(y) + x ** 2.0

    want = fm.hessian(lambda p: f(*p))(point)
    np.testing.assert_allclose(torch_hessian(f, point), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(torch_grads(f, point), fm.grad(f, argnums=(0, 1))(*point),
                               rtol=1e-12, atol=0)


@pytest.mark.parametrize("point", [(0.0, 0.0), (0.0, 1.5), (2.0, 0.0), (1.0, 1.0)])
def test_a_traced_power_at_zeros_follows_fms_rule(point):
    f = lambda x, y: x ** y  # noqa: E731
    np.testing.assert_allclose(torch_grads(f, point), fm.grad(f, argnums=(0, 1))(*point),
                               rtol=1e-12, atol=0)
    hess = torch_hessian(f, point)
    want = fm.hessian(lambda p: f(*p))(point)
    assert hess[0][1] == pytest.approx(want[0][1], rel=1e-12, nan_ok=True)


def test_a_traced_power_works_in_torch_forward_mode():
    f = fm.to_torch(lambda x, y: (x * x + 0.5) ** fm.tanh(y))
    x, y = t64([0.3, -1.0]), t64([0.0, 0.8])
    f(x, y)  # traced on plain tensors first
    _, tangent = torch.func.jvp(lambda a, b: f(a, b), (x, y), (torch.ones(2, dtype=torch.float64),
                                                               torch.ones(2, dtype=torch.float64)))
    g = fm.grad(lambda a, b: (a * a + 0.5) ** fm.tanh(b), argnums=(0, 1))
    want = [sum(g(a, b)) for a, b in zip(x.tolist(), y.tolist())]
    np.testing.assert_allclose(tangent.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("f", [
    lambda x: fm.div(1.0, fm.relu(x)),  # -inf before
    lambda x: fm.atan2(x, fm.relu(x)),  # -pi before
    lambda x: fm.relu(x),
])
def test_relu_of_negative_zero_is_positive_zero_as_in_fm(f):
    xs = [-0.0, 0.0, -1.0, 2.0]
    got = fm.to_torch(f)(t64(xs)).tolist()
    assert list(map(repr, got)) == [repr(fm.jit(f)(x)) for x in xs]
    assert repr(got[0]) == repr(fm.jit(f)(-0.0)) == repr(f(fm.Var(-0.0)).value)


def test_a_cut_node_equal_to_a_kept_one_is_one_node():
    # tanh(atan(-y)) is read only by a condition (cut, reading a detached
    # atan), tanh(stop_gradient(atan(-y))) by a branch: after the cut, two
    # equal nodes, which the array code must not see (a reshape error before)
    def f(x, y):
        v4 = fm.atan(-y)
        v6 = fm.expm1(fm.tanh(v4))
        v8 = fm.where(fm.less_equal(v6, -0.77), fm.tanh(fm.stop_gradient(v4)), x)
        return fm.sqrt(v8 * v8 + 0.3) + fm.maximum(fm.logsumexp([x, y]), v8)

    xs, ys = [0.3, 1.1, -0.7, 0.2, 1.5], [0.7, -0.5, 2.0, 1.9, -1.2]
    out = fm.to_torch(f)(t64(xs), t64(ys))
    np.testing.assert_allclose(out.numpy(), [f(x, y) for x, y in zip(xs, ys)], rtol=1e-12)
    g = fm.grad(f, argnums=(0, 1))
    got = fm.to_torch(g)(t64(xs), t64(ys))
    np.testing.assert_allclose(torch.stack(got, 1).numpy(), [g(x, y) for x, y in zip(xs, ys)],
                               rtol=1e-12, atol=1e-15)


def test_a_python_comparison_in_where_chooses_per_example_whatever_the_batch():
    # examples that agree made x > 0.0 one bool, which a torch graph cannot follow: it
    # was an error naming fm.greater (round 18: the comparison stays per example)
    f = fm.to_torch(lambda x: fm.where(x > 0.0, x, -x))
    g = fm.to_torch(lambda x: fm.where(fm.greater(x, 0.0), x, -x))
    for xs in ([1.0, 2.0], [1.0, -2.0], [-3.0]):
        assert f(torch.tensor(xs, dtype=torch.float64)).tolist() == [abs(v) for v in xs]
        assert g(torch.tensor(xs, dtype=torch.float64)).tolist() == [abs(v) for v in xs]


def test_an_inner_jit_is_traced_with_the_function():
    """Since round 28 ``to_torch`` traces as ``jit`` does, and an inner jitted
    function is traced with it (as ``jit(jit(f))``); it was a NotImplementedError."""
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    y = fm.to_torch(fm.jit(lambda v: fm.sin(v) * 2.0))(x)
    y.sum().backward()
    assert y.tolist() == [fm.sin(1.0) * 2.0, fm.sin(2.0) * 2.0]
    assert x.grad.tolist() == [fm.grad(lambda v: fm.sin(v) * 2.0)(v) for v in (1.0, 2.0)]
    h = fm.to_torch(fm.jit(lambda v: fm.where(v > 0, v, -v)))  # no branch fixed by the trace
    assert h(torch.tensor([1.0, -2.0], dtype=torch.float64)).tolist() == [1.0, 2.0]
    assert h(torch.tensor([-3.0, 2.0], dtype=torch.float64)).tolist() == [3.0, 2.0]


def _t(values):
    return torch.tensor(values, dtype=torch.float64)


def test_to_torch_refuses_values_its_program_would_freeze():
    """``x.value`` and text made of a traced value were frozen at the first
    call's numbers: ``[5, 14]`` for ``[25, 49]`` (round 28)."""
    for in_axes, arg in ((0, [1.0, 2.0]), (None, 1.0)):
        with pytest.raises(TypeError, match="x.value on .* fm.to_torch is tracing"):
            fm.to_torch(lambda a: a * a.value, in_axes=in_axes)(_t(arg))
    with pytest.raises(NotImplementedError, match="turns a traced value into text"):
        fm.to_torch(lambda a: a * float(f"{a:.3g}"), in_axes=None)(_t(1.0))


def test_to_torch_checks_loss_labels_at_every_call():
    """A bad label passed on a later call computed silently (a hinge of 1.0
    for label 0.0, a negative cross-entropy, NaN); the first call's raised."""
    hinge = fm.to_torch(fm.losses.hinge)
    assert hinge(_t([0.5, 0.5]), _t([1.0, -1.0])).tolist() == [0.5, 1.5]
    with pytest.raises(ValueError, match="hinge"):
        hinge(_t([0.5, 0.5]), _t([3.0, 0.0]))
    bce = fm.to_torch(fm.losses.binary_cross_entropy_with_logits)
    bce(_t([0.5, 0.5]), _t([1.0, 0.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        bce(_t([0.5, 0.5]), _t([3.0, -2.0]))
    ce = fm.to_torch(lambda a, b, c, y: fm.losses.softmax_cross_entropy([a, b, c], y))
    ce(_t([0.5, 0.1]), _t([1.0, 0.2]), _t([2.0, 0.3]), _t([0.0, 2.0]))
    with pytest.raises(ValueError, match="softmax_cross_entropy"):
        ce(_t([0.5, 0.1]), _t([1.0, 0.2]), _t([2.0, 0.3]), _t([5.0, -1.0]))
    assert hinge(_t([0.5, 0.5]), _t([1.0, -1.0])).tolist() == [0.5, 1.5]  # good ones still run
