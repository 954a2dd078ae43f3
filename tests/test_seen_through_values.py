"""A jitted call seen through by ``grad``/``jvp`` (``compiler/through.py``)
runs on the numbers of the nodes it stands for. Where it cannot run compiled
code (``vmap(jit(f))`` with a comparison on per-example values), ``f`` ran
as Python on those floats: a float is not a node, so the value came out
wrong, with no error, beside a right derivative (round 44's fuzzer). It
runs on the nodes themselves now, as without ``jit``."""

import pytest

import fmicrograd as fm

XS = (0.5, 1.5, 0.3)  # every example on the same side of ``x > 0.0``


def _lookup(w, x):  # a node hashes by identity: the lookup misses
    return ({0.5: 3.0}.get(w, 1.0) * x * w) if x > 0.0 else x


def _isinstance(w, x):  # a node is not a float
    return ((w * w if isinstance(w, float) else w) * x) if x > 0.0 else x


def _root(w, x):  # fm's (-inf) ** 0.5 is nan (a square root), Python's is inf
    return fm.where(x > 0.0, w ** 0.5 * x, x)


CASES = [(_lookup, 0.5), (_isinstance, 3.0), (_root, float("-inf"))]


def _summed(f):
    return lambda w: fm.sum(fm.vmap(f, in_axes=(None, 0))(w, XS))


TRANSFORMS = {
    "value_and_grad": fm.value_and_grad,
    "jvp": lambda g: (lambda w: fm.jvp(g, (w,), (1.0,))),
    "hessian": fm.hessian,
    "grad of grad": lambda g: fm.grad(fm.grad(g)),
    "jvp of grad": lambda g: (lambda w: fm.jvp(fm.grad(g), (w,), (1.0,))),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("f, w", CASES, ids=[f.__name__ for f, _ in CASES])
def test_vmap_of_jit_under_a_transform_gives_what_vmap_gives(f, w, name):
    transform = TRANSFORMS[name]
    want = transform(_summed(f))(w)
    for _ in range(2):  # the first call traces, the second finds the structure inline
        assert repr(transform(_summed(fm.jit(f)))(w)) == repr(want)  # (nan, -0.0 too)


def test_the_loop_agrees():
    for f, w in CASES:
        loop = fm.value_and_grad(lambda w, f=f: fm.sum([f(w, x) for x in XS]))(w)
        assert repr(fm.value_and_grad(_summed(fm.jit(f)))(w)) == repr(loop)


def _sigmoid_method(w, x):
    s = w.sigmoid()  # a node's method: a float has none
    return s * x if x > 0.0 else s - x


def _reciprocal(w, x):
    s = 1.0 / (w - 0.5)  # inf on a node at 0.5, a ZeroDivisionError on a float
    return s * x if x > 0.0 else s - x


@pytest.mark.parametrize("f, w", [(_sigmoid_method, 0.7), (_reciprocal, 0.5)])
def test_examples_that_disagree_raise_vmaps_own_error(f, w):
    xs = (0.5, -1.5, 0.3)  # the examples disagree on ``x > 0.0``
    for inner in (f, fm.jit(f)):  # (the float program's AttributeError or
        # ZeroDivisionError came out of vmap(jit(f)))
        with pytest.raises(ValueError, match="examples disagree"):
            fm.grad(lambda w, g=inner: fm.sum(fm.vmap(g, in_axes=(None, 0))(w, xs)))(w)


def test_a_users_float_argument_is_still_a_float():
    # no enclosing transform: vmap(jit(f)) with a plain float runs f on that float,
    # as vmap(f) does (the lookup hits)
    out = fm.vmap(fm.jit(_lookup), in_axes=(None, 0))(0.5, XS)
    assert out == fm.vmap(_lookup, in_axes=(None, 0))(0.5, XS)
    assert out == tuple(3.0 * x * 0.5 for x in XS)


@pytest.mark.parametrize("jit", [
    lambda f: fm.jit(f, static_argnums=2),
    lambda f: fm.jit(f, static_argnames="n"),
], ids=["static_argnums", "static_argnames"])
def test_with_a_static_argument_too(jit):
    # (a static name wraps the jitted function: the fallback compared the wrong one)
    def f(w, x, n):
        return _isinstance(w, x) * n

    def summed(g):
        return lambda w: fm.sum(fm.vmap(g, in_axes=(None, 0, None))(w, XS, 2))

    for name in ("value_and_grad", "hessian"):
        transform = TRANSFORMS[name]
        assert repr(transform(summed(jit(f)))(3.0)) == repr(transform(summed(f))(3.0))


@pytest.mark.parametrize("f", [lambda w, x: fm.sqrt(w) * x, lambda w, x: fm.log(w) * x])
def test_an_unmapped_negative_zero_keeps_its_sign_through_grad_of_jit(f):
    # (its VJP's primal was widened to the batch by adding 0.0: -0.0 + 0.0 is 0.0, and
    # sqrt's derivative at it came out +inf for -inf)
    for g in (fm.grad(fm.jit(f)), fm.jit(fm.grad(f))):
        got = fm.vmap(g, in_axes=(None, 0))(-0.0, (0.5, 1.5))
        assert repr(got) == repr(fm.vmap(fm.grad(f), in_axes=(None, 0))(-0.0, (0.5, 1.5)))
    assert repr(fm.vmap(fm.grad(fm.jit(f)), in_axes=(None, 0))(-0.0, (0.5, 1.5))) == \
        repr(tuple(fm.grad(f)(-0.0, x) for x in (0.5, 1.5)))


@pytest.mark.parametrize("jit", [
    lambda f: fm.jit(f, static_argnums=1),
    lambda f: fm.jit(f, static_argnames="n"),
], ids=["static_argnums", "static_argnames"])
def test_a_static_argument_that_an_enclosing_transform_differentiates(jit):
    # checkpoint differentiates every argument, the static one too: the call runs f
    # (it was a TypeError about custom_vjp's nondiff_argnums, naming no fix)
    def f(w, n):
        return w * w * n

    for n in (2, 2.0):
        assert fm.grad(lambda w, n=n: fm.checkpoint(jit(f))(w, n))(3.0) == 12.0
    assert fm.grad(lambda w: fm.checkpoint(jit(f), static_argnums=1)(w, 2))(3.0) == 12.0
