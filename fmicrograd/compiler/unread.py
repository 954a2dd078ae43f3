"""A large array argument of ``fm.jit`` traced without a variable per entry,
until the function reads an entry.

``fm.jit`` traces a numeric array argument as an object array of variables,
one per entry, so that any code can index it. A training step over a large
batch only maps its data with ``vmap``, which reads each column as one
variable (``batching/traced_arrays.py``); the entries' variables are then
never used, yet making them and numbering them in ``ir.lower`` took about a
second of a 100,000-example step's first call (1.6 million of them).

So an array of at least ``MOST`` entries is first traced as an object array
of placeholders (``core/placeholder.py``). Reading one (arithmetic, a
comparison, ``float``, ``.value``, printing it, an fm function of it) raises
``EntriesRead``; the trace then starts again with a variable per entry, as
for a smaller array, and the input structure remembers that the function
reads entries. Such a function runs twice on its first call, side effects
too (``docs/sharp-bits.md``). What it only passes around (the array, a
slice, an entry moved to another place) is not a read.

Placeholders are not inputs of the compiled program: such an array's
entries sit in the input vector after every input node (``_Entry.order`` in
``compiler/compile.py`` puts the large arrays last), and the columns
``vmap`` maps read them as ``col`` nodes, ``I[start::step][:size]``
(``ir.Program.width``). The program then has no node per entry, so that its
compile passes do not grow with the batch either.

The first trace also gives the columns ``vmap`` maps values without numbers
(``core/shaped.py``, while ``SHAPED``): the layers' nodes then hold no batch
of values either, and the trace costs about what a small batch's does. A
function that needs a number computed from the batch (a branch on the loss,
``max(loss, c)``, a label it checks that is not a column) raises
``ValuesRead`` there, and is traced again with the values: three traces on
the first call of a function that reads an entry.

>>> import numpy as np
>>> a = placeholders(np.zeros((2, 3)))
>>> a.shape, a[0, 1] is a[1, 0]
((2, 3), False)
"""

from __future__ import annotations

from itertools import repeat

import numpy as np

from ..core.placeholder import EntriesRead, Unread

__all__ = ["MOST", "EntriesRead", "Unread", "placeholders"]

MOST = 1 << 16  # entries: a smaller array argument gets its variables at once
SHAPED = True  # first traced with values without numbers (``core/shaped.py``)


def placeholders(value: np.ndarray) -> np.ndarray:
    """An object array shaped like ``value`` of fresh ``Unread`` entries.

    >>> placeholders(np.zeros(2))[1].__class__.__name__
    'Unread'
    """
    made = list(map(object.__new__, repeat(Unread, value.size)))
    # (``fromiter`` stores each as it is; assigning the list probes each for protocols)
    return np.fromiter(made, dtype=object, count=value.size).reshape(value.shape)
