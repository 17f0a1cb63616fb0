"""Merging overlapping face boxes from several passes (tiles, scales, detectors) into one list."""

from __future__ import annotations

import numpy as np

from photoveil.imaging.faces import Face


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of two (N, 4) and (M, 4) arrays of x1, y1, x2, y2 boxes."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def merge_boxes(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.4) -> np.ndarray:
    """Greedy NMS that unions each kept box with the boxes it suppresses.

    Plain NMS would keep only the best-scoring box; for blurring, the union is safer: when two passes
    disagree on a face's extent, the blur covers both. Returns an (K, 5) array x1, y1, x2, y2, score.
    """
    if len(boxes) == 0:
        return np.empty((0, 5), np.float32)
    boxes = np.asarray(boxes, np.float32)
    scores = np.asarray(scores, np.float32)
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    ious = iou_matrix(boxes, boxes)
    alive = np.ones(len(boxes), bool)
    merged = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        group = alive & (ious[i] >= iou_threshold)
        group[i] = True
        alive &= ~group
        g = boxes[group]
        merged.append([g[:, 0].min(), g[:, 1].min(), g[:, 2].max(), g[:, 3].max(), scores[i]])
    return np.asarray(merged, np.float32)


def face_boxes(faces: list[Face]) -> np.ndarray:
    """An (N, 4) float32 array of the faces' x1, y1, x2, y2 (shape (0, 4) for no faces)."""
    return np.array([[f.x1, f.y1, f.x2, f.y2] for f in faces], np.float32).reshape(-1, 4)


def merge_faces(faces: list[Face], iou_threshold: float = 0.4) -> list[Face]:
    """merge_boxes for Face lists (used to union the results of two detectors)."""
    if not faces:
        return []
    scores = np.array([f.score for f in faces], np.float32)
    return [Face(*map(float, row)) for row in merge_boxes(face_boxes(faces), scores, iou_threshold)]
