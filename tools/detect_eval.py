"""Recall of a face detector against the shared ground truth, by face size, with false positives and speed.

    .venv/bin/python tools/detect_eval.py [--data ../shared/data/faces] [--detector centerface]
        [--set KEY=VALUE ...]   (CenterFaceConfig overrides, e.g. --set threshold=0.3 --set global_side=960)
        [--upscale 4032x3024]   (also enlarge each photo to this size first: the 12 MP crowd case)

A ground-truth face is found when a detection has IoU >= 0.3 with it, or covers >= 60 % of its central
region (the middle 60 % of the box, which is what the privacy metric checks). A detection matching no
ground-truth face counts as a false positive (the shared ground truth is not exhaustive, so an upper bound).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np

from photoveil.imaging.detectors.centerface import CenterFaceConfig, CenterFaceDetector
from photoveil.imaging.detectors.nms import iou_matrix

BUCKETS = [(0, 0.01), (0.01, 0.02), (0.02, 0.04), (0.04, 1.01)]  # face height / image long side
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces"


def central_coverage(gt: np.ndarray, det: np.ndarray) -> np.ndarray:
    """Share of each GT box's central region (middle 60 %) covered by each detection: (N, M)."""
    w, h = gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1]
    c = np.stack([gt[:, 0] + 0.2 * w, gt[:, 1] + 0.2 * h, gt[:, 2] - 0.2 * w, gt[:, 3] - 0.2 * h], 1)
    ix = np.minimum(c[:, None, 2], det[None, :, 2]) - np.maximum(c[:, None, 0], det[None, :, 0])
    iy = np.minimum(c[:, None, 3], det[None, :, 3]) - np.maximum(c[:, None, 1], det[None, :, 1])
    ix, iy = np.clip(ix, 0, None), np.clip(iy, 0, None)
    return ix * iy / np.maximum((c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1]), 1e-9)[:, None]


def match(gt: np.ndarray, det: np.ndarray) -> tuple[np.ndarray, int]:
    """(found flag per GT face, number of detections matching no GT face)."""
    if len(det) == 0:
        return np.zeros(len(gt), bool), 0
    ok = (iou_matrix(gt, det) >= 0.3) | (central_coverage(gt, det) >= 0.6)
    return ok.any(axis=1), int((~ok.any(axis=0)).sum())


def parse_overrides(pairs: list[str]) -> dict[str, float]:
    fields = {f.name: f.type for f in dataclasses.fields(CenterFaceConfig)}
    out = {}
    for pair in pairs:
        key, value = pair.split("=", 1)
        if key not in fields:
            raise SystemExit(f"unknown setting {key}; known: {', '.join(fields)}")
        out[key] = int(value) if fields[key] in (int, "int") else float(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--upscale", help="WxH to enlarge each photo to before detecting (e.g. 4032x3024)")
    ap.add_argument("--quiet", action="store_true", help="totals only")
    ap.add_argument("--threads", type=int, help="cv2.setNumThreads")
    args = ap.parse_args()
    if args.threads:
        cv2.setNumThreads(args.threads)
    cfg = CenterFaceConfig(**parse_overrides(args.set))
    det = CenterFaceDetector(cfg)
    n = np.zeros(len(BUCKETS), int)
    hit = np.zeros(len(BUCKETS), int)
    fps, times, cpu = 0, [], []
    for gt_file in sorted(args.data.glob("*.faces.json")):
        img_path = gt_file.with_name(gt_file.name[: -len(".faces.json")] + ".jpg")
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        gt = np.array(json.loads(gt_file.read_text())["faces"], np.float32)
        if args.upscale:
            tw, th = map(int, args.upscale.split("x"))
            if img.shape[0] > img.shape[1]:
                tw, th = th, tw
            sx, sy = tw / img.shape[1], th / img.shape[0]
            img = cv2.resize(img, (tw, th), interpolation=cv2.INTER_CUBIC)
            gt = gt * np.array([sx, sy, sx, sy], np.float32)
        det.detect(img[:64, :64])  # warm-up so the first photo's time is not the model's first run
        t, c = time.perf_counter(), time.process_time()
        faces = det.detect(img)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)  # CPU time: steadier than wall time on a shared machine
        boxes = np.array([[f.x1, f.y1, f.x2, f.y2] for f in faces], np.float32).reshape(-1, 4)
        found, fp = match(gt, boxes)
        fps += fp
        ratio = (gt[:, 3] - gt[:, 1]) / max(img.shape[:2])
        for k, (lo, hi) in enumerate(BUCKETS):
            sel = (ratio >= lo) & (ratio < hi)
            n[k] += sel.sum()
            hit[k] += (found & sel).sum()
        if not args.quiet:
            size = f"{img.shape[1]}x{img.shape[0]}"
            print(
                f"{img_path.name[:40]:40s} {size} found {found.sum():3d}/{len(gt):3d} fp {fp:2d}"
                f" {1000 * times[-1]:7.1f} ms (cpu {1000 * cpu[-1]:.0f} ms)"
            )
    buckets = " ".join(f"{lo:.0%}-{hi:.0%}:{h}/{m}" for (lo, hi), h, m in zip(BUCKETS, hit, n, strict=True))
    print(
        f"recall {hit.sum() / n.sum():.4f} ({hit.sum()}/{n.sum()})  {buckets}  fp {fps}  "
        f"median {1000 * np.median(times):.0f} ms (cpu {1000 * np.median(cpu):.0f})  "
        f"max {1000 * max(times):.0f} ms (cpu {1000 * max(cpu):.0f})  "
        f"config {json.dumps(parse_overrides(args.set)) if args.set else 'defaults'}"
    )


if __name__ == "__main__":
    main()
