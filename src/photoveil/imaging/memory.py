"""Process-wide allocator settings for photo-sized buffers (glibc only; elsewhere nothing changes).

glibc serves every allocation over its mmap threshold (at most 32 MB by default: a 12 MP photo's arrays
are 36-48 MB) with a fresh mapping and unmaps it on free, and gives the heap's free top back to the
kernel; each new 12 MP buffer then costs ~9,000 page faults, every page zero-filled again. Keeping them
in the heap saved ~50 ms of CPU per 12 MP photo with the verify step, and lowered its peak RSS by
~15 MB (docs/decisions/0016-image-core-without-opencv.md). The heap keeps its peak size instead, which a
worker sized for photos wants anyway.
"""

from __future__ import annotations

import ctypes
from functools import cache

# mallopt(3) parameters and values.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024 * 1024  # over the largest buffer the 50 MP limit makes (~200 MB)
TRIM_THRESHOLD = 1024 * 1024 * 1024


@cache
def keep_photo_buffers_mapped() -> bool:
    """Set glibc's mmap and trim thresholds once per process; False where there is no glibc mallopt."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, libc's among them (no library search)
        mallopt = libc.mallopt
        # gnu_get_libc_version exists only in glibc: musl's and macOS's mallopt differ or do nothing.
        libc.gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
