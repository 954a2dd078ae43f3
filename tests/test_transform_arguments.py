"""How transforms take what users hand them: jitted and custom functions as
methods, defaulted static arguments, derived dataclass fields, and ints a
float64 cannot hold."""

import dataclasses
import functools
import sys

import pytest

import fmicrograd as fm


@dataclasses.dataclass(frozen=True)
class Model:
    w: float

    @fm.jit
    def loss(self, x):
        return (self.w * x) ** 2

    @fm.checkpoint
    def block(self, x):
        return fm.sin(self.w * x)

    @fm.custom_jvp
    def square(self, x):
        return self.w * x * x


Model.square.defjvp(lambda primals, tangents: (
    primals[0].w * primals[1] * primals[1],
    tangents[0].w * primals[1] * primals[1] + 2.0 * primals[0].w * primals[1] * tangents[1]))


def test_jit_checkpoint_and_custom_jvp_bind_as_methods():
    # ``M(2.0).loss(3.0)`` was "missing 1 required positional argument"
    m = Model(2.0)
    assert m.loss(3.0) == 36.0 == fm.jit(lambda m, x: m.loss(x))(m, 3.0)
    assert fm.grad(lambda m: m.loss(3.0))(m) == Model(2.0 * 2.0 * 9.0)
    assert m.block(1.0) == pytest.approx(0.9092974268256817, rel=1e-15)
    assert fm.grad(lambda m: m.block(1.0))(m).w == pytest.approx(-0.4161468365471424, rel=1e-15)
    assert m.square(3.0) == 18.0
    assert fm.grad(lambda m: m.square(3.0))(m) == Model(9.0)
    assert fm.grad(lambda x: m.square(x))(3.0) == 12.0
    assert Model.loss is Model.__dict__["loss"]  # on the class: the jitted function itself


def test_a_static_argument_left_to_its_default():
    def f(x, n=3):
        return x ** n

    g = fm.jit(f, static_argnums=1)
    assert (g(2.0), g(2.0, 2), g(3.0)) == (8.0, 4.0, 27.0)  # "out of range" before
    with pytest.raises(ValueError, match="static_argnums 2 is out of range"):
        fm.jit(f, static_argnums=2)(2.0)


def test_a_derived_dataclass_field_is_refused_naming_it():
    @dataclasses.dataclass(frozen=True)
    class P:
        w: float
        w2: float = dataclasses.field(init=False)

        def __post_init__(self):
            object.__setattr__(self, "w2", 2.0 * self.w)

    # it was a leaf of its own: d/dw came out 0.0 and d/dw2 carried it all
    for transform in (fm.grad, lambda f: fm.jit(fm.grad(f))):
        with pytest.raises(TypeError, match=r"P\.w2 is declared field\(init=False\).*@property"):
            transform(lambda p: (p.w2 * 2.0) ** 2)(P(3.0))


def test_a_dataclass_attribute_outside_its_fields_is_refused_naming_it():
    @dataclasses.dataclass(frozen=True)
    class P:
        w: float
        scale = 1.0  # a class attribute, not a field

        def __post_init__(self):
            object.__setattr__(self, "scale", 2.0)

    f = lambda p, x: p.w * p.scale * x  # noqa: E731
    assert f(P(3.0), 1.0) == 6.0
    # rebuilt from its fields, the argument read the class's 1.0: jit gave 3.0 and
    # grad gave P(w=1.0) where d/dw is 2.0
    for transform in (fm.jit, fm.grad, lambda g: fm.jit(fm.grad(g))):
        with pytest.raises(TypeError, match=r"a P holds the attribute 'scale', which is not one "
                                            r"of its dataclass fields \('w',\).*@property"):
            transform(f)(P(3.0), 1.0)
    with pytest.raises(TypeError, match="attribute 'scale'"):
        fm.tree.map(lambda v: v, P(3.0))

    @dataclasses.dataclass(frozen=True)
    class Q:
        w: float

        @functools.cached_property
        def twice(self):
            return 2.0 * self.w

    q = Q(3.0)
    assert q.twice == 6.0  # cached in the instance: computed again on the rebuilt one
    assert fm.grad(lambda p: p.twice * p.w)(q) == Q(12.0)


def test_an_int_a_float64_cannot_hold_is_not_differentiated():
    with pytest.raises(ValueError, match=r"at <root> that is the int 9007199254740993, beyond "
                                         r"2\*\*53.*argnums"):
        fm.value_and_grad(lambda x: x - 2 ** 53)(2 ** 53 + 1)  # gave (0.0, 1.0)
    with pytest.raises(ValueError, match=r"at \['n'\]"):
        fm.grad(lambda p: p["a"] * p["n"])({"a": 2.0, "n": 2 ** 60})
    assert fm.grad(lambda p: p["a"] * p["n"])({"a": 2.0, "n": 3}) == {"a": 3.0, "n": 2.0}


def test_rule_argument_positions_counted_from_the_end_are_refused_naming_the_fix():
    import numpy as np

    def block(x, n):
        return fm.sum([x] * n)

    # checkpoint's was a bare StopIteration at the call, custom_vjp's a misleading bwd error
    with pytest.raises(ValueError, match=r"checkpoint: static_argnums holds -1, counted from "
                                         r"the end.*0 is the first"):
        fm.checkpoint(block, static_argnums=-1)
    with pytest.raises(ValueError, match=r"custom_vjp: nondiff_argnums holds -1"):
        fm.custom_vjp(block, nondiff_argnums=(-1,))
    with pytest.raises(TypeError, match=r"static_argnums must be ints"):
        fm.checkpoint(block, static_argnums=("n",))
    for n in (1, np.int64(1), (1,)):
        assert fm.grad(fm.checkpoint(block, static_argnums=n))(0.3, 3) == 3.0


def test_inputs_that_failed_with_python_s_own_errors_name_what_is_wrong():
    # each was a bare "'float' object is not iterable", "can't multiply sequence by
    # non-int of type 'float'", "unsupported operand type(s) for +" or RecursionError
    with pytest.raises(TypeError, match=r"jvp: primals must be a tuple or list .*fm\.jvp\(f, "
                                        r"\(x,\), \(t,\)\)"):
        fm.jvp(lambda x: x * x, 2.0, 1.0)
    with pytest.raises(TypeError, match=r"jvp: the tangent at \[0\] is a str \('a'\)"):
        fm.jvp(lambda x: x * x, (2.0,), ("a",))
    with pytest.raises(TypeError, match=r"vjp: the cotangent at <root> is a str"):
        fm.vjp(lambda x: x * 2.0, 2.0)[1]("a")
    for reduce in (fm.sum, fm.softmax, fm.logsumexp):
        with pytest.raises(TypeError, match=r"expects a sequence of numbers.*got a dict; for a "
                                            r"dict's numbers pass fm\.tree\.leaves\(d\)"):
            reduce({"a": 1.0, "b": 2.0})
    assert fm.sum(fm.tree.leaves({"a": 1.0, "b": 2.0})) == 3.0

    def nest(x):
        for _ in range(sys.getrecursionlimit() + 100):
            x = (x,)
        return x

    for transform in (lambda f: fm.jvp(f, (2.0,), (1.0,)), lambda f: fm.vjp(f, 2.0),
                      lambda f: fm.jacrev(f)(2.0)):
        with pytest.raises(ValueError, match="nested deeper than fm can walk"):
            transform(nest)


def test_the_contract_s_argument_names_can_be_given_by_keyword():
    # CONTRACT.md: fm.random.split(key, n=2), fm.atan2(y, x), update(grads, state, params=None),
    # fm.nn.parameters(tree), fm.nn.count_params(tree); they were k, (a, b), updates, params
    k = fm.random.key(0)
    assert fm.random.split(key=k, n=3) == fm.random.split(k, 3)
    assert fm.atan2(y=1.0, x=-1.0) == fm.atan2(1.0, -1.0) > 0.0
    for opt in (fm.optim.sgd(0.1), fm.optim.adam(0.1), fm.optim.clip_by_global_norm(1.0)):
        state = opt.init((1.0,))
        assert opt.update(grads=(2.0,), state=state, params=(1.0,)) == \
            opt.update((2.0,), state, (1.0,))
    assert fm.nn.parameters(tree=(1.0, (2.0,))) == (1.0, 2.0)
    assert fm.nn.count_params(tree=(1.0, (2.0,))) == 2


def test_one_epoch_reads_a_one_shot_iterator_of_batches():
    # ("%f" % x under grad stays a ValueError: Python's % replaces a TypeError from the
    # conversion with its own "%d format: a real number is required", naming no fix)
    # data "an iterable of batches": a generator was refused even for one epoch
    loss = lambda p, b: p[0] ** 2  # noqa: E731
    got, _ = fm.train.fit(loss, (1.0,), fm.optim.sgd(0.1), (b for b in [None]), epochs=1)
    assert got == fm.train.fit(loss, (1.0,), fm.optim.sgd(0.1), [None], epochs=1)[0] == (0.8,)
    with pytest.raises(TypeError, match=r"one-shot iterator .*or train one epoch"):
        fm.train.fit(loss, (1.0,), fm.optim.sgd(0.1), (b for b in [None]), epochs=2)
