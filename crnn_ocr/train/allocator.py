"""Stop glibc from handing big tensor buffers back to the kernel after every training step.

glibc serves every allocation above its mmap threshold (32 MiB at most) with a fresh mmap and unmaps it on free,
so a CPU training step of a batch of wide lines re-faults each activation page by page: measured here at about
265,000 minor page faults per second, a third of the CPU time spent in the kernel, and 38 images/s instead of
60. Keeping freed memory in the heap removes that; the price is that the process keeps its peak memory.
jemalloc (`LD_PRELOAD=libjemalloc.so.2 MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1`) does the same from
outside the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc malloc reuse freed buffers instead of unmapping them; False where libc is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, INT_MAX))
