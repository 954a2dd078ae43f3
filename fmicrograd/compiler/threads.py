"""One BLAS thread while a compiled program runs, a helper thread for a second core,
and what numpy's BLAS is (``blas``, for ``python -m fmicrograd info``).

A compiled step is many small array operations. With OpenBLAS's default of
one thread per core, each matrix product hands its few microseconds of work
to a pool of threads; when another process keeps a core busy, every product
then waits for a descheduled thread and a step slows down 5-30x. So compiled
programs run with one BLAS thread, set with OpenBLAS's
``openblas_set_num_threads_local`` (which returns the previous count). In
numpy's wheels that count is the whole process's, so it is held at 1 while
any compiled program runs and the user's count comes back when the last one
ends (``single_thread``). Where numpy's BLAS is not OpenBLAS,
``single_thread`` just runs the function.

The rule holds for every program, large products included. Letting products
of at least 8M multiply-adds (16-128-128 x 1000 and larger layers) run on
all threads was measured (issue 9, 2 cores shared with other processes,
load average 3-5): a lone 128x128x1000 product went from 0.70 ms to 0.38 ms
(median; its 90th percentile from 0.77 ms to 5 ms), but a whole 16-128-128-1 x
1000 step went from 8 ms to 71 ms and a 64-256-256-10 x 1000 step from 40 ms
to 220 ms (each product waits for a descheduled thread), far past the 1.5x
the ratios may move under load. A count that follows
the load would make results depend on it: OpenBLAS's one- and two-thread
products differ in the last bits for some shapes.

Sharing large products with a Python helper thread instead was measured too
(issue 9, round 4): the left operand's rows cut into two blocks fixed by the
shapes (so the bits never depend on timing), each block on one BLAS thread,
taken by the caller or a helper blocked on a condition variable, a late
block computed again by the caller, and sharing paused when it did not pay.
Two threads multiplying alone run 1.8x faster than one; inside a compiled
step they did not. Whole programs, medians in one process, load 0.7 (quiet)
and 0.8-1.1 (one other process busy), one thread -> shared: 2-64-64-1 x1000
1.75 -> 3.10 and 1.62 -> 2.24 ms, 16-128-128-1 x1000 5.61 -> 6.43 and
5.65 -> 6.07 ms, 12-160-160-1 x300 tanh 3.19 -> 3.62 and 3.86 -> 4.29 ms,
64-256-256-10 x1000 17.6 -> 17.2 and 19.6 -> 19.4 ms. The hand-offs (a
wake-up, the GIL back and forth around every block) cost what the second
core saves, so it was not kept.

What is kept is coarser (issue 9, round 7): ``split`` cuts a training step's
batch in two, and ``both`` hands one half to a helper thread once per step
while the caller computes the other. One wake-up per step instead of one per
product, and each thread runs a whole half (dozens of array operations)
without waiting on the other. The helper is one daemon thread per process
(started again in a forked child), blocked on a lock while idle; a half it
has not started when the caller is done with its own, or is still on after as
long again, is computed by the caller, so a thread kept from a core by other
processes delays a step by at most about one half.

Whether the second thread pays is measured, per program (``Pace``): the two
halves one after the other on the caller against the two side by side, and
the faster way is taken, tried the other way now and then. On a machine whose
two vCPUs give about one CPU's throughput when both run (round 47's virtual
machine while other processes ran), or whose GIL hand-overs cost more than
the second core saves, the halves run one after the other (within a few
percent of the uncut program: ``benchmarks/pace.py``). Either way the halves
are the same code on the same numbers, added in the same order: the bits do
not depend on which way was taken.

>>> single_thread(sum, [1.0, 2.0])
3.0
"""

from __future__ import annotations

import _thread
import ctypes
import glob
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["single_thread", "both", "Pace", "cores", "CORES", "blas", "cpu"]


def _openblas() -> Any:
    """The OpenBLAS library numpy loaded (a ``ctypes.CDLL``), or None."""
    here = os.path.dirname(np.__file__)
    paths = glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
    paths += glob.glob(os.path.join(here, ".dylibs", "*openblas*"))
    for path in paths:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _local_setter() -> Callable[[int], int] | None:
    """OpenBLAS's ``openblas_set_num_threads_local`` (0.3.20 and later) from
    the library numpy loaded, or None."""
    fn = getattr(_LIB, "openblas_set_num_threads_local", None)
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int]
    return fn


_LIB = _openblas()
_SET = _local_setter()
# AVX-512 kernels OpenBLAS has for x86-64 (``OPENBLAS_CORETYPE`` names), and the CPU
# flags (``/proc/cpuinfo``) its SkylakeX kernels need
_AVX512_CORES = frozenset(("skylakex", "cooperlake", "sapphirerapids"))
_AVX512_FLAGS = frozenset(("avx512f", "avx512dq", "avx512vl", "avx512bw", "avx512cd"))


def blas(cpu_flags: frozenset | None = None, environ: Any = os.environ) -> dict:
    """What numpy's BLAS is, for ``python -m fmicrograd info`` and the
    benchmarks: ``{"name", "version", "core", "forced", "advice"}`` (empty
    strings where unknown). ``forced`` is ``OPENBLAS_CORETYPE`` where the
    environment sets it: OpenBLAS then runs the kernels it names instead of
    picking them from the CPU. ``advice`` is set when the CPU has AVX-512
    (``cpu_flags``, read from ``/proc/cpuinfo`` by default) but OpenBLAS runs
    kernels without it, whose matrix products are 1.4-1.8x slower (a wide
    MLP's compiled step 1.1-1.6x): see ``advice``.

    >>> sorted(blas())
    ['advice', 'core', 'forced', 'name', 'version']
    """
    forced = environ.get("OPENBLAS_CORETYPE", "").strip()
    if _LIB is None:
        return {"name": "", "version": "", "core": "", "forced": forced, "advice": ""}
    config = _text("get_config").split()  # "OpenBLAS 0.3.31.188.0 USE64BITINT ... Haswell ..."
    core = _text("get_corename")
    return {"name": "OpenBLAS",
            "version": config[1] if len(config) > 1 and config[0] == "OpenBLAS" else "",
            "core": core, "forced": forced,
            "advice": advice(core, _cpu_flags() if cpu_flags is None else cpu_flags, forced)}


def _text(fn: str) -> str:
    """What OpenBLAS's ``openblas_<fn>`` returns, or "" (numpy's wheels name
    it ``scipy_openblas_<fn>64_``)."""
    for name in (f"openblas_{fn}", f"scipy_openblas_{fn}64_", f"openblas_{fn}64_"):
        f = getattr(_LIB, name, None)
        if f is not None:
            f.restype = ctypes.c_char_p
            return (f() or b"").decode(errors="replace").strip()
    return ""


def advice(core: str, cpu_flags: frozenset, forced: str = "") -> str:
    """What to change when OpenBLAS runs kernels (``core``) without AVX-512
    on a CPU that has it, else "". ``forced``: the environment's
    ``OPENBLAS_CORETYPE``, which some machines set for older OpenBLAS builds
    (numpy 2.4's OpenBLAS 0.3.31 picks its AVX-512 kernels on AMD's Zen 5
    itself; with ``OPENBLAS_CORETYPE=Haswell`` it runs its AVX2 ones).

    >>> advice("SkylakeX", frozenset()), advice("Haswell", frozenset({"avx2"}))
    ('', '')
    """
    if not core or not _AVX512_FLAGS <= cpu_flags or core.lower() in _AVX512_CORES:
        return ""
    if forced:
        return (f"OPENBLAS_CORETYPE={forced} is set in the environment, so OpenBLAS runs its "
                f"{core} kernels although this CPU has AVX-512; where nothing needs it (some "
                "machines set it, with OPENBLAS_L2_SIZE, for older OpenBLAS builds), unset "
                "both before numpy is imported and OpenBLAS picks its kernels itself; its "
                "AVX-512 ones' matrix products can be 1.6x faster")
    return (f"this CPU has AVX-512 but OpenBLAS runs its {core} kernels; "
            "OPENBLAS_CORETYPE=SkylakeX (set before numpy is imported) picks "
            "its AVX-512 ones, whose matrix products can be 1.6x faster")


def _cpuinfo() -> dict:
    """The first processor's fields in ``/proc/cpuinfo`` ({} where there is none)."""
    fields: dict = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the end of the first processor's block
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _cpu_flags() -> frozenset:
    return frozenset(_cpuinfo().get("flags", "").split())


def cpu(fields: dict | None = None) -> str:
    """This machine's CPU as ``/proc/cpuinfo`` names it, with its family and
    model numbers (which tell AMD's Zen generations apart: family 25 is Zen 3
    and 4, family 26 Zen 5), or ``platform.processor()`` elsewhere; for
    ``python -m fmicrograd info`` and the benchmarks' header lines.

    >>> cpu({"model name": "AMD EPYC", "cpu family": "25", "model": "17"})
    'AMD EPYC (family 25, model 17)'
    """
    fields = _cpuinfo() if fields is None else fields
    name = fields.get("model name", "") or platform.processor() or "unknown CPU"
    if fields.get("cpu family") and fields.get("model"):
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def cores(environ: Any = os.environ) -> int:
    """The cores this process may use: those it may run on, at most the
    thread count ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` sets (as
    ``torchrun`` does, 1 per process, when it starts several).

    >>> cores({"OMP_NUM_THREADS": "1"})
    1
    """
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    n = n or 1
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            n = min(n, int(value))
    return n


CORES = cores()  # ``split`` cuts programs in two only with two or more


def single_thread(fn: Callable, arg: Any) -> Any:
    """``fn(arg)`` with one BLAS thread.

    OpenBLAS's ``openblas_set_num_threads_local`` sets the count of the whole
    process in its pthreads builds (numpy's wheels), not of the calling
    thread only: two threads each saving and restoring it let one thread's
    restore give another's running program two BLAS threads, whose products
    differ in the last bits (a helper's probe, round 27). So the count is
    held at 1 while any compiled program runs, in any thread: the first to
    start saves the user's count, the last to finish puts it back.

    >>> float(single_thread(lambda a: (a @ a.T)[0, 0], np.ones((2, 3))))
    3.0
    """
    if _SET is None:
        return fn(arg)
    me = object()
    # a Ctrl-C can land between any two steps (a flag set after the count was raised
    # left it at 1 for good: the user's own products on one thread): the end reads
    # whether this call is in ``_PROGRAMS``, and the last one out sets the saved count
    try:
        with _COUNT_LOCK:
            if not _PROGRAMS:
                fresh, _SAVED[1] = _SAVED[1], False  # (marked first: a Ctrl-C after the
                # count was set to 1 and before it was saved let another thread save that 1
                # as the user's, for good; now the count saved before is restored)
                prior = _SET(1)
                if fresh:  # (else the last one out was interrupted before it set the
                    _SAVED[0] = prior  # count back: the 1 now is not the user's)
            _PROGRAMS.add(me)
        return fn(arg)
    finally:
        with _COUNT_LOCK:
            _PROGRAMS.discard(me)
            if not _PROGRAMS:
                _SET(_SAVED[0])
                _SAVED[1] = True


def _count_now() -> int:
    """The BLAS thread count (set to 1 and back)."""
    count = _SET(1) if _SET is not None else 1
    if _SET is not None:
        _SET(count)
    return count


_COUNT_LOCK = _thread.allocate_lock()
_PROGRAMS: set = set()  # the calls running a program now, in any thread
_SAVED = [_count_now(), True]  # the BLAS thread count before the first of them, and
# whether it was set back when the last one ended


class _Helper:
    """One daemon thread that runs a task handed to it (one BLAS thread)."""

    def __init__(self) -> None:
        self.go = _thread.allocate_lock()  # released to hand over ``task``
        self.go.acquire()
        self.task: list | None = None  # [fn, arg, result, error, done lock]
        self.mutex = _thread.allocate_lock()  # guards ``task``
        self.busy = _thread.allocate_lock()  # one caller of ``both`` at a time
        self.skip = 0  # calls left to run on the caller alone (the helper did not pay)
        self.backoff = 0  # the next pause's length
        threading.Thread(target=self._loop, name="fmicrograd-helper", daemon=True).start()

    def pause(self) -> None:
        """The helper did not pay: the next calls (twice as many as last time,
        at most ``PAUSE``) run on the caller alone."""
        self.backoff = min(2 * self.backoff or 1, PAUSE)
        self.skip = self.backoff

    def _loop(self) -> None:
        while True:
            self.go.acquire()
            with self.mutex:
                task, self.task = self.task, None
            if task is None:  # taken back by the caller before this thread woke
                continue
            try:  # (one BLAS thread even when the caller has given up on it)
                task[2] = single_thread(task[0], task[1])
            except BaseException as e:  # handed to the caller
                task[3] = e
            task[4].release()
            del task  # (not held until the next split call: its program and input)


PAUSE = 64  # calls at most on the caller alone before the helper is tried again
_HELPER: list = []  # the helper of this process (started on first use, again after fork)
_STARTING = _thread.allocate_lock()  # two first callers start one helper


def _after_fork() -> None:
    """A forked child has no helper thread, fresh locks, and no program
    running (a parent's thread may have been running one at the fork)."""
    global _STARTING, _COUNT_LOCK
    _HELPER.clear()
    _STARTING = _thread.allocate_lock()
    _COUNT_LOCK = _thread.allocate_lock()
    if _PROGRAMS:
        _PROGRAMS.clear()
        if _SET is not None:
            _SET(_SAVED[0])


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


class Pace:
    """How long one program's two halves take one after the other on the
    caller (``alone``) and side by side with the helper (``shared``), as
    running averages of recent calls, and how many calls are left before
    sharing is tried again (``skip``). ``both`` takes the faster way.

    >>> pace = Pace()
    >>> pace.record(False, 2.0e-3); pace.record(True, 2.4e-3)  # sharing lost
    >>> pace.skip, pace.share()  # one call alone, then tried again
    (1, False)
    """

    __slots__ = ("alone", "shared", "skip", "backoff", "streak")

    def __init__(self) -> None:
        self.alone = 0.0  # seconds (0.0: not measured yet)
        self.shared = 0.0
        self.skip = 1  # the first call measures the halves alone
        self.backoff = 0
        self.streak = 0  # calls shared in a row since ``alone`` was measured

    def share(self) -> bool:
        """Whether this call should try the helper (counts a call alone)."""
        if self.skip > 0:  # (> 0: two threads may both have taken the last one)
            self.skip -= 1
            return False
        if self.streak >= REFRESH:  # measure the halves alone again now and then: the
            self.streak = 0  # machine's load changes
            return False
        return True

    def record(self, shared: bool, seconds: float) -> None:
        """Note a call's time, taken ``shared`` or alone; after a shared
        call, pause sharing (1, 2, 4 ... up to ``PAUSE`` calls) where it
        was no faster than alone."""
        if not shared:
            self.alone = _averaged(self.alone, seconds)
            return
        self.shared = _averaged(self.shared, seconds)
        self.streak += 1
        if self.alone and self.shared >= self.alone:
            self.pause()
        else:
            self.backoff = 0

    def pause(self) -> None:
        """Sharing did not pay: the next calls run alone, twice as many as
        last time, at most ``PAUSE``."""
        self.backoff = min(2 * self.backoff or 1, PAUSE)
        self.skip = self.backoff
        self.shared = 0.0  # (measured afresh when tried again)
        self.streak = 0


REFRESH = 64  # calls shared in a row before the halves are timed alone again
_AVERAGE = 0.25  # the weight of the newest call in ``Pace``'s running averages


def _averaged(average: float, seconds: float) -> float:
    """``Pace``'s running average with a new call's ``seconds`` (the first
    call's own where nothing was measured yet: ``average`` 0.0)."""
    return _AVERAGE * seconds + (1 - _AVERAGE) * average if average else seconds


def both(fn: Callable, a: Any, b: Any, pace: Pace | None = None) -> tuple:
    """``(fn(a), fn(b))``, ``fn(b)`` on a helper thread while the caller
    computes ``fn(a)``. A ``b`` the helper has not started when ``fn(a)`` is
    done is computed by the caller, and so is one the helper is still on after
    as long again as ``fn(a)`` took (its thread kept from a core by other
    processes): the result never waits on a descheduled thread for long, and
    ``fn`` must give the same result on either thread. When the helper did
    not pay (late, or the pair took 1.6x ``fn(a)``'s time or more: the second
    core is busy), the next calls run on the caller alone, 1, 2, 4 ... up to
    ``PAUSE`` of them, before the helper is tried again. With a ``pace``
    (one per program), the pair is timed both ways, and the helper is paused
    where the pair took as long with it as without (see ``Pace``).

    >>> both(lambda v: v * 2, 1, 3)
    (2, 6)
    """
    if not _HELPER:
        with _STARTING:
            if not _HELPER:
                _HELPER.append(_Helper())
    h = _HELPER[0]
    if pace is not None and not pace.share():
        start = time.perf_counter()
        out = fn(a), fn(b)
        pace.record(False, time.perf_counter() - start)
        return out
    if not h.busy.acquire(False):  # another thread is using the helper
        return fn(a), fn(b)
    try:
        if h.skip:
            h.skip -= 1
            return fn(a), fn(b)
        done = _thread.allocate_lock()
        done.acquire()
        task = [fn, b, None, None, done]
        with h.mutex:
            h.task = task
        if h.go.locked():
            h.go.release()
        start = time.perf_counter()
        first = fn(a)
        took = time.perf_counter() - start
        with h.mutex:
            mine = h.task is task
            if mine:
                h.task = None
        if mine or not done.acquire(True, max(took, 0.001)):
            h.pause()
            return first, fn(b)
        if task[3] is not None:
            raise task[3]
        total = time.perf_counter() - start
        if total >= 1.6 * took:
            h.pause()
        else:
            h.backoff = 0
        if pace is not None:
            pace.record(True, total)
        return first, task[2]
    finally:
        h.busy.release()
