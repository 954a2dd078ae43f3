"""Operation batching (DyNet's autobatching, Neubig et al. 2017) for programs.

Each node gets a level (as soon as possible: one more than its deepest
argument); the nodes of one level with the same operation, parameters and
shapes form a *group* that one array operation evaluates. A scalar MLP's
sixteen ``dot`` nodes of a layer, or the same node across a hundred unrolled
examples, become one group.

>>> from fmicrograd.compiler.ir import lower
>>> from fmicrograd.core.expr import variable, next_level
>>> lv = next_level()
>>> xs = [variable(float(i), lv) for i in range(4)]
>>> p = lower([fm.exp(x) * 2.0 for x in xs], xs, [], lv)
>>> [(p.ops[g[0]], len(g)) for g in groups(p)]
[('exp', 4), ('*', 4)]
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from ..batching import vmap_ops
from ..batching.traced_arrays import Column
from .ir import Program

__all__ = ["groups", "merge_later", "param_key", "scalar_cost", "batched_cost"]


def param_key(op: str, param: Any) -> Any:
    """What of a node's parameter must agree for nodes to share a group
    (``take`` nodes share a group whatever index they take).

    >>> param_key("take", vmap_ops.Take(3, 0, (5,), ())), param_key("bsum", (0,))
    (('take', 0, (5,), ()), (0,))
    """
    if isinstance(param, vmap_ops.Take):
        return ("take", param.lead, param.full, param.shape)
    if isinstance(param, Column):  # (the columns of a data matrix, wherever they start)
        return ("col", param.depth)
    if op == "custom":
        return id(param)
    return param


def groups(p: Program) -> list[list[int]]:
    """Groups of node numbers, in an order that respects dependencies.

    >>> from fmicrograd.core.expr import variable, next_level
    >>> from fmicrograd.compiler.ir import lower
    >>> lv = next_level()
    >>> x, y = variable(1.0, lv), variable(2.0, lv)
    >>> p = lower([x * y, x * x, fm.exp(x * y)], [x, y], [], lv)
    >>> [[p.ops[i] for i in g] for g in groups(p)]
    [['*', '*'], ['exp']]
    """
    level = [-1] * p.size
    found: dict = {}
    ops, args, shapes, params = p.ops, p.args, p.shapes, p.params
    level_of, shape_of, get = level.__getitem__, shapes.__getitem__, found.get
    start = p.leading_inputs()  # sources first
    # one flat key per node: level, op, parameter, shape, the arguments' shapes
    for i, op, a, param, shape in zip(range(start, p.size), ops[start:], args[start:],
                                      params[start:], shapes[start:]):
        if op == "const" or op == "in":
            continue
        if param is not None:
            param = param if param.__class__ is tuple and op != "custom" else param_key(op, param)
        if len(a) == 2:  # most nodes: without ``map`` and a generator
            x, y = a
            lx, ly = level[x], level[y]
            lv = level[i] = (lx if lx > ly else ly) + 1
            key: tuple = (lv, op, param, shape, shapes[x], shapes[y])
        elif len(a) == 3:  # a gradient's usual sum (cotangent terms and a decay term)
            x, y, z = a
            lx, ly, lz = level[x], level[y], level[z]
            lx = lx if lx > ly else ly
            lv = level[i] = (lx if lx > lz else lz) + 1
            key = (lv, op, param, shape, shapes[x], shapes[y], shapes[z])
        elif len(a) > 3:  # one C-level pass per list (an unrolled batch's dots have ~400)
            read = itemgetter(*a)
            lv = level[i] = max(read(level)) + 1
            key = (lv, op, param, shape, *read(shapes))
        else:
            lv = level[i] = max(map(level_of, a)) + 1 if a else 0  # sources are at -1
            key = (lv, op, param, shape, *map(shape_of, a))
        members = get(key)
        if members is None:
            found[key] = [i]
        else:
            members.append(i)
    return [members for _, members in sorted(found.items(), key=lambda kv: kv[0][0])]


def scalar_cost(p: Program) -> float:
    """Rough seconds per call of straight-line float code.

    >>> scalar_cost(Program()) == 0.0
    True
    """
    return 8e-8 * p.size


def batched_cost(p: Program, found: list | None = None) -> float:
    """Rough seconds per call of batched array code.

    >>> batched_cost(Program()) > 0.0
    True
    """
    found = groups(p) if found is None else found
    return 6e-6 * len(found) + 5e-9 * p.size + 1e-5


def merge_later(p: Program, found: list, ops: frozenset, most: int = 2048) -> list:
    """``found`` (groups in order) with each group of an op in ``ops`` merged
    into a later group of the same kind when its values are first needed
    after that one and the two hold at most ``most`` numbers (scalars only,
    so the program does not depend on a batch size): one array operation
    instead of two, where the call costs more than copying the arguments
    together (a network's layers each end their backward pass in ``g + a *
    w``, ``lr * g`` and ``w - ...``, at different levels, with only the
    outputs after them).

    >>> from fmicrograd.core.expr import variable, next_level
    >>> from fmicrograd.compiler.ir import lower
    >>> lv = next_level()
    >>> x, y = variable(1.0, lv), variable(2.0, lv)
    >>> p = lower([fm.exp(x), fm.exp(fm.sin(y))], [x, y], [], lv)
    >>> [[p.ops[i] for i in g] for g in groups(p)]
    [['sin'], ['exp'], ['exp']]
    >>> [[p.ops[i] for i in g] for g in merge_later(p, groups(p), frozenset({"exp"}))]
    [['sin'], ['exp', 'exp']]
    """
    counts, used = p.edges()
    kinds: dict = {}
    while True:
        merged = _merge_once(p, found, ops, most, counts, used, kinds)
        if len(merged) == len(found):
            return merged
        found = merged


def _merge_once(p: Program, found: list, ops: frozenset, most: int, counts: np.ndarray,
                used: np.ndarray, kinds: dict) -> list:
    """One pass of ``merge_later``; ``kinds`` keeps the kind of each group's
    first member between passes."""
    n = len(found)
    group_of = np.full(p.size, n, dtype=np.intp)
    if n:
        sizes = np.fromiter(map(len, found), dtype=np.intp, count=n)
        group_of[np.fromiter(chain.from_iterable(found), dtype=np.intp, count=int(sizes.sum()))] \
            = np.repeat(np.arange(n), sizes)
    first = np.full(p.size, n, dtype=np.intp)  # the first group that needs each node
    np.minimum.at(first, used, np.repeat(group_of, counts))
    need = np.full(n + 1, n, dtype=np.intp)
    np.minimum.at(need, group_of, first)
    merged: list = [list(members) for members in found]
    open_: dict = {}
    for j, members in enumerate(found):
        m = members[0]
        if p.ops[m] not in ops:
            continue
        kind = kinds.get(m)
        if kind is None:
            kind = kinds[m] = (p.ops[m], param_key(p.ops[m], p.params[m]), p.shapes[m],
                               tuple(p.shapes[a] for a in p.args[m]))
        i = open_.get(kind)
        if i is not None and need[i] > j and p.shapes[m] == () and (
                len(merged[i]) + len(members) <= most):
            merged[j] = merged[i] + merged[j]  # group i may wait until here
            merged[i] = []
            need[j] = min(need[i], need[j])
        open_[kind] = j
    return [members for members in merged if members]
