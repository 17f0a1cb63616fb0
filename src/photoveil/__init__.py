"""PhotoVeil: blur every face in a photo."""

import os

# Before numpy or OpenCV load OpenBLAS (each bundles one): nothing here calls BLAS, and its start-up
# threads cost ~60 ms of CPU per process (docs/decisions/perf-cpu-per-photo.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
