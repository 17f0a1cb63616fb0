"""A generated corpus of bad and odd uploads: every case is built here, in memory, from nothing.

Each case says what a user sends (bytes, the Content-Type the browser claims, a file name) and what
PhotoVeil must answer: a stable error code from ``photoveil.errors`` or ``"ok"`` (a valid image that must
end ``done`` as a clean JPEG). Cases marked ``level="pipeline"`` can only be judged by the worker (the
image core never sees the byte limit); every other case is judged by
``photoveil.imaging.image.load_image`` too.

Pure functions only: nothing is written to disk and nothing is committed. Building the whole corpus
takes well under a second.
"""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

OK = "ok"
JPEG, PNG, WEBP, HEIC = "image/jpeg", "image/png", "image/webp", "image/heic"
ALLOWED = (JPEG, PNG, WEBP, HEIC)  # what the presign API accepts as contentType


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    content_type: str  # what the client claims (the presign allowlist forces one of the image types)
    filename: str
    expected: str  # an error code from photoveil.errors, or OK
    size: tuple[int, int] | None = None  # (width, height) of the oriented output, for OK cases
    level: str = "core"  # "core": load_image can judge it; "pipeline": only the worker can
    why: str = ""

    def __repr__(self) -> str:  # pytest ids and failure messages: never dump megabytes of bytes
        return f"Case({self.name!r}, {len(self.data)} bytes, expected={self.expected!r})"


# --------------------------------------------------------------------------- base images


def base_image(width: int = 96, height: int = 72) -> Image.Image:
    """A deterministic RGB test card: gradients and shapes, so a blurred region visibly changes."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    pixels[..., 1] = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    pixels[..., 2] = (((x // 8) + (y // 8)) % 2 * 200 + 30).astype(np.uint8)  # a checkerboard: high detail
    return Image.fromarray(pixels, "RGB")


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _noise(width: int, height: int, seed: int = 7) -> Image.Image:
    """Incompressible pixels: truncating such a file cuts real image data, not padding."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


# --------------------------------------------------------------------------- hand-built containers


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with its length and CRC, as the spec lays it out."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bomb(width: int, height: int, *, rows: int = 64) -> bytes:
    """A PNG whose IHDR declares width x height (8-bit gray) with a tiny IDAT of a few zero rows.

    A decoder that trusts the header allocates width*height bytes before it notices the data is short;
    PhotoVeil must refuse from the header alone.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"\x00" * ((width + 1) * min(rows, height))  # filter byte + zero pixels per row
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw, 9))
        + png_chunk(b"IEND", b"")
    )


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each header segment up to SOS; ``end`` is exclusive."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG")
    out, pos = [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"bad marker at {pos}")
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        out.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            break
        pos += 2 + length
    return out


def jpeg_insert_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """Insert one marker segment right after SOI (and after APP0/JFIF, where viewers expect it)."""
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("segment payload too long")
    segments = jpeg_segments(data)
    at = segments[0][2] if segments and segments[0][0] == 0xE0 else 2
    return data[:at] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + data[at:]


def jpeg_with_dimensions(data: bytes, width: int, height: int) -> bytes:
    """Patch the SOF header of a real JPEG so it declares another size (the scan data is left alone)."""
    for marker, start, _end in jpeg_segments(data):
        if marker in (0xC0, 0xC1, 0xC2):
            # SOF payload: length(2) precision(1) height(2) width(2)
            head = start + 5
            return data[:head] + struct.pack(">HH", height, width) + data[head + 4 :]
    raise ValueError("no SOF segment")


def exif_with_orientation(value: int) -> bytes:
    """An APP1 Exif payload (with the "Exif\\0\\0" prefix) holding only an Orientation tag."""
    # Little-endian TIFF header, one IFD with one SHORT entry, no next IFD.
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, value & 0xFFFF, 0) + struct.pack("<I", 0)
    return b"Exif\x00\x00" + b"II*\x00" + struct.pack("<I", 8) + ifd


def webp_lossless_with_dimensions(width: int, height: int) -> bytes:
    """A tiny lossless WebP whose VP8L header is patched to declare width x height (max 16384 a side)."""
    small = _save(Image.new("RGB", (64, 64), (10, 20, 30)), "WEBP", lossless=True)
    at = small.index(b"VP8L") + 9  # chunk id(4) + size(4) + signature byte 0x2f(1)
    bits = int.from_bytes(small[at : at + 4], "little")
    # 14 bits width-1, 14 bits height-1, then alpha (1) and version (3): keep those.
    bits = (bits & ~((1 << 28) - 1)) | (width - 1) | ((height - 1) << 14)
    return small[:at] + bits.to_bytes(4, "little") + small[at + 4 :]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def _animated(fmt: str, frames: int = 3, **params: object) -> bytes:
    images = [base_image(48, 48).rotate(angle * 30) for angle in range(frames)]
    return _save(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0, **params)


def _heic(image: Image.Image) -> bytes:
    import pillow_heif  # imported here: registering the opener is a global side effect

    pillow_heif.register_heif_opener()
    return _save(image, "HEIF", quality=80)


# --------------------------------------------------------------------------- the corpus


HTML_PAYLOAD = b"<html><body><script>alert(document.cookie)</script></body></html>"


def _not_images() -> list[Case]:
    """Non-image bytes wearing an image name and Content-Type: never decoded, refused by magic bytes."""
    pdf = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    svg = (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b'<script>alert(1)</script><rect width="64" height="64" fill="red"/></svg>'
    )
    rnd = random.Random(42).randbytes(4096)
    return [
        Case("text_as_jpg", b"hello, this is not a photo\n" * 20, JPEG, "notes.jpg", "unsupported_format"),
        Case("html_as_jpg", HTML_PAYLOAD * 10, JPEG, "page.jpg", "unsupported_format"),
        Case("svg_as_jpg", svg, JPEG, "vector.jpg", "unsupported_format", why="SVG can carry script"),
        Case("pdf_as_jpg", pdf, JPEG, "doc.jpg", "unsupported_format"),
        Case("zip_as_jpg", _zip({"a.txt": b"x" * 1000}), JPEG, "archive.jpg", "unsupported_format"),
        Case("elf_as_png", b"\x7fELF\x02\x01\x01" + bytes(200), PNG, "binary.png", "unsupported_format"),
        Case("random_bytes", rnd, JPEG, "noise.jpg", "unsupported_format"),
        Case("one_byte", b"\xff", JPEG, "x.jpg", "unsupported_format"),
        Case(
            "utf8_bom_then_jpeg",
            b"\xef\xbb\xbf" + _save(base_image(), "JPEG"),
            JPEG,
            "bom.jpg",
            "unsupported_format",
            why="the magic must be at offset 0: no scanning for it",
        ),
    ]


def _other_image_formats() -> list[Case]:
    """Real images in formats PhotoVeil does not accept (the allowlist is JPEG, PNG, WebP, HEIC/HEIF)."""
    img = base_image()
    return [
        Case("gif_static_as_jpg", _save(img, "GIF"), JPEG, "still.jpg", "unsupported_format"),
        Case("bmp_as_jpg", _save(img, "BMP"), JPEG, "bitmap.jpg", "unsupported_format"),
        Case("tiff_as_jpg", _save(img, "TIFF"), JPEG, "scan.jpg", "unsupported_format"),
        Case("ico_as_png", _save(img, "ICO"), PNG, "favicon.png", "unsupported_format"),
        Case("psd_magic_as_jpg", b"8BPS\x00\x01" + bytes(100), JPEG, "layers.jpg", "unsupported_format"),
        Case("jxl_magic_as_jpg", b"\xff\x0a" + bytes(100), JPEG, "new.jpg", "unsupported_format"),
    ]


def _truncated_and_corrupt() -> list[Case]:
    """Files cut short or damaged: refused as corrupt, never half-published."""
    noise = _noise(128, 96)
    jpeg = _save(noise, "JPEG", quality=90)
    png = _save(noise, "PNG")
    webp = _save(noise, "WEBP", quality=90)
    heic = _heic(noise)
    png_bad_crc = bytearray(_save(base_image(), "PNG"))
    png_bad_crc[29] ^= 0xFF  # the IHDR CRC (signature 8 + length 4 + type 4 + data 13 = 29)
    return [
        Case("zero_bytes", b"", JPEG, "empty.jpg", "empty_file"),
        Case("jpeg_magic_only", b"\xff\xd8\xff", JPEG, "stub.jpg", "corrupt_image"),
        Case(
            "jpeg_headers_only",
            jpeg[: jpeg_segments(jpeg)[-1][2]],
            JPEG,
            "headers.jpg",
            "corrupt_image",
            why="every header up to SOS and no scan data at all",
        ),
        Case(
            "jpeg_truncated_half",
            jpeg[: len(jpeg) // 2],
            JPEG,
            "half.jpg",
            "corrupt_image",
            why="half the scan data: a grey lower half must not be published as the user's photo",
        ),
        Case("png_signature_only", PNG_SIGNATURE, PNG, "stub.png", "corrupt_image"),
        Case("png_truncated_half", png[: len(png) // 2], PNG, "half.png", "corrupt_image"),
        Case("png_bad_ihdr_crc", bytes(png_bad_crc), PNG, "crc.png", "corrupt_image"),
        Case(
            "png_zero_dimensions",
            PNG_SIGNATURE
            + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 2, 0, 0, 0))
            + png_chunk(b"IEND", b""),
            PNG,
            "zero.png",
            "corrupt_image",
        ),
        Case("webp_header_only", webp[:30], WEBP, "stub.webp", "corrupt_image"),
        Case("webp_truncated_half", webp[: len(webp) // 2], WEBP, "half.webp", "corrupt_image"),
        Case("heic_truncated_half", heic[: len(heic) // 2], HEIC, "half.heic", "corrupt_image"),
        Case("jpeg_sof_zero_size", jpeg_with_dimensions(jpeg, 0, 0), JPEG, "zero.jpg", "corrupt_image"),
    ]


def _bombs() -> list[Case]:
    """Headers that declare huge images: refused from the header, before any pixel is allocated."""
    jpeg = _save(base_image(64, 64), "JPEG")
    return [
        Case(
            "png_bomb_60000x60000",
            png_bomb(60000, 60000),
            PNG,
            "bomb.png",
            "image_too_large",
            why="3.6 GP declared; the file is a few KB",
        ),
        Case(
            "png_just_over_budget",
            png_bomb(7072, 7072),
            PNG,
            "big.png",
            "image_too_large",
            why="50.01 MP: one notch over the default 50 MP budget",
        ),
        Case(
            "jpeg_sof_65000x65000",
            jpeg_with_dimensions(jpeg, 65000, 65000),
            JPEG,
            "bomb.jpg",
            "image_too_large",
        ),
        Case(
            "webp_16384x16384",
            webp_lossless_with_dimensions(16384, 16384),
            WEBP,
            "bomb.webp",
            "image_too_large",
            why="268 MP declared in a 44-byte file",
        ),
    ]


def _animated_cases() -> list[Case]:
    return [
        Case(
            "gif_animated",
            _animated("GIF"),
            JPEG,
            "anim.jpg",
            "unsupported_format",
            why="GIF is not an accepted format at all, animated or not",
        ),
        Case("webp_animated", _animated("WEBP"), WEBP, "anim.webp", "animated_image"),
        Case(
            "png_apng",
            _animated("PNG"),
            PNG,
            "anim.png",
            "animated_image",
            why="an APNG's first frame is a valid PNG; publishing only it would surprise the user",
        ),
    ]


def _size_edges() -> list[Case]:
    return [
        Case("png_1x1", _save(base_image(1, 1), "PNG"), PNG, "dot.png", "image_too_small"),
        Case("jpeg_15x15", _save(base_image(15, 15), "JPEG"), JPEG, "tiny.jpg", "image_too_small"),
        Case(
            "png_15x400",
            _save(base_image(15, 400), "PNG"),
            PNG,
            "sliver.png",
            "image_too_small",
            why="the shorter side decides",
        ),
        Case("jpeg_16x16", _save(base_image(16, 16), "JPEG"), JPEG, "min.jpg", OK, size=(16, 16)),
        Case("png_16x1000", _save(base_image(16, 1000), "PNG"), PNG, "strip.png", OK, size=(16, 1000)),
    ]


def _valid_variants(base: Image.Image) -> list[Case]:
    """Valid images in every mode and depth a phone, scanner or editor produces: all must end done."""
    w, h = base.size
    gray = base.convert("L")
    rgba = base.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    la = gray.convert("LA")
    la.putalpha(128)
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    arr16 = (np.asarray(gray, np.uint16) * 257).astype(np.uint16)
    rgb16 = (np.asarray(base, np.uint16) * 257).astype(np.uint16)
    jpeg = _save(base, "JPEG", quality=90)
    heic = _heic(base)
    return [
        Case("jpeg_baseline", jpeg, JPEG, "photo.jpg", OK, size=(w, h)),
        Case("jpeg_progressive", _save(base, "JPEG", progressive=True), JPEG, "prog.jpg", OK, size=(w, h)),
        Case("jpeg_grayscale", _save(gray, "JPEG"), JPEG, "gray.jpg", OK, size=(w, h)),
        Case("jpeg_cmyk", _save(base.convert("CMYK"), "JPEG"), JPEG, "print.jpg", OK, size=(w, h)),
        Case("png_rgb", _save(base, "PNG"), PNG, "photo.png", OK, size=(w, h)),
        Case("png_gray8", _save(gray, "PNG"), PNG, "gray.png", OK, size=(w, h)),
        Case("png_gray16", _png16(arr16), PNG, "gray16.png", OK, size=(w, h)),
        Case("png_rgb16", _png16(rgb16), PNG, "rgb16.png", OK, size=(w, h)),
        Case("png_rgba", _save(rgba, "PNG"), PNG, "alpha.png", OK, size=(w, h)),
        Case("png_la", _save(la, "PNG"), PNG, "la.png", OK, size=(w, h)),
        Case("png_palette_trns", _save(palette, "PNG", transparency=0), PNG, "pal.png", OK, size=(w, h)),
        Case("png_1bit", _save(gray.convert("1"), "PNG"), PNG, "bw.png", OK, size=(w, h)),
        Case("webp_lossy", _save(base, "WEBP", quality=80), WEBP, "photo.webp", OK, size=(w, h)),
        Case("webp_lossless_alpha", _save(rgba, "WEBP", lossless=True), WEBP, "alpha.webp", OK, size=(w, h)),
        Case("heic", heic, HEIC, "photo.heic", OK, size=(w, h)),
        Case(
            "png_named_jpg",
            _save(base, "PNG"),
            JPEG,
            "liar.jpg",
            OK,
            size=(w, h),
            why="the real format comes from magic bytes, not the name or the claimed type",
        ),
    ]


def _png16(array: np.ndarray) -> bytes:
    """A 16-bit PNG (gray or RGB): Pillow cannot write 16-bit RGB, so encode by hand."""
    height, width = array.shape[:2]
    colour = 2 if array.ndim == 3 else 0
    rows = array.astype(">u2").reshape(height, -1).tobytes()
    stride = len(rows) // height
    raw = b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, colour, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )


def _metadata_and_polyglots(base: Image.Image) -> list[Case]:
    """Valid photos carrying junk, hostile payloads or odd metadata: blurred, and all of it dropped."""
    w, h = base.size
    jpeg = _save(base, "JPEG", quality=90)
    rotated_exif = Image.Exif()
    rotated_exif[0x0112] = 6  # "rotate 90 CW to display": the output must be h x w
    rng = random.Random(3)
    png_text = bytearray(_save(base, "PNG"))
    iend = png_text.rindex(b"IEND") - 4
    png_text[iend:iend] = png_chunk(b"tEXt", b"Comment\x00" + HTML_PAYLOAD)
    return [
        Case(
            "jpeg_plus_zip_polyglot",
            jpeg + _zip({"payload.html": HTML_PAYLOAD}),
            JPEG,
            "poly.jpg",
            OK,
            size=(w, h),
            why="a valid JPEG is re-encoded: the appended ZIP is dropped",
        ),
        Case(
            "jpeg_html_comment",
            jpeg_insert_segment(jpeg, 0xFE, HTML_PAYLOAD),
            JPEG,
            "gifar.jpg",
            OK,
            size=(w, h),
        ),
        Case("png_text_chunk_html", bytes(png_text), PNG, "text.png", OK, size=(w, h)),
        Case(
            "jpeg_huge_exif_junk",
            jpeg_insert_segment(jpeg, 0xE1, b"Exif\x00\x00" + rng.randbytes(60_000)),
            JPEG,
            "exif.jpg",
            OK,
            size=(w, h),
            why="unparseable EXIF is ignored, not fatal",
        ),
        Case(
            "jpeg_orientation_0",
            jpeg_insert_segment(jpeg, 0xE1, exif_with_orientation(0)),
            JPEG,
            "o0.jpg",
            OK,
            size=(w, h),
            why="bogus orientation values are treated as 1 (as browsers do)",
        ),
        Case(
            "jpeg_orientation_9",
            jpeg_insert_segment(jpeg, 0xE1, exif_with_orientation(9)),
            JPEG,
            "o9.jpg",
            OK,
            size=(w, h),
        ),
        Case(
            "jpeg_orientation_65535",
            jpeg_insert_segment(jpeg, 0xE1, exif_with_orientation(65535)),
            JPEG,
            "o65535.jpg",
            OK,
            size=(w, h),
        ),
        Case(
            "jpeg_orientation_6",
            _save(base, "JPEG", exif=rotated_exif.tobytes()),
            JPEG,
            "o6.jpg",
            OK,
            size=(h, w),
            why="control: a real orientation is applied, so width and height swap",
        ),
    ]


def _pipeline_only(max_upload_bytes: int) -> list[Case]:
    """Cases only the worker can judge: the image core never sees the byte limit."""
    jpeg = _save(base_image(), "JPEG")
    padding = max_upload_bytes + 1 - len(jpeg)
    return [
        Case(
            "over_byte_limit",
            jpeg + b"\x00" * padding,
            JPEG,
            "huge.jpg",
            "file_too_large",
            level="pipeline",
            why="a client that ignores the presign policy (moto does not enforce it; the worker must)",
        ),
    ]


def build_corpus(base: Image.Image | None = None, *, max_upload_bytes: int = 25 * 1024 * 1024) -> list[Case]:
    """Every case, in a stable order. ``base`` is the photo valid variants are made from (a face, ideally)."""
    return core_cases(base) + _pipeline_only(max_upload_bytes)


def core_cases(base: Image.Image | None = None) -> list[Case]:
    """The cases the image core can judge on its own (everything but the byte limit)."""
    base = (base or base_image()).convert("RGB")
    groups: list[Callable[[], list[Case]]] = [
        _not_images,
        _other_image_formats,
        _truncated_and_corrupt,
        _bombs,
        _animated_cases,
        _size_edges,
        lambda: _valid_variants(base),
        lambda: _metadata_and_polyglots(base),
    ]
    cases = [case for group in groups for case in group()]
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise AssertionError("duplicate case names")
    return cases


@dataclass(frozen=True)
class KeyCase:
    """An object key a policy-ignoring client writes under uploads/ (not ``uploads/{jobId}``)."""

    name: str
    key: str


def odd_keys(job_id: str = "0" * 32) -> list[KeyCase]:
    """Keys the worker must handle without crashing, looping or publishing anything."""
    return [
        KeyCase("space", "uploads/my photo.jpg"),
        KeyCase("plus", "uploads/a+b.jpg"),
        KeyCase("plus_and_space", "uploads/a+b c.jpg"),
        KeyCase("unicode", "uploads/fötö ✓ 📷.jpg"),
        KeyCase("dot_dot", "uploads/../p/evil.jpg"),
        KeyCase("dot_dot_job", f"uploads/../uploads/{job_id}"),
        KeyCase("percent", "uploads/100%25 real.jpg"),
        KeyCase("job_id_suffix", f"uploads/{job_id}.jpg"),
        KeyCase("job_id_upper", f"uploads/{job_id.upper()}"),
        KeyCase("nested", f"uploads/{job_id}/x"),
    ]
