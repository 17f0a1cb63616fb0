"""What a worker process loads: its Python modules and shared libraries, on this machine.

    .venv/bin/python tools/worker_loads.py > worker-loads.txt

Imports the worker's handler module (everything its Lambda INIT imports) and the Rekognition
detector's, then blurs one photo of each accepted kind (JPEG: RGB, grey, CMYK, EXIF-rotated, 12 MP;
PNG with and without alpha; WebP; HEIC) in each blur style with the verify step, and prints every
module in sys.modules and every shared library mapped into the process. src/Makefile strips from the
worker's package only what this list shows is never loaded.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
from pathlib import Path

import pillow_heif
from PIL import Image

IMAGES = Path(__file__).resolve().parents[1] / "tests" / ".images"


def sample_photos() -> dict[str, bytes]:
    # Pillow only: the photos are made before the worker is loaded, so what it loads is its own.
    rgb = Image.open(IMAGES / "astronaut.png").convert("RGB")
    photos = {}
    for name, image, fmt, extra in (
        ("jpeg", rgb, "JPEG", {}),
        ("jpeg-grey", rgb.convert("L"), "JPEG", {}),
        ("jpeg-cmyk", rgb.convert("CMYK"), "JPEG", {}),
        ("jpeg-exif-6", rgb, "JPEG", {"exif": _exif_orientation(rgb, 6)}),
        ("png", rgb, "PNG", {}),
        ("png-alpha", rgb.convert("RGBA"), "PNG", {}),
        ("webp", rgb, "WEBP", {}),
    ):
        buffer = io.BytesIO()
        image.save(buffer, fmt, **extra)
        photos[name] = buffer.getvalue()
    buffer = io.BytesIO()
    pillow_heif.from_pillow(rgb).save(buffer, quality=80)
    photos["heic"] = buffer.getvalue()
    buffer = io.BytesIO()
    rgb.resize((4032, 3024)).save(buffer, "JPEG")
    photos["jpeg-12mp"] = buffer.getvalue()
    return photos


def _exif_orientation(image: Image.Image, orientation: int) -> Image.Exif:
    exif = image.getexif()
    exif[0x0112] = orientation
    return exif


def main() -> None:
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "photoveil")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    photos = sample_photos()
    # Made with pillow_heif above; forget it so the pipeline's own import is what counts.
    for name in [m for m in sys.modules if m.startswith("pillow_heif") or m == "_pillow_heif"]:
        del sys.modules[name]
    # The worker's INIT, and the code of the `both` and `rekognition` detectors.
    for module in ("photoveil.handlers.worker", "photoveil.imaging.detectors.rekognition"):
        importlib.import_module(module)
    from photoveil.imaging.detectors import get_detector
    from photoveil.imaging.pipeline import blur_photo

    detector = get_detector("centerface")
    for data in photos.values():
        for style in ("gaussian", "pixelate", "solid"):
            blur_photo(data, detector, style=style, verify=True)
    for module in sorted(sys.modules):
        print(f"module {module}")
    maps = Path(f"/proc/{os.getpid()}/maps")
    libraries = {line.split()[5] for line in maps.read_text().splitlines() if len(line.split()) >= 6}
    for library in sorted(lib for lib in libraries if ".so" in lib):
        print(f"library {library}")


if __name__ == "__main__":
    main()
