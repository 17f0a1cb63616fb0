"""The passes alone: what a `photoveil blur --verify` process would cost if it did nothing but the work
the design fixes for a photo, so `make bench` can show how much of a target that work leaves.

The work fixed by the design's decisions: the decode and the q85 encode (the floor's), ONNX Runtime and
the model's session, the network passes the detector runs on this photo at their sizes (the detection
plan, 0006/0007/0008, and verify's looks, 0009/0012: a whole-photo pass where the windows cover most
of it), one resized copy per pass scale of the upload and of the published photo, and the published
JPEG's decode that the looks read (whole: photoveil decodes only the rows a windowed look reads, so on
the portrait it can cost less than this). The session and the copies are the detector's own
(CenterFaceDetector, ResizedCopies), so they cannot drift from photoveil's; nothing else of photoveil
runs: no blur, no heatmap decoding, no NMS, no verify. ``record`` takes the passes from a real run of
the detector on the photo (shapes only: the network's cost depends on them, not on the pixels), and the
child replays them:

    .venv/bin/python bench/least.py IN OUT PLAN.json   (PLAN.json written by ``record``)
"""

from __future__ import annotations

import json
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


def _replay(detector: Any, photo: Any, passes: list[list[Any]]) -> None:
    """Run ``passes`` on ``photo`` with the detector's own session and resized copies, and nothing else
    of it (no heatmap decoding, no NMS): what CenterFaceDetector._infer feeds the network, padded alike."""
    import numpy as np

    from photoveil.imaging.detectors.centerface import INPUT, OUTPUTS, ResizedCopies

    copies = ResizedCopies(photo)
    for scale, pieces in passes:
        copy = copies.at(scale)
        for height, width in pieces:
            planes = np.zeros((1, 3, -(-height // 32) * 32, -(-width // 32) * 32), np.uint8)
            planes[0, :, :height, :width] = copy[:height, :width, ::-1].transpose(2, 0, 1)
            detector._session.run(OUTPUTS, {INPUT: planes})


def main(source: str, out: str, plan_path: str) -> None:
    # photoveil first, as the command line: its package sets the threads (OpenBLAS, OpenCV, the net)
    # before numpy and OpenCV load, and its detector's session has its options and checks the model.
    from photoveil.imaging.detectors.centerface import CenterFaceDetector

    detector = CenterFaceDetector()
    import cv2

    plan = json.loads(Path(plan_path).read_text())
    upload = cv2.imread(source, cv2.IMREAD_COLOR)
    _replay(detector, upload, plan["upload"])
    jpeg = cv2.imencode(".jpg", upload, [cv2.IMWRITE_JPEG_QUALITY, 85])[1]
    if plan["published"]:
        _replay(detector, cv2.imdecode(jpeg, cv2.IMREAD_COLOR), plan["published"])
    Path(out).write_bytes(jpeg.tobytes())


if __name__ == "__main__":
    main(*sys.argv[1:4])
