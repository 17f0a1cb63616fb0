"""CenterFace on real photos: finds real faces, misses none on the shared set, finds none once blurred."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from photoveil.errors import DetectorError
from photoveil.imaging.detectors import get_detector
from photoveil.imaging.detectors.centerface import CenterFaceConfig, CenterFaceDetector, ResizedCopies, _spans
from photoveil.imaging.detectors.nms import iou_matrix
from photoveil.imaging.faces import Face
from photoveil.imaging.geometry import face_regions
from photoveil.imaging.verify import VERIFY_THRESHOLD

# The astronaut's face, measured by hand on the 512x512 image (x1, y1, x2, y2).
ASTRONAUT_FACE = (160, 45, 235, 135)
CAMERA_FACE = (190, 110, 265, 200)  # the cameraman's face, likewise


def _boxes(faces: list[Face]) -> np.ndarray:
    return np.array([[f.x1, f.y1, f.x2, f.y2] for f in faces], np.float32).reshape(-1, 4)


def _covers(faces: list[Face], box: tuple[float, float, float, float], min_iou: float = 0.3) -> bool:
    return bool((iou_matrix(np.array([box], np.float32), _boxes(faces)) >= min_iou).any())


@pytest.fixture(scope="module")
def detector():
    return get_detector("centerface")


def test_get_detector_loads_the_model_once(detector) -> None:
    assert get_detector("centerface") is detector
    assert detector.name == "centerface"


def test_finds_the_astronauts_face(detector, astronaut_path: Path) -> None:
    image = cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)
    faces = detector.detect(image)
    assert _covers(faces, ASTRONAUT_FACE)
    best = max(faces, key=lambda f: f.score)
    assert best.score > 0.5
    assert _covers([best], ASTRONAUT_FACE)


def test_finds_the_face_in_a_grayscale_photo(detector, camera_path: Path) -> None:
    gray = cv2.imread(str(camera_path), cv2.IMREAD_GRAYSCALE)
    assert gray.ndim == 2
    faces = detector.detect(gray)
    assert _covers(faces, CAMERA_FACE, min_iou=0.2)
    assert all(0 <= f.x1 < f.x2 <= 512 and 0 <= f.y1 < f.y2 <= 512 for f in faces)


def test_boxes_follow_the_photo_when_it_is_rotated(detector, astronaut_path: Path) -> None:
    image = cv2.imread(str(astronaut_path), cv2.IMREAD_COLOR)
    rotated = cv2.rotate(image[:, :400], cv2.ROTATE_90_CLOCKWISE)  # 400x512 -> 512 wide, 400 tall
    x1, y1, x2, y2 = ASTRONAUT_FACE
    h = 512  # rows of the unrotated crop: (x, y) -> (h - 1 - y, x)
    assert _covers(detector.detect(rotated), (h - y2, x1, h - y1, x2))


def test_refuses_what_is_not_an_image(detector) -> None:
    with pytest.raises(DetectorError):
        detector.detect(np.zeros((10, 10, 3), np.float32))


def test_tiles_cover_the_photo_with_overlap() -> None:
    for length, tile, overlap in [(4032, 2000, 150), (1000, 1000, 50), (3001, 1024, 96), (700, 1024, 96)]:
        spans = _spans(length, tile, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == length
        for (a0, a1), (b0, _) in itertools.pairwise(spans):
            assert a1 - b0 >= overlap and b0 > a0
        assert all(end - start <= tile for start, end in spans) or spans == [(0, length)]


def test_a_crowd_is_several_small_faces_scoring_enough(detector) -> None:
    # 12 MP: small means under 3 % of the 4032 px side (121 px); three at crowd_min_score or more.
    small = np.array(
        [[x, 100, x + 60, 160, score] for x, score in ((0, 0.35), (100, 0.5), (200, 0.6))], np.float32
    )
    assert detector._looks_like_a_crowd(small, 4032)
    assert not detector._looks_like_a_crowd(small[:2], 4032)
    large = small + np.array([0, 0, 100, 100, 0], np.float32)  # 160 px tall: a group, not a crowd
    assert not detector._looks_like_a_crowd(large, 4032)
    strict = CenterFaceDetector(CenterFaceConfig(crowd_min_score=0.4), threads=1)
    assert not strict._looks_like_a_crowd(small, 4032)


def _shared_items(folder: Path) -> list[tuple[Path, np.ndarray]]:
    items = []
    for gt in sorted(folder.glob("*.faces.json")):
        image = gt.with_name(gt.name[: -len(".faces.json")] + ".jpg")
        if image.exists():
            items.append((image, np.array(json.loads(gt.read_text())["faces"], np.float32)))
    return items


def _found(gt: np.ndarray, faces: list[Face]) -> np.ndarray:
    det = _boxes(faces)
    if len(det) == 0:
        return np.zeros(len(gt), bool)
    return (iou_matrix(gt, det) >= 0.3).any(axis=1)


@pytest.mark.slow
def test_recall_on_the_shared_photos(detector, shared_faces_dir: Path) -> None:
    found = total = 0
    for path, gt in _shared_items(shared_faces_dir):
        faces = detector.detect(cv2.imread(str(path), cv2.IMREAD_COLOR))
        found += int(_found(gt, faces).sum())
        total += len(gt)
    assert total >= 150
    # Measured 0.96 (192/200) with this strict match (IoU >= 0.3 only) at the default settings; the
    # floor leaves room for OpenCV build differences, not for a regression in the detection plan.
    assert found / total >= 0.95


def _found_again(detector, path: Path, min_score: float) -> list[Face]:
    """Detections scoring >= min_score on the published JPEG that are one of the faces it blurred.

    Whole-photo detection at the default settings, as anyone re-running the detector would do; found
    again means IoU >= 0.3 with a blurred face's box, or the centre inside its blur region (a blurred
    head is found with a roomier box than the face). Matched here without photoveil.imaging.verify's code.
    """
    pipeline = pytest.importorskip("photoveil.imaging.pipeline")
    result = pipeline.blur_photo(path.read_bytes(), detector)
    assert result.faces, f"{path.name}: no face to start from"
    blurred = cv2.imdecode(np.frombuffer(result.jpeg, np.uint8), cv2.IMREAD_COLOR)
    after = [f for f in detector.detect(blurred) if f.score >= min_score]
    regions = face_regions(result.faces, result.width, result.height)
    return [
        f
        for f in after
        if _covers(result.faces, (f.x1, f.y1, f.x2, f.y2))
        or any(r.x1 <= (f.x1 + f.x2) / 2 < r.x2 and r.y1 <= (f.y1 + f.y2) / 2 < r.y2 for r in regions)
    ]


def test_a_blurred_photo_has_no_face_left(detector, astronaut_path: Path, camera_path: Path) -> None:
    for path in (astronaut_path, camera_path):
        assert not _found_again(detector, path, VERIFY_THRESHOLD), path.name


@pytest.mark.slow
def test_blurred_shared_photos_have_no_face_left(detector, shared_faces_dir: Path) -> None:
    # Before the verify step: 30 detections >= 0.2 over blurred faces (11 >= 0.3, max 0.485).
    left = {p.name: _found_again(detector, p, VERIFY_THRESHOLD) for p, _ in _shared_items(shared_faces_dir)}
    assert not any(left.values()), {name: faces for name, faces in left.items() if faces}


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=(
        "a blurred head is still a head to CenterFace: at its permissive default threshold (0.1) some "
        "blurred faces of the shared photos score 0.10-0.2 again (tools/redetect_eval.py: 60 detections, "
        "92 without the verify step; max 0.192, with the OpenCV core of issue 18). Verifying down to 0.1 "
        "left 3 after 8 rounds at collateral 0.131 > 0.12 (docs/decisions/0010-verify-threshold.md). "
        "Remove this marker when that is solved."
    ),
)
def test_blurred_shared_photos_have_no_face_left_at_the_default_threshold(
    detector, shared_faces_dir: Path
) -> None:
    for path, _ in _shared_items(shared_faces_dir):
        assert not _found_again(detector, path, detector.config.threshold), path.name


def test_downscale_by_halving_keeps_the_size_and_the_look(astronaut_path: Path) -> None:
    # The passes' copies start from one halving (2x2 box means) before their last step: the output
    # size asked, and on a real photo nearly the pixels of a one-step INTER_AREA; a shifted, flipped or
    # mis-sized result differs by tens of levels. Just short of a halving (x0.51), the halving's last
    # 2 % are enlarged.
    photo = cv2.resize(cv2.imread(str(astronaut_path)), (4031, 3023), interpolation=cv2.INTER_CUBIC)
    copies = ResizedCopies(photo)
    for scale in (1152 / 4031, 640 / 4031, 0.5, 0.51):
        out = copies.at(scale)
        size = (round(4031 * scale), round(3023 * scale))
        assert out.shape == (size[1], size[0], 3)
        one_step = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        assert np.abs(out.astype(int) - one_step).mean() < 3, scale


def test_the_centerface_path_does_not_import_boto(tmp_path: Path) -> None:
    # botocore costs ~0.15 s of start-up: the offline CLI default must not pay it.
    code = (
        "import sys\nfrom photoveil.imaging.detectors import get_detector\nget_detector('centerface')\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.split('.')[0] in ('boto3', 'botocore', 'aws_lambda_powertools')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("size", [(4032, 3024), (4000, 3000), (1001, 757)])
def test_resized_copies_kept_up_to_date_are_those_made_again(size: tuple[int, int]) -> None:
    """A look's copies, updated in bands where the photo changed, are the copies of the changed photo
    made from scratch, to the bit (the fine pass's area copy, the crowd pass's and the coarse one)."""
    from photoveil.imaging.detectors.centerface import ResizedCopies

    rng = np.random.default_rng(5)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), (0, 0), 2)
    scales = [1152 / max(size), 2048 / max(size), 640 / max(size), 0.5]
    copies = ResizedCopies(photo)
    before = [copies.at(s).copy() for s in scales]
    rects = [(100, 90, 333, 317), (size[0] - 150, size[1] - 120, size[0], size[1])]
    for x0, y0, x1, y1 in rects:
        photo[y0:y1, x0:x1] = 255 - photo[y0:y1, x0:x1]
    copies.changed(rects)
    fresh = ResizedCopies(photo.copy())
    for scale, old in zip(scales, before, strict=True):
        assert np.array_equal(copies.at(scale), fresh.at(scale)), scale
        assert not np.array_equal(copies.at(scale), old)


def test_resized_copies_limited_to_rows_are_exact_in_those_rows() -> None:
    from photoveil.imaging.detectors.centerface import RESIZE_REACH, ResizedCopies

    rng = np.random.default_rng(6)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (3024, 4032, 3), dtype=np.uint8), (0, 0), 2)
    rows = (700, 1900)
    limited, whole = ResizedCopies(photo, rows), ResizedCopies(photo)
    for scale in (1152 / 4032, 2048 / 4032, 640 / 4032):
        copy, ref = limited.at(scale), whole.at(scale)
        fy = copy.shape[0] / 3024
        top, bottom = math.ceil((rows[0] + RESIZE_REACH) * fy), math.floor((rows[1] - RESIZE_REACH) * fy)
        assert np.array_equal(copy[top:bottom], ref[top:bottom]), scale
        assert not copy[: max(1, int(rows[0] * fy) - 40)].any()  # rows above were never made
