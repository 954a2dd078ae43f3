"""What a Python float (and micrograd's Value) lets a user do with a number,
on fm nodes under every transform: %-formatting as f-strings format,
``numbers.Real``'s ``real`` / ``imag`` / ``conjugate()`` / ``is_integer()``,
and the rounding escapes that stay errors where they would drop a derivative."""

# ruff: noqa: UP031 -- %-formatting is the idiom under test

import logging
import math
import warnings

import numpy as np
import pytest

import fmicrograd as fm

GLOBAL_FORMAT = "%.2f"


def quiet(f):
    """``f`` with jit's RuntimeWarning about text silenced (tests that check it say so)."""
    def run(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return f(*args)
    return run


# --- %-formatting: text, as f-strings make ------------------------------------------------


def texts(x):
    """Every %-form a user writes, beside the f-string it must equal."""
    local_format = "%.3f"
    s = "x=%.2f"
    s %= x
    return [
        ("loss %.4f" % x, f"loss {x:.4f}"),
        ("%.3f %.3f" % (x, x * 2.0), f"{x:.3f} {x * 2.0:.3f}"),
        ("%(a).1f" % {"a": x}, f"{x:.1f}"),
        (local_format % x, f"{x:.3f}"),
        (GLOBAL_FORMAT % x, f"{x:.2f}"),
        (s, f"x={x:.2f}"),
        (f"{'step'}: %.2e" % x, f"step: {x:.2e}"),
        ("%g" % x, f"{x:g}"),
        (b"%.1f" % x, f"{x:.1f}".encode()),
        ("%d" % x, str(int(getattr(x, "value", x)))),
        ("%s" % x, f"{x}"),
    ]


def test_percent_formatting_gives_the_f_string_text_outside_transforms():
    for got, want in texts(fm.Var(2.5)):
        assert got == want


@pytest.mark.parametrize("transform, expected", [  # derivatives of x ** 3 at 2.5
    (fm.grad, 18.75), (lambda f: fm.jit(fm.grad(f)), 18.75),
    (lambda f: fm.grad(fm.grad(f)), 15.0), (fm.hessian, 15.0),
    (lambda f: lambda x: fm.jvp(f, (x,), (1.0,))[1], 18.75),
    (lambda f: fm.grad(fm.checkpoint(f)), 18.75),
    (lambda f: lambda x: fm.vjp(f, x)[1](1.0)[0], 18.75),
])
def test_percent_formatting_inside_a_differentiated_loss_is_text_not_an_escape(transform,
                                                                              expected):
    seen = []

    def loss(x):
        seen.append(texts(x))
        return x * x * x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert transform(loss)(2.5) == pytest.approx(expected, rel=1e-15)
    assert seen and all(got == want for pairs in seen for got, want in pairs)
    assert ("loss %.4f" % 2.5, "loss 2.5000") == seen[0][0]


def test_percent_formatting_in_comprehensions_and_logging_under_grad(caplog):
    def loss(ws):
        logging.getLogger("fm-test").info("loss %.3f, first weight %.2f", ws[0] * ws[1], ws[0])
        shown = ", ".join("%.1f" % w for w in ws) + "; " + str(["%d" % w for w in ws])
        seen.append(shown)
        return ws[0] * ws[1]

    seen: list = []
    with caplog.at_level(logging.INFO, logger="fm-test"):
        assert fm.grad(loss)((2.0, 3.0)) == (3.0, 2.0)
    assert seen == ["2.0, 3.0; ['2', '3']"]
    assert caplog.messages == ["loss 6.000, first weight 2.00"]


def test_jitted_percent_formatting_is_the_calls_own_and_warns_as_f_strings_do():
    seen = []

    def loss(x):
        y = x * x
        seen.append("%.3f" % y)
        return y

    jl = fm.jit(loss)
    with pytest.warns(RuntimeWarning, match="turns a traced value into text"):
        assert jl(2.0) == 4.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert jl(3.0) == 9.0
        assert seen[-1] == "9.000"  # not the trace's 4.000
        assert jl(1.5) == 2.25 and seen[-1] == "2.250"
        assert "turns a traced value into text" in jl.lower(3.0).as_text()
    # a number parsed back from the text is each call's, as with f"{x:.6f}"
    jf = quiet(fm.jit(lambda x: x * float("%.6f" % x)))
    assert (jf(1.0), jf(1.3)) == (1.0, 1.3 * 1.3)
    jd = quiet(fm.jit(lambda x: x * 2.0 if "%d" % x == "1" else x * 3.0))
    assert (jd(1.0), jd(2.0), jd(1.5)) == (2.0, 6.0, 3.0)


def test_jit_of_grad_reformats_on_every_call():
    seen = []

    def loss(x):
        seen.append("%.2f" % x)
        return x * x

    g = quiet(fm.jit(fm.grad(loss)))
    assert (g(2.0), g(5.0)) == (4.0, 10.0)
    assert seen[-1] == "5.00"


def test_formatting_a_value_no_trace_depends_on_stays_compiled():
    c = fm.Const(2.0)
    jc = fm.jit(lambda x: x * float("%.1f" % c))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert jc(3.0) == 6.0 and jc(4.0) == 8.0
    assert "not compiled" not in jc.lower(3.0).as_text()


@pytest.mark.parametrize("transform", [
    fm.vmap, lambda f: fm.jit(fm.vmap(f)), lambda f: fm.vmap(fm.grad(f)),
])
def test_percent_formatting_of_one_value_per_example_names_the_f_string(transform):
    # % formats one C double: unlike f"{x:.4f}" it cannot show a whole batch. (A
    # ValueError, as for `if x > 0:` on examples that disagree: "%d" turns TypeErrors
    # into its own message, which would hide this one.)
    def f(x):
        print("%.3f" % x)
        return x * x

    with pytest.raises(ValueError, match=r'one value per example.*f"\{x:.4f\}"'):
        quiet(transform(f))((1.0, 2.0))
    for form in (lambda x: "%d" % x, lambda x: "%x" % x, lambda x: "%.2e" % (x, )):
        with pytest.raises(ValueError, match="one value per example"):
            fm.vmap(lambda x, form=form: x * len(form(x)))((1.0, 2.0))


# --- real escapes stay errors ---------------------------------------------------------------


class NumberMod:
    """A left operand whose ``%`` is a C function turning the node into a float."""
    __mod__ = float


class TextLike(str):
    __mod__ = float  # a str whose % is not the built-in formatting


@pytest.mark.parametrize("escape", [
    lambda x: float(x) % 2.0,
    lambda x: int(x) % 2,
    lambda x: "%.3f" % float(x),  # the float() escapes before any formatting
    lambda x: math.fmod(x, 2.0),
    lambda x: NumberMod() % x,
    lambda x: TextLike("%f") % x,
    lambda x: (lambda t: t % x)(TextLike("%f")),
])
def test_float_escapes_near_a_percent_still_raise(escape):
    with pytest.raises(TypeError, match="fm.stop_gradient"):
        fm.grad(lambda x: escape(x) * x)(3.0)
    with pytest.raises(TypeError, match="fm.jit is tracing"):
        fm.jit(lambda x: escape(x) * x)(3.0)
    with pytest.raises(TypeError, match="one value per example"):
        fm.vmap(lambda x: escape(x) * x)((3.0, 4.0))
    assert escape(fm.Var(3.0)) == escape(3.0)  # (outside transforms, as on the float)


def test_float_of_a_differentiated_node_still_raises():
    with pytest.raises(TypeError, match=r"float\(\) on an fm.Expr that fm.grad"):
        fm.grad(lambda x: float(x) * x)(3.0)
    with pytest.raises(TypeError, match=r"float\(\) on a value that fm.jit is tracing"):
        fm.jit(lambda x: float(x) * x)(3.0)
    with pytest.raises(TypeError, match=r"int\(\) on an fm.Expr that fm.grad"):
        fm.grad(lambda x: int(x) * x)(3.0)


# --- numbers.Real: real, imag, conjugate, is_integer ------------------------------------------


def test_real_and_conjugate_are_the_node_and_imag_is_zero():
    x = fm.Var(2.0)
    assert x.real is x and x.conjugate() is x
    assert x.imag == 0.0 and type(x.imag) is float
    assert np.real(x) is x and np.conj(x) is x and np.imag(x) == 0.0
    f = lambda x: x.real * x.conjugate() + x.imag
    assert f(fm.Var(3.0)).value == 9.0
    assert fm.grad(f)(3.0) == 6.0 and fm.jit(fm.grad(f))(3.0) == 6.0
    assert fm.jit(f)(3.0) == 9.0 and fm.jit(f)(4.0) == 16.0
    assert fm.vmap(f)((1.0, 2.0)) == (1.0, 4.0)
    assert fm.vmap(fm.grad(f))((1.0, 2.0)) == (2.0, 4.0)
    assert fm.grad(lambda x: x.imag + x)(3.0) == 1.0


VALUES = [3.0, 2.5, -2.5, -3.0, 0.0, -0.0, 1e-300, 1e300, 2.0 ** 53, 2.0 ** 52 - 0.5,
          math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("v", VALUES)
def test_is_integer_answers_as_the_float(v):
    assert fm.Var(v).is_integer() is v.is_integer()
    assert fm.grad(lambda x: x * 2.0 if x.is_integer() else x * 3.0)(v) == (
        2.0 if v.is_integer() else 3.0)


def test_is_integer_under_jit_is_guarded_like_a_comparison():
    f = lambda x: x * 2.0 if x.is_integer() else x * 3.0
    jf = fm.jit(f)
    for v in [3.0, 2.5, 2.75, 4.0, 4.0, -1.0, -1.5, 2.0 ** 53, math.nan, 7.0, math.inf, 7.5]:
        want = v * 2.0 if v.is_integer() else v * 3.0
        assert jf(v) == want or (math.isnan(want) and math.isnan(jf(v)))
    text = jf.lower(2.5).as_text()
    assert "not compiled" not in text  # compiled: the comparisons are its guards
    jg = fm.jit(fm.grad(f))
    assert [jg(v) for v in (3.0, 2.5, 4.0, 0.5)] == [2.0, 3.0, 2.0, 3.0]


def test_is_integer_under_vmap_is_per_example_for_where_and_an_error_in_if():
    f = lambda x: x * 2.0 if x.is_integer() else x * 3.0
    assert fm.vmap(f)((1.0, 2.0)) == (2.0, 4.0)  # the examples agree
    assert fm.vmap(f)((1.5, 2.5)) == (4.5, 7.5)
    with pytest.raises(ValueError, match=r"x\.is_integer\(\).*fm\.where"):
        fm.vmap(f)((1.0, 2.5))
    g = lambda x: fm.where(x.is_integer(), x * 2.0, x * 3.0)
    out = fm.vmap(g)((1.0, 2.5, math.nan, math.inf))
    assert out[:2] == (2.0, 7.5) and math.isnan(out[2]) and out[3] == math.inf
    assert fm.vmap(fm.grad(g))((1.0, 2.5)) == (2.0, 3.0)
    jg = fm.jit(fm.vmap(g))  # each call's own answers, never the trace's
    assert [jg((1.0, 2.5)), jg((2.5, 1.0)), jg((3.0, 4.0))] == [(2.0, 7.5), (7.5, 2.0),
                                                                (6.0, 8.0)]
    assert "is_integer" in jg.lower((1.0, 2.5)).as_text()  # runs as Python: says why
    jf = fm.jit(fm.vmap(f))
    assert [jf(np.array(v)) for v in ((1.0, 2.0), (1.5, 2.5))] == [(2.0, 4.0), (4.5, 7.5)]
    assert fm.vmap(fm.jit(g))((2.5, 1.0)) == (7.5, 2.0)


# --- rounding: escapes, as the contract says ---------------------------------------------------


@pytest.mark.parametrize("escape", [
    math.floor, math.ceil, math.trunc, round, lambda x: round(x, 2),
])
def test_rounding_works_on_floats_and_raises_where_it_would_drop_a_derivative(escape):
    assert escape(fm.Var(2.675)) == escape(2.675)
    with pytest.raises(TypeError, match="fm.stop_gradient"):
        fm.grad(lambda x: escape(x) * x)(2.675)
    with pytest.raises(TypeError, match="fm.jit is tracing"):
        fm.jit(lambda x: escape(x) * x)(2.675)
    with pytest.raises(TypeError, match="one value per example"):
        fm.vmap(lambda x: escape(x) * x)((2.675, 1.5))
    assert fm.grad(lambda x: escape(fm.stop_gradient(x)) * x)(2.675) == escape(2.675)


def test_divmod_stays_unsupported():
    with pytest.raises(TypeError, match="no % or //"):
        divmod(fm.Var(2.5), 1.0)
