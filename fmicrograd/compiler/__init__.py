"""``jit`` and ``to_torch``: trace, lower to a flat IR, schedule and generate code."""
