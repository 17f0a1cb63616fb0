"""Fetch two real test photos from the scikit-image wheel on PyPI, verified by sha256.

astronaut.png (512x512 RGB, one face, NASA, public domain) and camera.png (512x512 grayscale, one face).
Tests use them so that they need no shared data. Idempotent: files already present with the right hash
are left alone.

    python scripts/fetch_test_images.py --dest tests/.images
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: reuse fetch_model's helpers
from fetch_model import FetchError, download_wheel, sha256_of, write_atomically

PACKAGE = "scikit-image==0.26.0"
# One wheel for every machine: the PNGs are the same in all of them.
PLATFORM_ARGS = ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11"]
IMAGES = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
}
MEMBER_DIR = "skimage/data/"


def fetch_test_images(dest: Path) -> list[str]:
    """Put every image in dest, verified. Returns the names actually fetched (empty when all present)."""
    missing = [
        name for name, sha in IMAGES.items() if not (dest / name).exists() or sha256_of(dest / name) != sha
    ]
    if not missing:
        return []
    with tempfile.TemporaryDirectory(prefix="photoveil-images-") as tmp:
        wheel = download_wheel(PACKAGE, Path(tmp), PLATFORM_ARGS)
        with zipfile.ZipFile(wheel) as zf:
            blobs = {}
            for name in missing:
                try:
                    blobs[name] = zf.read(MEMBER_DIR + name)
                except KeyError:
                    raise FetchError(f"{wheel.name} has no {MEMBER_DIR}{name}") from None
    for name, data in blobs.items():
        actual = hashlib.sha256(data).hexdigest()
        if actual != IMAGES[name]:
            raise FetchError(f"{name} from {wheel.name} has sha256 {actual}, expected {IMAGES[name]}")
    for name, data in blobs.items():
        write_atomically(dest / name, data)
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="directory to write the PNGs into")
    args = parser.parse_args(argv)
    try:
        fetched = fetch_test_images(args.dest)
    except FetchError as exc:
        print(f"fetch_test_images: error: {exc}", file=sys.stderr)
        return 1
    print(f"fetch_test_images: {', '.join(fetched) if fetched else 'all present'} in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
