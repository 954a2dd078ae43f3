"""The micrograd demo step, written once per framework from the same data and weights.

100 two-moons points, MLP 2-16-16-1 (ReLU hidden, linear out), mean hinge loss
plus 1e-4 L2, value_and_grad plus an SGD update, float64, full batch. Every
``*_step`` factory returns ``(step, loss0)``: ``step()`` runs one training step
and ``loss0`` is the loss at the initial weights, used to check that all
frameworks compute the same function.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import fmicrograd as fm

SIZES = (2, 16, 16, 1)
ALPHA = 1e-4
LR = 0.1


def init_layers(seed: int = 1) -> list:
    """micrograd's uniform(-1, 1) weights and zero biases: [[(w, b), ...], ...]."""
    rng = random.Random(seed)
    return [[(tuple(rng.uniform(-1, 1) for _ in range(nin)), 0.0) for _ in range(nout)]
            for nin, nout in zip(SIZES, SIZES[1:])]


XS, YS = fm.datasets.moons(100, 0.1, seed=0)
LAYERS = init_layers()


def fm_model() -> Any:
    """``LAYERS`` as an ``fm.nn.MLP`` (ReLU hidden layers, linear output)."""
    last = len(LAYERS) - 1
    return fm.nn.MLP(tuple(
        fm.nn.Layer(tuple(fm.nn.Neuron(w, b, "relu" if i < last else "linear") for w, b in layer))
        for i, layer in enumerate(LAYERS)))


def fm_eager_step() -> tuple[Callable, float]:
    """The user's path: an ``fm.nn.MLP``, ``fm.losses`` and ``value_and_grad``."""
    params = fm_model()

    def loss(model: Any) -> Any:
        scores = [model(x) for x in XS]
        return fm.losses.hinge(scores, YS) + ALPHA * fm.losses.l2(model)

    vg = fm.value_and_grad(loss)
    state = [params]

    def step() -> float:
        value, g = vg(state[0])
        state[0] = fm.tree.map(lambda p, d: p - LR * d, state[0], g)
        return value

    return step, vg(params)[0]


def micrograd_step() -> tuple[Callable, float]:
    from micrograd.engine import Value
    from micrograd.nn import MLP

    model = MLP(2, [16, 16, 1])
    for layer, ours in zip(model.layers, LAYERS):
        for neuron, (w, b) in zip(layer.neurons, ours):
            for v, x in zip(neuron.w, w):
                v.data = x
            neuron.b.data = b
    inputs = [[Value(a), Value(b)] for a, b in XS]

    def loss() -> Any:
        scores = [model(x) for x in inputs]
        losses = [(1 + -y * s).relu() for y, s in zip(YS, scores)]
        data = sum(losses) * (1.0 / len(losses))
        return data + ALPHA * sum(p * p for p in model.parameters())

    def step() -> float:
        total = loss()
        model.zero_grad()
        total.backward()
        for p in model.parameters():
            p.data -= LR * p.grad
        return total.data

    return step, loss().data


def _arrays(np: Any) -> tuple:
    x = np.array(XS, dtype=np.float64)
    y = np.array(YS, dtype=np.float64)
    params = []
    for layer in LAYERS:
        params.append(np.array([w for w, _ in layer], dtype=np.float64))
        params.append(np.array([b for _, b in layer], dtype=np.float64))
    return x, y, params


def torch_step() -> tuple[Callable, float]:
    import numpy as np
    import torch

    x, y, params = _arrays(np)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    ps = [torch.from_numpy(p.copy()).requires_grad_() for p in params]

    def loss() -> Any:
        h = x
        for i in range(0, len(ps), 2):
            h = h @ ps[i].T + ps[i + 1]
            if i < len(ps) - 2:
                h = torch.relu(h)
        data = torch.relu(1 - y * h[:, 0]).mean()
        return data + ALPHA * sum((p * p).sum() for p in ps)

    def step() -> float:
        total = loss()
        grads = torch.autograd.grad(total, ps)
        with torch.no_grad():
            for p, g in zip(ps, grads):
                p -= LR * g
        return total.item()

    return step, loss().item()


def _numpy_loss(np: Any) -> Callable:
    def loss(ps: list, x: Any, y: Any) -> Any:
        h = x
        for i in range(0, len(ps), 2):
            h = h @ ps[i].T + ps[i + 1]
            if i < len(ps) - 2:
                h = np.maximum(h, 0.0)
        data = np.mean(np.maximum(1 - y * h[:, 0], 0.0))
        return data + ALPHA * sum(np.sum(p * p) for p in ps)

    return loss


def jax_step() -> tuple[Callable, float]:
    import jax
    import numpy

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    x, y, params = _arrays(numpy)
    loss = _numpy_loss(jnp)

    @jax.jit
    def update(ps: list, x: Any, y: Any) -> tuple:
        value, grads = jax.value_and_grad(loss)(ps, x, y)
        return value, [p - LR * g for p, g in zip(ps, grads)]

    state = [[jnp.asarray(p) for p in params]]
    x, y = jnp.asarray(x), jnp.asarray(y)

    def step() -> float:
        value, state[0] = update(state[0], x, y)
        value.block_until_ready()
        return value

    return step, float(loss(state[0], x, y))


def autograd_step() -> tuple[Callable, float]:
    import autograd
    import autograd.numpy as anp
    import numpy

    x, y, params = _arrays(numpy)
    loss = _numpy_loss(anp)
    vg = autograd.value_and_grad(loss)
    state = [params]

    def step() -> float:
        value, grads = vg(state[0], x, y)
        state[0] = [p - LR * g for p, g in zip(state[0], grads)]
        return value

    return step, float(loss(params, x, y))


def _fm_jit_loss(vmapped: bool) -> tuple[Callable, Any, tuple]:
    def mlp(p: Any, x: Any) -> Any:
        for i, layer in enumerate(p):
            x = [fm.dot(w, x) + b for w, b in layer]
            if i < len(p) - 1:
                x = [fm.relu(v) for v in x]
        return x[0]

    def per_example(p: Any, x: Any, y: Any) -> Any:
        return fm.relu(1.0 - y * mlp(p, x))

    def loss(p: Any, xs: Any, ys: Any) -> Any:
        if vmapped:
            data = fm.mean(fm.vmap(per_example, in_axes=(None, 0, 0))(p, xs, ys))
        else:
            data = fm.mean([per_example(p, x, y) for x, y in zip(xs, ys)])
        ps = fm.tree.leaves(p)
        return data + ALPHA * fm.dot(ps, ps)

    params = tuple(tuple(layer) for layer in LAYERS)
    if vmapped:
        import numpy as np

        return loss, params, (np.array(XS), np.array(YS))
    return loss, params, (tuple(XS), tuple(YS))


def fm_jit_step(vmapped: bool = False) -> tuple[Callable, float, float]:
    """The whole step (value_and_grad and the SGD update) under ``fm.jit``, as
    ``jax_step`` jits its whole step. Also returns the compile time: the first
    call, which traces and compiles."""
    import time

    loss, params, data = _fm_jit_loss(vmapped)
    vg = fm.value_and_grad(loss)

    @fm.jit
    def update(p: Any, xs: Any, ys: Any) -> tuple:
        value, g = vg(p, xs, ys)
        return value, fm.tree.map(lambda a, d: a - LR * d, p, g)

    start = time.perf_counter()
    value0, _ = update(params, *data)
    compile_s = time.perf_counter() - start
    state = [params]

    def step() -> float:
        value, state[0] = update(state[0], *data)
        return value

    return step, value0, compile_s
