"""Does the blur really hide faces from the detector? Re-detection, privacy and collateral per blur setting.

    .venv/bin/python tools/redetect_eval.py [--data ../shared/data/faces] [--upscale 4032x3024]
        [--variant 'blur.SIGMA_RATIO=0.8,geometry.FEATHER=0.2' ...]   (module constants to override)
        [--cost]   (also time blur_faces for one 100/400/800 px face on a 12 MP image)
        [--perturb SEED]   (bump 5 % of the detector's input pixels by one grey level: how much of the
                            figures is chance; docs/decisions/0016-image-core-without-opencv.md)
        [--crops HEIGHTS]  (a crop HEIGHTS face heights tall round each face instead of the photos: the
                            few-face photos whose looks run in windows; with --upscale, enlarged)

For each shared photo: decode, detect once with ``get_detector("centerface")`` (default threshold 0.1),
then per variant blur with ``photoveil.imaging.blur.blur_faces``, encode as the CLI does (JPEG q85, cut in
rows), run the pipeline's verify step (``photoveil.imaging.verify.reblur_until_clean``; ``--no-verify``
skips it), decode and detect again, whole photo, at the same threshold. A re-detection is a detection on
the output that has IoU >= 0.3 with a face we blurred or whose centre lies inside one of the blurred
regions' rectangles. Also reported, with /work/shared/tools/privacy_eval.py's own change_map and hf
functions on the same output: recall (central region changed on >= 50 % and Laplacian variance <= 0.35 of
the input's) and collateral (share of non-face pixels changed), so one run gives the whole trade-off
without one process per photo."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from photoveil.imaging.detectors import get_detector
from photoveil.imaging.detectors.nms import face_boxes, iou_matrix
from photoveil.imaging.faces import Face
from photoveil.imaging.image import encode_jpeg
from photoveil.imaging.jpeg_rows import encode_rows

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT / "shared" / "data" / "faces"
sys.path.insert(0, str(ROOT / "shared" / "tools"))


def load_items(data: Path, upscale: tuple[int, int] | None) -> list[tuple[str, np.ndarray, np.ndarray]]:
    items = []
    for gt_path in sorted(data.glob("*.faces.json")):
        name = gt_path.name[: -len(".faces.json")]
        image = cv2.imread(str(data / f"{name}.jpg"), cv2.IMREAD_COLOR)
        gt = np.array(json.loads(gt_path.read_text())["faces"], np.float64).reshape(-1, 4)
        if upscale:
            h, w = image.shape[:2]
            sx, sy = upscale[0] / w, upscale[1] / h
            image = cv2.resize(image, upscale, interpolation=cv2.INTER_CUBIC)
            gt = gt * np.array([sx, sy, sx, sy])
            # privacy_eval compares against the file it reads: a JPEG of the upscaled copy.
            image = cv2.imdecode(np.frombuffer(encode_jpeg(image, 95), np.uint8), cv2.IMREAD_COLOR)
        items.append((name, image, gt))
    return items


def crop_items(
    items: list[tuple[str, np.ndarray, np.ndarray]], heights: float, upscale: tuple[int, int] | None
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Few-face photos: a 4:3 crop ``heights`` face heights tall round each annotated face of at least
    24 px (the photo's edge permitting), with the faces it holds, optionally enlarged to ``upscale``.
    A group photo's looks run over the whole photo; these are the photos whose looks run in windows."""
    crops = []
    for name, image, gt in items:
        height, width = image.shape[:2]
        for i, (x1, y1, x2, y2) in enumerate(gt):
            if y2 - y1 < 24:
                continue
            ch, cw = min(height, int(heights * (y2 - y1))), min(width, int(heights * (y2 - y1) * 4 / 3))
            left = int(max(0, min(width - cw, (x1 + x2 - cw) / 2)))
            top = int(max(0, min(height - ch, (y1 + y2 - ch) / 2)))
            boxes = gt - np.array([left, top, left, top], np.float64)
            clipped = np.clip(boxes, 0, [cw, ch, cw, ch])
            # Faces the crop's edge cuts in two are left out of the ground truth (no detector finds half
            # a face); their pixels then count as collateral, so only the re-detections compare.
            area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
            inside = area(clipped) >= 0.9 * area(boxes)
            crop, boxes = image[top : top + ch, left : left + cw], boxes[inside]
            if upscale:
                sx, sy = upscale[0] / cw, upscale[1] / ch
                crop = cv2.resize(crop, upscale, interpolation=cv2.INTER_CUBIC)
                crop = cv2.imdecode(np.frombuffer(encode_jpeg(crop, 95), np.uint8), cv2.IMREAD_COLOR)
                boxes = boxes * np.array([sx, sy, sx, sy])
            crops.append((f"{name}#{i}", crop, boxes))
    return crops


def perturb_detector_input(seed: int) -> None:
    """Every copy the detector's passes see gets 5 % of its pixels one grey level brighter (seeded by
    the copy's height, so a look and the eval's own detection see the same noise)."""
    from photoveil.imaging.detectors import centerface

    resized = centerface.ResizedCopies.at

    def bumped(self: centerface.ResizedCopies, scale: float) -> np.ndarray:
        pixels = np.array(resized(self, scale))
        chosen = np.random.default_rng(seed + pixels.shape[0]).random(pixels.shape[:2]) < 0.05
        pixels[chosen] = np.minimum(pixels[chosen], 254) + 1
        return pixels

    centerface.ResizedCopies.at = bumped


def apply_variant(spec: str) -> dict[str, object]:
    """Set module constants from 'blur.NAME=VALUE,geometry.NAME=VALUE'; return the old values."""
    old: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, value = part.split("=", 1)
        mod_name, attr = key.rsplit(".", 1)
        module = importlib.import_module(f"photoveil.{mod_name}")
        old[key] = getattr(module, attr)
        setattr(module, attr, json.loads(value))
    return old


def restore(old: dict[str, object]) -> None:
    for key, value in old.items():
        mod_name, attr = key.rsplit(".", 1)
        setattr(importlib.import_module(f"photoveil.{mod_name}"), attr, value)


def privacy(inp: np.ndarray, out: np.ndarray, gt: np.ndarray) -> tuple[int, int, float, list[tuple]]:
    """privacy_eval.evaluate's per-image arithmetic: (faces, protected, collateral, failing faces)."""
    import privacy_eval as pe

    ch = pe.change_map(inp, out)
    face_mask = np.zeros(ch.shape, bool)
    n = hit = 0
    misses = []
    for x1, y1, x2, y2 in gt:
        w, h = x2 - x1, y2 - y1
        cx1, cy1 = int(x1 + 0.2 * w), int(y1 + 0.2 * h)
        cx2, cy2 = int(np.ceil(x2 - 0.2 * w)), int(np.ceil(y2 - 0.2 * h))
        cx1, cy1 = max(cx1, 0), max(cy1, 0)
        cx2, cy2 = min(cx2, inp.shape[1]), min(cy2, inp.shape[0])
        face_mask[max(int(y1), 0) : int(y2), max(int(x1), 0) : int(x2)] = True
        if cx2 - cx1 < 2 or cy2 - cy1 < 2:
            continue
        cov = float(ch[cy1:cy2, cx1:cx2].mean())
        ratio = pe.hf(out[cy1:cy2, cx1:cx2]) / pe.hf(inp[cy1:cy2, cx1:cx2])
        n += 1
        ok = cov >= 0.5 and ratio <= 0.35
        hit += ok
        if not ok:
            misses.append((round(float(h)), round(cov, 2), round(ratio, 2)))
    bg = ~face_mask
    return n, hit, float(ch[bg].mean()) if bg.any() else 0.0, misses


def evaluate(items, found, detector, style: str, verbose: bool, verify: bool = True) -> dict[str, object]:
    from photoveil.imaging.blur import blur_faces
    from photoveil.imaging.geometry import face_regions
    from photoveil.imaging.verify import reblur_until_clean

    total = {"faces": 0, "protected": 0, "redetected": 0, "redetected_iou": 0, "blurred": 0, "reblurred": 0}
    at_least = {0.2: 0, 0.3: 0}
    coll, max_score, blur_s, worst = [], 0.0, 0.0, []
    for (name, image, gt), faces in zip(items, found, strict=True):
        t = time.perf_counter()
        out = blur_faces(image.copy(), faces, style)
        jpeg = encode_rows(out)  # as the pipeline publishes it (cut in rows: jpeg_rows)
        if verify:
            jpeg, reblurred, _ = reblur_until_clean(out, jpeg, faces, detector, style=style, quality=85)
            total["reblurred"] += len(reblurred)
        blur_s += time.perf_counter() - t
        out = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        after = detector.detect(out)
        regions = face_regions(faces, image.shape[1], image.shape[0])
        again = []
        iou = iou_matrix(face_boxes(after), face_boxes(faces))  # (N, 0) when nothing was blurred
        for i, f in enumerate(after):
            cx, cy = (f.x1 + f.x2) / 2, (f.y1 + f.y2) / 2
            inside = any(r.x1 <= cx < r.x2 and r.y1 <= cy < r.y2 for r in regions)
            hit_iou = bool(iou.shape[1] and iou[i].max() >= 0.3)
            if inside or hit_iou:
                # The score as it is: rounded, 0.1996 would count as 0.2, which verify never blurs again.
                again.append((f.score, round(f.y2 - f.y1), hit_iou))
        n, hit, c, misses = privacy(image, out, gt)
        total["faces"] += n
        total["protected"] += hit
        total["blurred"] += len(faces)
        total["redetected"] += len(again)
        total["redetected_iou"] += sum(a[2] for a in again)
        for score in at_least:
            at_least[score] += sum(a[0] >= score for a in again)
        coll.append(c)
        if again:
            max_score = max(max_score, max(a[0] for a in again))
        if verbose:
            again.sort(reverse=True)
            shown = [(round(score, 3), size, by_iou) for score, size, by_iou in again[:4]]
            print(
                f"  {name[:28]:28s} faces={len(faces):3d} again={len(again):2d} {shown} "
                f"coll={c:.3f} miss={misses[:8]}",
                flush=True,
            )
        worst.extend((a[0], name) for a in again)
    return {
        "recall": round(total["protected"] / max(total["faces"], 1), 4),
        "protected": f"{total['protected']}/{total['faces']}",
        "collateral": round(float(np.mean(coll)), 4),
        "blurred": total["blurred"],
        "redetected": total["redetected"],
        "redetected_iou": total["redetected_iou"],
        "redetected_at_0.2": at_least[0.2],
        "redetected_at_0.3": at_least[0.3],
        "reblurred": total["reblurred"],
        "max_score": round(max_score, 4),
        "worst": [(round(score, 4), name) for score, name in sorted(worst, reverse=True)[:5]],
        "blur_ms_total": round(blur_s * 1000, 1),  # blur, encode and verify
    }


def blur_cost(style: str) -> None:
    from photoveil.imaging.blur import blur_faces

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (3024, 4032, 3), dtype=np.uint8)
    for size in (100, 400, 800):
        face = Face(1500, 1000, 1500 + size, 1000 + size, 0.9)
        runs = []
        for _ in range(7):
            copy = image.copy()
            t = time.perf_counter()
            blur_faces(copy, [face], style)
            runs.append(time.perf_counter() - t)
        print(f"  blur {style} {size} px face on 12 MP: median {np.median(runs) * 1000:.1f} ms", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--upscale", help="WxH, e.g. 4032x3024")
    ap.add_argument("--variant", action="append", default=[], help="module constants, see the docstring")
    ap.add_argument("--style", default="gaussian")
    ap.add_argument("--cost", action="store_true")
    ap.add_argument("--no-verify", action="store_true", help="skip the verify step (first blur only)")
    ap.add_argument("--perturb", type=int, metavar="SEED", help="see the docstring")
    ap.add_argument("--crops", type=float, metavar="HEIGHTS", help="few-face crops, see crop_items")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.perturb is not None:
        perturb_detector_input(args.perturb)
    upscale = tuple(int(v) for v in args.upscale.split("x")) if args.upscale else None
    items = load_items(args.data, None if args.crops else upscale)
    if args.crops:
        items = crop_items(items, args.crops, upscale)
    detector = get_detector("centerface")
    found = [detector.detect(image) for _, image, _ in items]
    for spec in args.variant or [""]:
        old = apply_variant(spec)
        try:
            print(f"variant {spec or '(current code)'}", flush=True)
            result = evaluate(items, found, detector, args.style, args.verbose, not args.no_verify)
            print(json.dumps(result), flush=True)
            if args.cost:
                blur_cost(args.style)
        finally:
            restore(old)


if __name__ == "__main__":
    main()
