"""micrograd's names on a node (``x.data``, ``x.grad``, ``x.backward()``,
``Value(2.0, label="a")``, ``p.data -= lr * p.grad``), each answered by an
error that names the fmicrograd way: nodes are immutable and hold no gradient.

>>> fm.Var(2.0).grad
Traceback (most recent call last):
    ...
AttributeError: fm.Expr has no .grad: nodes are immutable and store no gradient; write the \
computation as a function f and take fm.grad(f)(x) (or fm.value_and_grad(f)(x)); to see d out / \
d node for every node of a graph already built, as micrograd's backward() leaves in .grad, use \
fm.viz.node_grads(out)[node]
"""

from __future__ import annotations

import functools
from dataclasses import FrozenInstanceError
from typing import Any

__all__ = ["MICROGRAD_HINTS", "ASSIGN_HINTS", "install"]


# Assignment to a node (micrograd's ``p.data -= lr * p.grad``, ``p.grad = 0``) is a
# FrozenInstanceError naming the functional update. The dataclass's own __setattr__
# fails with "super(type, obj)" for names that are not fields (slots=True rebuilds
# the class it names); these replace it. Nodes are built through the slots'
# setters (``_set_value`` ...), so construction never calls them.
_UPDATE_WAY = ("build a new node (fm.Var(3.0)), or update parameters functionally: "
               "params = fm.tree.map(lambda p, g: p - lr * g, params, grads) (or "
               "fm.optim.sgd(lr) with fm.optim.apply_updates)")

# micrograd's names on a node. fmicrograd's nodes hold no gradient, so each of
# these raises an error naming the fmicrograd way. Added after the class (not
# as fields, and unseen by type checkers, which report them as unknown).
_GRAD_WAY = ("write the computation as a function f and take fm.grad(f)(x) (or "
             "fm.value_and_grad(f)(x)); to see d out / d node for every node of a graph "
             "already built, as micrograd's backward() leaves in .grad, use "
             "fm.viz.node_grads(out)[node]")
MICROGRAD_HINTS = {
    "data": "fm.Expr has no .data (micrograd's name): a node's forward value is node.value, "
            "and nodes are immutable; for micrograd's p.data -= lr * p.grad, " + _UPDATE_WAY,
    "grad": "fm.Expr has no .grad: nodes are immutable and store no gradient; " + _GRAD_WAY,
    "backward": "fm.Expr has no .backward(): nothing is written into nodes; " + _GRAD_WAY,
    "zero_grad": "fm.Expr has no .zero_grad(): nodes store no gradient, so there is none "
                 "to reset; " + _GRAD_WAY,
    "_prev": "fm.Expr has no ._prev (micrograd's private set of parents): a node's inputs are "
             "node.children, a tuple in operand order",
    "_op": "fm.Expr has no ._op (micrograd's private name): a node's operation is node.op "
           "('+', '*', 'tanh', 'var', ...)",
    "label": "fm.Expr has no .label (micrograd's name): a variable's name is node.name, given "
             "when it is built: fm.Var(2.0, name='a')",
}


def _hint(message: str) -> property:
    def fail(self: Any) -> Any:
        raise AttributeError(message)

    return property(fail)


ASSIGN_HINTS = {
    "data": "x.data = ... is micrograd's in-place update; here a node's number is .value and "
            "never changes: " + _UPDATE_WAY,
    "grad": "x.grad = ... is micrograd's (zero_grad); nodes store no gradient, so there is "
            "none to set or reset: fm.grad(f)(x) returns a fresh gradient each call",
    "label": "x.label = ... is micrograd's; a variable's name (node.name) is given when it is "
             "built: fm.Var(2.0, name='a')",
}


def _assign_message(node: Any, name: str, verb: str) -> str:
    kind = "field " if name in node.__dataclass_fields__ else ""
    hint = ASSIGN_HINTS.get(name, _UPDATE_WAY)
    return (f"cannot {verb} {kind}{name!r}: fm nodes (here a {type(node).__name__}) are "
            f"immutable, frozen dataclasses never changed after construction; {hint}")


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(_assign_message(self, name, "assign to"))


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(_assign_message(self, name, "delete"))




def _teach_var_keywords(var_init: Any) -> Any:
    """``Var.__init__`` that answers micrograd's ``Value(2.0, label="a")`` (or
    any other unknown keyword) with a TypeError naming ``name=``. Installed
    after the class, so type checkers still see only ``(value, name=None)``."""

    @functools.wraps(var_init)
    def __init__(self: Any, value: Any, name: Any = None, **unknown: Any) -> None:
        if unknown:
            shown = ", ".join(f"{k}={v!r}" for k, v in unknown.items())
            fix = (f"micrograd's label= is name= here: fm.Var({value!r}, "
                   f"name={unknown['label']!r})" if "label" in unknown else
                   "nodes with children and an op come from operations (a * b, fm.tanh(a))")
            raise TypeError(f"fm.Var({value!r}, {shown}): fm.Var takes (value, name=None), no "
                            f"{', '.join(k + '=' for k in unknown)}; {fix}")
        var_init(self, value, name)

    return __init__


def install(expr: Any, var: Any, *others: Any) -> None:
    """Give the node classes micrograd's names as errors: ``expr`` the base
    class (its attributes), ``var`` the variable class (its keywords), then
    every class whose assignments are refused (``expr`` and ``var`` too).

    >>> fm.Var(1.0).data = 2.0
    Traceback (most recent call last):
        ...
    dataclasses.FrozenInstanceError: cannot assign to 'data': fm nodes (here a Var) are \
immutable, frozen dataclasses never changed after construction; x.data = ... is micrograd's \
in-place update; here a node's number is .value and never changes: build a new node \
(fm.Var(3.0)), or update parameters functionally: params = fm.tree.map(lambda p, g: p - lr * \
g, params, grads) (or fm.optim.sgd(lr) with fm.optim.apply_updates)
    """
    for name, message in MICROGRAD_HINTS.items():
        setattr(expr, name, _hint(message))
    var.__init__ = _teach_var_keywords(var.__init__)
    for cls in (expr, var, *others):  # (subclasses inherit theirs)
        cls.__setattr__ = _frozen_setattr
        cls.__delattr__ = _frozen_delattr
