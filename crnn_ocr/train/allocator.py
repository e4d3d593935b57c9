"""The memory allocator `ocr train` and `ocr detector train` run under.

glibc serves every allocation above its mmap threshold (32 MiB at most) with a fresh mmap and unmaps it on free,
so each CPU training step on wide lines re-faults its activations page by page (measured here: 563,000 minor
faults per step, a third of the CPU time in the kernel). jemalloc told never to return freed pages avoids that
and keeps less memory than glibc made to keep its heap; benchmarks/results/allocator.md has the numbers.
jemalloc must be loaded before Python starts, so `ocr train` (and `ocr detector train`, `python -m
crnn_ocr.detect.train`) start themselves again with it preloaded once, when the library is installed
(Debian/Ubuntu: `apt-get install libjemalloc2`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import sys
from pathlib import Path

from crnn_ocr.errors import ConfigError

ALLOCATORS = ("auto", "jemalloc", "glibc-keep", "glibc")
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
REEXEC_MARK = "CRNN_OCR_JEMALLOC_TRIED"
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
INT_MAX = 2**31 - 1


def find_jemalloc() -> str | None:
    return ctypes.util.find_library("jemalloc") if platform.system() == "Linux" else None


def jemalloc_loaded() -> bool:
    try:
        return "jemalloc" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def keep_freed_memory() -> bool:
    """Make glibc malloc reuse freed buffers instead of unmapping them; False where libc is not glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, INT_MAX))


def requested(argv: list[str]) -> str:
    """The value of --allocator in a command line, or 'auto'."""
    for i, arg in enumerate(argv):
        if arg == "--allocator" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--allocator="):
            return arg.split("=", 1)[1]
    return "auto"


def restart_train_with_jemalloc(argv: list[str]) -> None:
    """Replace this process by the same `ocr train` or `ocr detector train` command with jemalloc preloaded, when
    wanted and installed."""
    if argv[1:2] == ["train"] or argv[1:3] == ["detector", "train"]:
        restart_with_jemalloc(requested(argv))


def restart_with_jemalloc(choice: str = "auto") -> None:
    """Replace this process by the same command line with jemalloc preloaded, when `choice` allows it, the library
    is installed and this process has not tried already."""
    if choice not in ("auto", "jemalloc"):
        return
    library = find_jemalloc()
    if library is None or jemalloc_loaded() or os.environ.get(REEXEC_MARK):
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(filter(None, [library, env.get("LD_PRELOAD")]))
    env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    env[REEXEC_MARK] = "1"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def use_allocator(choice: str) -> str:
    """Apply `choice` (one of ALLOCATORS) inside this process; return the allocator in use."""
    if jemalloc_loaded():
        return "jemalloc"
    if choice == "jemalloc":
        where = "not installed (Debian/Ubuntu: apt-get install libjemalloc2)" if find_jemalloc() is None else \
            "installed but not loaded: start training with the `ocr` command, which preloads it"
        raise ConfigError(f"--allocator jemalloc: libjemalloc is {where}")
    if choice == "glibc-keep":
        if not keep_freed_memory():
            raise ConfigError("--allocator glibc-keep needs glibc (Linux)")
        return "glibc-keep"
    return "glibc"
