"""MkDocs hook: show the doctest examples of docstrings as Python code.

Docstrings hold runnable ``>>>`` examples (the test suite runs them). Without
this, Markdown would read ``[1.0, 2.0]`` in them as links. Each run of lines
starting at ``>>>`` (with its ``...`` continuations and printed output, up to a
blank line) becomes a fenced ``pycon`` block.
"""

from markdown import Extension
from markdown.preprocessors import Preprocessor
from mkdocs.plugins import event_priority


class _DoctestBlocks(Preprocessor):
    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        inside = fenced = False
        for line in lines:
            if line.lstrip().startswith("```"):
                fenced = not fenced
            starts = not fenced and line.lstrip().startswith(">>>")
            if starts and not inside:
                out.extend(["", "```pycon"])
                inside = True
            elif inside and not line.strip():
                out.append("```")
                inside = False
            out.append(line)
        if inside:
            out.append("```")
        return out


class DoctestBlocks(Extension):
    def extendMarkdown(self, md) -> None:  # noqa: N802 (Markdown's name)
        md.preprocessors.register(_DoctestBlocks(md), "fm_doctest_blocks", 29)


@event_priority(100)  # before mkdocstrings reads the Markdown extensions
def on_config(config):
    config.markdown_extensions.append(DoctestBlocks())
    return config
