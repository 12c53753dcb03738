"""Keep freed memory in the process instead of handing it back to the OS after every step.

PyTorch's CPU allocator is plain ``malloc``. With glibc's defaults a training step of this net
allocates activation buffers of several MB (a batch-64 conv1 output is 7.4 MB in fp32), which
glibc serves with ``mmap`` and returns with ``munmap`` (or trims from the heap top) as soon as they
are freed, so every step page-faults its activations back in and the kernel zeroes them again.
That cost shows up as absurdly slow element-wise ops (ReLU, max-pool backward's zero fill).

Measured on this project's 2-core CPU, one thread, batch 64 (benchmarks/throughput.py reports
it side by side): fp32 training 1,270 -> 2,420 img/s, bf16 2,540 -> 3,900 img/s. Raising the
mmap threshold alone or the trim threshold alone gains little; both are needed.

``keep_freed_memory()`` sets the two thresholds with ``mallopt``; the cost is that the process
keeps its peak heap (a few hundred MB here) until it exits. It is a no-op where there is no glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Allocations up to 32 MiB come from the heap (glibc's largest allowed mmap threshold on 64-bit;
# an eval batch of 250 images has a 29 MB conv1 output). Unit: bytes.
MMAP_THRESHOLD = 32 * 1024 * 1024
# Free heap memory is returned to the OS only when more than 1 GiB of it sits at the top. Unit: bytes.
TRIM_THRESHOLD = 1024 * 1024 * 1024

_state = {"applied": None}


def keep_freed_memory() -> bool:
    """Apply the thresholds once per process; True when glibc accepted both."""
    if _state["applied"] is not None:
        return _state["applied"]
    ok = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):   # musl or another libc without mallopt
            mallopt = None
        if mallopt is not None:
            ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _state["applied"] = ok
    return ok
