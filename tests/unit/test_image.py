"""photoveil.imaging.image: format sniffing, decoding every accepted kind of photo, refusals, orientation."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageFile, ImageOps

from photoveil.errors import (
    AnimatedImageError,
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    InputError,
    UnsupportedFormatError,
)
from photoveil.imaging import image
from photoveil.imaging.image import apply_orientation, encode_jpeg, load_image, sniff_format

pillow_heif.register_heif_opener()  # so the tests can WRITE HEIC; load_image registers on its own

# Pillow transpose that turns an upright image into the stored one for EXIF orientation o
# (the inverse of what a viewer applies).
TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def bgr(im: Image.Image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(im.convert("RGB")), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def astronaut(astronaut_path: Path) -> Image.Image:
    return Image.open(astronaut_path).convert("RGB")


@pytest.fixture(scope="module")
def asymmetric(astronaut: Image.Image) -> Image.Image:
    """A 240x160 upright picture that looks different under every flip and rotation."""
    canvas = Image.new("RGB", (240, 160), (30, 120, 200))
    canvas.paste(astronaut.resize((96, 96)), (20, 12))
    canvas.paste(Image.new("RGB", (40, 20), (250, 250, 0)), (180, 120))
    return canvas


def stored_for(upright: Image.Image, orientation: int) -> Image.Image:
    method = TO_STORED[orientation]
    return upright if method is None else upright.transpose(method)  # FLIP_LEFT_RIGHT is 0: no truthiness


def exif_with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# --- sniffing -------------------------------------------------------------------------------


def test_sniff_accepted_formats(astronaut: Image.Image) -> None:
    assert sniff_format(encode(astronaut, "JPEG")) == "jpeg"
    assert sniff_format(encode(astronaut, "PNG")) == "png"
    assert sniff_format(encode(astronaut, "WEBP")) == "webp"
    assert sniff_format(encode(astronaut, "HEIF")) == "heif"


def test_sniff_ignores_everything_but_the_bytes(astronaut: Image.Image) -> None:
    assert sniff_format(encode(astronaut, "GIF")) is None
    assert sniff_format(encode(astronaut, "AVIF")) is None  # same container as HEIC, not accepted
    assert sniff_format(b"") is None
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None


# --- every accepted format decodes to the same upright BGR pixels -----------------------------


@pytest.mark.parametrize(
    ("fmt", "params", "tolerance"),
    [
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("JPEG", {"quality": 95}, 12),
        ("JPEG", {"quality": 95, "progressive": True}, 12),
        ("HEIF", {"quality": 95}, 16),
    ],
)
def test_accepted_formats_decode_to_bgr(
    astronaut: Image.Image, fmt: str, params: dict, tolerance: int
) -> None:
    loaded = load_image(encode(astronaut, fmt, **params))
    expected = bgr(astronaut)
    assert loaded.format == {"WEBP": "webp", "PNG": "png", "JPEG": "jpeg", "HEIF": "heif"}[fmt]
    assert loaded.pixels.dtype == np.uint8
    assert loaded.pixels.shape == (512, 512, 3)
    assert (loaded.width, loaded.height) == (512, 512)
    assert loaded.pixels.flags.c_contiguous
    diff = np.abs(loaded.pixels.astype(int) - expected.astype(int))
    assert diff.mean() <= max(tolerance / 4, 0)  # BGR order: a channel swap would be off by ~100
    assert np.percentile(diff, 99) <= tolerance * 3


def test_grayscale_jpeg_becomes_three_equal_channels(astronaut: Image.Image) -> None:
    px = load_image(encode(astronaut.convert("L"), "JPEG")).pixels
    assert px.shape == (512, 512, 3)
    assert np.array_equal(px[:, :, 0], px[:, :, 1]) and np.array_equal(px[:, :, 1], px[:, :, 2])


def test_cmyk_jpeg_including_adobe_inverted_is_converted() -> None:
    # Pillow writes CMYK JPEGs the Adobe way (APP14 marker, inverted channels).
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=95)
    assert b"Adobe" in data
    px = load_image(data).pixels
    assert px.shape == (48, 64, 3)
    b, g, r = (int(v) for v in px[24, 32])
    assert r > 240 and g < 15 and b < 15  # pure red, not inverted cyan


def test_16_bit_grayscale_png_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    ok, png = cv2.imencode(".png", ramp)
    assert ok
    px = load_image(png.tobytes()).pixels
    assert np.array_equal(px[:, :, 0], (ramp >> 8).astype(np.uint8))


def test_16_bit_rgb_png_keeps_its_colours() -> None:
    wide = np.zeros((32, 48, 3), np.uint16)
    wide[:, :, 2] = 50_000  # red in BGR order
    wide[:, :, 0] = 10_000
    ok, png = cv2.imencode(".png", wide)
    assert ok
    px = load_image(png.tobytes()).pixels
    assert np.abs(px[5, 5].astype(int) - [10_000 >> 8, 0, 50_000 >> 8]).max() <= 1


def test_alpha_is_composited_on_white_and_hidden_pixels_are_dropped() -> None:
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[:, :, :3] = (0, 0, 255)  # red (RGB order here) everywhere, even where invisible
    rgba[:, :10, 3] = 0  # fully transparent: must come out white, not red
    rgba[:, 10:20, 3] = 255
    rgba[:, 20:, 3] = 128
    png = encode(Image.fromarray(rgba, "RGBA"), "PNG")
    px = load_image(png).pixels
    assert px[0, 0].tolist() == [255, 255, 255]
    assert px[0, 15].tolist() == [255, 0, 0]  # BGR of RGB (0, 0, 255): blue
    assert np.abs(px[0, 25].astype(int) - [255, 127, 127]).max() <= 1


@pytest.mark.parametrize("mode", ["LA", "P", "1", "L"])
def test_other_modes_decode(astronaut: Image.Image, mode: str) -> None:
    im = astronaut.convert("L").convert(mode) if mode != "P" else astronaut.convert("P")
    px = load_image(encode(im, "PNG")).pixels
    assert px.shape == (512, 512, 3)
    expected = bgr(im.convert("RGBA").convert("RGB"))
    assert np.array_equal(px, expected)


def test_multi_picture_jpeg_is_a_photo_not_an_animation(astronaut: Image.Image) -> None:
    # Phones store depth/gain maps as extra MPF pictures; the primary image is the photo.
    data = encode(astronaut, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 64))])
    loaded = load_image(data)
    assert loaded.format == "jpeg"
    assert loaded.pixels.shape == (512, 512, 3)


# --- EXIF orientation ------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_orientation_is_applied_exactly(asymmetric: Image.Image, orientation: int) -> None:
    stored = stored_for(asymmetric, orientation)
    data = encode(stored, "PNG", exif=exif_with_orientation(orientation))
    loaded = load_image(data)
    assert np.array_equal(loaded.pixels, bgr(asymmetric))
    # and agrees with Pillow's own reference implementation
    assert np.array_equal(loaded.pixels, bgr(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_is_applied(asymmetric: Image.Image, orientation: int) -> None:
    stored = stored_for(asymmetric, orientation)
    data = encode(stored, "JPEG", quality=95, exif=exif_with_orientation(orientation))
    loaded = load_image(data)
    assert (loaded.width, loaded.height) == (240, 160)
    assert np.abs(loaded.pixels.astype(int) - bgr(asymmetric).astype(int)).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_is_the_explicit_turn_to_the_bit(asymmetric: Image.Image, orientation: int) -> None:
    # OpenCV applies the EXIF orientation as it decodes a JPEG; it must give exactly the pixels of
    # decoding the stored picture and turning it with apply_orientation (what the Pillow path does).
    data = encode(
        stored_for(asymmetric, orientation), "JPEG", quality=95, exif=exif_with_orientation(orientation)
    )
    stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert np.array_equal(load_image(data).pixels, apply_orientation(stored, orientation))


XMP = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta xmlns:x='adobe:ns:meta/'/>"


def exif_segment(orientation: int, byte_order: bytes = b"II") -> bytes:
    """An APP1 Exif payload written by hand: one IFD holding only the Orientation tag."""
    end = "<" if byte_order == b"II" else ">"
    entry = struct.pack(end + "HHIHH", 0x0112, 3, 1, orientation, 0)  # SHORT, count 1, value, padding
    ifd = struct.pack(end + "H", 1) + entry + struct.pack(end + "I", 0)
    return b"Exif\x00\x00" + byte_order + struct.pack(end + "HI", 42, 8) + ifd


def with_app1(jpeg: bytes, *payloads: bytes) -> bytes:
    """The JPEG with APP1 segments inserted right after SOI, in this order."""
    segments = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads)
    return jpeg[:2] + segments + jpeg[2:]


@pytest.mark.parametrize("layout", ["little-endian", "big-endian", "after an XMP segment"])
def test_jpeg_orientation_is_found_in_every_exif_layout(asymmetric: Image.Image, layout: str) -> None:
    plain = encode(stored_for(asymmetric, 6), "JPEG", quality=95)
    exif = exif_segment(6, b"MM" if layout == "big-endian" else b"II")
    data = with_app1(plain, XMP, exif) if layout == "after an XMP segment" else with_app1(plain, exif)
    loaded = load_image(data)
    assert (loaded.width, loaded.height) == (240, 160)
    assert np.abs(loaded.pixels.astype(int) - bgr(asymmetric).astype(int)).mean() < 3
    assert np.array_equal(loaded.pixels, bgr(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))))


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_jpeg_bogus_orientation_values_are_ignored(asymmetric: Image.Image, value: int) -> None:
    plain = encode(asymmetric, "JPEG", quality=95)
    assert np.array_equal(load_image(with_app1(plain, exif_segment(value))).pixels, load_image(plain).pixels)


def test_heic_orientation_is_applied_once(asymmetric: Image.Image) -> None:
    # HEIF rotates with an irot box (libheif applies it; the EXIF tag must then be ignored, or the
    # photo would turn twice). pillow-heif writes irot from EXIF found in im.info.
    stored = stored_for(asymmetric, 6)
    stored.info["exif"] = exif_with_orientation(6).tobytes()
    data = encode(stored, "HEIF", quality=95)
    assert b"irot" in data
    loaded = load_image(data)
    assert (loaded.width, loaded.height) == (240, 160)
    assert np.abs(loaded.pixels.astype(int) - bgr(asymmetric).astype(int)).mean() < 6


def test_invalid_orientation_value_is_ignored(asymmetric: Image.Image) -> None:
    data = encode(asymmetric, "PNG", exif=exif_with_orientation(9))
    assert np.array_equal(load_image(data).pixels, bgr(asymmetric))


# --- refusals --------------------------------------------------------------------------------


def test_empty_file_is_refused() -> None:
    with pytest.raises(EmptyFileError, match="empty"):
        load_image(b"")


@pytest.mark.parametrize(
    ("data_factory", "named"),
    [
        (lambda im: encode(im, "GIF"), "GIF"),
        (lambda im: encode(im, "BMP"), "BMP"),
        (lambda im: encode(im, "TIFF"), "TIFF"),
        (lambda im: encode(im, "PDF"), "PDF"),
        (lambda im: encode(im, "AVIF"), "AVIF"),
        (lambda im: b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (lambda im: b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", "video"),
        (lambda im: b"PK\x03\x04" + bytes(100), "ZIP"),
    ],
)
def test_known_unsupported_formats_are_named(astronaut: Image.Image, data_factory, named: str) -> None:
    with pytest.raises(UnsupportedFormatError, match=named) as info:
        load_image(data_factory(astronaut.resize((64, 64))))
    assert "JPEG, PNG, WebP or HEIC" in info.value.message
    assert info.value.permanent


def test_unknown_bytes_are_not_an_image() -> None:
    with pytest.raises(UnsupportedFormatError, match="not a recognised image"):
        load_image(b"hello, this is a text file, not a photo\n" * 10)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95, -2])
def test_truncated_jpeg_is_refused(astronaut: Image.Image, keep: float) -> None:
    # cv2.imdecode alone would return a grey-padded image here: the EOI check must catch it.
    data = encode(astronaut, "JPEG", quality=90)
    cut = data[: int(len(data) * keep)] if keep > 0 else data[:keep]
    with pytest.raises(CorruptImageError, match="damaged or truncated"):
        load_image(cut)


def test_truncated_progressive_jpeg_is_refused(astronaut: Image.Image) -> None:
    data = encode(astronaut, "JPEG", quality=90, progressive=True)
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) * 3 // 4])


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"quality": 90}), ("HEIF", {})])
def test_truncated_other_formats_are_refused(astronaut: Image.Image, fmt: str, params: dict) -> None:
    data = encode(astronaut, fmt, **params)
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) // 2])


def test_garbage_after_a_jpeg_signature_is_corrupt() -> None:
    with pytest.raises(CorruptImageError):
        load_image(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)


def test_jpeg_with_trailing_bytes_after_eoi_is_fine(astronaut: Image.Image) -> None:
    data = encode(astronaut, "JPEG") + b"\x00" * 64 + b"trailer written by some camera"
    assert load_image(data).pixels.shape == (512, 512, 3)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is a few bytes: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def _jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the SOF0 frame size of a baseline JPEG (header-only bomb)."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


@pytest.mark.parametrize(("width", "height"), [(8000, 7000), (60000, 60000)])
def test_png_over_the_pixel_budget_is_refused_from_its_header(width: int, height: int) -> None:
    # 60000x60000 would need ~10 GB if decoded; the refusal must come from the header alone.
    with pytest.raises(ImageTooLargeError, match=r"too large|limit"):
        load_image(_png_header_only(width, height))


@pytest.mark.parametrize(("width", "height"), [(8000, 7000), (30000, 30000)])
def test_jpeg_over_the_pixel_budget_is_refused_from_its_header(
    astronaut: Image.Image, width: int, height: int
) -> None:
    data = _jpeg_with_size(encode(astronaut, "JPEG"), width, height)
    with pytest.raises(ImageTooLargeError):
        load_image(data)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any pixel is decoded, by OpenCV or by Pillow."""

    def decoded(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(image.cv2, "imdecode", decoded)
    monkeypatch.setattr(ImageFile.ImageFile, "load", decoded)  # what decodes an opened file


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_bomb_is_refused_from_its_frame_header_before_decoding(
    astronaut: Image.Image, no_decoding: None, mode: str, progressive: bool
) -> None:
    data = encode(astronaut.convert(mode), "JPEG", progressive=progressive)
    sof = data.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    bomb = data[: sof + 5] + struct.pack(">HH", 30000, 30000) + data[sof + 9 :]
    with pytest.raises(
        ImageTooLargeError, match=r"30000x30000 \(900.0 megapixels\); the limit is 50 megapixels"
    ):
        load_image(bomb)
    with pytest.raises(ImageTooLargeError, match=r"the limit is 0\.2 megapixels"):
        load_image(data, max_pixels=200_000)  # the real 512x512 over a smaller budget
    with pytest.raises(ImageTooLargeError):
        load_image(bomb[: len(bomb) // 2])  # truncated too: the budget is judged first, as for any format


def test_tiny_jpeg_is_refused_from_its_frame_header_before_decoding(no_decoding: None) -> None:
    with pytest.raises(ImageTooSmallError, match="100x15; each side must be at least 16 pixels"):
        load_image(encode(Image.new("RGB", (100, 15), "gray"), "JPEG"))


def test_cmyk_jpeg_bomb_is_refused_by_the_pillow_path_before_decoding(no_decoding: None) -> None:
    data = encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")
    with pytest.raises(ImageTooLargeError, match="9000x7000"):
        load_image(_jpeg_with_size(data, 9000, 7000))


def test_pixel_budget_is_configurable(astronaut: Image.Image) -> None:
    data = encode(astronaut, "PNG")
    with pytest.raises(ImageTooLargeError, match=r"512x512.*limit is 0.2 megapixels"):
        load_image(data, max_pixels=200_000)
    assert load_image(data, max_pixels=512 * 512).width == 512


@pytest.mark.parametrize(("size", "ok"), [((15, 100), False), ((100, 15), False), ((16, 16), True)])
def test_minimum_side_is_16_pixels(size: tuple[int, int], ok: bool) -> None:
    data = encode(Image.new("RGB", size, "gray"), "PNG")
    if ok:
        assert load_image(data).pixels.shape == (size[1], size[0], 3)
    else:
        with pytest.raises(ImageTooSmallError, match="at least 16 pixels"):
            load_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
def test_animated_and_multi_image_files_are_refused(fmt: str) -> None:
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "blue", "green")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:])
    with pytest.raises(AnimatedImageError, match="3 frames"):
        load_image(data)


def test_every_refusal_is_a_permanent_input_error() -> None:
    for exc in (
        EmptyFileError,
        UnsupportedFormatError,
        CorruptImageError,
        AnimatedImageError,
        ImageTooLargeError,
        ImageTooSmallError,
    ):
        assert issubclass(exc, InputError) and exc.permanent


# --- encoding --------------------------------------------------------------------------------


def jpeg_markers(data: bytes) -> list[int]:
    """Marker bytes of the segments before the first scan (SOS), in order."""
    assert data[:2] == b"\xff\xd8"
    markers, pos = [], 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            return markers
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


def test_encode_jpeg_writes_no_metadata_and_keeps_resolution(astronaut: Image.Image) -> None:
    pixels = bgr(astronaut)
    data = encode_jpeg(pixels)
    markers = jpeg_markers(data)
    assert 0xE1 not in markers and 0xE2 not in markers and 0xFE not in markers  # EXIF/XMP, ICC, COM
    assert all(m == 0xE0 or not 0xE1 <= m <= 0xEF for m in markers)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == pixels.shape
    assert np.abs(decoded.astype(int) - pixels.astype(int)).mean() < 3


def test_encode_jpeg_quality_changes_size(astronaut: Image.Image) -> None:
    pixels = bgr(astronaut)
    assert len(encode_jpeg(pixels, quality=40)) < len(encode_jpeg(pixels, quality=95))
    with pytest.raises(ValueError, match="quality"):
        encode_jpeg(pixels, quality=0)
    with pytest.raises(ValueError, match="BGR uint8"):
        encode_jpeg(pixels[:, :, 0])


def test_a_jpeg_opencv_refuses_is_decoded_by_pillow(astronaut: Image.Image, monkeypatch) -> None:
    # A JPEG OpenCV's reader refuses (cv2.imdecode returns None) that Pillow reads is still a photo.
    from photoveil.imaging import image

    data = encode(astronaut, "JPEG", quality=95)
    expected = load_image(data).pixels

    def refuses(data: bytes, flags: int) -> None:
        return None

    monkeypatch.setattr(image.cv2, "imdecode", refuses)
    pixels = load_image(data).pixels
    assert pixels.shape == expected.shape and np.abs(pixels.astype(int) - expected).mean() < 1


def test_a_jpeg_upload_does_not_import_pillow(asymmetric: Image.Image, tmp_path: Path) -> None:
    # Pillow's import costs every process that reads a photo ~15-25 ms of CPU; a JPEG needs none of it.
    # A fresh process imports what `photoveil blur` and the worker's image core do, then loads a JPEG
    # (with an EXIF orientation, so OpenCV's own turn is used); a PNG, which needs Pillow, is the control.
    jpeg = tmp_path / "photo.jpg"
    jpeg.write_bytes(encode(stored_for(asymmetric, 6), "JPEG", exif=exif_with_orientation(6)))
    png = tmp_path / "photo.png"
    png.write_bytes(encode(asymmetric, "PNG"))
    child = (
        "import sys\n"
        "import photoveil.cli, photoveil.imaging.pipeline, photoveil.imaging.detectors.centerface\n"
        "from photoveil.imaging.image import load_image\n"
        "with open(sys.argv[1], 'rb') as photo:\n"
        "    loaded = load_image(photo.read())\n"
        "pillow = sorted(m for m in sys.modules if m.split('.')[0] in ('PIL', 'pillow_heif'))\n"
        "print(loaded.width, loaded.height, *pillow)\n"
    )

    def imported(path: Path) -> list[str]:
        run = subprocess.run(
            [sys.executable, "-c", child, str(path)], capture_output=True, text=True, check=True
        )
        return run.stdout.split()

    assert imported(jpeg) == ["240", "160"]
    assert imported(png)[:3] == ["240", "160", "PIL"]
