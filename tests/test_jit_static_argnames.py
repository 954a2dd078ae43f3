"""fm.jit's static_argnames, as JAX's: static keyword arguments, names and
positions completed from each other through the signature."""

import functools

import pytest

import fmicrograd as fm


def counted(f):
    """``f`` and a list that grows by one at each trace (each Python run of ``f``)."""
    traces = []

    @functools.wraps(f)
    def g(*args, **kwargs):
        traces.append(kwargs)
        return f(*args, **kwargs)

    return g, traces


def power(x, n):
    out = 1.0
    for _ in range(n):  # a Python loop: n must be a Python int, not a traced number
        out = out * x
    return out


def test_a_static_keyword_argument_is_a_constant_of_the_compiled_code():
    f, traces = counted(power)
    jf = fm.jit(f, static_argnames="n")
    assert [jf(2.0, n=3), jf(3.0, n=3), jf(-1.5, n=3)] == [8.0, 27.0, power(-1.5, 3)]
    assert len(traces) == 1  # one trace for n=3, run compiled for the other x
    assert jf(2.0, n=5) == 32.0 and len(traces) == 2  # a new value traces anew
    assert jf(5.0, n=3) == 125.0 and len(traces) == 2


def test_unmarked_the_same_loop_is_refused_with_the_fix():
    with pytest.raises(TypeError, match="static_arg"):
        fm.jit(power)(2.0, n=3)


@pytest.mark.parametrize("how", [dict(static_argnames="n"), dict(static_argnums=1),
                                 dict(static_argnames=("n",), static_argnums=(1,))])
def test_positions_and_names_are_completed_from_each_other(how):
    jf = fm.jit(power, **how)
    assert jf(2.0, 3) == 8.0 and jf(2.0, n=4) == 16.0
    assert jf.static_argnums == (1,) and jf.static_argnames == ("n",)


def test_static_values_are_told_apart_by_type_as_positional_ones_are():
    f, traces = counted(lambda x, k: x * 2.0 if isinstance(k, float) else x * 3.0)
    jf = fm.jit(f, static_argnames="k")
    assert (jf(1.0, k=1), jf(1.0, k=1.0), jf(1.0, k=True)) == (3.0, 2.0, 3.0)
    assert len(traces) == 3


def test_keyword_only_parameters_and_defaults():
    def f(x, *, act="relu", scale=2):
        return (fm.relu(x) if act == "relu" else fm.tanh(x)) * scale

    jf = fm.jit(f, static_argnames=("act", "scale"))
    for x in (-1.0, 0.5):
        for kw in ({}, {"act": "tanh"}, {"scale": 5}, {"act": "tanh", "scale": 3}):
            assert jf(x, **kw) == f(x, **kw)
            assert fm.grad(jf)(x, **kw) == fm.grad(f)(x, **kw)


def test_other_transforms_of_it_and_around_it():
    jf = fm.jit(power, static_argnames="n")
    assert fm.grad(lambda x: jf(x, n=3))(2.0) == 12.0
    assert fm.hessian(lambda x: jf(x, n=3))(2.0) == 12.0
    assert fm.vmap(lambda x: jf(x, n=2))((1.0, 2.0, 3.0)) == (1.0, 4.0, 9.0)
    assert fm.jit(fm.grad(lambda x: jf(x, n=4)))(2.0) == 32.0
    text = jf.lower(2.0, n=3).as_text()
    assert text.count("*") == 2  # x * x * x: n is unrolled, not an input


def test_a_method():
    class Model:
        def __init__(self, k):
            self.k = k

        @functools.partial(fm.jit, static_argnums=0, static_argnames="n")
        def f(self, x, n):
            return power(x, n) * self.k

        def __hash__(self):
            return hash(self.k)

        def __eq__(self, other):
            return isinstance(other, Model) and other.k == self.k

    m = Model(2.0)
    assert m.f(3.0, n=2) == 18.0 and m.f(3.0, 3) == 54.0


def test_bad_names_and_values_are_refused_by_name():
    with pytest.raises(ValueError, match="'m'.*not a keyword parameter.*x, n"):
        fm.jit(power, static_argnames="m")
    with pytest.raises(ValueError, match="static_argnames must be a str"):
        fm.jit(power, static_argnames=(1,))
    with pytest.raises(TypeError, match="static argument 'n' must be hashable, got list"):
        fm.jit(lambda x, n: x, static_argnames="n")(1.0, n=[1])
    assert fm.jit(lambda x, **kw: x * kw["k"], static_argnames="k")(2.0, k=3) == 6.0
