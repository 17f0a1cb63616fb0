"""The verify step: what the detector still finds round a blurred face in the JPEG is blurred again."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from photoveil.errors import DetectorError
from photoveil.imaging import image, jpeg_rows, verify
from photoveil.imaging.blur import blur_faces
from photoveil.imaging.detectors import get_detector
from photoveil.imaging.detectors.centerface import _windows
from photoveil.imaging.detectors.nms import iou_matrix
from photoveil.imaging.faces import Face
from photoveil.imaging.image import decode_jpeg, encode_jpeg
from photoveil.imaging.jpeg_rows import encode_rows
from photoveil.imaging.pipeline import blur_photo

FACE = Face(100, 90, 160, 165, 0.9)
HEAD = Face(88, 70, 172, 180, 0.35)  # what a detector might see round FACE once it is blurred


class LookingDetector:
    """Fake: each detect_near call returns the next scripted detections; records what it was given."""

    name = "looking"

    def __init__(
        self, rounds: list[list[Face]], *, forever: list[Face] | None = None, whole: list[Face] | None = None
    ) -> None:
        self.rounds = list(rounds)
        self.forever = forever
        self.whole = whole or []  # what an exact (whole-photo) look finds
        self.looks: list[tuple[np.ndarray, list[Face]]] = []
        self.whole_looks = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        return [FACE]

    def detect_near(self, image: np.ndarray, near: list[Face], *, exact: bool = False) -> list[Face]:
        if exact:
            self.whole_looks += 1
            return list(self.whole)
        self.looks.append((image.copy(), list(near)))  # as it was then: the look's array is updated in place
        if self.rounds:
            return self.rounds.pop(0)
        return list(self.forever or [])


@pytest.fixture
def blurred() -> tuple[np.ndarray, bytes]:
    """A textured 400x300 photo with FACE blurred once, and its JPEG."""
    rng = np.random.default_rng(7)
    pixels = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 1.5)
    blur_faces(pixels, [FACE])
    return pixels, encode_rows(pixels)  # as the pipeline publishes it: cut in rows


def test_a_head_found_again_is_blurred_and_the_photo_encoded_again(blurred) -> None:
    pixels, jpeg = blurred
    before = pixels.copy()
    detector = LookingDetector([[HEAD], []])
    out, reblurred, residual = verify.reblur_until_clean(
        pixels, jpeg, [FACE], detector, style="gaussian", quality=85
    )
    assert reblurred == [HEAD] and residual == []
    assert out != jpeg and out[:3] == b"\xff\xd8\xff"
    # The first look saw the JPEG as published, round the face; the second, the JPEG encoded again,
    # round the head and the faces near enough for that change to reach them (here: FACE).
    first, second = detector.looks
    assert np.array_equal(first[0], decode_jpeg(jpeg)) and first[1] == [FACE]
    assert second[1] == [FACE, HEAD]
    assert np.array_equal(second[0], decode_jpeg(out))
    # Blurred again round the head (its edge, just outside the first region, changed most), and the
    # result is what was encoded; far away, nothing moved.
    changed = np.abs(pixels.astype(int) - before).sum(axis=2)
    assert changed[50:64, 110:150].mean() > 10  # above the first region, inside the second
    assert not changed[:, 260:].any() and not changed[230:, :].any()
    assert out == encode_rows(pixels)


def test_what_is_not_one_of_the_blurred_faces_is_left_alone(blurred) -> None:
    pixels, jpeg = blurred
    before = pixels.copy()
    elsewhere = Face(300, 200, 350, 260, 0.95)  # a face nowhere near FACE: not ours to blur again
    too_weak = Face(95, 80, 165, 170, verify.VERIFY_THRESHOLD - verify.WINDOW_TOLERANCE - 0.01)
    detector = LookingDetector([[elsewhere, too_weak]])
    out, reblurred, residual = verify.reblur_until_clean(
        pixels, jpeg, [FACE], detector, style="gaussian", quality=85
    )
    assert (out, reblurred, residual) == (jpeg, [], [])
    assert np.array_equal(pixels, before) and len(detector.looks) == 1 and detector.whole_looks == 0


def test_a_window_score_just_under_the_threshold_is_settled_by_the_whole_photo(blurred) -> None:
    # A window's context ends at its edge, so its score is a whole-photo pass's only to within
    # WINDOW_TOLERANCE: just under the threshold, the whole photo decides.
    pixels, jpeg = blurred
    just_under = Face(95, 80, 165, 170, verify.VERIFY_THRESHOLD - 0.01)
    whole_clean = LookingDetector([[just_under]], whole=[Face(95, 80, 165, 170, 0.19)])
    assert verify.reblur_until_clean(
        pixels.copy(), jpeg, [FACE], whole_clean, style="gaussian", quality=85
    ) == (
        jpeg,
        [],
        [],
    )
    assert whole_clean.whole_looks == 1
    over = Face(96, 81, 166, 171, verify.VERIFY_THRESHOLD + 0.01)
    whole_finds = LookingDetector([[just_under], []], whole=[over])
    out, reblurred, residual = verify.reblur_until_clean(
        pixels, jpeg, [FACE], whole_finds, style="gaussian", quality=85
    )
    assert reblurred == [over] and residual == [] and out != jpeg
    assert whole_finds.whole_looks == 1 and len(whole_finds.looks) == 2
    # ... also in a look that finds something else over it: the close call may be far from that, and
    # the next look is only round what changes.
    both = LookingDetector([[HEAD, just_under], []], whole=[HEAD, over])
    _, reblurred, residual = verify.reblur_until_clean(
        pixels.copy(), jpeg, [FACE], both, style="gaussian", quality=85
    )
    assert reblurred == [HEAD, over] and residual == [] and both.whole_looks == 1


def test_a_head_inside_the_blur_region_counts_even_with_little_overlap() -> None:
    # IoU with FACE well under 0.3, but its centre is in FACE's blur region.
    big_head = Face(40, 20, 230, 230, 0.5)
    assert (
        iou_matrix(np.array([[40, 20, 230, 230]], np.float32), np.array([[100, 90, 160, 165]], np.float32))[
            0, 0
        ]
        < 0.3
    )
    assert verify.found_again([big_head], [FACE], 400, 300) == [big_head]


def test_gives_up_after_max_rounds_and_says_what_is_left(blurred) -> None:
    pixels, jpeg = blurred
    detector = LookingDetector([], forever=[HEAD])
    _, reblurred, residual = verify.reblur_until_clean(
        pixels, jpeg, [FACE], detector, style="solid", quality=85
    )
    assert len(detector.looks) == verify.MAX_ROUNDS + 1
    assert reblurred == [HEAD] * verify.MAX_ROUNDS and residual == [HEAD]


def test_a_detector_that_cannot_look_again_changes_nothing(blurred) -> None:
    pixels, jpeg = blurred

    class Plain:
        name = "plain"

        def detect(self, image: np.ndarray) -> list[Face]:
            return [FACE]

    assert verify.reblur_until_clean(pixels, jpeg, [FACE], Plain(), style="gaussian", quality=85) == (
        jpeg,
        [],
        [],
    )


def test_a_failed_look_fails_the_photo(astronaut_path: Path) -> None:
    class FailsToLook(LookingDetector):
        def detect_near(self, image, near, *, exact=False):
            raise DetectorError("centerface failed: out of memory")

    # Fail closed: blur_photo returns nothing when the check of its own output could not run.
    with pytest.raises(DetectorError):
        blur_photo(astronaut_path.read_bytes(), FailsToLook([]))


def test_windows_are_on_the_grid_cover_their_boxes_and_are_joined_when_that_is_free() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        width, height = int(rng.integers(64, 1400)), int(rng.integers(64, 1400))
        n = int(rng.integers(1, 12))
        x1, y1 = rng.uniform(-20, width, n), rng.uniform(-20, height, n)
        boxes = np.stack([x1, y1, x1 + rng.uniform(1, 200, n), y1 + rng.uniform(1, 200, n)], axis=1)
        windows = _windows(boxes, width, height)
        for x0, y0, x1_, y1_ in windows:
            assert 0 <= x0 < x1_ <= width and 0 <= y0 < y1_ <= height
            assert x0 % 32 == 0 and y0 % 32 == 0
            assert x1_ % 32 == 0 or x1_ == width
            assert y1_ % 32 == 0 or y1_ == height

        def area(r):
            return (r[2] - r[0]) * (r[3] - r[1])

        for a in range(len(windows)):
            for b in range(a + 1, len(windows)):
                p, q = windows[a], windows[b]
                joined = (min(p[0], q[0]), min(p[1], q[1]), max(p[2], q[2]), max(p[3], q[3]))
                assert area(joined) > area(p) + area(q)  # else they would have been joined
        for bx1, by1, bx2, by2 in boxes:
            if bx2 <= 0 or by2 <= 0 or bx1 >= width or by1 >= height:
                continue
            pad = 0.5 * max(bx2 - bx1, by2 - by1)  # the windows' context: at least half a box size
            want = (max(0, bx1 - pad), max(0, by1 - pad), min(width, bx2 + pad), min(height, by2 + pad))
            assert any(
                w[0] <= want[0] and w[1] <= want[1] and want[2] <= w[2] and want[3] <= w[3] for w in windows
            )


@pytest.mark.parametrize("size", [(512, 512), (4032, 3024)])
def test_looking_near_the_faces_finds_what_a_whole_photo_pass_finds(astronaut_path: Path, size) -> None:
    # detect_near round the faces detect() found must find them again with the same boxes and scores
    # (same passes, same resized copies, windows on the same grid). The 512 px astronaut is enlarged
    # and tiled; in the 12 MP photo she is a 512 px inset, so the windows are a small part of it.
    detector = get_detector("centerface")
    astronaut = cv2.imread(str(astronaut_path))
    if size == (512, 512):
        photo = astronaut
    else:
        noise = np.random.default_rng(5).integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
        photo = cv2.resize(noise, size, interpolation=cv2.INTER_CUBIC)  # a faceless texture
        photo[2000:2512, 2800:3312] = astronaut
        scale = 1152 / 4032
        boxes = np.array([[f.x1, f.y1, f.x2, f.y2] for f in detector.detect(photo)]) * scale
        windows = _windows(boxes, 1152, 864)
        assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in windows) < 0.3 * 1152 * 864
    photo = decode_jpeg(encode_jpeg(photo))
    whole = detector.detect(photo)
    assert any(f.score > 0.5 for f in whole)
    near = detector.detect_near(photo, whole)
    for face in whole:
        if face.score < verify.VERIFY_THRESHOLD:
            continue
        iou = iou_matrix(
            np.array([[face.x1, face.y1, face.x2, face.y2]], np.float32),
            np.array([[f.x1, f.y1, f.x2, f.y2] for f in near], np.float32),
        )[0]
        match = near[int(iou.argmax())]
        assert iou.max() >= 0.8, face
        assert abs(match.score - face.score) <= verify.WINDOW_TOLERANCE, (face, match)
    # The exact look is the whole photo's, scores and all.
    assert detector.detect_near(photo, whole, exact=True) == whole


def test_a_look_says_whether_it_saw_the_whole_photo() -> None:
    """Look.whole: every pass covered the photo (a windowed look's close calls are then settled)."""
    detector = get_detector("centerface")
    photo = np.full((3024, 4032, 3), 128, np.uint8)
    small, large = Face(2000, 1500, 2100, 1620, 0.9), Face(300, 200, 3700, 2800, 0.9)
    assert not detector.detect_near(photo, [small]).whole
    assert detector.detect_near(photo, [large]).whole
    assert detector.detect_near(photo, [small], exact=True).whole
    # A row of twelve faces across a group photo: their windows cover under 60 % of it (still windows);
    # three such rows, most of it (one whole pass).
    row = [Face(300 + 320 * i, 1200, 520 + 320 * i, 1480, 0.9) for i in range(12)]
    assert not detector.detect_near(photo, row).whole
    rows = row + [Face(f.x1, f.y1 + dy, f.x2, f.y2 + dy, 0.9) for f in row for dy in (-900, 900)]
    assert detector.detect_near(photo, rows).whole


def test_blur_photo_can_skip_the_look(astronaut_path: Path) -> None:
    detector = LookingDetector([[HEAD]])
    result = blur_photo(astronaut_path.read_bytes(), detector, verify=False)
    assert detector.looks == [] and result.reblurred == [] and "verify" not in result.timings
    looked = blur_photo(astronaut_path.read_bytes(), LookingDetector([[HEAD], []]))
    assert looked.reblurred == [HEAD] and looked.jpeg != result.jpeg


def test_the_union_of_detectors_looks_again_with_its_in_process_member() -> None:
    from photoveil.imaging.detectors import UnionDetector

    looking, plain = LookingDetector([]), get_detector("centerface")
    union = UnionDetector("both", [plain, looking])
    assert union.detect_near == plain.detect_near
    assert union.rows_near == plain.rows_near and union.prepare == plain.prepare

    class Remote:
        name = "remote"

        def detect(self, image: np.ndarray) -> list[Face]:
            return []

    assert not hasattr(UnionDetector("both", [Remote()]), "detect_near")


def test_after_a_second_blur_only_faces_near_it_are_looked_at_again() -> None:
    rng = np.random.default_rng(11)
    pixels = cv2.GaussianBlur(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8), (0, 0), 1.5)
    far = Face(1700, 1200, 1760, 1275, 0.9)
    blur_faces(pixels, [FACE, far])
    detector = LookingDetector([[HEAD], []])
    verify.reblur_until_clean(
        pixels, encode_jpeg(pixels), [FACE, far], detector, style="gaussian", quality=85
    )
    assert [look[1] for look in detector.looks] == [[FACE, far], [FACE, HEAD]]


def test_republishing_round_what_changed_decodes_as_the_whole_photo_does(astronaut_path: Path) -> None:
    # After a face is blurred again, the look sees the published photo decoded: only the crops round
    # what changed are encoded and decoded again, and the result must be the whole JPEG's to the bit,
    # at the photo's edges too, at the qualities the service uses.
    from photoveil.imaging.geometry import face_regions

    rng = np.random.default_rng(11)
    photo = cv2.resize(cv2.imread(str(astronaut_path)), (1003, 757), interpolation=cv2.INTER_CUBIC)
    photo = cv2.add(photo, rng.integers(0, 12, photo.shape, dtype=np.uint8))  # sensor-like noise
    again = [Face(200, 150, 320, 290, 0.3), Face(930, 690, 1003, 757, 0.3), Face(0, 0, 40, 50, 0.3)]
    for quality in (85, 90):
        pixels = photo.copy()
        published = decode_jpeg(encode_jpeg(pixels, quality=quality))
        before = published.copy()
        blur_faces(pixels, again)
        verify._republish(published, pixels, face_regions(again, 1003, 757), quality)
        assert np.array_equal(published, decode_jpeg(encode_jpeg(pixels, quality=quality))), quality
        assert not np.array_equal(published, before)


def test_verify_encodes_only_what_it_blurred_again(blurred, monkeypatch) -> None:
    """Nothing encoded when nothing is found; after two rounds, crops and then the rows blurred again,
    never the whole photo: the JPEG's other rows are kept (jpeg_rows)."""
    pixels, jpeg = blurred
    encodes = []
    real = image.encode_jpeg

    def counting(pixels: np.ndarray, quality: int = 85, **options: int) -> bytes:
        encodes.append(pixels.shape)
        return real(pixels, quality, **options)

    monkeypatch.setattr(verify, "encode_jpeg", counting)
    monkeypatch.setattr(jpeg_rows, "encode_jpeg", counting)
    clean = verify.reblur_until_clean(
        pixels.copy(), jpeg, [FACE], LookingDetector([[]]), style="gaussian", quality=85
    )
    assert clean[0] == jpeg and encodes == []
    out, again, _ = verify.reblur_until_clean(
        pixels, jpeg, [FACE], LookingDetector([[HEAD], [HEAD], []]), style="gaussian", quality=85
    )
    assert again == [HEAD, HEAD] and encodes and pixels.shape not in encodes
    monkeypatch.undo()
    assert out == encode_rows(pixels)


class BandDetector(LookingDetector):
    """A LookingDetector that reads only the rows ``bands`` say, one band per look (rows_near), and
    records what its exact looks were given."""

    def __init__(
        self, rounds: list[list[Face]], bands: list[tuple[int, int]], whole: list[Face] | None = None
    ) -> None:
        super().__init__(rounds, whole=whole)
        self.bands = list(bands)
        self.exact_images: list[np.ndarray] = []

    def rows_near(self, shape: tuple[int, ...], near: list[Face]) -> tuple[int, int]:
        return self.bands.pop(0)

    def detect_near(self, image: np.ndarray, near: list[Face], *, exact: bool = False) -> list[Face]:
        if exact:
            self.exact_images.append(image.copy())
        return super().detect_near(image, near, exact=exact)


def test_a_look_that_reads_a_band_of_rows_gets_them_exact_and_no_more_decoded(blurred) -> None:
    pixels, jpeg = blurred
    detector = BandDetector([[HEAD], []], bands=[(64, 180), (0, 300)])
    out, _, _ = verify.reblur_until_clean(pixels, jpeg, [FACE], detector, style="gaussian", quality=85)
    (first, _), (second, _) = detector.looks
    published = decode_jpeg(jpeg)
    assert np.array_equal(first[64:180], published[64:180])
    assert not first[:32].any() and not first[240:].any()  # a band of rows, not the photo, was decoded
    # The next look reads every row: the whole JPEG, with the head blurred again, as finally published.
    assert np.array_equal(second, decode_jpeg(out))


def test_a_close_call_in_a_band_is_settled_on_the_whole_published_photo(blurred) -> None:
    pixels, jpeg = blurred
    close = Face(HEAD.x1, HEAD.y1, HEAD.x2, HEAD.y2, verify.VERIFY_THRESHOLD - 0.01)
    detector = BandDetector([[close]], bands=[(64, 180)], whole=[])
    out, reblurred, _ = verify.reblur_until_clean(
        pixels, jpeg, [FACE], detector, style="gaussian", quality=85
    )
    assert reblurred == [] and out == jpeg and detector.whole_looks == 1
    (exact,) = detector.exact_images
    assert np.array_equal(exact, decode_jpeg(jpeg))  # every row, not the band the first look read
