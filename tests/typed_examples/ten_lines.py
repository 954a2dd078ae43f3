# mypy: disallow-untyped-defs, disallow-incomplete-defs, disallow-untyped-calls
# mypy: disallow-any-generics, warn-unreachable
"""The README's ten lines, with the annotations a typed user writes."""

import fmicrograd as fm

model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(0))
xs, ys = fm.datasets.moons(100, noise=0.1, seed=0)
Batch = tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]


def loss(params: fm.nn.MLP, batch: Batch) -> fm.Expr:
    xs, ys = batch
    scores = [params(x) for x in xs]
    return fm.losses.hinge(scores, ys) + 1e-4 * fm.losses.l2(params)


model, history = fm.train.fit(loss, model, fm.optim.sgd(0.1), [(xs, ys)], epochs=2)
slope: float = fm.grad(lambda x: fm.tanh(x) ** 2)(0.5)
print(history["loss"][-1], slope)
