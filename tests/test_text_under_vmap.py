"""A number parsed back from a per-example node's text under ``vmap``
(``float(f"{x:.3g}")``) is a ``TypeError`` naming the fix, as under ``grad``.
Until round 31 it was ``float("[1, 2]")``'s ``ValueError`` about the text."""

from __future__ import annotations

import pytest

import fmicrograd as fm


def _parsed(x):
    return float(f"{x:.3g}") * x


@pytest.mark.parametrize("transform", [fm.vmap, lambda f: fm.vmap(fm.grad(f))],
                         ids=["vmap", "vmap(grad)"])
def test_parsing_a_batch_text_is_a_type_error(transform):
    with pytest.raises(TypeError, match=r"under fm.vmap .*every example's value \(\[1, 2\]\)"):
        transform(_parsed)((1.0, 2.0))


def test_printing_under_vmap_still_works(capsys):
    assert fm.vmap(lambda x: (print(f"{x:.1f}"), x * 2.0)[1])((1.0, 2.0)) == (2.0, 4.0)
    assert capsys.readouterr().out == "[1.0, 2.0]\n"
