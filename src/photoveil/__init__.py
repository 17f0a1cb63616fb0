"""PhotoVeil: blur every face in a photo."""

import os

from photoveil.imaging.cpus import cpu_budget

# Read when numpy and OpenCV load, so set before either is imported. Nothing here calls BLAS, and its
# start-up threads cost ~60 ms of CPU per process; OpenCV's pool is sized to the CPUs we really have.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OPENCV_FOR_THREADS_NUM", str(cpu_budget()))

__version__ = "0.1.0"
