"""Types a user sees: py.typed, every public name known to mypy and dir(),
float-in/float-out and node-in/node-out overloads, and mypy clean on the
package (default mode plus pyproject's [tool.mypy]) and on typed user
scripts (the strict flags named in each script's first lines, a subset of
--strict without warn-return-any: the transforms, the losses and ``fm.tree.map`` return Any,
as JAX's do, so a function returning their result would need a cast)."""

import ast
import os
import runpy
from pathlib import Path

import fmicrograd as fm

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).resolve().parent / "typed_examples"


def test_package_is_marked_typed_and_ships_the_marker():
    assert (ROOT / "fmicrograd" / "py.typed").exists()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'fmicrograd = ["py.typed"]' in pyproject


def test_dir_lists_every_public_name_lazy_ones_included():
    names = dir(fm)
    for name in ("jit", "vmap", "hessian", "custom_vjp", "nn", "optim", "train", "grad", "Var"):
        assert name in names
    assert set(fm.__all__) <= set(names)
    for name in fm.__all__:
        assert getattr(fm, name) is not None


def test_lazy_names_and_type_checking_imports_agree():
    tree = ast.parse((ROOT / "fmicrograd" / "__init__.py").read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If)
                   and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {alias.asname or alias.name for imp in guarded.body for alias in imp.names}
    assert seen == set(fm._LAZY)
    assert set(fm._LAZY) <= set(fm.__all__)


def test_mypy_is_clean_on_the_package_and_typed_user_scripts(tmp_path):
    """One mypy run (about 10 s of CPU): the package and the typed examples
    (each with strict flags in its first line) are clean, and a script with
    typical mistakes gets exactly the errors a typed package owes it."""
    from mypy import api

    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "import fmicrograd as fm\n"
        "a: str = fm.sin(1.0)\n"                      # float in, float out
        "b: float = fm.sin(fm.Var(1.0))\n"            # node in, node out
        "m = fm.nn.MLP.init(2, [16, 1])\n"            # the key is required
        "j = fm.jitt\n"                               # misspelt lazy name
        "v = fm.Var(1.0).data\n")                     # micrograd's attribute
    cwd = os.getcwd()
    os.chdir(ROOT)  # so mypy reads this checkout, not an installed copy
    try:
        out, err, status = api.run([
            "--cache-dir", str(tmp_path / "cache"), "--config-file", str(ROOT / "pyproject.toml"),
            "fmicrograd", *map(str, sorted(EXAMPLES.glob("*.py"))), str(wrong)])
    finally:
        os.chdir(cwd)
    report = out + err
    errors = [line for line in report.splitlines() if ": error:" in line]
    assert all(line.startswith(str(wrong)) for line in errors), report
    expected = ((2, '"float", variable has type "str"'), (3, '"Expr", variable has type "float"'),
                (4, 'Missing named argument "key"'), (5, 'has no attribute "jitt"'),
                (6, '"Var" has no attribute "data"'))
    assert len(errors) == len(expected), report
    for (line, needle), error in zip(expected, errors):
        assert f"wrong.py:{line}: error:" in error and needle in error, report
    assert status == 1


def test_typed_examples_run(capsys):
    for script in sorted(EXAMPLES.glob("*.py")):
        runpy.run_path(str(script), run_name="__main__")
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and all(printed)

