"""What a Python float (and micrograd's Value) lets a user do with a number,
on fm nodes under every transform: %-formatting (text outside transforms, an
error naming the f-string inside), ``numbers.Real``'s ``real`` / ``imag`` /
``conjugate()`` / ``is_integer()``, and the rounding escapes that stay errors
where they would drop a derivative."""

# ruff: noqa: UP031 -- %-formatting is the idiom under test

import collections
import copy
import functools
import math
import pickle
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


# --- %-formatting: text outside transforms, an error naming the f-string inside -------------


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


PERCENT_FORMS = [
    lambda x: "loss %.4f" % x, lambda x: "%.3f %.3f" % (x, x * 2.0), lambda x: "%(a).1f" % {"a": x},
    lambda x: GLOBAL_FORMAT % x, lambda x: "%d" % x, lambda x: "%x" % x,
]
TRANSFORMS = {
    "grad": (fm.grad, 2.0), "jit(grad)": (lambda f: fm.jit(fm.grad(f)), 2.0), "jit": (fm.jit, 2.0),
    "hessian": (fm.hessian, 2.0), "vmap": (fm.vmap, (1.0, 2.0)),
    "jvp": (lambda f: lambda x: fm.jvp(f, (x,), (1.0,)), 2.0),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("form", range(len(PERCENT_FORMS)))
def test_percent_formatting_a_traced_value_is_an_error_naming_the_f_string(transform, form):
    # "%.4f" % x converts with float() (int() for %d, an index for %x): inside a transform
    # the number would drop its derivative, freeze under jit, or stand for a whole batch.
    # Whether it only becomes text cannot be told from outside (see test below); the
    # f-string formats a node under every transform. (A ValueError: "%d" replaces a
    # TypeError from the conversion with its own message, which names neither.)
    t, at = TRANSFORMS[transform]
    f = PERCENT_FORMS[form]
    with pytest.raises(ValueError, match=r'%-formatting .*f"\{x:.4f\}" formats a node'):
        t(lambda x: x * float(len(f(x))))(at)


@pytest.mark.parametrize("transform", TRANSFORMS)
def test_the_f_string_formats_a_traced_value(transform):
    t, at = TRANSFORMS[transform]
    seen = []

    def f(x):
        seen.append(f"loss {x:.4f}")
        return x * x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (jit: runs as Python, and says so)
        t(f)(at)
    assert seen and all(text.startswith("loss ") for text in seen)


def test_a_float_made_by_c_code_during_a_percent_is_still_an_escape():
    # a defaultdict's C factory runs while the frame sits on the %: it keeps the plain
    # float, which a % recognised as text would have let through (grad 3.0 for 6.0)
    def f(x):
        d = collections.defaultdict(functools.partial(float, x))
        "%(v).3f" % d
        return d["v"] * x

    with pytest.raises(ValueError, match="silently drop its derivative"):
        fm.grad(f)(3.0)
    assert f(3.0) == 9.0  # (outside transforms, as on the float)


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
    with pytest.raises((TypeError, ValueError), match="fm.stop_gradient"):
        fm.grad(lambda x: escape(x) * x)(3.0)
    with pytest.raises((TypeError, ValueError), match="fm.jit is tracing"):
        fm.jit(lambda x: escape(x) * x)(3.0)
    with pytest.raises((TypeError, ValueError), match="one value per example"):
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


# --- a number read back from a node's formatted text -----------------------------------------

SIG_FIGS = lambda x: float(f"{x:.3g}") * x  # noqa: E731 -- the significant-figures idiom

DIFFERENTIATING = {
    "grad": fm.grad,
    "jit(grad)": lambda f: fm.jit(fm.grad(f)),
    "grad(jit)": lambda f: fm.grad(fm.jit(f)),
    "jvp": lambda f: lambda x: fm.jvp(f, (x,), (1.0,))[1],
    "hessian": fm.hessian,
    "jacfwd": fm.jacfwd,
}


@pytest.mark.parametrize("name", DIFFERENTIATING)
@pytest.mark.parametrize("parse", [float, np.float64, lambda t: np.array([t], dtype=float)[0]])
def test_a_number_parsed_from_a_differentiated_nodes_text_is_an_error(name, parse):
    # round 19 gave 1.23 (the derivative of the text's number, a constant, dropped)
    # for 2.47 under grad, with no error
    f = lambda x: parse(f"{x:.3g}") * x  # noqa: E731
    with pytest.raises(TypeError, match=r'float\(\) of f"\{x:\.3g\}" \(the text of an fm\.Expr\) '
                       r"that fm\.\w+ differentiates.*fm\.stop_gradient"):
        quiet(DIFFERENTIATING[name](f))(1.234567)  # (jit's warning about text: tested above)


def test_the_parsed_text_is_the_number_outside_differentiation():
    assert SIG_FIGS(1.234567) == 1.23 * 1.234567
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (jit runs it as Python: checked above)
        jitted = fm.jit(SIG_FIGS)
        assert [jitted(v) for v in (1.234567, 2.345678)] == [1.23 * 1.234567, 2.35 * 2.345678]
    assert fm.grad(lambda x: float(f"{fm.stop_gradient(x):.3g}") * x)(1.234567) == 1.23


def test_formatted_text_is_a_plain_string_once_the_transform_is_done():
    kept = []
    assert fm.grad(lambda x: (kept.append(f"{x:.3g}"), x * x)[1])(1.5) == 3.0
    assert kept == ["1.5"] and float(kept[0]) == 1.5  # logged, then parsed after grad
    assert type(copy.deepcopy(kept[0])) is str and pickle.loads(pickle.dumps(kept[0])) == "1.5"
    assert type(f"{fm.Var(1.5):.3g}") is str  # no transform running: plain text
    # text only (a length, a print) under grad is untouched
    assert fm.grad(lambda x: x * len(f"{x:.3g}"))(1.5) == 3.0


def test_as_integer_ratio_is_an_escape_naming_the_fix():
    import statistics

    from fmicrograd.core.expr import Var

    assert Var(0.75).as_integer_ratio() == (3, 4)
    # statistics.mean of nodes raised "can't convert type 'TracedVar' to numerator/denominator"
    f = lambda x: statistics.mean([x, x]) * x  # noqa: E731
    with pytest.raises(TypeError, match=r"x\.as_integer_ratio\(\) on a value that fm\.jit is "
                                        r"tracing"):
        fm.jit(f)(2.0)
    with pytest.raises(TypeError, match=r"x\.as_integer_ratio\(\) on an fm\.Expr that fm\.grad "
                                        r"differentiates"):
        fm.grad(f)(2.0)
