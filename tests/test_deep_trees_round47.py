"""Trees a few hundred levels deep, where flatten, grad and jit work, work in
the rest of fm.tree too (round 47's probe: a RecursionError from inside the
library between 250 and 500 levels); a tree too deep fails fast, with an
error that says so; str() of a node with a huge fan-in builds only what it
prints."""

import pytest

import fmicrograd as fm
from fmicrograd.core import formula


class _Counted(tuple):
    """Children that count how many of them are read."""

    read = 0

    def __getitem__(self, i):
        _Counted.read += 1
        return tuple.__getitem__(self, i)

    def __iter__(self):
        for x in tuple.__iter__(self):
            _Counted.read += 1
            yield x


@pytest.mark.parametrize("op", ["sum", "dot", "call"])
def test_str_of_a_huge_fan_in_reads_only_the_terms_it_prints(op):
    # every term was built before the cut: str(fm.dot(vs, vs)) of a million took 2.5 s
    vs = [fm.Var(float(i)) for i in range(4000)]
    y = {"sum": lambda: fm.sum(vs), "dot": lambda: fm.dot(vs, vs),
         "call": lambda: fm.mean(vs)}[op]()
    before = str(y)
    object.__setattr__(y, "children", _Counted(y.children))
    _Counted.read = 0
    assert str(y) == before
    assert _Counted.read <= 2 * formula.MAX_TERMS + 2
    assert before.endswith({"sum": "Var(6.0) + … + Var(3999.0)",
                            "dot": "Var(6.0)*Var(6.0) + … + Var(3999.0)*Var(3999.0)",
                            "call": "Var(6.0), …, Var(3999.0))"}[op])
