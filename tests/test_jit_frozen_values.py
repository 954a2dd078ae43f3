"""Values a compiled call could freeze at its trace: an argument object hashed
by identity (a ``self``), and the text of a formatted traced value. Each gave
the first call's numbers on later calls; now an error naming the fix, or the
function runs as Python on every call."""

import dataclasses
import warnings

import numpy as np
import pytest

import fmicrograd as fm


class Scaler:
    def __init__(self, s):
        self.s = s

    @fm.jit
    def apply(self, x):
        return x * self.s


def test_a_mutable_self_is_refused_naming_the_fix():
    m = Scaler(2.0)
    with pytest.raises(TypeError, match=r"Scaler object, which Python hashes by identity.*"
                                        r"dataclass.*\(the argument at args\[0\]\)"):
        m.apply(3.0)


def test_an_identity_hashed_argument_object_is_refused_and_a_dataclass_is_reread():
    class Params:
        __slots__ = ("w",)

        def __init__(self, w):
            self.w = w

    loss = fm.jit(lambda p, x: (p.w * x - 1.0) ** 2)
    with pytest.raises(TypeError, match="Params object, which Python hashes by identity"):
        loss(Params(1.0), 2.0)

    @dataclasses.dataclass
    class Mutable:
        w: float

    p = Mutable(1.0)
    assert loss(p, 2.0) == 1.0
    p.w = 3.0  # a dataclass is a pytree: its fields are read on every call
    assert loss(p, 2.0) == 25.0


def test_stateless_objects_functions_and_value_equal_objects_stay_static():
    class Token:
        pass

    class Mode:
        def __init__(self, k):
            self.k = k

        def __eq__(self, other):
            return isinstance(other, Mode) and other.k == self.k

        def __hash__(self):
            return hash(self.k)

    f = fm.jit(lambda t, act, m, x: act(x) * (2.0 if m.k == "double" else 1.0))
    assert f(Token(), fm.tanh, Mode("double"), 0.5) == pytest.approx(2.0 * np.tanh(0.5), rel=1e-15)
    assert f(Token(), fm.tanh, Mode("single"), 0.5) == pytest.approx(np.tanh(0.5), rel=1e-15)


def test_formatting_a_traced_value_runs_the_function_as_python_on_every_call():
    # float(f"{x:.6f}") froze the trace's value: jit(f)(1.3) was 1.3, not 1.69
    f = lambda x: x * float(f"{x:.6f}")
    g = lambda x: x * 2.0 if f"{x:.0f}" == "1" else x * 3.0
    jf, jg = fm.jit(f), fm.jit(g)
    with pytest.warns(RuntimeWarning, match="turns a traced value into text"):
        assert jf(1.0) == f(1.0)
    assert jf(1.3) == f(1.3) == 1.3 * 1.3
    with pytest.warns(RuntimeWarning):
        assert jg(1.0) == 2.0
    assert jg(2.5) == g(2.5) == 7.5
    assert "turns a traced value into text" in jf.lower(1.3).as_text()
    # printing inside a jitted loss now shows every call's value
    seen = []

    def loss(x):
        y = x * x
        seen.append(f"{y:.2f}")
        return y

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        jl = fm.jit(loss)
        assert [jl(2.0), jl(3.0)] == [4.0, 9.0]
    assert seen[-1] == "9.00" and "4.00" in seen  # (the first call also prints at its trace)
    # formatting a value the trace does not depend on keeps the function compiled
    c = fm.Const(2.0)
    jc = fm.jit(lambda x: x * float(f"{c:.1f}"))
    assert jc(3.0) == 6.0 and "not compiled" not in jc.lower(3.0).as_text()


@pytest.mark.parametrize("arg", [np.float32(0.5), np.array(0.5), np.float64(0.5)])
def test_lower_shows_the_program_for_numpy_scalars_and_0d_arrays(arg):
    # it said "not compiled ... an argument is a value of an enclosing transform"
    text = fm.jit(lambda x: fm.tanh(x) * 2.0).lower(arg).as_text()
    assert "not compiled" not in text and "_tanh(v0)" in text


def test_a_bound_method_of_a_mutable_object_is_refused_naming_the_fix():
    class Obj:
        def __init__(self):
            self.k = 2.0

        def scale(self, x):
            return self.k * x

    call = fm.jit(lambda x, m: m(x))
    o = Obj()
    # it was keyed on (o, scale) and kept k = 2.0: 2.0, 2.0 where Python gives 2.0, 3.0
    with pytest.raises(TypeError, match=r"bound method Obj\.scale, whose object can change.*"
                                        r"hashes it by identity.*\(the argument at args\[1\]\)"):
        call(1.0, o.scale)

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        k: float

        def scale(self, x):
            return self.k * x

    # an object equal by its contents keys the call by them: a new k is a new trace
    assert call(1.0, Frozen(2.0).scale) == 2.0
    assert call(1.0, Frozen(3.0).scale) == 3.0


def test_a_partial_holding_what_can_change_is_refused_and_numbers_stay_static():
    import functools

    call = fm.jit(lambda x, m: m(x))
    a = np.array([2.0])
    # it was keyed on the partial and kept a[0] = 2.0 after a[0] = 3.0
    with pytest.raises(TypeError, match=r"functools\.partial holding a numpy array.*"
                                        r"Pass it as an argument"):
        call(1.0, functools.partial(lambda v, x: v[0] * x, a))
    with pytest.raises(TypeError, match="holding a list"):
        call(1.0, functools.partial(lambda v, x: v[0] * x, [2.0]))
    assert call(2.0, functools.partial(lambda v, x: v * x, 3.0)) == 6.0
    assert call(2.0, functools.partial(lambda v, x: v * x, 4.0)) == 8.0


def test_static_values_that_are_equal_but_compute_differently_get_their_own_entries():
    import math

    def g(t):
        while len(t) == 1:
            t = t[0]
        x, s = t
        return x * math.atan2(s.imag, -1.0)

    def nest(x, s, depth):
        t = (x, s)
        for _ in range(depth):
            t = (t,)
        return t

    minus_zero = complex(0, -0.0)
    # deeper than the generated matcher goes (60 levels): 0j's entry served -0j
    deep = fm.jit(g)
    deep(nest(1.5, 0j, 70))
    assert deep(nest(1.5, minus_zero, 70)) == g(nest(1.5, minus_zero, 70)) < 0.0
    # under vmap, beside a mapped value: the same
    mapped = fm.jit(g)
    xs = np.array([1.0, 2.0])
    fm.vmap(lambda x: mapped((x, 0j)))(xs)
    assert fm.vmap(lambda x: mapped((x, minus_zero)))(xs) == \
        fm.vmap(lambda x: g((x, minus_zero)))(xs)
    # range(0) == range(5, 5): both were one entry
    r = fm.jit(lambda x, r: x * (r.start + 10 * r.step), static_argnums=1)
    assert [r(1.5, q) for q in (range(0), range(5, 5), range(0, 0, 2))] == [15.0, 22.5, 30.0]


def test_value_of_a_vmap_example_or_a_grad_variable_under_jit_is_refused():
    """``x.value`` of a per-example value of ``vmap`` or of ``grad``'s
    variable inside ``jit`` froze the trace's numbers: ``(5.0, 14.0)`` for
    ``(25.0, 49.0)`` (round 28; an argument's own ``.value`` was refused)."""
    f = fm.jit(fm.vmap(lambda x: x * x.value))
    with pytest.raises(TypeError, match="x.value on a value that fm.jit is tracing"):
        f((1.0, 2.0))
    g = fm.jit(fm.grad(lambda a: a * a.value))
    with pytest.raises(TypeError, match="x.value on a value that fm.jit is tracing"):
        g(3.0)
    # outside a trace it is the documented constant, and fm's own code reads values freely
    assert fm.vmap(lambda x: x * x.value)((1.0, 2.0)) == (1.0, 4.0)
    assert fm.grad(lambda a: a * a.value)(3.0) == 3.0
    assert fm.jit(fm.vmap(lambda x: x * x))((5.0, 7.0)) == (25.0, 49.0)
