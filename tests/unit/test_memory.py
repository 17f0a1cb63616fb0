"""Photo-sized buffers stay in the heap (photoveil.imaging.memory): a second 12 MP buffer costs no page
faults."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from photoveil.imaging.memory import keep_photo_buffers_mapped


def _faults_touching(size: int) -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffer = np.ones(size, np.uint8)  # written through: every page touched
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del buffer
    return after - before


def test_a_freed_photo_buffer_is_reused_without_faulting_its_pages_again() -> None:
    if not keep_photo_buffers_mapped():
        pytest.skip("not glibc: the allocator is left as it is")
    size = 48 * 1024 * 1024  # a 12 MP photo, 4 bytes a pixel: over glibc's default mmap threshold
    _faults_touching(size)
    # A fresh mapping faults every page again: 12,288 of 4 KB, or with transparent huge pages still
    # one per 2 MB (536 measured here without the setting); the heap's memory is already there (0).
    assert _faults_touching(size) < 16
