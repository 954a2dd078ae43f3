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
