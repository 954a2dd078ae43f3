"""The prebuilt-graph check (``autodiff._check_not_prebuilt``) first walks a
few nodes from the output for one of the call's variables
(``_uses_a_variable``): found, nothing was prebuilt. The checks give the same
answers when that first walk gives up at once, and when it finds the
variable only through a sum of every parameter (an L2 term)."""

import inspect

import pytest
import test_prebuilt_jit_round34 as round34
import test_user_vars_round31 as round31
import test_user_vars_round32 as round32

import fmicrograd as fm
from fmicrograd.transforms import autodiff

PREBUILT = "built before the call from the node passed"

_TESTS = [(m, name) for m in (round34, round31, round32) for name, f in vars(m).items()
          if name.startswith("test_") and not inspect.signature(f).parameters]


@pytest.mark.parametrize("module, name", _TESTS, ids=[f"{m.__name__}.{n}" for m, n in _TESTS])
def test_the_prebuilt_checks_hold_when_the_first_walk_gives_up(monkeypatch, module, name):
    monkeypatch.setattr(autodiff, "_PROBE", 1)  # (it takes the output alone)
    getattr(module, name)()


@pytest.mark.parametrize("probe", [1, 3, 10_000])
def test_a_variable_deep_under_the_output_or_none_at_all(monkeypatch, probe):
    monkeypatch.setattr(autodiff, "_PROBE", probe)

    def deep(ws):  # the variables only under a chain of 50 nodes, and an L2 sum of all
        t = fm.sum([w * w for w in ws])
        for _ in range(50):
            t = fm.tanh(t) * 0.5
        return t + 1e-4 * fm.dot(ws, ws)

    ws = (0.3, -0.2, 0.5)
    g = fm.grad(deep)(ws)
    h = 1e-6
    for k in range(3):
        up = tuple(w + (h if j == k else 0.0) for j, w in enumerate(ws))
        down = tuple(w - (h if j == k else 0.0) for j, w in enumerate(ws))
        assert g[k] == pytest.approx((deep(up) - deep(down)) / (2 * h), rel=1e-6, abs=1e-12)
    a = fm.Var(2.0)
    c = a * a
    for _ in range(50):
        c = fm.tanh(c) * 0.5
    with pytest.raises(ValueError, match=PREBUILT):
        fm.grad(lambda a: c)(a)
