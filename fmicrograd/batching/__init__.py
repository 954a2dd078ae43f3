"""``vmap``: the per-example graph evaluated once with numpy arrays as node values."""
