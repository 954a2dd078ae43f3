"""Property: any stack of transforms gives the numbers of the same stack
without ``jit`` (issue 8). Stacks of depth up to 4 are drawn from grad,
value_and_grad, jvp, jacfwd, jacrev, hessian, vmap, jit and a custom_vjp
wrapper, over random programs from ``fm.testing``'s strategies.

Every stage turns a function of ``x`` (a tuple of floats) into another
function of ``x``, so stages stack in any order: the scalar-only transforms
(grad, value_and_grad, hessian) differentiate the sum of all output leaves,
``jvp`` pushes a fixed tangent, ``vmap`` maps over two examples (``x`` and
``x / 2``) and ``custom`` wraps the function in a ``custom_vjp`` whose rule is
its own ``vjp``. The base function may branch on a comparison or a truth
test of its first input, and each drawn stack is called at three points, so
``jit``'s guards must retrace when a branch flips.
"""

import math
from collections import Counter

from hypothesis import event, given, settings
from hypothesis import strategies as st

import fmicrograd as fm
from fmicrograd.testing.strategies import programs
from fmicrograd.transforms.autodiff import per_example

STAGES = ("grad", "value_and_grad", "jvp", "jacfwd", "jacrev", "hessian", "vmap", "jit", "custom")
BRANCHES = {
    "<": lambda v: v < 0.5, "<=": lambda v: v <= 0.5, ">": lambda v: v > 0.5,
    ">=": lambda v: v >= 0.5, "==": lambda v: v == 0.5, "!=": lambda v: v != 0.5,
    "truth": lambda v: bool(v),
}
SEEN: Counter = Counter()  # stage pairs met, for the statistics printed with -s


def _total(out):
    return fm.sum(fm.tree.leaves(per_example(out)))


def _custom(f):
    g = fm.custom_vjp(lambda x: f(x))
    g.defvjp(lambda x: (f(x), x), lambda x, ct: fm.vjp(f, x)[1](ct))
    return g


def _stage(name, f):
    if name == "grad":
        return fm.grad(lambda x: _total(f(x)))
    if name == "value_and_grad":
        return fm.value_and_grad(lambda x: _total(f(x)))
    if name == "hessian":
        return fm.hessian(lambda x: _total(f(x)))
    if name == "jvp":
        return lambda x: fm.jvp(f, (x,), (tuple(0.5 + 0.25 * i for i in range(len(x))),))
    if name == "jacfwd":
        return fm.jacfwd(f)
    if name == "jacrev":
        return fm.jacrev(f)
    if name == "vmap":
        return lambda x: fm.vmap(f)([x, tuple(v * 0.5 for v in x)])
    if name == "custom":
        return _custom(f)
    assert name == "jit"
    return fm.jit(f)


def _build(prog, stack, branch=None):
    if branch is None:
        f = lambda x: prog(*x)  # noqa: E731
    else:
        test = BRANCHES[branch]
        f = lambda x: prog(*x) if test(x[0]) else prog(*x) * -0.5 + x[0]  # noqa: E731
    for name in stack:  # innermost first
        f = _stage(name, f)
    return f


@st.composite
def stacks(draw):
    stack = draw(st.lists(st.sampled_from(STAGES), min_size=1, max_size=4))
    if "jit" not in stack:
        if len(stack) < 4:
            stack.insert(draw(st.integers(0, len(stack))), "jit")
        else:
            stack[draw(st.integers(0, 3))] = "jit"
    return tuple(stack)


def _same(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _run(f, x):
    try:
        return fm.tree.leaves(f(x)), None
    except (TypeError, ValueError) as e:
        return None, type(e)


@settings(max_examples=150, deadline=None)
@given(programs(min_inputs=1, max_inputs=2, max_steps=4), stacks(),
       st.sampled_from([None, *BRANCHES]), st.data())
def test_any_stack_with_jit_gives_the_numbers_without_jit(prog, stack, branch, data):
    point = st.tuples(*[st.sampled_from([0.0, 0.5, -1.25]) | st.floats(-2.0, 2.0)]
                      * prog.n_inputs)
    xs = [data.draw(point) for _ in range(3)]
    event(f"stack depth {len(stack)}")
    event(f"branch {branch}")
    SEEN.update(zip(stack, stack[1:]))
    SEEN.update((s,) for s in stack)
    plain = _build(prog, [s for s in stack if s != "jit"], branch)
    jitted = _build(prog, stack, branch)
    for x in xs:  # one jitted function at several points: its guards must hold
        want, want_error = _run(plain, x)
        got, got_error = _run(jitted, x)
        event("both raise" if want_error else "numbers compared")
        assert got_error == want_error, (stack, prog, branch, x)
        if want is not None:
            assert len(got) == len(want), (stack, prog, branch, x)
            for g, w in zip(got, want):
                assert isinstance(g, float), (stack, prog, branch, x, g)
                assert _same(g, w), (stack, prog, branch, x, g, w)


def test_statistics_of_the_stack_property():
    # run after the property (same module): every stage was drawn, most pairs met
    if not SEEN:
        test_any_stack_with_jit_gives_the_numbers_without_jit()
    singles = {k[0] for k in SEEN if len(k) == 1}
    pairs = {k for k in SEEN if len(k) == 2}
    print(f"\nstages drawn: {sorted(singles)}; distinct ordered pairs: {len(pairs)} "
          f"of {len(STAGES) ** 2}")
    assert singles == set(STAGES)
