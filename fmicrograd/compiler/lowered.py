"""What ``fm.jit`` runs for given arguments: ``fm.jit(f).lower(*args)``.

The compiled program is generated Python source: for a small scalar program
one line per operation (``v5 = v3 * v4``), for the batched backend one line
per group of same-operation nodes (a layer's matrix product is one
``_np.matmul`` or ``@`` line). ``as_text`` shows it with a header saying
which backend runs it and how many nodes it replaced.

>>> low = fm.jit(lambda x, y: x * y + 1.0).lower(2.0, 3.0)
>>> print(low.as_text())  # doctest: +NORMALIZE_WHITESPACE
# fm.jit(<lambda>): scalar backend, 2 inputs, 1 outputs, 2 operations
def run(I):
    v0, v1, = map(float, I)
    v3 = v0 * v1
    v4 = v3 + (1.0)
    return [v4]
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Lowered"]


@dataclass(frozen=True)
class Lowered:
    """The program ``fm.jit(f)`` runs for one input structure (and the branch
    these arguments take). ``source`` is None when ``f`` is not compiled
    (it then runs as Python; ``reason`` says why).

    >>> Lowered("f", "scalar", 1, 1, 1, "def run(I):\\n    return [I[0]]\\n").backend
    'scalar'
    """

    name: str
    backend: str
    n_inputs: int
    n_outputs: int
    n_operations: int
    source: str | None
    reason: str = ""

    def as_text(self) -> str:
        """The generated program, one line per operation or operation group.

        >>> print(fm.jit(lambda x: fm.exp(x)).lower(0.5).as_text().splitlines()[-2].strip())
        v1 = _exp(v0)
        """
        if self.source is None:
            return f"# fm.jit({self.name}): not compiled, runs as Python ({self.reason})"
        unit = "groups" if self.backend == "batched" else "operations"
        head = (f"# fm.jit({self.name}): {self.backend} backend, {self.n_inputs} inputs, "
                f"{self.n_outputs} outputs, {self.n_operations} {unit}")
        return head + "\n" + self.source.rstrip("\n")

    def __str__(self) -> str:
        return self.as_text()
