"""A jitted function's branches are decided on the values its trace computed.

``optimize`` regroups sums, so the compiled value of a comparison's operand
could differ from Python's in the last bits; at an exact tie the branch
flipped: ``(a + b) + (c + d) > 0.0`` at ``(0.1, 0.2, -0.1, -0.2)`` is False
in Python (0.0) and was True in the compiled program (2.8e-17), and a fresh
compile at that point raised "a freshly compiled variant rejected its own
inputs" (until round 21, found by an outside probe of jit's guards). The
guards now run as their own straight-line program of the operations as
traced (``compiler/guards.py``).
"""

import random

import numpy as np
import pytest

import fmicrograd as fm


def balanced(a, b, c, d):
    s = (a + b) + (c + d)
    return 1.0 if s > 0.0 else -1.0


def nested(x, y, z):
    s = x + (y + z)
    return 1.0 if s <= 0.6 else 2.0


def products(x, y, z, w):
    s = x * y + (z * w + x)  # a sum of products: a dot in the compiled program
    return 1.0 if s > x else -1.0


def test_the_probes_examples():
    jb = fm.jit(balanced)
    assert jb(1.0, 1.0, 1.0, 1.0) == 1.0
    assert balanced(0.1, 0.2, -0.1, -0.2) == -1.0
    assert jb(0.1, 0.2, -0.1, -0.2) == -1.0
    assert fm.jit(balanced)(0.1, 0.2, -0.1, -0.2) == -1.0  # a fresh compile at the tie
    jn = fm.jit(nested)
    jn(1.0, 1.0, 1.0)
    assert jn(0.1, 0.2, 0.3) == nested(0.1, 0.2, 0.3) == 1.0


@pytest.mark.parametrize("transform", ["jit(grad)", "grad(jit)", "jit(grad(jit))"])
def test_a_branch_at_a_tie_under_grad(transform):
    def g(a, b, c, d):
        return a * balanced(a, b, c, d)

    make = {"jit(grad)": lambda h: fm.jit(fm.grad(h)),
            "grad(jit)": lambda h: fm.grad(fm.jit(h)),
            "jit(grad(jit))": lambda h: fm.jit(fm.grad(fm.jit(h)))}[transform]
    t = make(g)
    t(1.0, 1.0, 1.0, 1.0)
    assert t(0.1, 0.2, -0.1, -0.2) == fm.grad(g)(0.1, 0.2, -0.1, -0.2) == -1.0


def test_ties_of_regrouped_sums_follow_python():
    rng = random.Random(7)
    functions = [fm.jit(balanced), fm.jit(nested), fm.jit(products)]
    checked = 0
    for _ in range(300):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        for f, args in ((balanced, (a, b, -a, -b)), (balanced, (a, b, -b, -a)),
                        (nested, (a, b, 0.6 - a - b)), (products, (a, b, -a, b))):
            jitted = functions[[balanced, nested, products].index(f)]
            assert jitted(*args) == f(*args), (f.__name__, args)
            checked += 1
    assert checked == 1200


def test_guards_behind_array_code_follow_python():
    # many inputs: the optimized program is array code (a dot), the guard scalar code
    def f(xs):
        s = fm.dot(xs, xs) - fm.dot(xs[::-1], xs[::-1])  # 0.0 or a last bit either way
        return (fm.sum(xs), 1.0 if s >= 0.0 else -1.0)

    jf = fm.jit(f)
    rng = np.random.default_rng(0)
    for _ in range(40):
        xs = tuple(rng.uniform(-1, 1, 300).tolist())
        (total, sign), (want_total, want_sign) = jf(xs), f(xs)
        assert sign == want_sign and total == pytest.approx(want_total, rel=1e-12, abs=1e-12)
    assert jf.lower(xs).backend == "batched"


def test_lower_shows_the_branches_and_the_program():
    text = fm.jit(balanced).lower(1.0, 1.0, 1.0, 1.0).as_text()
    branches, program = text.split("# then:")
    assert "!= True: return None" in branches and "return None" not in program


def test_a_decimal_is_refused_naming_the_fix():
    # Python compares a float with a Decimal exactly; a node cannot under jit or vmap
    # (until round 21: Python's "not supported" for <, and == silently False at 0.5)
    from decimal import Decimal
    from fractions import Fraction

    assert 0.5 == Decimal("0.5")
    x = fm.Var(0.5)
    with pytest.raises(TypeError, match=r"Fraction\(d\)"):
        _ = x < Decimal("0.1")
    with pytest.raises(TypeError, match=r"Fraction\(d\)"):
        _ = x == Decimal("0.5")
    branch = fm.jit(lambda x: 1.0 if x > Fraction(1, 10) else 2.0)
    assert branch(0.1) == (1.0 if 0.1 > Fraction(1, 10) else 2.0) == 1.0


def test_a_branch_on_a_value_computed_over_a_vmap_batch_runs_as_python():
    # the guard was checked on the compiled program's regrouped sums: the other branch at a
    # tie (13-25% of random points for such forms), or "a freshly compiled variant rejected
    # its own inputs" on the first call (an outside probe)
    def f(xs, w, c, d):
        s = fm.sum(fm.vmap(lambda x: x * w)(xs))
        t = (s + (c + d)) - ((s + c) + d)
        return 1.0 if t > 0.0 else (-1.0 if t < 0.0 else 0.0)

    def g(xs, w, c):
        s = fm.sum(fm.vmap(lambda x: x * w)(xs))
        return 1.0 if (s + c) + (-s + -c) > 0.0 else 0.0

    a = ((0.6565719395635656, -0.47123796532097373, 0.3436296977428872),
         0.008513497928317015, -0.8636500960275071, 0.7748523575994282)
    assert fm.jit(f)(*a) == f(*a) == 1.0
    assert fm.jit(g)((0.1, 0.2, 0.3, 0.4), 0.3, 0.1) == g((0.1, 0.2, 0.3, 0.4), 0.3, 0.1)
    text = fm.jit(f).lower(*a).as_text()
    assert "runs as Python" in text and "branch on a value computed over a vmap batch" in text


def test_lower_says_which_inputs_a_guard_reads():
    # the guard's own I is the inputs it reads, which the text did not say: its v0 read
    # as the program's x where it is y
    jf = fm.jit(lambda x, y: x * 3.0 if y > 0.0 else x * 5.0)
    text = jf.lower(-2.0, 1.0).as_text()
    assert "# (its I is [I[1]] of the program's I)" in text
    assert (jf(2.0, -1.0), jf(2.0, 1.0)) == (10.0, 6.0)
