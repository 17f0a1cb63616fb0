"""A published JPEG kept as rows, so that blurring again re-encodes only the rows that changed.

``encode_rows`` writes what ``image.encode_jpeg`` writes (OpenCV's baseline JPEG, 4:2:0, standard Huffman
tables, no metadata) with a restart marker after every row of MCUs (16 px). The entropy-coded data of a
row then depends on nothing but its own pixels (the DC predictions restart), so the rows of a band encoded
on its own are, byte for byte, those rows of the whole photo encoded at once. ``splice_rows`` uses that:
after the verify step blurs a few heads again, only their rows are encoded and put in place of the old
ones (tests/unit/test_jpeg_rows.py checks the result is the whole photo's encoding). ``decode_rows``
decodes a band of rows alone, for a look that reads only part of the photo: the rows come out as the
whole photo's decode has them, except the band's first and last pixel rows (the decoder smooths colour
with the row beyond), so one more row of MCUs is decoded at each end and left out. The markers cost
two bytes a row (~0.04 % of a 12 MP photo).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

from photoveil.imaging.image import decode_jpeg, encode_jpeg

MCU_HEIGHT = 16  # 4:2:0 chroma: an MCU is 16 x 16 px
MCU_WIDTH = 16
_RESTART = re.compile(rb"\xff[\xd0-\xd7]")  # RST0-7: in entropy-coded data 0xFF is otherwise stuffed
_START_OF_SCAN = b"\xff\xda"
_START_OF_FRAME = b"\xff\xc0"  # baseline, as OpenCV writes it
_END_OF_IMAGE = b"\xff\xd9"


def encode_rows(pixels: np.ndarray, quality: int = 85) -> bytes:
    """``encode_jpeg(pixels, quality)`` with a restart marker after each row of MCUs."""
    mcus_per_row = -(-pixels.shape[1] // MCU_WIDTH)
    return encode_jpeg(pixels, quality, restart_interval=mcus_per_row)


def splice_rows(
    jpeg: bytes, pixels: np.ndarray, spans: Iterable[tuple[int, int]], quality: int = 85
) -> bytes:
    """The JPEG ``encode_rows(pixels, quality)`` would write, given ``jpeg``, an ``encode_rows`` of pixels
    that differed only within the pixel rows ``spans`` ([y0, y1) pairs): those rows are encoded again and
    spliced in. A ``jpeg`` that is not cut in rows (no restart markers) is simply encoded again whole."""
    height = pixels.shape[0]
    header, rows = _cut(jpeg)
    if len(rows) != -(-height // MCU_HEIGHT):
        return encode_rows(pixels, quality)
    for first, last in _mcu_bands(spans, height):
        _, band = _cut(encode_rows(pixels[first * MCU_HEIGHT : last * MCU_HEIGHT], quality))
        rows[first:last] = band
    return _joined(header, rows)


def decode_rows(jpeg: bytes, y0: int, y1: int) -> tuple[int, np.ndarray]:
    """``(top, rows)``: pixel rows of an ``encode_rows`` JPEG, exactly as its whole decode has them, from
    ``top`` on and covering at least [y0, y1). A JPEG not cut in rows is decoded whole (top 0)."""
    header, rows = _cut(jpeg)
    frame = header.find(_START_OF_FRAME)
    height = int.from_bytes(header[frame + 5 : frame + 7], "big") if frame >= 0 else 0
    if frame < 0 or len(rows) != -(-height // MCU_HEIGHT):
        return 0, decode_jpeg(jpeg)
    first = max(0, y0 // MCU_HEIGHT - 1)
    last = min(len(rows), -(-y1 // MCU_HEIGHT) + 1)
    band_height = min(height, last * MCU_HEIGHT) - first * MCU_HEIGHT
    band_header = header[: frame + 5] + band_height.to_bytes(2, "big") + header[frame + 7 :]
    band = decode_jpeg(_joined(band_header, rows[first:last]))
    cut_top = MCU_HEIGHT if first > 0 else 0
    cut_bottom = MCU_HEIGHT if last < len(rows) else 0
    return first * MCU_HEIGHT + cut_top, band[cut_top : band.shape[0] - cut_bottom]


def _joined(header: bytes, rows: list[bytes]) -> bytes:
    """A JPEG of ``header`` and ``rows``' entropy-coded data, restart markers numbered from RST0."""
    body = b"".join(row + bytes((0xFF, 0xD0 + i % 8)) for i, row in enumerate(rows[:-1]))
    return header + body + rows[-1] + _END_OF_IMAGE


def _cut(jpeg: bytes) -> tuple[bytes, list[bytes]]:
    """The headers up to the end of the (single, baseline) scan's header, and its rows' entropy data."""
    scan = jpeg.index(_START_OF_SCAN)
    data_start = scan + 2 + int.from_bytes(jpeg[scan + 2 : scan + 4], "big")
    if not jpeg.endswith(_END_OF_IMAGE):
        raise ValueError("not a complete JPEG")
    return jpeg[:data_start], _RESTART.split(jpeg[data_start : -len(_END_OF_IMAGE)])


def _mcu_bands(spans: Iterable[tuple[int, int]], height: int) -> list[tuple[int, int]]:
    """Disjoint, sorted [first, last) MCU rows covering the pixel rows of ``spans``."""
    rows = np.zeros(-(-height // MCU_HEIGHT) + 1, bool)
    for y0, y1 in spans:
        y0, y1 = max(0, int(y0)), min(height, int(y1))
        if y1 > y0:
            rows[y0 // MCU_HEIGHT : -(-y1 // MCU_HEIGHT)] = True
    edges = np.flatnonzero(np.diff(np.concatenate(([False], rows))))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
