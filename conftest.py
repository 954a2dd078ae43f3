"""Names every doctest may use without importing them."""

import pytest

import fmicrograd as fm


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict) -> None:
    doctest_namespace.update(fm=fm, Var=fm.Var, Const=fm.Const)
