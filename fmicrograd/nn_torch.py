"""fmicrograd models as ``torch.nn.Module``s and back.

``to_torch_module(model)`` wraps a ``Neuron``, ``Layer`` or ``MLP`` in a
module whose ``torch.nn.Parameter``s are the model's numbers, one weight
matrix ``(nout, nin)`` and one bias vector ``(nout,)`` per layer (the names
and shapes of ``torch.nn.Linear``: ``layers.0.weight``, ``layers.0.bias``,
...). Its forward pass is the model's own function lowered by ``fm.to_torch``
(the code ``fm.jit`` generates, bound to torch), so the module computes
exactly what ``model(x)`` does, batched, and torch autograd differentiates
it: training continues in torch (GPU, DDP, torch optimizers).
``from_torch_module(module, like=model)`` reads the module's current values
back into a model shaped like ``model``. Both directions are exact in float64.

torch is imported here only; ``fm.nn`` loads this module on first use.

>>> import torch
>>> model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
>>> module = to_torch_module(model)
>>> [name for name, _ in module.named_parameters()]
['layers.0.weight', 'layers.0.bias', 'layers.1.weight', 'layers.1.bias']
>>> module(torch.tensor([[0.5, -1.0]], dtype=torch.float64))[0].item() == model((0.5, -1.0))
True
>>> from_torch_module(module, like=model) == model
True
"""

from __future__ import annotations

from typing import Any, cast

import torch

from .compiler.export import to_torch
from .core import pytree as tree

__all__ = ["FmModule", "to_torch_module", "from_torch_module"]


class Dense(torch.nn.Module):
    """One layer's numbers: ``weight`` (nout, nin) and ``bias`` (nout,), as in
    ``torch.nn.Linear``; the activation lives in the fm model's structure."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(weight)
        self.bias = torch.nn.Parameter(bias)

    def extra_repr(self) -> str:
        nout, nin = self.weight.shape
        return f"in_features={nin}, out_features={nout}"


class FmModule(torch.nn.Module):
    """An fm model as a torch module (build it with ``to_torch_module``).

    ``forward(x)`` takes a ``(B, nin)`` tensor (or one example of shape
    ``(nin,)``) and returns ``(B,)`` for a model with one output, ``(B, nout)``
    for several (without the ``B`` axis for one example).

    >>> module = to_torch_module(fm.nn.Layer.init(3, 2, key=fm.random.key(0)))
    >>> module(torch.zeros(5, 3, dtype=torch.float64)).shape
    torch.Size([5, 2])
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        layers = _layers(model, "to_torch_module")
        self.layers = torch.nn.ModuleList(
            Dense(torch.tensor([n.w for n in layer.neurons], dtype=torch.float64),
                  torch.tensor([n.b for n in layer.neurons], dtype=torch.float64))
            for layer in layers)
        self.nin = layers[0].nin
        self.treedef = tree.structure(model)
        self.lowered = to_torch(lambda flat, x: tree.unflatten(self.treedef, flat)(x),
                                in_axes=(None, 0))

    def flat(self) -> torch.Tensor:
        """All parameters in fmicrograd's order (neuron by neuron, weights then
        bias), one differentiable vector."""
        dense = cast("list[Dense]", list(self.layers))
        return torch.cat([torch.cat([d.weight, d.bias[:, None]], dim=1).reshape(-1)
                          for d in dense])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"FmModule: expected a torch.Tensor of shape (B, {self.nin}) or "
                            f"({self.nin},), got {type(x).__name__}; pass torch.as_tensor(x)")
        one = x.dim() == 1
        batch = x[None] if one else x
        if batch.dim() != 2 or batch.shape[1] != self.nin:
            raise ValueError(f"FmModule: expected inputs of shape (B, {self.nin}) or "
                             f"({self.nin},), got {tuple(x.shape)}")
        empty = batch.shape[0] == 0  # (as torch's layers: an empty batch, an empty output)
        out = self.lowered(self.flat(), batch.new_zeros((1, self.nin)) if empty else batch)
        if isinstance(out, tuple):
            out = torch.stack(out, dim=1)
        return out[:0] if empty else out[0] if one else out


def _layers(model: Any, who: str) -> tuple:
    from .nn import MLP, Layer, Neuron

    if isinstance(model, MLP):
        return model.layers
    if isinstance(model, Layer):
        return (model,)
    if isinstance(model, Neuron):
        return (Layer((model,)),)
    raise TypeError(f"fm.nn.{who}: expected a Neuron, Layer or MLP, got "
                    f"{type(model).__name__}")


def to_torch_module(model: Any) -> FmModule:
    """A ``torch.nn.Module`` computing ``model``'s function, batched, with
    ``torch.nn.Parameter``s (float64) initialized from the model.

    >>> module = fm.nn.to_torch_module(fm.nn.MLP.init(2, [8, 1], key=fm.random.key(0)))
    >>> sum(p.numel() for p in module.parameters())
    33
    """
    return FmModule(model)


def from_torch_module(module: torch.nn.Module, *, like: Any) -> Any:
    """The fm model shaped like ``like`` holding ``module``'s current values
    (a module from ``to_torch_module``, perhaps trained in torch).

    >>> import torch
    >>> model = fm.nn.Neuron.init(2, key=fm.random.key(0))
    >>> module = fm.nn.to_torch_module(model)
    >>> with torch.no_grad():
    ...     _ = module.layers[0].bias.fill_(0.25)
    >>> fm.nn.from_torch_module(module, like=model).b
    0.25
    """
    layers = _layers(like, "from_torch_module")
    dense = list(getattr(module, "layers", ()))
    if not isinstance(module, FmModule) or len(dense) != len(layers):
        raise TypeError(f"fm.nn.from_torch_module: expected the module to_torch_module made "
                        f"from a model like {like!r} ({len(layers)} layer(s)), got "
                        f"{type(module).__name__}")
    for i, (d, layer) in enumerate(zip(dense, layers)):
        for name, want in (("weight", (layer.nout, layer.nin)), ("bias", (layer.nout,))):
            got = tuple(getattr(d, name).shape)
            if got != want:
                raise ValueError(f"fm.nn.from_torch_module: layers.{i}.{name} has shape {got} "
                                 f"but the model passed as like needs {want}")
    structure = tree.structure(like)
    if module.treedef != structure:  # the same shapes, another activation: another function
        raise ValueError("fm.nn.from_torch_module: the module computes another model than the "
                         "one passed as like (the same shapes, but another activation or kind "
                         f"of layer): module {_shown(module.treedef)}, like {_shown(structure)}; "
                         "pass the model the module was made from")
    values = module.flat().detach().cpu().double().tolist()
    return tree.unflatten(structure, values)


def _shown(structure: Any) -> str:
    """A model's structure as its own repr shows it (``MLP(Layer(2->4, tanh),
    ...)``, with the activations a treedef's repr leaves out)."""
    try:
        return f"{tree.unflatten(structure, [0.0] * structure.num_leaves)!r:.300}"
    except Exception:  # (a structure that cannot be rebuilt: the treedef's own text)
        return f"{structure!r:.300}"
