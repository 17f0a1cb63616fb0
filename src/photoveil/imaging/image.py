"""Photo bytes in, an oriented BGR array out (and back to a metadata-free JPEG).

What it does and why:

* The format is sniffed from magic bytes only (never the file name or Content-Type). Accepted:
  JPEG, PNG, WebP, HEIC/HEIF. Anything else raises UnsupportedFormatError naming what it is.
* Every size is read from the header, so the pixel budget and the 16 px minimum are checked before a
  single pixel is decoded (a decompression bomb never allocates).
* A JPEG (8-bit YCbCr or grayscale, what phones and cameras write) never touches Pillow: one walk over
  its markers (``_jpeg_frame``) reads the frame header (SOFn: size, components) and checks that the
  entropy-coded data runs to an EOI marker (libjpeg inside OpenCV silently pads a truncated file with
  grey); then ``cv2.imdecode`` decodes it and applies its EXIF orientation (1-8) itself. Pillow and
  pillow-heif are imported only when a file needs them: a JPEG upload does not pay their start-up
  (docs/decisions/perf-cpu-per-photo.md).
* Everything else opens with Pillow first, lazily (header only: budget, minimum, mode, frames, EXIF):
  PNG, WebP, HEIC, CMYK/YCCK JPEGs (Pillow undoes Adobe's inverted CMYK), and any JPEG OpenCV's reader
  refuses (docs/decisions/0001-jpeg-decode-with-opencv.md, 0017-image-core-on-opencv.md). There the EXIF
  orientation is read by Pillow and applied to the array with OpenCV's turns. HEIF transforms
  (irot/imir) are applied by libheif itself and pillow-heif resets the EXIF tag to 1, so nothing is
  rotated twice. Either way the pixels, the detector boxes and the output share one frame.
* Transparent images are composited on white: that is what a viewer shows, and it drops whatever
  RGB hides under alpha = 0 (a hidden face would otherwise appear, unblurred, in the output).
* Animated PNG/WebP and multi-image HEIF are refused (AnimatedImageError): blurring one frame would
  silently change what the user uploaded (docs/decisions/0002-animated-images-refused.md). JPEGs with
  MPF extra images (phone depth/gain maps) are not animations: the primary image is used and the
  extras are dropped by re-encoding.
* ``encode_jpeg`` uses ``cv2.imencode``, which writes a bare JFIF stream: no EXIF (so no GPS and no
  embedded thumbnail, an unblurred copy of the photo), no XMP, no ICC profile.
"""

from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import cv2
import numpy as np

from photoveil.errors import (
    AnimatedImageError,
    CorruptImageError,
    EmptyFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_PIXELS = 50_000_000
MIN_SIDE = 16
ACCEPTED_FORMATS = ("jpeg", "png", "webp", "heif")
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "heif": "image/heic"}
_PIL_FORMATS = {"jpeg": ["JPEG"], "png": ["PNG"], "webp": ["WEBP"], "heif": ["HEIF"]}

# ISO-BMFF (ftyp) brands. HEVC-coded HEIF is what phones write; AVIF shares the container but is
# not accepted (not in settings.ALLOWED_CONTENT_TYPES), so it is named and refused.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"}
_GENERIC_HEIF_BRANDS = {b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}

# Anything Pillow (or pillow-heif) may raise for a file it cannot parse or decode. MemoryError and
# programming errors are deliberately not here.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error, IndexError)

# EXIF orientation (2-8) as the OpenCV calls that bring the stored pixels upright.
_TURNS = {
    2: lambda p: cv2.flip(p, 1),  # mirrored
    3: lambda p: cv2.rotate(p, cv2.ROTATE_180),
    4: lambda p: cv2.flip(p, 0),  # mirrored vertically
    5: cv2.transpose,
    6: lambda p: cv2.rotate(p, cv2.ROTATE_90_CLOCKWISE),
    7: lambda p: cv2.rotate(cv2.transpose(p), cv2.ROTATE_180),  # transverse
    8: lambda p: cv2.rotate(p, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """A decoded photo: ``pixels`` is BGR uint8 HxWx3 in the oriented frame (EXIF applied)."""

    pixels: np.ndarray
    format: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """The accepted format ("jpeg", "png", "webp", "heif") from magic bytes, else None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if _ftyp_kind(data) == "heif":
        return "heif"
    return None


def describe_format(data: bytes) -> str | None:
    """A human name for a file type PhotoVeil refuses (for error messages), else None."""
    head = data[:1024]
    kind = _ftyp_kind(data)
    if kind == "avif":
        return "AVIF"
    if kind == "video":
        return "a video (MP4/QuickTime)"
    for magic, name in (
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"II*\x00", "TIFF (or camera RAW)"),
        (b"MM\x00*", "TIFF (or camera RAW)"),
        (b"%PDF", "PDF"),
        (b"8BPS", "Photoshop PSD"),
        (b"\x00\x00\x01\x00", "ICO"),
        (b"\xff\x0a", "JPEG XL"),
        (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
        (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"BM", "BMP"),
    ):
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF":
        return "a RIFF file that is not WebP"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):
        return "SVG" if b"<svg" in text else "an XML/HTML document"
    return None


def _ftyp_kind(data: bytes) -> str | None:
    """Classify an ISO-BMFF file by its ftyp brands: "heif", "avif", "video" or None."""
    if data[4:8] != b"ftyp" or len(data) < 16:
        return None
    size = int.from_bytes(data[:4], "big")
    end = min(max(size, 16), len(data), 4096)
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
    if brands & _HEIF_BRANDS:
        return "heif"
    if brands & _AVIF_BRANDS:
        return "avif"
    if brands & _GENERIC_HEIF_BRANDS:
        return "heif"
    return "video"


@cache
def _register_heif() -> None:
    # Once per process, and only when a HEIF file actually arrives (keeps imports cheap).
    import pillow_heif

    pillow_heif.register_heif_opener()


def load_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode photo bytes into an oriented BGR array, refusing anything unsafe with an InputError."""
    fmt = _accepted_format(data)
    pixels = _load_jpeg_with_opencv(data, max_pixels) if fmt == "jpeg" else None
    if pixels is None:
        pixels = _load_with_pillow(data, fmt, max_pixels)
    return LoadedImage(pixels=pixels, format=fmt, width=pixels.shape[1], height=pixels.shape[0])


def _accepted_format(data: bytes) -> str:
    if not data:
        raise EmptyFileError("the file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        what = describe_format(data)
        accepted = "JPEG, PNG, WebP or HEIC"
        if what:
            raise UnsupportedFormatError(f"{what} is not supported: upload a {accepted} photo")
        raise UnsupportedFormatError(f"this is not a recognised image: upload a {accepted} photo")
    return fmt


def _label(fmt: str) -> str:
    return fmt.upper() if fmt != "heif" else "HEIC/HEIF"


def _damaged(fmt: str) -> str:
    return f"the {_label(fmt)} file is damaged or truncated and cannot be read"


def _check_size(width: int, height: int, max_pixels: int) -> None:
    """The pixel budget and the minimum side, from the header's size (before any pixel is decoded)."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} ({width * height / 1e6:.1f} megapixels); "
            f"the limit is {max_pixels / 1e6:g} megapixels"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageTooSmallError(
            f"the image is {width}x{height}; each side must be at least {MIN_SIDE} pixels"
        )


def _load_jpeg_with_opencv(data: bytes, max_pixels: int) -> np.ndarray | None:
    """Oriented BGR pixels of an 8-bit YCbCr or grayscale JPEG, decoded by OpenCV; None for what Pillow
    must open instead (CMYK/YCCK, other precisions, markers it cannot walk, what OpenCV refuses)."""
    frame = _jpeg_frame(data)
    if frame is None or not frame.is_plain:
        return None
    _check_size(frame.width, frame.height, max_pixels)
    if not frame.complete:
        raise CorruptImageError(_damaged("jpeg"))
    # IMREAD_COLOR applies the EXIF orientation (1-8; other values are ignored, as browsers do).
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        return None  # Pillow may still read it, slower; what it cannot read either is refused as damaged
    if sorted(pixels.shape[:2]) != sorted((frame.width, frame.height)):
        raise CorruptImageError(_damaged("jpeg"))
    return pixels


def _load_with_pillow(data: bytes, fmt: str, max_pixels: int) -> np.ndarray:
    """Oriented BGR pixels of anything but a plain JPEG: Pillow parses the header, then decodes."""
    from PIL import Image, ImageFile  # here: a JPEG upload never pays Pillow's import

    if fmt == "heif":
        _register_heif()
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Someone in this process switched Pillow to padding truncated files with grey: refuse to
        # decode rather than publish a photo whose lower part was never seen by the detector.
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must be False")
    try:
        im = Image.open(io.BytesIO(data), formats=_PIL_FORMATS[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"the image is too large to process ({exc})") from None
    except _DECODE_ERRORS as exc:
        raise CorruptImageError(_damaged(fmt)) from exc

    with im:
        _check_size(*im.size, max_pixels)
        frames = getattr(im, "n_frames", 1)
        if fmt != "jpeg" and frames > 1:
            raise AnimatedImageError(
                f"this {_label(fmt)} has {frames} frames (animated or multi-image); "
                "upload a single still photo"
            )
        try:
            if fmt == "jpeg" and im.mode in ("RGB", "L") and not _jpeg_is_complete(data):
                raise ValueError("JPEG data ends before its end-of-image marker")
            orientation = _exif_orientation(im)
            im.load()
            pixels = _pil_to_bgr(im)
        except _DECODE_ERRORS as exc:
            raise CorruptImageError(_damaged(fmt)) from exc
    return apply_orientation(pixels, orientation)


def _exif_orientation(im: Image.Image) -> int:
    value = im.getexif().get(0x0112, 1)  # 0x0112 = Orientation
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _imdecode(data: bytes) -> np.ndarray:
    """BGR pixels of a JPEG as stored, any EXIF orientation ignored (ours carry none).
    Raises ValueError when OpenCV cannot decode it."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise ValueError("cv2.imdecode could not decode the JPEG")
    return pixels


class _JpegFrame(NamedTuple):  # a tuple as struct unpacks it (and a quarter of a dataclass's set-up)
    """What a JPEG's frame header (SOFn) declares, and whether its scans run to an EOI marker."""

    precision: int  # bits per sample
    height: int
    width: int
    components: int  # 1 grayscale, 3 YCbCr (or RGB), 4 CMYK/YCCK
    complete: bool

    @property
    def is_plain(self) -> bool:
        """8-bit YCbCr or grayscale of a real size (a zero height means a DNL marker: Pillow refuses it)."""
        return self.precision == 8 and self.components in (1, 3) and self.width > 0 and self.height > 0


# SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC), which share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# In entropy-coded JPEG data 0xFF is always followed by 0x00 (stuffing), RSTn (D0-D7) or another
# 0xFF (fill); any other byte after 0xFF is a real marker.
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")


def _jpeg_frame(data: bytes) -> _JpegFrame | None:
    """The JPEG's frame header and whether its data runs to EOI (a truncated upload has none); None
    when its markers break off or repeat before one frame header is read (Pillow then judges it)."""
    n = len(data)
    pos = 2  # after SOI
    seen_scan = False
    header: tuple[int, int, int, int] | None = None
    while True:
        if seen_scan:
            match = _JPEG_MARKER.search(data, pos)
            if match is None:
                break
            pos = match.start()
        # Skip fill bytes before a marker.
        while pos < n and data[pos] == 0xFF and pos + 1 < n and data[pos + 1] == 0xFF:
            pos += 1
        if pos + 1 >= n or data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xD9:
            return _frame(header, complete=seen_scan)
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        if pos + 4 > n:
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > n:
            break
        if marker in _SOF_MARKERS and not seen_scan:
            if header is not None or length < 8:
                return None  # a second frame header, or a short one: not a JPEG to trust our reading of
            header = struct.unpack_from(">BHHB", data, pos + 4)
        pos += 2 + length
        if marker == 0xDA:
            seen_scan = True
    return _frame(header, complete=False)


def _frame(header: tuple[int, int, int, int] | None, *, complete: bool) -> _JpegFrame | None:
    return None if header is None else _JpegFrame(*header, complete=complete)


def _jpeg_is_complete(data: bytes) -> bool:
    """True when the JPEG's scans run to an EOI marker (a truncated upload has none)."""
    frame = _jpeg_frame(data)
    return frame is not None and frame.complete


def _pil_to_bgr(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> BGR uint8, scaling 16-bit down and compositing transparency on white."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale: Pillow's convert("L") clips at 255 instead of scaling, so scale here.
        wide = np.asarray(im)
        gray = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return _composite_on_white(rgba)
    if mode == "L":
        return cv2.cvtColor(np.asarray(im), cv2.COLOR_GRAY2BGR)
    if mode != "RGB":
        # P, 1, CMYK (Pillow already undoes Adobe's inverted CMYK).
        im = im.convert("RGB")
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[:, :, 3].astype(np.float32) / 255
    white = np.full((*rgba.shape[:2], 3), 255, np.uint8)
    rgb = cv2.blendLinear(np.ascontiguousarray(rgba[:, :, :3]), white, alpha, 1.0 - alpha)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF ``orientation`` (1-8) into the upright frame a viewer shows."""
    turn = _TURNS.get(orientation)
    return pixels if turn is None else turn(pixels)


def encode_jpeg(pixels: np.ndarray, quality: int = 85, *, restart_interval: int = 0) -> bytes:
    """Encode BGR uint8 pixels as a baseline JPEG with no metadata at all (no EXIF/XMP/ICC), with a
    restart marker every ``restart_interval`` MCUs when it is not 0 (see jpeg_rows)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1-100, got {quality}")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected BGR uint8 HxWx3 pixels, got {pixels.dtype} {pixels.shape}")
    # OpenCV's default chroma subsampling is 4:2:0, as phones and browsers write.
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality), cv2.IMWRITE_JPEG_RST_INTERVAL, int(restart_interval)]
    ok, buffer = cv2.imencode(".jpg", pixels, params)
    if not ok:
        raise RuntimeError("cv2.imencode failed to encode a JPEG")
    return buffer.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """BGR pixels of a JPEG we encoded ourselves (trusted: no sniffing, budget or orientation)."""
    try:
        return _imdecode(data)
    except ValueError as exc:
        raise RuntimeError(f"libjpeg failed to decode a JPEG we encoded: {exc}") from exc
