"""glibc's malloc thresholds set once, as its own heuristic would settle them,
so that a compiled program's arrays do not come back as fresh pages every call.

A compiled step allocates its arrays anew on every call and frees them at the
end. glibc gives memory at the top of its heap back to the system once more
than ``M_TRIM_THRESHOLD`` (128 KiB at first) is free there, and serves a
request of ``M_MMAP_THRESHOLD`` (128 KiB at first) or more with a fresh
``mmap``; it raises both as it sees large blocks freed, up to 32 MiB and 64
MiB. Until it has, a step whose arrays are about 128 KB each hands its heap
top back at the end of every call and faults it in again at the next: in
some processes, depending on what else sits on the heap, micrograd's model
at a batch of 1,000 took 155-187 page faults and 0.43 ms per call, in others
none and 0.12 ms (issue 9, round 37). ``steady_heap`` sets the two
thresholds to the values the heuristic reaches at most, the first time ``jit``
builds array code: a process then keeps up to 64 MiB of freed heap for reuse,
and blocks under 32 MiB come from the heap.

It does nothing where the C library is not glibc, where the user set one of
glibc's ``MALLOC_*_`` variables, or where ``FMICROGRAD_MALLOC=default``.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

__all__ = ["steady_heap"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # (glibc's ``mallopt`` parameters)
MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # as the heuristic sets it beside the one above
_USERS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
          "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
_LOCK = threading.Lock()
_DONE: list = []  # [whether it was set], once decided


def steady_heap(environ: Any = os.environ, libc: Any = None) -> bool:
    """Set glibc's trim and mmap thresholds (once per process); whether they
    are set, by this call or an earlier one. ``libc``: for tests, an object
    with glibc's ``mallopt``.

    >>> class C:
    ...     def mallopt(self, param, value):
    ...         print(param, value)
    ...         return 1
    >>> _set({"FMICROGRAD_MALLOC": "default"}, C()), _set({"MALLOC_ARENA_MAX": "2"}, C())
    (False, False)
    >>> _set({}, C())
    -3 33554432
    -1 67108864
    True
    """
    if _DONE:
        return _DONE[0]
    with _LOCK:
        if not _DONE:
            _DONE.append(_set(environ, libc))
    return _DONE[0]


def _set(environ: Any, libc: Any) -> bool:
    if environ.get("FMICROGRAD_MALLOC", "").strip().lower() == "default":
        return False
    if any(name in environ for name in _USERS):  # the user's own choice stands
        return False
    if libc is None:
        try:
            if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
                return False
            libc = ctypes.CDLL(None)
        except (ValueError, OSError, AttributeError):  # not glibc, or no such name here
            return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
