# mypy: disallow-untyped-defs, disallow-incomplete-defs, disallow-untyped-calls
# mypy: disallow-any-generics, warn-unreachable
"""A higher-order user's script: nested transforms, jit, vmap, hessian."""

import numpy as np

import fmicrograd as fm


def f(x: fm.Expr | float) -> fm.Expr | float:
    return fm.tanh(x) * fm.exp(x)


def curvature(x: float) -> float:
    d2: float = fm.grad(fm.grad(f))(x)
    return d2


on_node: fm.Expr = fm.sin(fm.Var(1.0, name="x"))   # a node in, a node out
on_float: float = fm.sin(1.0)                       # a float in, a float out
from_numpy = fm.Var(np.float32(1.5))  # any real number type Var takes (round 49: float | int)
fast = fm.jit(fm.grad(f))
program: str = fast.lower(0.3).as_text()  # jit's result is typed: ``lower`` is known
per_example = fm.vmap(fm.grad(f))((0.1, 0.2, 0.3))
hess = fm.hessian(lambda xy: fm.maximum(xy[0] * xy[1], 0.0))((1.0, 2.0))
model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
per_model = fm.vmap(fm.grad(lambda m, x: m(x)), in_axes=(None, 0))(model, ((1.0, 2.0), (3.0, 4.0)))
grads: fm.nn.MLP = fm.tree.stack(per_model)
print(curvature(0.3), fast(0.3), len(program) > 0, fm.sum(per_example), hess, on_node.value,
      on_float, grads, from_numpy.value)
