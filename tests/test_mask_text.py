"""A comparison under ``fm.vmap`` whose examples disagree, turned into text:
one truth is needed, as in ``if`` (an outside probe of round 45 found
``str(x > 2.0) == "True"`` taking one branch for the whole batch)."""

import pytest

import fmicrograd as fm

XS = (1.3, 2.7)


@pytest.mark.parametrize("f", [
    lambda x: x * 2.0 if str(x > 2.0) == "True" else x * 3.0,
    lambda x: x * 2.0 if f"{x > 2.0}" == "True" else x * 3.0,
    lambda x: x * 2.0 if format(x > 2.0, "") == "True" else x * 3.0,
], ids=["str", "f-string", "format"])
def test_text_of_a_per_example_comparison_is_the_if_error(f):
    for transform in (fm.vmap, lambda g: fm.vmap(fm.jit(g)), lambda g: fm.jit(fm.vmap(g)),
                      lambda g: fm.vmap(fm.grad(g))):
        with pytest.raises(ValueError, match="inside fm.vmap: Python control flow cannot "
                                             "depend on a per-example value"):
            transform(f)(XS)
    assert fm.vmap(f)((2.5, 2.7)) == tuple(f(x) for x in (2.5, 2.7))  # they agree: one truth
    assert [f(x) for x in XS] == [1.3 * 3.0, 2.7 * 2.0]  # (the loop's, which vmap stands for)


def test_the_repr_of_a_mask_still_shows_it():
    seen = []
    fm.vmap(lambda x: (seen.append(repr(x > 2.0)), x)[1])(XS)
    assert seen and seen[0].startswith("Mask(op='>'")
