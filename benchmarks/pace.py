"""A cut program's ways of running its two batch halves, per call (best of 5 x 60 calls,
three times each): the uncut program (one BLAS thread), the halves one after the other,
side by side on the helper thread, and as ``threads.Pace`` picks (``compiler/threads.py``).

    python benchmarks/pace.py 16-128-128-1x1000 "12-160-160-1x300 tanh"
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402

from fmicrograd.compiler import compile as C  # noqa: E402
from fmicrograd.compiler import split, threads  # noqa: E402


def capture(row: scale.Row, min_work: int) -> tuple[Any, Any]:
    """The row's compiled ``run`` (cut or not, by ``min_work``) and its input."""
    x, y, layers = scale.data(row)
    found: dict = {}
    single, old = C.single_thread, split.MIN_WORK

    def grab(run: Any, flat: Any) -> Any:
        found["run"], found["inputs"] = run, flat
        return single(run, flat)

    C.single_thread, split.MIN_WORK = grab, min_work
    try:
        update, params = scale.fm_update(row), scale.fm_params(layers)
        update(params, x, y)
        update(params, x, y)  # (the compiled path, to capture its input)
    finally:
        C.single_thread, split.MIN_WORK = single, old
    return found["run"], found["inputs"]


def best_ms(f: Callable[[], Any], n: int = 300) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n // 5):
            f()
        best = min(best, (time.perf_counter() - start) / (n // 5))
    return best * 1e3


def main(name: str) -> None:
    row = next(r for r in scale.ROWS if r.name == name)
    uncut, inputs = capture(row, 10**18)
    cut, cut_inputs = capture(row, split.MIN_WORK)
    cells = dict(zip(cut.__code__.co_freevars, (c.cell_contents for c in cut.__closure__)))
    pace = cells["pace"]

    def forced(alone: bool) -> Callable[[], Any]:
        def call() -> Any:
            pace.skip, pace.alone, pace.streak = (1, 0.0, 0) if alone else (0, 10.0, 0)
            if threads._HELPER:
                threads._HELPER[0].skip = 0
            return threads.single_thread(cut, cut_inputs)
        return call

    times: dict[str, list] = {"uncut": [], "alone": [], "side by side": [], "paced": []}
    for _ in range(3):
        times["uncut"].append(best_ms(lambda: threads.single_thread(uncut, inputs)))
        times["alone"].append(best_ms(forced(True)))
        times["side by side"].append(best_ms(forced(False)))
        pace.skip, pace.alone, pace.shared, pace.backoff, pace.streak = 1, 0.0, 0.0, 0, 0
        times["paced"].append(best_ms(lambda: threads.single_thread(cut, cut_inputs), 600))
    cols = "  ".join(f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in times.items())
    print(f"{name}: {cols} ms (pace: alone {pace.alone * 1e3:.3f}, side by side "
          f"{pace.shared * 1e3:.3f} ms, backoff {pace.backoff})", flush=True)


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["2-64-64-1x1000", "16-128-128-1x1000"]:
        main(arg)
