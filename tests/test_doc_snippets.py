"""The Python in the Markdown documentation runs, as a reader would paste it.

Module doctests run through ``--doctest-modules`` and ``tests/test_docs.py``
builds the site; this file runs the code of the hand-written pages: README.md
and docs/*.md, and docs/api/*.md, which hold mostly mkdocstrings directives
(whose examples are the docstrings' doctests) and a few fences. One test per
file: its blocks run in order in one shared namespace, in a fresh temporary
directory (blocks may write files).

The convention every page follows:

- Every fence names its language. ```` ```python ```` and ```` ```py ```` blocks
  run; ```` ```pycon ```` blocks and runs of ``>>>`` lines outside fences
  (``docs/hooks.py`` shows those as ``pycon``) run as doctests, their output
  checked. Other languages (``bash``, ``console``, ``text``, ...) are not
  Python and never run; an untagged fence is a failure, so that Python
  cannot hide in one.
- A bare expression whose comment is a Python literal, or starts with one
  followed by ``:``, ``,`` or ``;``, claims its value, and the claim is
  checked (floats to 1e-9, tuples item by item): ``fm.grad(f)(4.0)  # 0.25:
  ...``. Other comments, and what ``print`` shows, are not checked.
- A Python block that must not run carries an HTML comment (invisible on the
  rendered page and on GitHub) on the line before its fence:

  - ``<!-- no-run: reason -->``: skipped; the reason is required. Keep these
    few (a fragment with ``...``, code that needs a GPU or two machines) and
    never on a block with an ``assert``. A reason that starts with
    ``LIBRARY BUG:`` marks a block that is right but fails because of a bug
    in fmicrograd: it still runs, on a copy of the namespace, and must fail
    (once the bug is fixed the test says to remove the marker).
  - ``<!-- raises: TypeError -->`` or ``<!-- raises: TypeError: reason -->``
    (a builtin exception, or a dotted name such as
    ``fm.train.InstabilityError``): the block shows an error on purpose; its
    last statement must raise that exception, and the statements before it
    must not raise.

  A marker anywhere else (not right before a Python fence) is a failure.
- Cheap stand-ins, so the whole file runs in seconds (the docs' examples
  train to show a result; the test checks that they run, not the accuracy):
  ``fm.train.fit`` runs at most ``FIT_EPOCHS`` epochs, ``fm.datasets.moons``,
  ``circles`` and ``blobs`` make at most ``DATASET_POINTS`` points,
  ``fm.testing.check_op`` tries at most ``CHECK_OP_EXAMPLES`` inputs, and a
  script meant for ``torchrun`` runs as rank 0 of a one-process gloo group
  (the test sets the variables torchrun sets, and destroys the group).
"""

from __future__ import annotations

import ast
import builtins
import doctest
import functools
import inspect
import io
import math
import re
import socket
import sys
import tokenize
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

import fmicrograd as fm

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted((ROOT / "docs" / "api").glob("*.md"))]  # (api: directives, few fences)

PYTHON = {"python", "py", "python3"}
PYCON = {"pycon"}
NOT_PYTHON = {"bash", "sh", "shell", "console", "text", "txt", "json", "toml", "yaml", "ini",
              "dot", "diff"}
FIT_EPOCHS = 3
DATASET_POINTS = 200
CHECK_OP_EXAMPLES = 10

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>no-run|raises)\s*:\s*(?P<arg>.*?)\s*-->\s*$")
ANY_MARKER = re.compile(r"<!--\s*(no-run|raises)\b")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the block's first line of code
    lang: str  # "python", "pycon" or another fence language
    code: str
    marker: str | None = None  # "no-run" or "raises"
    arg: str = ""

    def where(self) -> str:
        first = next((s for s in self.code.splitlines() if s.strip()), "").strip()
        return f"{_shown(self.page)}, block at line {self.line} ({first!r})"


def _shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def blocks(page: Path) -> tuple[list[Block], list[str]]:
    """The page's code blocks, in order, and the problems with its markup."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    problems: list[str] = []
    used_markers: set[int] = set()
    fenced: set[int] = set()  # lines inside fences: a marker shown there is text
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None and lines[i].lstrip().startswith(">>>"):
            start = i
            while i < len(lines) and lines[i].strip():
                i += 1
            found.append(Block(page, start + 1, "pycon", "\n".join(lines[start:i])))
            continue
        if opening is None:
            i += 1
            continue
        fence, lang = opening["fence"], opening["lang"].lower()
        start = i + 1
        i = start
        while i < len(lines) and not re.match(
                rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
            i += 1
        fenced.update(range(start, i))
        indent = len(opening["indent"])
        code = "\n".join(s[indent:] if not s[:indent].strip() else s.lstrip()
                          for s in lines[start:i])
        i += 1
        marker = arg = None
        back = start - 2
        while back >= 0 and not lines[back].strip():
            back -= 1
        if back >= 0 and (m := MARKER.match(lines[back])):
            marker, arg = m["kind"], m["arg"]
            used_markers.add(back)
        where = f"{_shown(page)}:{start}"
        if not lang:
            problems.append(f"{where}: a fence without a language; name it (```python, "
                            "```bash, ```text, ...)")
        elif lang in PYTHON or lang in PYCON:
            if marker and not arg:
                problems.append(f"{where}: the {marker} marker needs a "
                                f"{'reason' if marker == 'no-run' else 'exception name'}")
            if marker == "raises" and lang in PYCON:
                problems.append(f"{where}: a pycon block shows its traceback; no raises marker")
            if marker == "no-run" and not arg.startswith("LIBRARY BUG:") and re.search(
                    r"^\s*assert\b", code, re.M):
                problems.append(f"{where}: a block with an assert must run; no no-run marker")
            found.append(Block(page, start + 1, "pycon" if lang in PYCON else "python", code,
                               marker, arg or ""))
        elif lang not in NOT_PYTHON:
            problems.append(f"{where}: unknown fence language {lang!r}: add it to PYTHON or "
                            "NOT_PYTHON in tests/test_doc_snippets.py")
        elif marker:
            problems.append(f"{where}: a {marker} marker on a {lang} block, which never runs")
    for n, text in enumerate(lines):
        if ANY_MARKER.search(text) and n not in used_markers and n not in fenced:
            problems.append(f"{_shown(page)}:{n + 1}: a marker that is not right "
                            f"before a Python fence, or malformed: {text.strip()!r}")
    return found, problems


# --- running a block ----------------------------------------------------------------------


def _comments(code: str) -> dict[int, str]:
    """Line number -> the text of that line's comment."""
    tokens = tokenize.generate_tokens(io.StringIO(code).readline)
    return {t.start[0]: t.string.lstrip("#").strip() for t in tokens
            if t.type == tokenize.COMMENT}


def _claim(comment: str) -> tuple[bool, object]:
    """The longest leading Python literal of a comment, if it has one."""
    for end in range(len(comment), 0, -1):
        if end < len(comment) and comment[end] not in ",:;" and comment[end - 1] not in ")]}":
            continue
        try:
            return True, ast.literal_eval(comment[:end].strip())
        except (ValueError, SyntaxError, TypeError):
            continue
    return False, None


def _same(actual, claimed) -> bool:
    if isinstance(claimed, (tuple, list)):
        try:
            items = list(actual)
        except TypeError:
            return False
        return len(items) == len(claimed) and all(map(_same, items, claimed))
    if isinstance(claimed, bool) or not isinstance(claimed, (int, float)):
        return actual == claimed
    try:
        number = float(actual)
    except (TypeError, ValueError):
        return False
    return number == claimed or math.isclose(number, claimed, rel_tol=1e-9, abs_tol=1e-12) \
        or (math.isnan(number) and math.isnan(claimed))


def _statements(block: Block) -> list[tuple[ast.stmt, str | None]]:
    """The block's top-level statements, numbered as lines of the page, each
    with the literal its comment claims for it (a bare expression only)."""
    code = "\n" * (block.line - 1) + block.code  # numbered as lines of the page
    tree = ast.parse(code, filename=str(block.page))
    comments = _comments(code)
    out = []
    for stmt in tree.body:
        claim = None
        if isinstance(stmt, ast.Expr) and stmt.end_lineno in comments:
            claim = comments[stmt.end_lineno]
        out.append((stmt, claim))
    return out


def _run_python(block: Block, namespace: dict, expected: type | None = None) -> None:
    """Runs the block statement by statement, checking each claimed value;
    with ``expected``, its last statement must raise that exception."""
    statements = _statements(block)
    for k, (stmt, comment) in enumerate(statements):
        if expected is not None and k == len(statements) - 1:
            try:
                exec(compile(ast.Module([stmt], []), str(block.page), "exec"), namespace)
            except expected:
                return
            raise AssertionError(f"line {stmt.lineno}: marked raises: {block.arg}, but the "
                                 "last statement raised nothing")
        has_claim, claimed = _claim(comment) if comment is not None else (False, None)
        if has_claim:
            value = eval(compile(ast.Expression(stmt.value), str(block.page), "eval"), namespace)
            if not _same(value, claimed):
                raise AssertionError(f"line {stmt.lineno}: the comment claims {claimed!r}, "
                                     f"the code gives {value!r}")
        else:
            exec(compile(ast.Module([stmt], []), str(block.page), "exec"), namespace)


def _run_pycon(block: Block, namespace: dict) -> None:
    test = doctest.DocTestParser().get_doctest(block.code, namespace, block.where(),
                                               str(block.page), block.line - 1)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    if runner.run(test, out=out.write, clear_globs=False).failed:
        raise AssertionError(out.getvalue())


def _exception(name: str, namespace: dict) -> type:
    head, *rest = name.split(".")
    value = namespace[head] if head in namespace else getattr(builtins, head, None)
    for part in rest:
        value = getattr(value, part, None)
    if not (isinstance(value, type) and issubclass(value, BaseException)):
        raise AssertionError(f"raises: {name!r} is not an exception class (a builtin, or a "
                             "dotted name such as fm.train.InstabilityError)")
    return value


def run(block: Block, namespace: dict) -> str | None:
    """Runs one block; returns what went wrong, or None."""
    try:
        if block.lang == "pycon":
            _run_pycon(block, namespace)
        elif block.marker == "raises":
            _run_python(block, namespace, _exception(block.arg.split(":")[0].strip(), namespace))
        else:
            _run_python(block, namespace)
    except Exception as e:
        return _failure(block, e)
    return None


def _failure(block: Block, e: BaseException) -> str:
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # from the page's line on
    frames = "".join(traceback.format_exception(type(e), e, tb))
    return f"{block.where()} raised {type(e).__name__}: {e}\n{frames}"


# --- the cheap stand-ins ------------------------------------------------------------------


def _capped(fn, name: str, limit: int):
    """``fn`` with its argument ``name`` (given or default) at most ``limit``."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def capped(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return fn(*args, **kwargs)  # fn's own error
        bound.apply_defaults()
        bound.arguments[name] = min(bound.arguments[name], limit)
        return fn(*bound.args, **bound.kwargs)

    return capped


@pytest.fixture
def doc_session(tmp_path, monkeypatch):
    """A temporary working directory, the cheap stand-ins of the module's
    docstring, and the variables ``torchrun`` sets for a one-process group."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fm.train, "fit", _capped(fm.train.fit, "epochs", FIT_EPOCHS))
    monkeypatch.setattr(fm.testing, "check_op", _capped(fm.testing.check_op, "max_examples",
                                                         CHECK_OP_EXAMPLES))
    for name in ("moons", "circles", "blobs"):
        monkeypatch.setattr(fm.datasets, name,
                            _capped(getattr(fm.datasets, name), "n", DATASET_POINTS))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"),
                        ("LOCAL_WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"),
                        ("MASTER_PORT", str(port))):
        monkeypatch.setenv(name, value)
    yield
    dist = sys.modules.get("torch.distributed")  # a page may have started a group
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def check(page: Path) -> list[str]:
    """Runs the page's blocks in one namespace; returns what went wrong."""
    found, problems = blocks(page)
    namespace: dict = {"__name__": "__main__"}  # a fresh session, as a reader's
    for block in found:
        if block.marker == "no-run" and block.arg.startswith("LIBRARY BUG:"):
            if run(block, dict(namespace)) is None:
                problems.append(f"{block.where()} ran without error: if the library bug is "
                                f"fixed, remove its marker ({block.arg})")
        elif block.marker != "no-run" and (problem := run(block, namespace)):
            problems.append(problem)
            break  # later blocks build on this one
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_runs(page, doc_session):
    problems = check(page)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def test_markers_claims_and_fences_are_enforced(tmp_path, doc_session):
    page = tmp_path / "page.md"

    def problems(text: str) -> str:
        page.write_text(text)
        return "\n".join(check(page))

    fence = "```"
    assert problems(f"""{fence}python
x = 2.0 ** 0.5
x * x   # 2.0: checked to 1e-9
(x, -x)  # (1.4142135623730951, -1.4142135623730951)
{fence}

<!-- raises: ZeroDivisionError -->
{fence}py
1 / 0
{fence}

<!-- no-run: a fragment -->
{fence}python
f(...)
{fence}

<!-- no-run: LIBRARY BUG: pretend that int() fails -->
{fence}python
int("x")
{fence}

{fence}bash
pip install fmicrograd
{fence}

>>> x + 1.0
2.414...
""") == ""
    assert "page.md, block at line 2 ('x = 1.0') raised AssertionError: line 3: the comment " \
           "claims 3.0, the code gives 1.0" in problems(
               f"{fence}python\nx = 1.0\nx  # 3.0\n{fence}\n")
    assert "block at line 3 ('y = x') raised NameError: name 'x' is not defined" in problems(
        f"\n{fence}python\ny = x\n{fence}\n")
    assert "a fence without a language" in problems(f"{fence}\nx = 1\n{fence}\n")
    assert "a marker that is not right before a Python fence" in problems(
        "<!-- no-run: stray -->\n\ntext\n")
    assert "the no-run marker needs a reason" in problems(
        f"<!-- no-run: -->\n{fence}python\nx = 1\n{fence}\n")
    assert "raised nothing" in problems(
        f"<!-- raises: ValueError: on purpose -->\n{fence}python\nx = 1\n{fence}\n")
    assert "a block with an assert must run" in problems(
        f"<!-- no-run: slow -->\n{fence}python\nassert f()\n{fence}\n")
    assert problems(f"{fence}text\n<!-- no-run: shown as text -->\n{fence}\n") == ""
    assert "raised ZeroDivisionError" in problems(
        f"<!-- raises: ValueError -->\n{fence}python\n1 / 0\nx = 1\n{fence}\n")
    assert "remove its marker" in problems(
        f"<!-- no-run: LIBRARY BUG: fixed -->\n{fence}python\nx = 1\n{fence}\n")
    assert "Expected:\n    3.0\nGot:\n    2.0" in problems(">>> 1.0 + 1.0\n3.0\n")
