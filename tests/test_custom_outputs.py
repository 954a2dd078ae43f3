"""Outputs of ``checkpoint``, ``custom_vjp`` and ``custom_jvp`` functions that
are not numbers (a flag, a label, a count). Each leaf used to become a rule
node, so ``r[1] == "tag"`` was False under every transform and the caller took
its other branch: ``fm.grad`` gave 600.0 for 6.0, ``jvp`` a wrong value too.
``checkpoint(f)`` is ``f``: such outputs come out as ``f`` gives them. A
function with a custom rule returns numbers: anything else is a TypeError."""

import pytest

import fmicrograd as fm


def tagged(x):
    return x * x, "tag"


def uses_tag(y):
    r = fm.checkpoint(tagged)(y)
    return r[0] if r[1] == "tag" else 100.0 * r[0]


def test_checkpoint_passes_a_label_a_flag_and_a_count_through():
    assert uses_tag(3.0) == 9.0
    assert fm.grad(uses_tag)(3.0) == 6.0
    assert fm.jvp(uses_tag, (3.0,), (1.0,)) == (9.0, 6.0)
    assert fm.jit(fm.grad(uses_tag))(3.0) == 6.0
    assert fm.vmap(fm.grad(uses_tag))((3.0, 1.0)) == (6.0, 2.0)
    flag = lambda y: (lambda r: r[0] if r[1] is True else -r[0])(  # noqa: E731
        fm.checkpoint(lambda x: (x * x, x > 0))(y))
    assert fm.grad(flag)(3.0) == 6.0
    count = lambda y: (lambda r: fm.sum([r[0]] * r[1]))(  # noqa: E731
        fm.checkpoint(lambda x: (x * x, 2))(y))
    assert fm.grad(count)(3.0) == 12.0
    assert fm.hessian(count)(3.0) == 4.0


@pytest.mark.parametrize("value", ["tag", True, b"raw", frozenset()], ids=repr)
def test_a_custom_rule_function_returning_other_than_numbers_is_a_type_error(value):
    f = fm.custom_vjp(lambda x: (x * x, value))
    f.defvjp(lambda x: ((x * x, value), x), lambda res, g: (2.0 * res * g[0],))
    with pytest.raises(TypeError, match=r"custom_vjp: <lambda> returned .* at \[1\].*numbers"):
        fm.grad(lambda y: f(y)[0])(3.0)
    j = fm.custom_jvp(lambda x: (x * x, value))
    j.defjvp(lambda primals, tangents: ((primals[0] ** 2, value),
                                        (2.0 * primals[0] * tangents[0], 0.0)))
    with pytest.raises(TypeError, match=r"returned .* at \[1\].*numbers"):
        fm.grad(lambda y: j(y)[0])(3.0)


def test_an_int_output_of_a_custom_rule_function_is_still_a_number():
    f = fm.custom_vjp(lambda x: (x * x, 0))
    f.defvjp(lambda x: ((x * x, 0), x), lambda res, g: (2.0 * res * g[0],))
    assert fm.grad(lambda y: f(y)[0] + f(y)[1])(3.0) == 6.0
