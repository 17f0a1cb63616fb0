"""The passes alone: what a `photoveil blur --verify` process would cost if it did nothing but the work
the design fixes for a photo, so `make bench` can show how much of a target that work leaves.

The work fixed by the design's decisions: the decode and the q85 encode (the floor's), ONNX Runtime and
the model's session, the network passes the detector runs on this photo at their sizes (the detection
plan, 0006/0007/0008, and verify's looks, 0009/0012: a whole-photo pass where the windows cover most
of it), one resized copy per pass scale of the upload and of the published photo, and the published
JPEG's decode that the looks read (whole: photoveil decodes only the rows a windowed look reads, so on
the portrait it can cost less than this). Nothing else: no blur, no heatmap decoding, no NMS, no photoveil
import. ``record`` takes the passes from a real run of the detector on the photo (shapes only: the
network's cost depends on them, not on the pixels), and the child replays them:

    .venv/bin/python bench/least.py IN OUT PLAN.json   (PLAN.json written by ``record``)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

Plan = dict[str, list[list[Any]]]  # "upload" / "published": [scale, [[height, width], ...]] per pass


def record(detector: Any, data: bytes) -> Plan:
    """The passes ``blur_photo(data, detector)`` runs (CenterFace): their scale and the shapes of the
    pieces fed to the network, for the upload (detection) and the published photo (verify's looks)."""
    from photoveil.imaging.pipeline import blur_photo

    plan: Plan = {"upload": [], "published": []}
    photo = ["upload"]
    run_tiled, infer, detect_near = detector._run_tiled, detector._infer, detector.detect_near

    def on_published(*args: Any, **kwargs: Any) -> Any:
        photo[0] = "published"
        return detect_near(*args, **kwargs)

    def tiled(copies: Any, scale: float, near: Any = None) -> Any:
        plan[photo[0]].append([scale, []])
        return run_tiled(copies, scale, near)

    def piece(bgr: Any) -> Any:
        plan[photo[0]][-1][1].append(list(bgr.shape[:2]))
        return infer(bgr)

    detector._run_tiled, detector._infer, detector.detect_near = tiled, piece, on_published
    try:
        blur_photo(data, detector)
    finally:
        del detector._run_tiled, detector._infer, detector.detect_near  # the class's own again
    return plan


def _copies(photo: Any, cv2: Any) -> Any:
    """One resized copy per scale, as CenterFace's ResizedCopies makes them (from one shared halving)."""
    height, width = photo.shape[:2]
    half = cv2.resize(photo, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    kept: dict[float, Any] = {}

    def at(scale: float) -> Any:
        if scale not in kept:
            size = (round(width * scale), round(height * scale))
            if scale <= 0.5:
                kept[scale] = cv2.resize(half, size, interpolation=cv2.INTER_AREA)
            elif scale < 1 / 1.8:
                kept[scale] = cv2.resize(half, size, interpolation=cv2.INTER_LINEAR)
            else:
                kept[scale] = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        return kept[scale]

    return at


def _replay(session: Any, photo: Any, passes: list[list[Any]], cv2: Any, np: Any) -> None:
    at = _copies(photo, cv2)
    for scale, pieces in passes:
        copy = at(scale)
        for height, width in pieces:
            planes = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.uint8)
            planes[0, :, :height, :width] = copy[:height, :width, ::-1].transpose(2, 0, 1)
            session.run(["537", "538", "539"], {"input.1": planes})


def main(source: str, out: str, plan_path: str) -> None:
    # As photoveil/__init__.py sets them under `make bench` (one thread for OpenBLAS, OpenCV and the net).
    threads = os.environ.get("PHOTOVEIL_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OPENCV_FOR_THREADS_NUM", threads)
    import cv2
    import numpy as np
    import onnxruntime

    plan = json.loads(Path(plan_path).read_text())
    options = onnxruntime.SessionOptions()  # as CenterFaceDetector sets them
    options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    options.enable_mem_pattern = False
    model = Path(__file__).resolve().parent.parent / "src" / "photoveil" / "models" / "centerface-int8.onnx"
    session = onnxruntime.InferenceSession(model.read_bytes(), options, providers=["CPUExecutionProvider"])
    upload = cv2.imread(source, cv2.IMREAD_COLOR)
    _replay(session, upload, plan["upload"], cv2, np)
    jpeg = cv2.imencode(".jpg", upload, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
    if plan["published"]:
        _replay(session, cv2.imdecode(jpeg, cv2.IMREAD_COLOR), plan["published"], cv2, np)
    Path(out).write_bytes(jpeg.tobytes())


if __name__ == "__main__":
    main(*sys.argv[1:4])
