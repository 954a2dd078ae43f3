"""Helpers shared by the test modules (imported as ``from helpers import ...``)."""


def counted(f):
    """``f`` wrapped to count its calls, and the list the calls go into
    (a trace of a jitted ``f`` is one call)."""
    calls = []

    def g(*args):
        calls.append(1)
        return f(*args)

    return g, calls


def relu_mlp_step(p, xs, ys):
    """A jittable SGD step of a ReLU MLP (a tuple of layers of ``(weights,
    bias)`` neurons): mean hinge loss over ``fm.vmap`` plus 1e-4 L2."""
    import fmicrograd as fm

    def per_example(p, x, y):
        for i, layer in enumerate(p):
            x = [fm.dot(w, x) + b for w, b in layer]
            if i < len(p) - 1:
                x = [fm.relu(v) for v in x]
        return fm.relu(1.0 - y * x[0])

    def loss(p):
        return fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, xs, ys)) \
            + 1e-4 * fm.losses.l2(p)

    value, g = fm.value_and_grad(loss)(p)
    return value, fm.tree.map(lambda a, d: a - 0.01 * d, p, g)


def mlp_params(sizes, seed):
    """Normal random parameters of an MLP of layer ``sizes``, as ``relu_mlp_step`` takes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return tuple(tuple((tuple(rng.normal(size=a).tolist()), float(rng.normal()))
                       for _ in range(b)) for a, b in zip(sizes, sizes[1:]))


def same_numbers(got, want, nan_sign=False):
    """Equal leaf by leaf (numbers or arrays): NaN for NaN, zeros of the same sign,
    and with ``nan_sign`` NaNs of the same sign too."""
    import numpy as np

    import fmicrograd as fm

    gl, wl = fm.tree.leaves(got), fm.tree.leaves(want)
    assert len(gl) == len(wl), (got, want)
    for g, w in zip(gl, wl):
        # a graph node where the other has a number (a constant leaking out of a transform)
        assert isinstance(g, fm.Expr) == isinstance(w, fm.Expr), (got, want)
        g, w = np.asarray(g, dtype=float), np.asarray(w, dtype=float)
        assert g.shape == w.shape, (got, want)
        assert np.array_equal(g, w, equal_nan=True), (got, want)
        signed = np.ones_like(g, dtype=bool) if nan_sign else (g == 0)
        assert np.array_equal(np.signbit(g) & signed, np.signbit(w) & signed), (got, want)


def jit_trace_nodes(f, *args):
    """The nodes that the jit trace of ``f`` at ``args`` reaches from its
    outputs (read where ``fm.jit`` lowers the trace)."""
    import fmicrograd as fm
    from fmicrograd.compiler import ir
    from fmicrograd.core.expr import Expr

    found = []
    lower = ir.lower

    def spy(outputs, inputs, guards, level, **options):
        seen, stack = {}, [o for o in outputs if isinstance(o, Expr)]
        while stack:
            n = stack.pop()
            if id(n) not in seen:
                seen[id(n)] = n
                stack.extend(n.children)
        found.extend(seen.values())
        return lower(outputs, inputs, guards, level, **options)

    ir.lower = spy
    try:
        fm.jit(f)(*args)
    finally:
        ir.lower = lower
    return found
