"""glibc's allocator is left at its defaults (docs/decisions/0017-image-core-on-opencv.md): the heap tuning
of decision 0016 saved no CPU with the OpenCV core (paired A/B, CPU ratio 1.00), so a freed photo-sized
buffer goes back to the kernel and a worker's memory falls back between photos."""

from __future__ import annotations

import subprocess
import sys

# In a fresh process that loads the image core: RSS after touching a 12 MP photo's 48 MB buffer, and
# after freeing it.
RSS_AFTER_FREE = """
import re
import numpy as np
import photoveil.imaging.pipeline

def rss_mb():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read())[1]) / 1024

buffer = np.ones(48 * 1024 * 1024, np.uint8)
held = rss_mb()
del buffer
print(held, rss_mb())
"""


def test_a_freed_photo_buffer_goes_back_to_the_kernel() -> None:
    run = subprocess.run([sys.executable, "-c", RSS_AFTER_FREE], capture_output=True, text=True, check=True)
    held, freed = map(float, run.stdout.split())
    assert held - freed > 40, (held, freed)
