"""Process-wide settings for fast CPU training. The command line and the tutorials apply them; importing the
package never does.

One BLAS thread. Our matrices are small: one thread is faster than several, and parallel runs use one process
per core. OpenBLAS reads its thread count once, when numpy is first imported, so call `one_blas_thread` before
that.

Freed memory kept for reuse. glibc gives every freed block over 128 KiB straight back to the operating system,
so a training step that makes the same large temporaries every time (a batch's memories, (N, M, n·d)) has them
page-faulted in afresh, step after step: on bAbI task 3 that was a third of a step's time. `keep_freed_memory`
raises glibc's mmap and trim thresholds (mallopt) so such blocks stay in the heap and are reused. It changes
no result, only where memory comes from; on other C libraries it does nothing.
"""
from __future__ import annotations

import ctypes
import os
import sys

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3              # glibc's mallopt parameter numbers (malloc.h)


def one_blas_thread() -> None:
    """Default every BLAS to one thread (an explicit setting in the environment wins)."""
    for var in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(var, "1")


def keep_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 512 << 20) -> bool:
    """Ask glibc to keep freed blocks below mmap_threshold in the heap. True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):                        # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))


def configure() -> None:
    """Both settings, as the command line uses them."""
    one_blas_thread()
    keep_freed_memory()
