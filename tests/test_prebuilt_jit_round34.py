"""micrograd's prebuilt graph (``c = a * a`` then a transform of ``lambda a: c``)
through ``fm.jit``: the ``ValueError`` every other transform raises, never 0.0."""

import pytest

import fmicrograd as fm

PREBUILT = "built before the call from the node passed"


@pytest.mark.parametrize("inner", [
    fm.grad, fm.value_and_grad, fm.hessian, fm.jacfwd, fm.jacrev,
    lambda f: fm.grad(fm.grad(f)),
], ids=["grad", "value_and_grad", "hessian", "jacfwd", "jacrev", "grad(grad)"])
def test_jit_of_a_transform_of_a_prebuilt_output_is_the_error(inner):
    a = fm.Var(2.0)
    c = a * a
    with pytest.raises(ValueError, match=PREBUILT):
        inner(lambda a: c)(a)  # (as without jit)
    with pytest.raises(ValueError, match=PREBUILT):
        fm.jit(inner(lambda a: c))(a)


def test_a_float_call_first_compiles_the_constant_and_a_later_var_call_is_the_error():
    a = fm.Var(2.0)
    c = a * a
    f = fm.jit(fm.grad(lambda a: c))
    assert f(3.0) == 0.0 == f(3.0)  # a float: c is a closed-over constant, as in JAX
    with pytest.raises(ValueError, match=PREBUILT):
        f(a)  # the compiled program of the float call: still the error
    with pytest.raises(ValueError, match=PREBUILT):
        f(a)
    assert f(4.0) == 0.0


def test_another_var_or_an_output_that_uses_the_argument_is_not_the_error():
    a, b = fm.Var(2.0), fm.Var(5.0)
    c = a * a
    f = fm.jit(fm.grad(lambda x: c))
    out = f(b)  # c holds a, not b: a constant for this call
    assert isinstance(out, fm.Expr) and out.value == 0.0
    g = fm.jit(fm.grad(lambda x, y: c + x * y))
    assert g(a, 3.0).value == 3.0  # uses its parameter: d/dx = y
    h = fm.jit(fm.grad(lambda x, y: c * y, argnums=1))
    assert h(a, 3.0).value == 4.0  # the derivative in y of c * y is c, built from a


def test_the_second_position_is_checked_where_the_var_is_passed():
    a = fm.Var(2.0)
    c = a * 3.0
    f = fm.jit(fm.grad(lambda x, y: c, argnums=1))
    assert f(a, 1.0) == 0.0  # a at position 0, not differentiated; c is a constant
    with pytest.raises(ValueError, match=PREBUILT):
        f(1.0, a)


def test_a_computed_node_passed_at_the_top_level_is_the_error_as_for_grad_alone():
    a = fm.Var(2.0)
    b = a * 2.0
    c = b * b
    with pytest.raises(ValueError, match=PREBUILT):
        fm.grad(lambda b: c)(b)
    f = fm.jit(fm.grad(lambda b: c))
    with pytest.raises(ValueError, match=PREBUILT):
        f(b)
    assert f(1.0) == 0.0
    with pytest.raises(ValueError, match=PREBUILT):
        f(b)  # (the float call's program)
    assert f(a * 3.0).value == 0.0  # another node: c is a constant for it


def test_under_vmap_a_prebuilt_output_of_the_users_var_is_the_error():
    # (the micrograd probe's: the check was off at any vmap depth, 0.0 per example)
    a, b = fm.Var(2.0, name="a"), fm.Var(-3.0, name="b")
    c = a * b
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(lambda t: fm.grad(lambda y: c)(a) * t)((1.0, 2.0))  # a not mapped
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(fm.grad(lambda x: c))((a, a))  # a stacked into each example
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(fm.grad(lambda x, y: c * y), in_axes=(None, 0))(a, (1.0, 2.0))
    with pytest.raises(ValueError, match=PREBUILT):
        fm.vmap(lambda t: fm.jvp(lambda y: c, (a,), (1.0,))[1] * t)((1.0, 2.0))


def test_under_vmap_closing_over_a_per_example_value_is_a_constant_as_in_a_loop():
    def one(x):
        return fm.grad(lambda y: x * x)(x)

    assert fm.vmap(one)((1.0, 2.0)) == (one(1.0), one(2.0)) == (0.0, 0.0)
    c = fm.Var(2.0) * fm.Var(-3.0)
    out = fm.vmap(fm.grad(lambda x: c))((fm.Var(1.0), fm.Var(2.0)))  # other Vars: c constant
    assert out == (0.0, 0.0)
    w = fm.Var(3.0)
    got = fm.vmap(fm.grad(lambda x: x * w * x))((fm.Var(1.0), fm.Var(2.0)))
    assert [v.value for v in got] == [6.0, 12.0]


# the review's cases (round 34)

def test_under_vmap_two_mapped_arguments_sharing_vars_are_not_the_error():
    vs = [fm.Var(v) for v in (1.0, 2.0, 3.0)]
    g = fm.grad(lambda x, y: y * y)
    loop = [g(x, y) for x, y in zip(vs[:-1], vs[1:])]
    assert loop == [0.0, 0.0]
    assert list(fm.vmap(g)(tuple(vs[:-1]), tuple(vs[1:]))) == loop
    a, b = vs[0], vs[1]
    pairs = ((a, b), (b, a))
    assert fm.vmap(lambda p: fm.grad(lambda t: p[1] * 2.0)(p[0]))(pairs) == (0.0, 0.0)


def test_under_vmap_the_mapped_var_itself_in_the_output_is_the_error():
    a = fm.Var(2.0)

    def one(x):
        return fm.grad(lambda t: x * x)(x)

    for run in (lambda: one(a), lambda: fm.vmap(one)((a, a)), lambda: fm.jit(one)(a)):
        with pytest.raises(ValueError, match=PREBUILT):
            run()
    assert fm.jit(one)(3.0) == 0.0 == fm.vmap(one)((1.0, 2.0))[0]


def test_a_note_is_checked_only_for_the_branch_that_made_it():
    a = fm.Var(2.0)
    c = a * a
    f = fm.jit(lambda x, s: fm.grad(lambda t: c if s > 0 else t * t)(x))
    assert f(3.0, 1.0) == 0.0
    assert f(a, -1.0).value == 4.0  # the other branch: d(t * t)/dt at a
    with pytest.raises(ValueError, match=PREBUILT):
        f(a, 1.0)
    assert f(a, -1.0).value == 4.0


@pytest.mark.parametrize("outer", [
    lambda f, a: fm.grad(f)(a), lambda f, a: fm.hessian(f)(a),
    lambda f, a: fm.jvp(f, (a,), (1.0,)),
], ids=["grad", "hessian", "jvp"])
def test_a_jitted_prebuilt_call_under_another_transform_is_the_error(outer):
    a = fm.Var(2.0)
    c = a * a
    with pytest.raises(ValueError, match=PREBUILT):
        outer(fm.grad(lambda t: c), a)  # (as without jit)
    with pytest.raises(ValueError, match=PREBUILT):
        outer(fm.jit(fm.grad(lambda t: c)), a)


def test_a_nested_derivative_closing_over_the_outer_variable_is_not_the_error():
    def one(x):
        return fm.grad(lambda t: x * x)(x)

    a = fm.Var(2.0)
    assert fm.grad(lambda z: one(z))(a) == 0.0  # x is the outer grad's variable
    assert fm.grad(lambda z: fm.jit(one)(z))(a) == 0.0


def test_a_large_prebuilt_output_is_kept_by_jit_as_the_function_holds_it():
    # (round 36: past _KEPT nodes the output was dropped, and a computed node passed
    # at the top level gave 0.0; a wholly prebuilt output is the user's graph, which the
    # function holds anyway, so keeping it costs nothing)
    from fmicrograd.transforms import autodiff

    a = fm.Var(1.0)
    b = a * 2.0
    c = b
    for _ in range(autodiff._KEPT + 10):
        c = c * 1.0000001
    f = fm.jit(fm.grad(lambda t: c))
    assert f(3.0) == 0.0
    (entry,) = f._entries.order
    (notes,) = entry.prebuilt.values()
    assert [roots[0] is c for _, _, _, roots, _ in notes] == [True]
    with pytest.raises(ValueError, match=PREBUILT):
        f(a)
    with pytest.raises(ValueError, match=PREBUILT):
        f(b)


def test_a_branch_that_runs_as_python_still_sees_the_prebuilt_graph():
    # (review 2: the t * c branch holds the user's Var, so the entry ran f as Python on
    # the call's floats, and the other branch's grad(lambda t: c) gave 0.0 for a)
    a = fm.Var(2.0)
    c = a * a

    def body(x, s):
        return fm.grad(lambda t: c)(x) if s > 0 else fm.grad(lambda t: t * c)(x)

    assert body(a, -1.0).value == 4.0
    for order in ((-1.0, 1.0), (1.0, -1.0)):
        f = fm.jit(body)
        for s in order:
            if s > 0:
                with pytest.raises(ValueError, match=PREBUILT):
                    f(a, s)
            else:
                assert f(a, s).value == 4.0


def test_deferred_calls_with_a_prebuilt_var_are_the_error():
    a = fm.Var(2.0)
    c = a * a
    f = fm.jit(fm.grad(lambda x: c))
    with pytest.raises(ValueError, match=PREBUILT):
        f.deferred(a)
    assert f.deferred(3.0) == 0.0


def test_an_interrupt_as_the_branch_is_cached_keeps_its_prebuilt_check(monkeypatch):
    # (review 6: the variant was cached before its notes, so a Ctrl-C between the two left
    # a program that gave 0.0 for the prebuilt graph from then on)
    from fmicrograd.compiler import compile as jit_compile

    class Interrupted(list):
        armed = True

        def insert(self, i, x):
            super().insert(i, x)
            if Interrupted.armed:
                Interrupted.armed = False
                raise KeyboardInterrupt

    init = jit_compile._Entry.__init__

    def interrupted_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.variants = Interrupted()

    monkeypatch.setattr(jit_compile._Entry, "__init__", interrupted_init)
    a = fm.Var(2.0)
    c = a * a
    h = fm.jit(fm.grad(lambda t: c))
    with pytest.raises(KeyboardInterrupt):
        h(a)
    with pytest.raises(ValueError, match=PREBUILT):
        h(a)
