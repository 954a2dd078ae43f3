"""A dense layer's bias inside its matrix product.

Under ``vmap`` a layer computes ``W @ X`` (a ``dot`` group: each neuron's
weights against the same inputs) and then adds each neuron's bias (a ``sum``
group), a second pass over a batch x width array. With a row of ones under
``X`` it is one product, ``[W | b] @ [X; 1]``; in the parameter layout of a
neuron (its weights, then its bias) ``[W | b]`` is a view of the input
vector, where ``W`` alone was a strided one.

``[X; 1]`` is the group array of ``X`` itself when its operation can write
into an array made with a row of ones under it (``ones_below``): ReLU, tanh
and the other elementwise ufuncs, whose rows the other groups read as a
slice above the ones. Otherwise (the data, read from the input vector) it is
a concatenation, and the layer is fused only where that copy is a quarter of
the addition it saves or less.

The bias is the product's last term, added to the sum of the others as the
graph adds it: BLAS's kernels accumulate each entry over the terms in order,
so the bits are those of the product and the addition apart (the benchmarked
steps give the same bits; a product long enough for BLAS to cut its terms
into blocks may differ in the last bit). The backward pass is left as it
was: a bias gradient as a matrix product would sum the batch in BLAS's order,
not in the pairwise order of numpy's sum that eager ``vmap`` uses, and a
gradient that cancels to 0.0 there would come out as 1e-17 (which Adam turns
into a full step).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ir import Program

__all__ = ["Layers", "plan", "ones_below"]

COPY = 4  # a concatenated [X; 1] is made where X has at most 1/COPY the biased rows


def ones_below(shape: tuple) -> np.ndarray:
    """The first ``shape[0]`` rows of a new array of ``shape[0] + 1`` rows
    whose last row is ones (its ``.base`` is the whole array).

    >>> a = ones_below((2, 3))
    >>> a.shape, a.base.shape, a.base[2].tolist()
    ((2, 3), (3, 3), [1.0, 1.0, 1.0])
    """
    whole = np.empty((shape[0] + 1,) + tuple(shape[1:]))
    whole[-1] = 1.0
    return whole[:-1]


@dataclass
class Layers:
    """What ``plan`` found, by group index: ``forward[s] = (xs, grid)``:
    group ``s`` adds biases to a ``dot`` group's products over the inputs
    ``xs`` (that group is in ``skipped``), ``grid`` each member's weights
    (paired with ``xs``) and bias; ``augmented[x] = xs``: group ``x`` is made
    with a row of ones under it, its rows in the order ``xs``."""

    forward: dict = field(default_factory=dict)
    augmented: dict = field(default_factory=dict)
    skipped: set = field(default_factory=set)


def plan(p: Program, found: list, into: Any) -> Layers | None:
    """The layers of ``p`` whose bias goes into the product (``found``: its
    groups, in the order they are emitted), or None if none; ``into``: the
    ops whose group the code can write into a given array (``autobatch``).

    >>> def mlp(p, x):
    ...     for layer in p:
    ...         x = [fm.relu(fm.dot(w, x) + b) for w, b in layer]
    ...     return x
    >>> p = tuple(tuple((tuple([0.5] * a), 0.1) for _ in range(b)) for a, b in ((2, 16), (16, 3)))
    >>> f = fm.jit(lambda p, xs: fm.vmap(lambda x: mlp(p, x))(xs))
    >>> for line in f.lower(p, np.ones((5, 2))).as_text().splitlines()[4:7]: print(line.strip())
    g1 = I[0:48].reshape((16, 3)) @ _cat((g0, c1))
    g2 = _np.maximum(g1, c2, out=_ones_below((16, 5))).base
    g3 = I[48:99].reshape((3, 17)) @ g2
    """
    group_of = np.full(p.size, -1, dtype=np.intp)
    for j, members in enumerate(found):
        group_of[members] = j
    uses = np.bincount(p.edges()[1], minlength=p.size)
    pinned = set(p.outputs)  # read as themselves: outputs and guard operands
    for _, a, b, _ in p.guards:
        pinned.update((a, b))
    layers = Layers()
    for s, members in enumerate(found):
        layer = _layer(p, found, s, members, group_of, uses, pinned)
        if layer is None:
            continue
        d, xs, grid = layer
        x = int(group_of[xs[0]])
        if x >= 0 and len(found[x]) == len(xs) and bool(np.all(group_of[xs] == x)) and \
                p.ops[found[x][0]] in into and x not in layers.forward and \
                layers.augmented.get(x, xs) == xs:  # (one order of its rows)
            layers.augmented[x] = xs
        elif COPY * (len(xs) + 1) > len(members):  # the copy would cost the addition
            continue
        layers.forward[s] = (xs, grid)
        layers.skipped.add(d)
    return layers if layers.forward else None


def _layer(p: Program, found: list, s: int, members: list, group_of: np.ndarray,
           uses: np.ndarray, pinned: set) -> tuple[int, list, list] | None:
    """``(d, xs, grid)`` where group ``s`` adds a scalar bias to each
    product of a ``dot`` group ``d`` read by nothing else, all over the
    inputs ``xs`` (on either side of the addition: it is commutative, bit for
    bit); ``grid``: each member's weights (paired with ``xs``), then its bias.
    Else None."""
    m0 = members[0]
    shape = p.shapes[m0]
    if p.ops[m0] not in ("sum", "+") or len(shape) != 1 or len(p.args[m0]) != 2:
        return None  # (a batch of one axis: under nested vmap ``W @ [X; 1]`` would read
        # the (rows, inner, outer) array as a stack of matrices and mix the examples)
    at = 0 if p.ops[p.args[m0][0]] == "dot" else 1  # ``x @ w + b`` or ``b + x @ w``
    dots = [p.args[m][at] for m in members]
    d = int(group_of[dots[0]])
    if d < 0 or d >= s or p.ops[dots[0]] != "dot" or len(found[d]) != len(members) \
            or set(found[d]) != set(dots):
        return None
    xs, grid = None, []
    for m, dot in zip(members, dots):
        bias = p.args[m][1 - at]
        args = p.args[dot]
        k = len(args) // 2
        if p.shapes[bias] != () or uses[dot] != 1 or dot in pinned or p.shapes[dot] != shape:
            return None
        ws, inputs = args[:k], args[k:]
        if p.shapes[ws[0]] != ():
            ws, inputs = inputs, ws
        if any(p.shapes[w] != () for w in ws) or any(p.shapes[i] != shape for i in inputs):
            return None
        if xs is None:
            xs = inputs
        elif inputs != xs:
            return None
        grid.append(ws + (bias,))
    if xs is None or len(set(xs)) != len(xs):
        return None
    return d, list(xs), grid
