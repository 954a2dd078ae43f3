"""Closures in ``checkpoint`` and ``custom_vjp`` never leak a graph node into a
result, and give the numbers of the same function without them (or of torch).

``fm.checkpoint(f)`` whose ``f`` closes over ``fm.stop_gradient(x)`` of the
value ``x`` being differentiated used to return an ``Expr``: the rerun of
``f`` in the reverse sweep built the derivative on a graph (the closed-over
variable is older than the rerun's own) and handed it back as a node. A
``custom_vjp`` whose ``bwd`` closes over a value being differentiated leaked
the same way. Closing over that value without ``stop_gradient``, in
``checkpoint`` or a ``custom_vjp``'s ``fwd``, stays an error naming the fix.
"""

import math
import re

import numpy as np
import pytest
import torch
from torch.utils.checkpoint import checkpoint as torch_checkpoint

import fmicrograd as fm

torch.set_default_dtype(torch.float64)


def with_checkpoint(x):
    return fm.checkpoint(lambda y: y * y * fm.stop_gradient(x))(x)


def without_checkpoint(x):
    return (lambda y: y * y * fm.stop_gradient(x))(x)


def torch_reference(value):
    """First and second derivative of the same checkpointed function in torch."""
    x = torch.tensor(value, requires_grad=True)
    out = torch_checkpoint(lambda y: y * y * x.detach(), x, use_reentrant=False)
    (g1,) = torch.autograd.grad(out, x, create_graph=True)
    (g2,) = torch.autograd.grad(g1, x)
    return g1.item(), g2.item()


def test_the_brief_example_gives_the_float_of_the_function_without_checkpoint():
    got = fm.grad(lambda x: fm.checkpoint(lambda y: y * fm.stop_gradient(x))(x))(2.0)
    want = fm.grad(lambda x: (lambda y: y * fm.stop_gradient(x))(x))(2.0)
    assert type(got) is float and got == want == 2.0


@pytest.mark.parametrize("transform", [
    fm.grad,
    fm.hessian,
    lambda f: fm.grad(fm.grad(f)),
    lambda f: fm.jit(fm.grad(f)),
    lambda f: fm.jit(fm.hessian(f)),
    lambda f: fm.jacfwd(f),
    lambda f: fm.jacrev(f),
    lambda f: (lambda x: fm.jvp(f, (x,), (1.0,))),
    lambda f: (lambda x: fm.value_and_grad(f)(x)),
])
@pytest.mark.parametrize("x", [2.0, -0.5])
def test_checkpoint_closing_over_a_stopped_value_equals_the_function_without_it(transform, x):
    got, want = transform(with_checkpoint)(x), transform(without_checkpoint)(x)
    assert got == want
    assert all(type(v) is float for v in (got if isinstance(got, tuple) else (got,)))


def test_checkpoint_closing_over_a_stopped_value_matches_torch():
    for x in (2.0, -0.5, 3.0):
        assert (fm.grad(with_checkpoint)(x), fm.hessian(with_checkpoint)(x)) == torch_reference(x)


def test_checkpoint_closing_over_a_stopped_value_under_vmap():
    xs = (2.0, -0.5, 3.0)
    want = tuple(fm.grad(without_checkpoint)(x) for x in xs)
    assert fm.vmap(fm.grad(with_checkpoint))(xs) == want
    assert fm.grad(lambda v: fm.sum(fm.vmap(with_checkpoint)(v)))(xs) == want
    assert fm.jit(fm.vmap(fm.grad(with_checkpoint)))(np.array(xs)) == want


def test_checkpoint_closing_over_the_differentiated_value_names_the_fix():
    message = ("checkpoint: <lambda> closes over a value that fm.grad differentiates, but its "
               "rule only gives derivatives for its arguments; pass that value as an argument "
               "instead")
    with pytest.raises(TypeError, match=re.escape(message)):
        fm.grad(lambda x: fm.checkpoint(lambda y: y * x)(x))(2.0)
    # the fix: x as an argument
    assert fm.grad(lambda x: fm.checkpoint(lambda y, z: y * z)(x, x))(2.0) == 4.0


def test_a_value_behind_stop_gradient_gives_a_plain_number():
    w = fm.Var(2.0)  # a variable of no running transform, seen only behind stop_gradient
    got = fm.grad(lambda y: y * fm.stop_gradient(w))(3.0)
    assert type(got) is float and got == 2.0


def closing_bwd(x, stopped=False):
    """``f(y) = y * y`` whose rule, ``2 y g x``, closes over ``x``."""
    held = fm.stop_gradient(x) if stopped else x

    @fm.custom_vjp
    def f(y):
        return y * y

    f.defvjp(lambda y: (y * y, y), lambda y, g: (2.0 * y * g * held,))
    return f


def torch_square_whose_backward_scales_by(w):
    """torch's ``y * y`` whose backward closes over ``w``: ``2 y g w``."""

    class F(torch.autograd.Function):
        @staticmethod
        def forward(ctx, y):
            ctx.save_for_backward(y)
            return y * y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return 2.0 * y * g * w

    return F


def torch_closing_bwd(value):
    x = torch.tensor(value, requires_grad=True)
    F = torch_square_whose_backward_scales_by(x)
    (g1,) = torch.autograd.grad(F.apply(x), x, create_graph=True)
    (g2,) = torch.autograd.grad(g1, x)
    return g1.item(), g2.item()


@pytest.mark.parametrize("x", [3.0, -1.5])
def test_custom_vjp_whose_bwd_closes_over_the_differentiated_value_matches_torch(x):
    f = lambda v: closing_bwd(v)(v)  # noqa: E731
    g1, g2 = torch_closing_bwd(x)
    got = fm.grad(f)(x)
    assert type(got) is float and got == g1 == 2.0 * x * x
    assert fm.jit(fm.grad(f))(x) == g1
    assert fm.hessian(f)(x) == g2 == fm.grad(fm.grad(f))(x) == fm.jit(fm.hessian(f))(x)
    stopped = fm.grad(lambda v: closing_bwd(v, stopped=True)(v))(x)
    assert type(stopped) is float and stopped == g1


def test_custom_vjp_whose_bwd_closes_over_values_under_vmap():
    xs = (3.0, -1.5, 0.5)
    f = lambda v: closing_bwd(v)(v)  # noqa: E731
    assert fm.vmap(fm.grad(f))(xs) == tuple(2.0 * x * x for x in xs)
    assert fm.grad(lambda v: fm.sum(fm.vmap(f)(v)))(xs) == tuple(2.0 * x * x for x in xs)


def test_custom_vjp_whose_bwd_closes_over_an_outer_value_is_differentiated_through_it():
    # inner derivative 2 y w at y = 3 is 6 w; its derivative in w is 6 (torch: the same)
    got = fm.grad(lambda w: fm.grad(lambda y: closing_bwd(w)(y))(3.0))(2.0)
    w = torch.tensor(2.0, requires_grad=True)
    y = torch.tensor(3.0, requires_grad=True)
    F = torch_square_whose_backward_scales_by(w)
    (inner,) = torch.autograd.grad(F.apply(y), y, create_graph=True)
    (outer,) = torch.autograd.grad(inner, w)
    assert type(got) is float and got == outer.item() == 6.0


def test_custom_vjp_whose_fwd_closes_over_the_differentiated_value_stays_an_error():
    def outer(a):
        @fm.custom_vjp
        def times_a(x):
            return x * a

        times_a.defvjp(lambda x: (x * a, None), lambda res, g: (g * a,))
        return times_a(2.0 * a)

    with pytest.raises(TypeError, match="custom_vjp: times_a closes over a value that fm.grad "
                                        "differentiates, but its rule only gives derivatives "
                                        "for its arguments; pass that value as an argument"):
        fm.grad(outer)(3.0)


def test_no_result_is_a_node_for_plain_inputs():
    for f in (with_checkpoint, lambda v: closing_bwd(v)(v),
              lambda v: closing_bwd(v, stopped=True)(v)):
        for transform in (fm.grad, fm.hessian, fm.jacfwd, fm.jacrev):
            value = transform(f)(1.25)
            assert type(value) is float and math.isfinite(value)
