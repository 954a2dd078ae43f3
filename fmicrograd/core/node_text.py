"""The text of a node formatted while a transform runs, ``f"{x:.3g}"``: a
``str`` that remembers its node, so that reading a number back from it is
the escape ``float(x)`` is.

Formatting a node is how a loss prints itself (``print(f"loss {x:.4f}")``),
and it works under every transform. Parsing that text back into a number,
``float(f"{x:.3g}")`` (the significant-figures idiom), would hand a plain
float to the rest of the function, without the node's derivative: a silently
wrong gradient. So ``float()`` (and numpy's float conversions, which call it)
of such text raises the ``TypeError`` ``float(x)`` raises, naming the fix,
while a transform that differentiates ``x`` runs; under ``fm.jit`` alone the
text is the call's own (the function then runs as Python, see
``FORMATTED``), and outside every transform it is plain text.

Text built from it (``"loss " + t``, ``t.strip()``, a longer f-string) is a
plain ``str``: only the formatted value itself is watched, the common form.

>>> import fmicrograd as fm
>>> fm.grad(lambda x: float(f"{x:.3g}") * x)(1.5)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
TypeError: float() of f"{x:.3g}" (the text of an fm.Expr) that fm.grad differentiates: ...
>>> fm.grad(lambda x: (print(f"{x:.2f}"), x * x)[1])(1.5)
1.50
3.0
"""

from __future__ import annotations

from typing import Any

from .control import RUNNING, _depends_on, raised

__all__ = ["NodeText", "BatchText", "node_text"]


class NodeText(str):
    """``format(node, spec)``'s text while a transform runs (see the module)."""

    __slots__ = ("node", "spec")
    node: Any
    spec: str

    def __float__(self) -> float:
        if self.__class__ is BatchText:  # (under vmap: one value per example)
            raise TypeError(
                f'float() of f"{{x:{self.spec}}}" under fm.vmap (to_torch batches with it): '
                f"the text holds every example's value ({str(self)[:60]}), not one number per "
                "example. Compute with "
                "the node itself (fm functions, fm.where for choices), or format and parse "
                "outside the vmap")
        refuse_parse(self.node, self.spec)
        return float(str(self))

    def __reduce__(self) -> tuple:  # copied or pickled: the plain text
        return (str, (str(self),))


def _refuse_reading(name: str) -> Any:
    def refused(self: BatchText, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f'{name} of f"{{x:{self.spec}}}" under fm.vmap: the text holds every example\'s '
            f"value ({str(self)[:60]}), so one answer would stand for the whole batch where a "
            "loop gives one per example. Compute with the node itself (fm.where for choices), "
            "or format outside the vmap; printing the text is fine")
    refused.__name__ = name
    return refused


class BatchText(NodeText):
    """``format(node, spec)``'s text under ``vmap``, ``"[1.30, 1.70]"``: one
    text for every example. It prints as it is; reading it (its length, a
    prefix, a comparison, an item) would give the whole batch one answer
    where a loop over the examples reads each example's own text (``if
    f"{x:.2f}".startswith("1")`` took one branch for all), so those raise."""

    __slots__ = ()
    __hash__ = str.__hash__


for _name in ("__len__", "__getitem__", "__iter__", "__contains__", "__eq__", "__ne__",
              "__lt__", "__le__", "__gt__", "__ge__", "startswith", "endswith", "find",
              "rfind", "index", "rindex", "count", "split", "rsplit", "partition",
              "rpartition", "isdigit", "isnumeric", "isdecimal", "isalpha", "isalnum"):
    setattr(BatchText, _name, _refuse_reading(
        {"__len__": "len()", "__getitem__": "indexing", "__iter__": "iterating",
         "__contains__": "`in`"}.get(_name, "comparing" if _name.startswith("__") else
                                     f".{_name}()")))


def node_text(text: str, node: Any, spec: str, batch: bool = False) -> str:
    """``text`` (the node's formatted value) as a ``NodeText`` while some
    transform runs, else as it is.

    >>> from fmicrograd.core.expr import Var
    >>> type(node_text("1.5", Var(1.5), ".1f")).__name__
    'str'
    """
    if not RUNNING.get() and not batch:  # (``batch``: "[1.30, 1.70]", a vmap's examples,
        return text                      # whose float() and reading are refused)
    out = (BatchText if batch else NodeText)(text)
    out.node, out.spec = node, spec
    return out


def refuse_parse(x: Any, spec: str) -> None:
    """The ``TypeError`` of ``float(x)`` when a running transform other than
    a trace (``fm.jit``, ``fm.trace``) depends on node ``x``."""
    levels = {lv: (who, traces) for lv, who, traces in RUNNING.get() if not traces}
    hit = _depends_on(x, levels) if levels else None
    if hit is None:
        return
    who, level = hit
    raise raised(level, TypeError(
        f'float() of f"{{x:{spec}}}" (the text of an fm.Expr) that {who} differentiates: the '
        "number read back from the text would silently drop its derivative. Compute with the "
        "node itself (fm functions, fm.where for choices), or write "
        "fm.stop_gradient(x) where dropping the derivative is intended"))
