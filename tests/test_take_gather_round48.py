"""``jit`` of a gradient by a list of examples' tuples (round 48, a helper's
fuzzing): each per-entry cotangent is an entry of one of a few rows, and the
compiled code gathered one whole row per entry first (``g1[i3][i4, i2]``,
members x batch: 3 x 4,000 entries took 256 MB and 58 ms a call, 20,000
examples several GB). The distinct rows are gathered once now; the numbers
are eager's, bit for bit."""

import numpy as np
import pytest

import fmicrograd as fm

FUNCTIONS = {
    "all three": lambda a: a[0] * a[1] + a[2],
    "two of three, out of order": lambda a: fm.tanh(a[2]) * a[0],
    "one, twice": lambda a: a[1] * a[1] - fm.exp(a[1]),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_gradient_by_a_list_of_tuples_is_eagers(name):
    per = FUNCTIONS[name]
    f = lambda z: fm.sum(fm.vmap(per)(z))  # noqa: E731
    z = [tuple(r) for r in np.random.default_rng(0).normal(size=(300, 3)).tolist()]
    compiled = fm.jit(fm.grad(f))
    assert compiled(z) == fm.grad(f)(z)
    text = compiled.lower(z).as_text()
    assert "][" not in text.replace("][0]", "")  # (no row per entry gathered, then indexed)
