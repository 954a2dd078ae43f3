"""Per-example derivatives through inner ``vmap`` results built from a value
the outer ``vmap`` does not map (an outside probe).

Such a value has a unit axis for the outer batch. The cotangent of a
``stack`` (an inner vmap's examples) or of an index into an inner vmap result
was summed down to that unit axis, adding up the outer examples:
``vmap(grad(g))`` gave (8.0, 8.0) for (3.0, 5.0).
"""

import pytest

import fmicrograd as fm

XS = (3.0, 5.0)


def g(w, x):
    """``w * x``, through two inner vmaps over one example each."""
    return fm.sum(fm.vmap(lambda s: fm.sum(fm.vmap(lambda a: a * x)((s,))))((w,)))


def h(w, xs):
    """``xs[0] * w * w``, indexing an inner vmap result."""
    return fm.vmap(lambda x: x * w)(xs)[0] * w


STACKS = {
    "vmap(grad)": lambda f: fm.vmap(fm.grad(f), in_axes=(None, 0)),
    "jit(vmap(grad))": lambda f: fm.jit(fm.vmap(fm.grad(f), in_axes=(None, 0))),
    "vmap(jacrev)": lambda f: fm.vmap(fm.jacrev(f), in_axes=(None, 0)),
    "vmap(jacfwd)": lambda f: fm.vmap(fm.jacfwd(f), in_axes=(None, 0)),
    "vmap(hessian)": lambda f: fm.vmap(fm.hessian(f), in_axes=(None, 0)),
    "vmap(grad(grad))": lambda f: fm.vmap(fm.grad(fm.grad(f)), in_axes=(None, 0)),
    "jit(vmap(hessian))": lambda f: fm.jit(fm.vmap(fm.hessian(f), in_axes=(None, 0))),
}
LOOP = {"vmap(grad)": fm.grad, "jit(vmap(grad))": fm.grad, "vmap(jacrev)": fm.jacrev,
        "vmap(jacfwd)": fm.jacfwd, "vmap(hessian)": fm.hessian,
        "vmap(grad(grad))": lambda f: fm.grad(fm.grad(f)), "jit(vmap(hessian))": fm.hessian}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_two_inner_vmaps_of_an_unmapped_value(stack):
    f = (lambda w, x: w * g(w, x)) if "hess" in stack or "grad(grad)" in stack else g
    got = STACKS[stack](f)(1.0, XS)
    assert got == tuple(LOOP[stack](f)(1.0, x) for x in XS)
    assert got == ((6.0, 10.0) if f is not g else XS)


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_an_index_into_an_inner_vmap_result(stack):
    batches = ((-1.0, 0.0), (2.0, 0.0), (0.5, 3.0))
    got = STACKS[stack](h)(1.0, batches)
    assert got == tuple(LOOP[stack](h)(1.0, xs) for xs in batches)
    assert got == tuple(2.0 * xs[0] for xs in batches)  # d/dw and d2/dw2 at w = 1


def test_a_comparison_to_a_power_under_vmap():
    xs = (-1.0, 2.0)
    assert fm.vmap(lambda x: (x > 0.0) ** 2)(xs) == (0.0, 1.0)
    assert fm.vmap(lambda x: 2.0 ** (x > 0.0))(xs) == (1.0, 2.0)


def test_hessian_through_a_jitted_call_inside_an_inner_vmap():
    jitted = fm.jit(lambda w, x: w * w * x)
    g = lambda w, x: fm.sum(fm.vmap(lambda s: jitted(s, x))((w,)))  # w * w * x
    got = fm.vmap(fm.hessian(g), in_axes=(None, 0))(1.0, XS)
    assert got == tuple(fm.hessian(g)(1.0, x) for x in XS) == (6.0, 10.0)
