"""Measure the activation ranges that scripts/fetch_model.py quantises CenterFace with.

    .venv/bin/python tools/calibrate_centerface.py --out scripts/centerface-int8-ranges.json IMAGE...

MinMax over every image at each --sides long side (rounded down to multiples of 32), with ONNX Runtime's
own calibrator. The committed ranges come from 16 photos of the scikit-image 0.26.0 wheel's
skimage/data (astronaut, camera, coffee, chelsea, rocket, motorcycle_left, brick, grass, coins, color,
hubble_deep_field, retina, ihc, horse, page, text) at 512 and 1024 px: photos that are not the shared
evaluation set, so the quantisation is not tuned to the photos it is measured on.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
from fetch_model import prepare_float_model  # noqa: E402


def blobs(paths: list[Path], sides: list[int]) -> Iterator[dict[str, np.ndarray]]:
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h, w = image.shape[:2]
        for side in sides:
            scale = side / max(h, w)
            size = (max(32, round(w * scale) // 32 * 32), max(32, round(h * scale) // 32 * 32))
            resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            yield {"input.1": cv2.dnn.blobFromImage(resized, 1.0, (0, 0), (0, 0, 0), swapRB=True, crop=False)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--source", type=Path, default=REPO / "src" / "photoveil" / "models" / "centerface.onnx")
    ap.add_argument("--sides", default="512,1024")
    args = ap.parse_args()
    import onnx
    from onnxruntime.quantization.calibrate import CalibrationMethod, create_calibrator, save_tensors_data

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        onnx.save(prepare_float_model(args.source), prepared)
        calibrator = create_calibrator(
            prepared,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=CalibrationMethod.MinMax,
        )
        sides = [int(s) for s in args.sides.split(",")]
        feed = blobs(args.images, sides)
        calibrator.collect_data(type("Reader", (), {"get_next": lambda self: next(feed, None)})())
        save_tensors_data(calibrator.compute_data(), args.out)
    print(f"calibrate_centerface: {args.out} from {len(args.images)} images at {sides} px")


if __name__ == "__main__":
    main()
