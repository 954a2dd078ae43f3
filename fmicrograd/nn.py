"""Neural networks as pytrees: an ``MLP`` of ``Layer``s of ``Neuron``s.

Each is a frozen dataclass; the weights and biases are its pytree leaves and
the activation name is static structure, so ``fm.grad`` of a loss returns an
``MLP`` of gradients and an optimizer maps over the model like any pytree.
The forward pass is a pure function of the model and the input.

>>> model = fm.nn.MLP.init(2, [4, 1], key=fm.random.key(0))
>>> fm.nn.count_params(model)
17
>>> isinstance(model((1.0, -1.0)), float)
True
>>> g = fm.grad(lambda m: m((1.0, -1.0)) ** 2)(model)
>>> type(g).__name__, fm.nn.count_params(g)
('MLP', 17)
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import FrozenInstanceError, dataclass
from operator import mul
from typing import TYPE_CHECKING, Any

from . import random as fr
from .core import functions as F
from .core import pytree as tree
from .core.batch_axes import DEPTH
from .core.expr import Expr, lift, stored_value

_example_leaves = tree.example_leaves  # (parameters and count_params name their argument tree)
_FLOAT_MAX = sys.float_info.max

__all__ = ["Neuron", "Layer", "MLP", "apply", "parameters", "count_params",
           "ACTIVATIONS", "INITS", "to_torch_module", "from_torch_module"]

if TYPE_CHECKING:
    from .nn_torch import from_torch_module, to_torch_module


def __getattr__(name: str) -> Any:  # torch models (fmicrograd/nn_torch.py) load torch on use
    if name in ("to_torch_module", "from_torch_module"):
        from . import nn_torch

        return getattr(nn_torch, name)
    if name == "Module":  # micrograd's base class (``from micrograd.nn import Module``)
        raise AttributeError(
            "module 'fmicrograd.nn' has no attribute 'Module' (micrograd's base class): models "
            "here are frozen dataclasses and pytrees, with no parameters() or zero_grad(); "
            "write yours as a @dataclasses.dataclass(frozen=True) (a pytree as it is: its "
            "fields are its children), or compose fm.nn.Neuron, Layer and MLP")
    raise AttributeError(f"module 'fmicrograd.nn' has no attribute {name!r}")


def _linear(x: Any) -> Any:
    return x


ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "relu": F.relu, "tanh": F.tanh, "sigmoid": F.sigmoid, "linear": _linear}

# name -> weight distribution for a neuron with fan_in inputs in a layer of fan_out
INITS = {
    "uniform": "micrograd's U(-1, 1)",
    "xavier": "Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))",
    "he": "He normal: N(0, 2 / fan_in)",
}


def _check_activation(activation: Any) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{sorted(ACTIVATIONS)}")
    return activation


def _weights(key: fr.Key, nin: int, fan_out: int, init: str) -> tuple[float, ...]:
    if init == "uniform":
        return fr.uniform(key, nin, -1.0, 1.0)
    if init == "xavier":
        a = math.sqrt(6.0 / (nin + fan_out))
        return fr.uniform(key, nin, -a, a)
    if init == "he":
        return fr.normal(key, nin, 0.0, math.sqrt(2.0 / nin))
    raise ValueError(f"unknown init {init!r}; choose one of {sorted(INITS)}")


def _check_number(x: Any, what: str) -> None:
    # numbers, graph nodes and arrays convert to float; strings, None and
    # containers do not, and an int beyond the float range would overflow later
    if isinstance(x, bool | str | bytes) or not hasattr(x, "__float__") or \
            getattr(x, "ndim", 0) != 0 or getattr(getattr(x, "dtype", None), "kind", "f") in "USb":
        shape = f" of shape {x.shape}" if getattr(x, "ndim", 0) else ""
        raise TypeError(f"{what} must be a number, got {type(x).__name__}{shape} {x!r:.80}")
    if isinstance(x, int) and abs(x) > _FLOAT_MAX:
        raise ValueError(f"{what} is an int beyond the float range ({x.bit_length()} bits)")


def _key(key: Any, who: str) -> fr.Key:
    """``key``, checked where the user passed it (not in ``fm.random.split``).

    >>> _key(0, "MLP.init")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    TypeError: MLP.init: key must be a Key from fm.random.key(seed), ...; got int 0
    """
    if not isinstance(key, fr.Key):
        raise TypeError(f"{who}: key must be a Key from fm.random.key(seed), e.g. "
                        f"key=fm.random.key(0); got {type(key).__name__} {key!r:.40}")
    return key


def _size(n: Any, what: str) -> int:
    # numpy ints (a size read from an array's shape) count, as in fm.random.key
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{what} must be a positive int, got {n!r}")
    return int(n)


_BYTES_PER_PARAMETER = 32  # a float object and its slot in the tuple of weights


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # (no sysconf on Windows)
        return None


def _fits(sizes: Sequence[int], what: str) -> None:
    """Refuse, before building anything, a model whose weights alone (a Python
    float each) would not fit in this machine's memory: built one float at a
    time, it would run for minutes before failing."""
    count = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    memory = _physical_memory()
    if memory and count * _BYTES_PER_PARAMETER > memory:
        raise MemoryError(
            f"{what}: layer sizes {list(sizes)} make {count:,} parameters, about "
            f"{count * _BYTES_PER_PARAMETER / 2**30:,.0f} GiB as Python floats, more than this "
            f"machine's {memory / 2**30:,.0f} GiB of memory; fmicrograd's parameters are "
            "scalars, for models of up to about a million of them")


@dataclass(frozen=True)
class Neuron:
    """``activation(w . x + b)``: a weight per input and a bias.

    >>> n = fm.nn.Neuron(w=(1.0, -2.0), b=0.5, activation="linear")
    >>> n((3.0, 1.0))
    1.5
    """

    w: tuple
    b: Any = 0.0
    activation: str = "relu"

    def __post_init__(self) -> None:
        if isinstance(self.w, str | bytes) or not hasattr(self.w, "__iter__"):
            raise TypeError(f"Neuron: w must be a sequence of weights, got "
                            f"{type(self.w).__name__}")
        object.__setattr__(self, "w", tuple(self.w))
        if not self.w:
            raise ValueError("Neuron: needs at least one weight")
        for i, w in enumerate(self.w):
            _check_number(w, f"Neuron: w[{i}]")
        _check_number(self.b, "Neuron: b")
        _check_activation(self.activation)

    @classmethod
    def init(cls, nin: int, *, key: fr.Key, activation: str = "relu", init: str = "uniform",
             fan_out: int = 1) -> Neuron:
        """A neuron with ``nin`` random weights (see ``INITS``) and bias 0.

        >>> fm.nn.Neuron.init(3, key=fm.random.key(0)).nin
        3
        """
        nin = _size(nin, "Neuron.init: nin")
        fan_out = _size(fan_out, "Neuron.init: fan_out")
        _fits((nin, 1), "Neuron.init")
        _key(key, "Neuron.init")
        return cls(_weights(key, nin, fan_out, init), 0.0, _check_activation(activation))

    @property
    def nin(self) -> int:
        """Number of inputs."""
        return len(self.w)

    def __call__(self, x: Sequence) -> Any:
        return _forward((self,), x, "Neuron")[0]


@dataclass(frozen=True, repr=False)
class Layer:
    """A tuple of neurons that read the same input.

    >>> layer = fm.nn.Layer.init(2, 3, key=fm.random.key(0))
    >>> layer, len(layer((1.0, 2.0)))
    (Layer(2->3, relu), 3)
    """

    neurons: tuple

    def __post_init__(self) -> None:
        if isinstance(self.neurons, Neuron | str | bytes) or \
                not hasattr(self.neurons, "__iter__"):
            raise TypeError(f"Layer: neurons must be a sequence of Neurons, got "
                            f"{type(self.neurons).__name__} (one neuron: Layer((neuron,)))")
        object.__setattr__(self, "neurons", tuple(self.neurons))
        if not self.neurons:
            raise ValueError("Layer: needs at least one neuron")
        for i, n in enumerate(self.neurons):
            if not isinstance(n, Neuron):
                raise TypeError(f"Layer: neurons[{i}] must be a Neuron, got {type(n).__name__}")
        if len({len(n.w) for n in self.neurons}) > 1:
            raise ValueError(f"Layer: every neuron must have the same number of weights, got "
                             f"{[len(n.w) for n in self.neurons]}")

    @classmethod
    def init(cls, nin: int, nout: int, *, key: fr.Key, activation: str = "relu",
             init: str = "uniform") -> Layer:
        """``nout`` neurons of ``nin`` inputs, each from its own split of ``key``.

        >>> fm.nn.Layer.init(4, 2, key=fm.random.key(0), activation="tanh")
        Layer(4->2, tanh)
        """
        nin, nout = _size(nin, "Layer.init: nin"), _size(nout, "Layer.init: nout")
        _fits((nin, nout), "Layer.init")
        _key(key, "Layer.init")
        return cls(tuple(Neuron.init(nin, key=k, activation=activation, init=init,
                                     fan_out=nout) for k in fr.split(key, nout)))

    @property
    def nin(self) -> int:
        """Number of inputs."""
        return self.neurons[0].nin

    @property
    def nout(self) -> int:
        """Number of outputs (neurons)."""
        return len(self.neurons)

    def __call__(self, x: Sequence) -> Any:
        out = _forward(self.neurons, x, "Layer")
        return out[0] if len(out) == 1 else out

    def __repr__(self) -> str:
        acts = sorted({n.activation for n in self.neurons})
        return f"Layer({self.nin}->{self.nout}, {'/'.join(acts)})"


@dataclass(frozen=True, repr=False)
class MLP:
    """Layers applied in turn: hidden layers use one activation, the last is
    linear, as in micrograd.

    >>> model = fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(0))
    >>> model
    MLP(Layer(2->16, relu), Layer(16->16, relu), Layer(16->1, linear))
    """

    layers: tuple

    def __post_init__(self) -> None:
        if isinstance(self.layers, Layer | Neuron | str | bytes) or \
                not hasattr(self.layers, "__iter__"):
            raise TypeError(f"MLP: layers must be a sequence of Layers, got "
                            f"{type(self.layers).__name__} (one layer: MLP((layer,)))")
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ValueError("MLP: needs at least one layer")
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"MLP: layers[{i}] must be a Layer, got {type(layer).__name__}")
            if i and layer.nin != self.layers[i - 1].nout:
                raise ValueError(f"MLP: layer {i} takes {layer.nin} inputs but layer {i - 1} "
                                 f"gives {self.layers[i - 1].nout} outputs")

    @classmethod
    def init(cls, nin: int, nouts: Sequence[int], *, key: fr.Key, activation: str = "relu",
             init: str = "uniform") -> MLP:
        """An MLP with ``nin`` inputs and layers of sizes ``nouts``; ``init``
        picks the weight distribution (``"uniform"``, ``"xavier"``, ``"he"``).

        >>> fm.nn.MLP.init(3, [4, 4, 1], key=fm.random.key(1)).nouts
        (4, 4, 1)
        """
        if isinstance(nouts, str | bytes) or not isinstance(nouts, Iterable):
            one = f"; for one layer of {int(nouts)} outputs write [{int(nouts)}]" \
                if isinstance(nouts, numbers.Integral) and not isinstance(nouts, bool) else ""
            raise TypeError(f"MLP.init: nouts must be a sequence of layer sizes, e.g. [16, 1], "
                            f"got {type(nouts).__name__} {nouts!r:.40}{one}")
        sizes = (_size(nin, "MLP.init: nin"),
                 *(_size(n, "MLP.init: each of nouts") for n in nouts))
        if len(sizes) < 2:
            raise ValueError("MLP.init: nouts must name at least one layer size, e.g. [16, 1]")
        _check_activation(activation)
        _fits(sizes, "MLP.init")
        keys = fr.split(_key(key, "MLP.init"), len(sizes) - 1)
        last = len(sizes) - 2
        return cls(tuple(
            Layer.init(sizes[i], sizes[i + 1], key=keys[i], init=init,
                       activation=activation if i < last else "linear")
            for i in range(len(sizes) - 1)))

    @property
    def nin(self) -> int:
        """Number of inputs."""
        return self.layers[0].nin

    @property
    def nouts(self) -> tuple[int, ...]:
        """Size of each layer."""
        return tuple(layer.nout for layer in self.layers)

    def __call__(self, x: Sequence) -> Any:
        for i, layer in enumerate(self.layers):
            x = _forward(layer.neurons, x, "MLP", i)
        return x[0] if len(x) == 1 else x

    def __repr__(self) -> str:
        return f"MLP({', '.join(map(repr, self.layers))})"


def _forward(neurons: tuple, x: Any, who: str, index: int | None = None) -> tuple:
    """Outputs of ``neurons`` on input ``x``: the hot path of training."""
    if x.__class__ is not tuple and x.__class__ is not list:
        _check_container(neurons, x, who)
    if not index:  # the model's own input (later layers read the previous layer's outputs)
        for i, item in enumerate(x):
            if item.__class__ not in _INPUT_TYPES or item.__class__ is int and \
                    abs(item) > _FLOAT_MAX:
                _check_item(neurons, i, who, item)
    nin = len(neurons[0].w)
    if len(x) != nin:
        _check_even(neurons, nin, who, index)  # (neuron 0 the odd one: not the input's fault)
        where = f" layer {index}" if index else ""
        raise ValueError(f"{who}.apply:{where} expected an input of length {nin}, got length "
                         f"{len(x)}")
    first = neurons[0]
    acts = ACTIVATIONS
    if isinstance(first.b, Expr) or isinstance(first.w[0], Expr):
        if not isinstance(x[0], Expr):
            x = tuple(map(lift, x))  # lift once per layer, not once per neuron
    elif not isinstance(x[0], Expr):
        # plain numbers (predictions, metrics, plots): the float sum fm.dot would
        # compute, without its per-call checks for nodes; numpy scalars as floats (a
        # float32 row would keep numpy's float32 arithmetic)
        if not all(v.__class__ is float for v in x):
            x = tuple(v if isinstance(v, Expr) else float(v) for v in x)
        _check_even(neurons, nin, who, index)  # (zip would truncate; fm.dot below checks)
        return tuple(map(functools.partial(_plain_neuron, acts, x), neurons))
    dot = F.dot
    return tuple(acts[n.activation](dot(n.w, x) + n.b) for n in neurons)


def _neuron_w(n: Any) -> Any:
    return n.w


def _check_even(neurons: tuple, nin: int, who: str, index: int | None) -> None:
    """Raise unless every neuron has ``nin`` weights, as the constructors
    check (a model edited with ``fm.tree.at`` skipped them)."""
    if len(neurons) < 2 or set(map(len, map(_neuron_w, neurons))) == {nin}:
        return
    widths = [len(n.w) for n in neurons]
    where = f" layer {index or 0}" if who == "MLP" else ""
    raise ValueError(f"{who}.apply:{where} its neurons have different numbers of weights "
                     f"({widths}); a layer's neurons take the same inputs (was the model "
                     "edited with fm.tree.at?)")


def _plain_neuron(acts: dict, x: tuple, n: Any) -> Any:
    """A neuron on plain inputs: the float sum ``fm.dot`` would compute, or,
    where a parameter is not a Python float, that of ``_widened_neuron``."""
    total = sum(map(mul, n.w, x), -0.0) + n.b  # (from the first product: -0.0 adds nothing)
    if total.__class__ is not float:
        total = _widened_neuron(n, x)
    return acts[n.activation](total)


def _widened_neuron(n: Any, x: tuple) -> Any:
    """The sum of a neuron whose parameters are not all Python floats on
    plain inputs: numpy scalars (float32) and ints in float64, as under
    ``fm.jit``, which reads every parameter as a float64; a node (a parameter
    a transform differentiates, or a ``Var`` put in with ``fm.tree.at``)
    stays a node."""
    def widened(v: Any) -> Any:
        return v if isinstance(v, Expr) else float(v)

    return sum(map(mul, map(widened, n.w), x), -0.0) + widened(n.b)


# Input entries of these classes need no check (the common case: one set lookup).
_INPUT_TYPES = frozenset({float, int})
_BATCH_HINT = ("to run the model on each example of a batch X (one row per example), "
               "use fm.vmap(model)(X)")


def _expected(neurons: tuple, who: str) -> str:
    return f"{who}.apply: expected {len(neurons[0].w)} scalar inputs (a tuple, list or 1-D array)"


def _check_container(neurons: tuple, x: Any, who: str) -> None:
    """Raise unless ``x`` (not a tuple or list) is an ordered sequence of inputs:
    a 2-D array, a dict or a set would be read row by row, key by key."""
    if isinstance(x, Expr) and getattr(stored_value(x), "ndim", 0) != 0 and DEPTH.get() != 0:
        raise TypeError(f"{who}.apply: expected a sequence of {neurons[0].nin} inputs, got one "
                        f"number per example: fm.vmap mapped a 1-D array, whose examples are "
                        f"numbers; pass an array with one row of {neurons[0].nin} inputs per "
                        f"example (shape (batch, {neurons[0].nin}))")
    if isinstance(x, Expr) or isinstance(x, numbers.Number) or not hasattr(x, "__len__"):
        fix = "pass tuple(x)" if hasattr(x, "__iter__") and not isinstance(x, Expr) else \
            "wrap a single input as (x,)"
        raise TypeError(f"{who}.apply: expected a sequence of {neurons[0].nin} inputs, got "
                        f"{type(x).__name__} {x!r:.80}; {fix}")
    shape = getattr(x, "shape", None)
    if isinstance(shape, tuple) and len(shape) != 1:
        hint = "; " + _BATCH_HINT if len(shape) > 1 else "; wrap a single input as (x,)"
        kind = "" if type(x).__name__ == "ndarray" else f" ({type(x).__name__})"
        raise TypeError(f"{_expected(neurons, who)}, got a {len(shape)}-D array{kind} of shape "
                        f"{shape}{hint}")
    if isinstance(x, str | bytes):
        raise TypeError(f"{_expected(neurons, who)}, got {type(x).__name__} {x!r:.80}")
    if isinstance(x, Mapping):
        raise TypeError(f"{_expected(neurons, who)}, got a {type(x).__name__} (its keys would "
                        f"be read as the inputs); pass the values in the model's input order, "
                        f"e.g. tuple(d[k] for k in names)")
    if isinstance(x, AbstractSet):
        raise TypeError(f"{_expected(neurons, who)}, got a {type(x).__name__}, which has no "
                        f"order; pass a tuple in the model's input order")


def _check_item(neurons: tuple, i: int, who: str, item: Any) -> None:
    """Raise unless ``item`` (input ``i``) is a number or a node."""
    cls = item.__class__
    kind = getattr(getattr(item, "dtype", None), "kind", "f")
    if isinstance(item, Expr) or (isinstance(item, numbers.Real) and cls is not bool and
                                  kind not in "b" and not (isinstance(item, int) and
                                                           abs(item) > _FLOAT_MAX)):
        return
    if getattr(item, "ndim", None) == 0 and hasattr(item, "__float__") and kind not in "USb":
        return  # a 0-d array: a number, but its class also holds arrays
    what = f"{_expected(neurons, who)}, but input {i} is {cls.__name__} {item!r:.80}"
    if isinstance(item, int) and not isinstance(item, bool) and kind not in "b":
        raise ValueError(f"{what}: an int beyond the float range ({item.bit_length()} bits)")
    if isinstance(item, bool) or kind == "b":
        raise TypeError(f"{what}: a bool is not an input here (nor in fm.Var); pass 1.0 or 0.0")
    if (hasattr(item, "__len__") or hasattr(item, "shape")) and not isinstance(item, str | bytes):
        if DEPTH.get():  # inside vmap already: the batch has more axes than (batch, inputs)
            raise TypeError(f"{what}: a nested sequence; fm.vmap gave the model examples that "
                            f"are themselves nested: pass an array of shape (batch, "
                            f"{len(neurons[0].w)}), one row of inputs per example")
        raise TypeError(f"{what}: a nested sequence; {_BATCH_HINT}")
    raise TypeError(f"{what}: each input must be a number or an fm.Expr")


def apply(model: Neuron | Layer | MLP, x: Sequence) -> Any:
    """The model's output on input ``x``: a scalar for one output, else a tuple.

    >>> model = fm.nn.MLP.init(2, [3, 2], key=fm.random.key(0))
    >>> len(fm.nn.apply(model, (0.5, -0.5)))
    2
    """
    if not isinstance(model, (Neuron, Layer, MLP)):
        raise TypeError(f"fm.nn.apply: expected a Neuron, Layer or MLP, got "
                        f"{type(model).__name__}")
    return model(x)


def parameters(tree: Any) -> tuple:
    """The leaves of a pytree as a tuple; for an MLP in micrograd's order
    (layer by layer, neuron by neuron, weights then bias). A ``vmap`` result
    in it gives its examples' leaves, as the Python loop's tuple.

    >>> fm.nn.parameters(fm.nn.Neuron(w=(1.0, 2.0), b=3.0))
    (1.0, 2.0, 3.0)
    """
    return tuple(_example_leaves(tree))


def count_params(tree: Any) -> int:
    """Number of leaves of a pytree (a ``vmap`` result's counted per example).

    >>> fm.nn.count_params(fm.nn.MLP.init(2, [16, 16, 1], key=fm.random.key(0)))
    337
    """
    return len(_example_leaves(tree))


def _new(cls: type, fields: dict) -> Any:
    # Rebuild without __init__ and __post_init__ (leaves may be gradients or
    # graph nodes): the fields go straight into the frozen instance's dict.
    obj: Any = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


def _neuron(act: Any, ch: tuple) -> Neuron:
    return _new(Neuron, {"w": ch[0], "b": ch[1], "activation": act})


# children named for paths in messages: .layers[1].neurons[0].w[1]; the classes
# are frozen dataclasses, so fm.jit may recognise one it returned (immutable=True)
tree.register(Neuron, lambda n: ((n.w, n.b), n.activation), _neuron,
              lambda _, n: (".w", ".b"), immutable=True)
tree.register(Layer, lambda layer: (layer.neurons, None),
              lambda _, ch: _new(Layer, {"neurons": tuple(ch)}),
              lambda _, n: [f".neurons[{i}]" for i in range(n)], immutable=True)
tree.register(MLP, lambda m: (m.layers, None),
              lambda _, ch: _new(MLP, {"layers": tuple(ch)}),
              lambda _, n: [f".layers[{i}]" for i in range(n)], immutable=True)


# micrograd's idioms on a model, each answered by an error naming the fmicrograd way
_PARAMETERS_HINT = ("{cls}.parameters() is micrograd's method; here parameters are the model's "
                    "pytree leaves: fm.nn.parameters(model) gives them as a tuple (micrograd's "
                    "order), and fm.grad(loss)(model) returns gradients shaped like the model")
_ZERO_GRAD_HINT = ("{cls}.zero_grad() is micrograd's method; models here store no gradient: "
                   "fm.grad(loss)(model) returns a fresh one each call, nothing to reset")
_NONLIN_HINT = ("{cls}.nonlin is micrograd's flag; here each neuron names its activation: "
                ".activation ('relu', 'tanh', 'sigmoid' or 'linear', micrograd's nonlin=False)")
# a user's likely name for each, and where one sits in an MLP: for the fix an assignment shows
_SHOWN_AS = {"Neuron": ("neuron", "m.layers[0].neurons[0]"), "Layer": ("layer", "m.layers[0]"),
             "MLP": ("model", "m")}


def _frozen_message(error: FrozenInstanceError, obj: Any, name: str, new: str) -> str:
    """The dataclass's "cannot assign to field 'b'" with the functional ways
    to get a changed model: ``fm.tree.at`` and ``dataclasses.replace``."""
    cls = type(obj).__name__
    var, path = _SHOWN_AS.get(cls, ("obj", "m"))
    fields = obj.__dataclass_fields__
    if name not in fields:
        return (f"{error} of fm.nn.{cls}: models are frozen dataclasses holding only their "
                f"fields ({', '.join(fields)}); keep other data beside the model")
    fix = f"dataclasses.replace({var}, {name}={new})"
    if name != "activation":  # static structure, not a pytree child: fm.tree.at cannot reach it
        inside = f" (in a model: fm.tree.at(lambda m: {path}.{name}, model, {new}))" \
            if path != "m" else ""
        fix = f"fm.tree.at(lambda m: m.{name}, {var}, {new}){inside} or {fix}"
    return (f"{error} of fm.nn.{cls}: models are frozen dataclasses, never changed in place; "
            f"build a changed copy with {fix}")


_MICROGRAD_ARGS = frozenset(("nin", "nouts", "nout", "nonlin"))  # its constructors' names


def _teach_micrograd(cls: type) -> None:
    """Wrap ``cls.__init__`` so micrograd's ``cls(nin, ...)`` (ints) names the
    ``init`` form, make ``.parameters()`` / ``.zero_grad()`` explain, and make
    an assignment's ``FrozenInstanceError`` name the functional update."""
    dataclass_init = cls.__dict__["__init__"]
    frozen_setattr, frozen_delattr = cls.__dict__["__setattr__"], cls.__dict__["__delattr__"]

    @functools.wraps(dataclass_init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args and isinstance(args[0], numbers.Integral) and not isinstance(args[0], bool) \
                or not args and "nin" in kwargs and set(kwargs) <= _MICROGRAD_ARGS:
            # (micrograd's keyword form: nin=2, nouts=[16, 1])
            shown = ", ".join(repr(int(a)) if isinstance(a, numbers.Integral) else repr(a)
                              for a in args)
            given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            # micrograd's nonlin=False is a linear layer (a ReLU one without it)
            then = ", ".join('activation="linear"' if k == "nonlin" and not v else
                             f"{k}={v!r}" for k, v in kwargs.items() if k != "nonlin" or not v)
            call = ", ".join(x for x in (shown, given) if x)
            made = ", ".join(x for x in (shown, then) if x)
            raise TypeError(f"fm.nn.{cls.__name__}({call}) is micrograd's constructor; "
                            f"fmicrograd builds a random model from an explicit key: "
                            f"fm.nn.{cls.__name__}.init({made}, key=fm.random.key(0))")
        dataclass_init(self, *args, **kwargs)

    def hint(message: str) -> property:
        def fail(self: Any) -> Any:
            raise AttributeError(message.format(cls=cls.__name__))

        return property(fail)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        try:
            frozen_setattr(self, name, value)
        except FrozenInstanceError as e:
            new = repr(value) if len(repr(value)) <= 40 else "new"
            raise FrozenInstanceError(_frozen_message(e, self, name, new)) from None

    def __delattr__(self: Any, name: str) -> None:
        try:
            frozen_delattr(self, name)
        except FrozenInstanceError as e:
            raise FrozenInstanceError(_frozen_message(e, self, name, "new")) from None

    cls.__init__ = __init__  # type: ignore[misc]
    cls.__setattr__ = __setattr__  # type: ignore[assignment]
    cls.__delattr__ = __delattr__  # type: ignore[assignment]
    plain_init = cls.__dict__["init"].__func__

    @functools.wraps(plain_init)
    def init(klass: type, *args: Any, **kwargs: Any) -> Any:
        if "nonlin" in kwargs:  # micrograd's flag: nonlin=False is a linear layer
            kind = '"relu"' if kwargs["nonlin"] else '"linear"'
            raise TypeError(f"{cls.__name__}.init takes activation=, not micrograd's nonlin=: "
                            f"nonlin={kwargs['nonlin']!r} is activation={kind}")
        return plain_init(klass, *args, **kwargs)

    cls.init = classmethod(init)  # type: ignore[attr-defined]
    cls.parameters = hint(_PARAMETERS_HINT)  # type: ignore[attr-defined]
    cls.zero_grad = hint(_ZERO_GRAD_HINT)  # type: ignore[attr-defined]
    cls.nonlin = hint(_NONLIN_HINT)  # type: ignore[attr-defined]


for _cls in (Neuron, Layer, MLP):
    _teach_micrograd(_cls)
