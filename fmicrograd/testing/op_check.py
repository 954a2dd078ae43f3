"""``check_op``: property-test your own op or rule against torch float64.

Hypothesis draws inputs in the op's domain; at each, the value and every
derivative up to ``order`` (gradient, Hessian, third-derivative tensor...)
of your fmicrograd function must match torch's on the same formula. Nothing
global is touched: your op need not be in ``OPS``. Needs torch and
hypothesis (test dependencies).

>>> import torch
>>> @fm.custom_jvp
... def softsign(x):
...     return x / (1.0 + abs(x))
>>> @softsign.defjvp
... def _(primals, tangents):
...     (x,), (t,) = primals, tangents
...     return softsign(x), t / (1.0 + abs(x)) ** 2
>>> check_op(softsign, torch.nn.functional.softsign, domain=(-5.0, 5.0), max_examples=10)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["check_op"]

Interval = tuple[float, float]


def check_op(fm_fn: Callable, torch_fn: Callable, *, arity: int = 1,
             domain: Interval | Sequence[Interval] = (-4.0, 4.0), order: int = 2,
             max_examples: int = 50, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    """Compare ``fm_fn`` with ``torch_fn`` (both scalar functions of ``arity``
    floats) on inputs hypothesis draws in ``domain`` (one ``(lo, hi)`` for
    every argument, or one per argument): values and all derivatives up to
    ``order``. Raises ``AssertionError`` naming the input, the derivative
    (``d/dx0 d/dx1``...) and both numbers at the first mismatch hypothesis
    finds (shrunk to a simple input). Equal infinities match (``sqrt'(0)`` is
    ``inf`` in both), as do NaNs. With ``order >= 1`` the other modes are
    compared with torch's too: ``fm.vjp`` at a cotangent of -1.5 (a
    ``custom_vjp`` whose ``bwd`` forgets its cotangent is right under
    ``fm.grad`` alone) and ``fm.jvp`` along a tangent (against
    ``torch.func.jvp``, where it runs ``torch_fn``).

    >>> import torch
    >>> fm.testing.check_op(lambda x, y: fm.atan2(y, x), lambda x, y: torch.atan2(y, x), arity=2,
    ...          domain=[(0.5, 2.0), (-2.0, 2.0)], order=3, max_examples=10)
    """
    from hypothesis import given, settings
    from hypothesis import strategies as st

    intervals = _intervals(domain, arity)
    if not (isinstance(order, int) and 0 <= order <= 4):
        raise ValueError(f"check_op: order must be an int from 0 to 4, got {order!r}")

    @settings(max_examples=max_examples, deadline=None, database=None,
              report_multiple_bugs=False)  # (one AssertionError, not an ExceptionGroup)
    @given(st.tuples(*[st.floats(lo, hi, allow_nan=False) for lo, hi in intervals]))
    def property_(args: tuple) -> None:
        _compare(fm_fn, torch_fn, args, order, rtol, atol)

    property_()


def _intervals(domain: Any, arity: int) -> list:
    if (isinstance(domain, (Sequence, np.ndarray)) and len(domain) == 2
            and all(isinstance(v, numbers.Real) for v in domain)):
        return [(float(domain[0]), float(domain[1]))] * arity
    intervals = list(domain)
    if len(intervals) != arity:
        raise ValueError(f"check_op: domain has {len(intervals)} intervals for arity {arity}; "
                         "give one (lo, hi) for all arguments or one per argument")
    return intervals


def _fm_derivatives(fn: Callable, args: tuple, order: int) -> list:
    """``[value, gradient, Hessian, ...]`` as flat float arrays, index order (i, j, k...)."""
    import fmicrograd as fm

    nums = tuple(range(len(args)))
    plain = fn(*args)
    value = fm.value_and_grad(fn, argnums=nums)(*args)[0]  # a custom rule's own value
    if not (float(value) == float(plain) or value != value and plain != plain):
        raise AssertionError(f"check_op: {getattr(fn, '__name__', fn)} computes the value "
                             f"{float(value)!r} under fm.grad where it gives {float(plain)!r}: a "
                             f"custom rule's forward pass must return the function's own value")
    out = [np.array([plain], dtype=float)]
    g = fn
    for k in range(order):
        g = fm.grad(g, argnums=nums) if k == 0 else fm.jacrev(g, argnums=nums)
        out.append(np.array(g(*args), dtype=float).reshape(-1))
    return out


def _torch_derivatives(fn: Callable, args: tuple, order: int) -> list:
    import torch

    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    value = fn(*ts)
    out = [np.array([value.item()])]
    level = [value]
    for k in range(order):
        nxt: list[Any] = []
        for entry in level:
            if entry is None or not entry.requires_grad:  # constant: all zeros below
                nxt += [None] * len(ts)
                continue
            grads = torch.autograd.grad(entry, ts, create_graph=k + 1 < order, retain_graph=True,
                                        allow_unused=True)
            nxt += list(grads)
        level = nxt
        out.append(np.array([0.0 if e is None else e.item() for e in level]))
    return out


def _label(index: int, k: int, n: int) -> str:
    if k == 0:
        return "value"
    parts = []
    for _ in range(k):
        index, i = divmod(index, n)
        parts.append(f"d/dx{i}")
    return " ".join(reversed(parts))


def _close(a: float, b: float, rtol: float, atol: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or abs(a - b) <= atol + rtol * abs(b)


def _compare(fm_fn: Callable, torch_fn: Callable, args: tuple, order: int, rtol: float,
             atol: float) -> None:
    got = _fm_derivatives(fm_fn, args, order)
    want = _torch_derivatives(torch_fn, args, order)
    for k, (g, w) in enumerate(zip(got, want)):
        for idx, (a, b) in enumerate(zip(g, w)):
            a, b = float(a), float(b)
            if not _close(a, b, rtol, atol):  # (equal infinities match, and NaNs)
                raise AssertionError(f"check_op: at inputs {args}, {_label(idx, k, len(args))}"
                                     f" is {a!r} in fmicrograd but {b!r} in torch "
                                     f"(rtol={rtol}, atol={atol})")
    if order >= 1:
        _chain_rule(fm_fn, torch_fn, args, [float(v) for v in want[1]], rtol, atol)


COTANGENT, TANGENT_SCALE = -1.5, 0.75  # (not 1.0: a rule that ignores them shows)


def _chain_rule(fn: Callable, torch_fn: Callable, args: tuple, grad: list, rtol: float,
                atol: float) -> None:
    """The other modes against torch's: ``fm.vjp`` at a cotangent of -1.5
    against torch's backward at it (or -1.5 times torch's gradient ``grad``),
    and ``fm.jvp`` along a tangent against ``torch.func.jvp`` (where it runs
    ``torch_fn``) or the gradient's dot with the tangent: each reference
    rounds differently at subnormals and overflows. ``fm.grad`` alone calls a
    custom rule at a cotangent of 1.0, where a ``bwd`` that forgets ``g``
    (``cos(x)`` for ``g * cos(x)``) is right, and wrong in every chain rule.
    (Not ``fm.vmap``: its numpy ufuncs may round a last bit unlike the C
    library's, which a cancelling derivative shows beyond 1e-12.)"""
    import torch

    import fmicrograd as fm

    where = f"check_op: at inputs {args}"
    ts = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
    out = torch_fn(*ts)
    ct = torch.full_like(out, COTANGENT)
    pulled = torch.autograd.grad(out, ts, grad_outputs=ct, allow_unused=True) \
        if out.requires_grad else [None] * len(ts)
    _, pull = fm.vjp(fn, *args)
    for i, (a, b, g) in enumerate(zip(pull(COTANGENT), pulled, grad)):
        b = 0.0 if b is None else b.item()
        if not (_close(float(a), b, rtol, atol) or _close(float(a), COTANGENT * g, rtol, atol)):
            raise AssertionError(f"{where}, fm.vjp at a cotangent of {COTANGENT} gives "
                                 f"{float(a)!r} for d/dx{i} where torch gives {b!r} (a "
                                 f"custom_vjp whose bwd does not multiply by its cotangent g "
                                 f"is right under fm.grad alone)")
    tangents = tuple(TANGENT_SCALE * (i + 1) for i in range(len(args)))
    try:
        _, t = fm.jvp(fn, args, tangents)
    except TypeError as e:  # (fm's own check that a rule is linear in its tangent)
        raise AssertionError(f"{where}, fm.jvp: {e}") from None
    try:
        _, want = torch.func.jvp(torch_fn, tuple(torch.tensor(a, dtype=torch.float64)
                                                 for a in args),
                                 tuple(torch.tensor(v, dtype=torch.float64) for v in tangents))
    except Exception:  # noqa: BLE001 (torch_fn beyond torch.func: .item(), in-place ops)
        want = None
    try:  # (exact where it can be: the terms cancel at a saddle)
        dot = math.fsum(g * v for g, v in zip(grad, tangents))
    except (OverflowError, ValueError):  # (finite terms whose sum overflows; inf - inf)
        dot = sum(g * v for g, v in zip(grad, tangents))
    if not (_close(float(t), dot, rtol, atol) or
            want is not None and _close(float(t), want.item(), rtol, atol)):
        shown = "" if want is None else f", torch.func.jvp {want.item()!r}"
        raise AssertionError(f"{where}, fm.jvp along {tangents} gives {float(t)!r} where "
                             f"torch's gradient gives {dot!r}{shown}")
