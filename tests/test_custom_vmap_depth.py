"""custom_vjp and custom_jvp whose function or rule uses a transform inside
(``fm.grad``), under ``vmap`` and differentiated from outside it: the rule
runs at the ``vmap`` depth of the call, not at the depth of the sweep or of
the compiled code that reaches the node.

Each stack is run on ``f`` itself and on a ``custom_vjp`` / ``custom_jvp`` of
``f`` whose rule is ``f``'s true derivative: the numbers must agree (1e-12),
or both calls must raise the same error.
"""

import pytest

import fmicrograd as fm


def f(x, c):
    return fm.grad(lambda y: fm.sin(y) * y * c)(x) * x + c * x


def _custom_vjp():
    g = fm.custom_vjp(f)
    g.defvjp(lambda x, c: (f(x, c), (x, c)), lambda res, ct: fm.vjp(f, *res)[1](ct))
    return g


def _custom_vjp_grad_in_rule():
    # the rule itself calls fm.grad (the function does not)
    def plain(x, c):
        return fm.sin(x) * x * c

    g = fm.custom_vjp(plain)
    g.defvjp(lambda x, c: (plain(x, c), (x, c)),
             lambda res, ct: (fm.grad(plain)(*res) * ct, fm.grad(plain, argnums=1)(*res) * ct))
    return g, plain


def _custom_jvp():
    h = fm.custom_jvp(f)
    h.defjvp(lambda primals, tangents: fm.jvp(f, primals, tangents))
    return h


XS = [0.3, -1.1]


def _sum_vmap(k, c):
    return fm.sum(fm.vmap(k, in_axes=(0, None))(XS, c))


STACKS = {
    "vmap": lambda k: fm.vmap(k)(XS, [0.4, 0.9]),
    "jit(vmap)": lambda k: fm.jit(fm.vmap(k))(XS, [0.4, 0.9]),
    "vmap(jit)": lambda k: fm.vmap(fm.jit(k))(XS, [0.4, 0.9]),
    "grad(vmap)": lambda k: fm.grad(lambda c: _sum_vmap(k, c))(0.4),
    "grad(vmap) in x": lambda k: fm.grad(lambda x: fm.sum(fm.vmap(k)([x, 0.5 * x], XS)))(0.7),
    "jit(grad(vmap))": lambda k: fm.jit(fm.grad(lambda c: _sum_vmap(k, c)))(0.4),
    "grad(jit(vmap))": lambda k: fm.grad(
        lambda c: fm.sum(fm.jit(fm.vmap(k, in_axes=(0, None)))(XS, c)))(0.4),
    "grad(vmap(jit))": lambda k: fm.grad(
        lambda c: fm.sum(fm.vmap(fm.jit(k), in_axes=(0, None))(XS, c)))(0.4),
    "jvp(vmap)": lambda k: fm.jvp(lambda x: fm.vmap(k)([x, 0.5 * x], XS), (0.7,), (1.0,)),
    "jvp(jit(vmap))": lambda k: fm.jvp(lambda x: fm.jit(fm.vmap(k))([x, 0.5 * x], XS),
                                       (0.7,), (1.0,)),
    "jacrev(vmap)": lambda k: fm.jacrev(lambda c: fm.vmap(k, in_axes=(0, None))(XS, c))(0.4),
    "jacfwd(vmap)": lambda k: fm.jacfwd(lambda c: fm.vmap(k, in_axes=(0, None))(XS, c))(0.4),
    "grad(grad(vmap))": lambda k: fm.grad(fm.grad(
        lambda x: fm.sum(fm.vmap(k)([x, 0.5 * x], XS))))(0.7),
    "hessian(jit(vmap))": lambda k: fm.hessian(
        lambda x: fm.sum(fm.jit(fm.vmap(k))([x, 0.5 * x], XS)))(0.7),
    "vmap(grad)": lambda k: fm.vmap(fm.grad(k))(XS, [0.4, 0.9]),
    "jit(vmap(grad))": lambda k: fm.jit(fm.vmap(fm.grad(k)))(XS, [0.4, 0.9]),
    "vmap(vjp function)": lambda k: fm.vmap(fm.vjp(k, 0.3, 0.4)[1])([1.0, 2.0]),
    "vmap(vmap(vjp function))": lambda k: fm.vmap(
        lambda x: fm.vmap(fm.vjp(k, x, 0.4)[1])([1.0, 2.0]))(XS),
    "vmap(jit(grad(jit(vmap))))": lambda k: fm.vmap(fm.jit(fm.grad(
        lambda c: fm.sum(fm.jit(fm.vmap(k, in_axes=(0, None)))(XS, c)))))([0.4, 0.9]),
}


def _run(stack, k):
    try:
        return fm.tree.leaves(stack(k)), None
    except (TypeError, ValueError) as e:
        return None, type(e)


def _assert_same(stack, plain, custom):
    want, want_error = _run(stack, plain)
    got, got_error = _run(stack, custom)
    assert got_error == want_error
    if want is not None:
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g == pytest.approx(w, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("name", list(STACKS))
def test_custom_vjp_with_grad_inside_matches_the_plain_function(name):
    _assert_same(STACKS[name], f, _custom_vjp())


@pytest.mark.parametrize("name", list(STACKS))
def test_custom_jvp_with_grad_inside_matches_the_plain_function(name):
    _assert_same(STACKS[name], f, _custom_jvp())


@pytest.mark.parametrize("name", list(STACKS))
def test_custom_vjp_whose_rule_uses_grad_matches_the_plain_function(name):
    custom, plain = _custom_vjp_grad_in_rule()
    _assert_same(STACKS[name], plain, custom)


def test_the_stacks_give_numbers():
    # the comparisons above compare numbers, not two errors
    for name, stack in STACKS.items():
        assert _run(stack, _custom_vjp())[1] is None, name


def test_custom_vjp_at_vmap_of_grad_of_vmap_matches_a_loop():
    # the per-example derivative, one outer example at a time
    cs = [0.4, 0.9]
    k = _custom_vjp()
    got = fm.vmap(fm.grad(lambda c: _sum_vmap(k, c)))(cs)
    want = [fm.grad(lambda c: fm.sum([f(x, c) for x in XS]))(c) for c in cs]
    assert list(got) == pytest.approx(want, rel=1e-12)
