"""photoveil.imaging.pipeline.blur_photo: decode -> detect -> blur -> encode, oriented, metadata-free,
fail closed."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from photoveil.errors import CorruptImageError, DetectorError
from photoveil.imaging.faces import Face
from photoveil.imaging.jpeg_rows import encode_rows
from photoveil.imaging.pipeline import blur_photo

ASTRONAUT_FACE = Face(170, 40, 270, 160, 0.99)  # in astronaut.png
TO_STORED = {  # upright -> stored transpose for each EXIF orientation
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


class FixedDetector:
    """A fake detector: returns the faces it was given and remembers what it was shown."""

    name = "fixed"

    def __init__(self, faces: list[Face]) -> None:
        self.faces = faces
        self.seen: list[np.ndarray] = []

    def detect(self, image: np.ndarray) -> list[Face]:
        self.seen.append(image.copy())
        return list(self.faces)


class BrokenDetector:
    name = "broken"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def detect(self, image: np.ndarray) -> list[Face]:
        raise self.error


def decode(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)


def png_bytes(im: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG", **params)
    return buf.getvalue()


@pytest.fixture(scope="module")
def astronaut(astronaut_path: Path) -> Image.Image:
    return Image.open(astronaut_path).convert("RGB")


@pytest.fixture(scope="module")
def canvas(astronaut: Image.Image) -> tuple[Image.Image, Face]:
    """A 400x260 upright photo: the astronaut's head, small, near the top-left, and where it is."""
    head = astronaut.crop((150, 20, 290, 180)).resize((70, 80))
    # Smooth (JPEG-friendly) but asymmetric background: red grows to the right, blue downwards,
    # so any wrong flip or rotation shows everywhere.
    ys, xs = np.mgrid[0:260, 0:400]
    rgb = np.stack([xs * 200 // 400 + 30, np.full_like(xs, 120), ys * 200 // 260 + 30], axis=2)
    im = Image.fromarray(rgb.astype(np.uint8))
    im.paste(head, (40, 30))
    return im, Face(50, 40, 100, 100, 0.95)


def test_result_shape_and_stage_timings(astronaut: Image.Image) -> None:
    detector = FixedDetector([ASTRONAUT_FACE])
    result = blur_photo(png_bytes(astronaut), detector)
    assert result.jpeg[:3] == b"\xff\xd8\xff"
    assert (result.width, result.height) == (512, 512)
    assert result.faces == [ASTRONAUT_FACE]
    assert result.format == "png"
    assert set(result.timings) == {"decode", "detect", "blur", "encode", "verify"}
    assert result.reblurred == [] and result.residual == []  # a FixedDetector cannot look again
    assert all(v >= 0 for v in result.timings.values())
    # the detector saw the decoded, oriented, unblurred BGR photo
    (seen,) = detector.seen
    assert seen.shape == (512, 512, 3) and seen.dtype == np.uint8
    expected = cv2.cvtColor(np.asarray(astronaut), cv2.COLOR_RGB2BGR)
    assert np.array_equal(seen, expected)


def test_face_blurred_background_kept(astronaut: Image.Image) -> None:
    original = cv2.cvtColor(np.asarray(astronaut), cv2.COLOR_RGB2BGR)
    out = decode(blur_photo(png_bytes(astronaut), FixedDetector([ASTRONAUT_FACE])).jpeg)
    face = (slice(70, 130), slice(195, 245))
    assert np.abs(out[face].astype(int) - original[face].astype(int)).mean() > 15
    background = (slice(300, 500), slice(0, 150))  # far from any mask: only JPEG noise
    assert np.abs(out[background].astype(int) - original[background].astype(int)).mean() < 4


def test_no_faces_means_only_jpeg_noise(astronaut: Image.Image) -> None:
    original = cv2.cvtColor(np.asarray(astronaut), cv2.COLOR_RGB2BGR)
    out = blur_photo(png_bytes(astronaut), FixedDetector([]), quality=95).jpeg
    assert out == encode_rows(original, quality=95)  # the pixels as they came, encoded once
    assert np.abs(decode(out).astype(int) - original.astype(int)).mean() < 2.5


@pytest.mark.parametrize("orientation", range(1, 9))
def test_face_in_a_rotated_photo_is_blurred_where_it_really_is(
    canvas: tuple[Image.Image, Face], orientation: int
) -> None:
    upright, face = canvas
    method = TO_STORED[orientation]
    stored = upright if method is None else upright.transpose(method)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif)
    # The fake detector knows where the face is in the UPRIGHT frame, like a real one would.
    result = blur_photo(buf.getvalue(), FixedDetector([face]))
    out = decode(result.jpeg)
    reference = cv2.cvtColor(np.asarray(upright), cv2.COLOR_RGB2BGR).astype(int)
    assert out.shape == reference.shape  # 260x400 whatever the stored orientation
    inside = (slice(55, 90), slice(60, 90))
    far = (slice(150, 260), slice(200, 400))
    assert np.abs(out[inside] - reference[inside]).mean() > 15  # the face itself is blurred
    assert np.abs(out[far] - reference[far]).mean() < 5  # and the rest is the upright photo


def test_metadata_thumbnail_and_gps_never_reach_the_output(astronaut: Image.Image) -> None:
    data = jpeg_with_exif_gps_thumbnail_xmp_icc(astronaut)
    # the input really carries all of it (else the test proves nothing)
    assert {0xE1, 0xE2, 0xFE} <= set(jpeg_markers(data))
    app1 = b"".join(segment for marker, segment in jpeg_segments(data) if marker == 0xE1)
    assert b"GPS" in app1 or b"\x88\x25" in app1 or b"\x25\x88" in app1
    assert b"\xff\xd8\xff" in app1  # the embedded thumbnail (an unblurred copy of the photo)
    assert b"http://ns.adobe.com/xap/1.0/" in app1

    out = blur_photo(data, FixedDetector([ASTRONAUT_FACE])).jpeg
    markers = jpeg_markers(out)
    assert not any(0xE1 <= m <= 0xEF for m in markers), f"APPn segments left: {markers}"
    assert 0xFE not in markers
    assert b"Exif" not in out and b"ICC_PROFILE" not in out and b"ns.adobe.com" not in out
    assert out.count(b"\xff\xd8") == 1  # no second (thumbnail) image inside


@pytest.mark.parametrize(
    "error", [DetectorError("Rekognition throttled"), RuntimeError("bug in a detector"), MemoryError()]
)
def test_detector_failure_propagates_and_nothing_is_encoded(astronaut: Image.Image, error: Exception) -> None:
    with pytest.raises(type(error)):
        blur_photo(png_bytes(astronaut), BrokenDetector(error))


def test_bad_input_is_refused_before_detection(astronaut: Image.Image) -> None:
    detector = FixedDetector([])
    data = png_bytes(astronaut)
    with pytest.raises(CorruptImageError):
        blur_photo(data[: len(data) // 2], detector)
    assert detector.seen == []


def test_unknown_style_is_refused_before_any_work(astronaut: Image.Image) -> None:
    detector = FixedDetector([])
    with pytest.raises(ValueError, match="unknown blur style"):
        blur_photo(png_bytes(astronaut), detector, style="swirl")
    assert detector.seen == []


def test_real_detector_finds_the_face_in_a_rotated_photo_and_not_after_blurring(
    astronaut: Image.Image,
) -> None:
    detectors = pytest.importorskip("photoveil.imaging.detectors")
    centerface = detectors.get_detector("centerface")
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    astronaut.transpose(TO_STORED[6]).save(buf, "JPEG", quality=95, exif=exif)
    result = blur_photo(buf.getvalue(), centerface)
    assert result.faces, "CenterFace found no face in the astronaut photo"
    best = max(result.faces, key=lambda f: f.score)
    # found in the upright frame, where the face really is
    assert 150 < (best.x1 + best.x2) / 2 < 290 and 30 < (best.y1 + best.y2) / 2 < 190
    again = centerface.detect(decode(result.jpeg))
    assert not [f for f in again if f.score >= 0.5 and _overlaps(f, best)]


def _overlaps(a: Face, b: Face) -> bool:
    return min(a.x2, b.x2) > max(a.x1, b.x1) and min(a.y2, b.y2) > max(a.y1, b.y1)


# --- a JPEG carrying everything that must not survive ------------------------------------------


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    segments, pos = [], 2
    while True:
        marker = data[pos + 1]
        if marker == 0xDA:
            return segments
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segments.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length


def jpeg_markers(data: bytes) -> list[int]:
    return [marker for marker, _ in jpeg_segments(data)]


def _tiff_exif_with_gps_and_thumbnail(thumbnail: bytes) -> bytes:
    """Little-endian TIFF: IFD0 (Make, GPS pointer) -> IFD1 (thumbnail); GPS IFD with a latitude."""

    def ifd(entries: list[tuple[int, int, int, bytes]], next_ifd: int) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            out += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\x00")
        return out + struct.pack("<I", next_ifd)

    make = b"Cam\x00"
    ifd0_at = 8
    ifd0_len = 2 + 2 * 12 + 4
    gps_at = ifd0_at + ifd0_len
    gps_len = 2 + 2 * 12 + 4
    lat_at = gps_at + gps_len
    lat = struct.pack("<6I", 51, 1, 30, 1, 0, 1)
    ifd1_at = lat_at + len(lat)
    ifd1_len = 2 + 2 * 12 + 4
    thumb_at = ifd1_at + ifd1_len
    ifd0 = ifd([(0x010F, 2, 4, make), (0x8825, 4, 1, struct.pack("<I", gps_at))], ifd1_at)
    gps = ifd([(0x0001, 2, 2, b"N\x00"), (0x0002, 5, 3, struct.pack("<I", lat_at))], 0)
    ifd1 = ifd(
        [(0x0201, 4, 1, struct.pack("<I", thumb_at)), (0x0202, 4, 1, struct.pack("<I", len(thumbnail)))], 0
    )
    return b"II*\x00" + struct.pack("<I", ifd0_at) + ifd0 + gps + lat + ifd1 + thumbnail


def jpeg_with_exif_gps_thumbnail_xmp_icc(im: Image.Image) -> bytes:
    thumb = io.BytesIO()
    im.resize((96, 96)).save(thumb, "JPEG", quality=70)
    exif = b"Exif\x00\x00" + _tiff_exif_with_gps_and_thumbnail(thumb.getvalue())
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    icc = _tiny_icc()
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90, exif=exif, xmp=xmp, icc_profile=icc, comment=b"shot at home")
    return buf.getvalue()


def _tiny_icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
