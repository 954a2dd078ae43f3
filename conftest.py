"""Names every doctest may use without importing them."""

import pytest

import fmicrograd as fm

# typed user scripts: checked by mypy and run by tests/test_typing.py, not imported as modules
collect_ignore_glob = ["tests/typed_examples/*",
                       "tests/shaped_selfcheck.py"]  # (a plugin that patches jit: run with -p)


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace: dict) -> None:
    doctest_namespace.update(fm=fm, Var=fm.Var, Const=fm.Const)
