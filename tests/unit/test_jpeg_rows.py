"""A JPEG cut in rows: splicing re-encoded rows gives, byte for byte, the whole photo encoded again."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from photoveil.imaging.image import decode_jpeg, encode_jpeg
from photoveil.imaging.jpeg_rows import _mcu_bands, decode_rows, encode_rows, splice_rows

ASTRONAUT = Path(__file__).resolve().parents[1] / ".images" / "astronaut.png"


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A photo whose height is not a multiple of 16 (the last MCU row is partial), with sensor-like noise."""
    small = cv2.imread(str(ASTRONAUT), cv2.IMREAD_COLOR)
    big = cv2.resize(small, (1000, 714), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(3).normal(0, 4, big.shape)
    return np.clip(big + noise, 0, 255).astype(np.uint8)


def _changed(pixels: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    out = pixels.copy()
    for y0, y1 in spans:
        out[y0:y1, 100:400] = cv2.GaussianBlur(out[y0:y1, 100:400], (0, 0), 9)
    return out


@pytest.mark.parametrize(
    "spans",
    [[(40, 90)], [(0, 16)], [(700, 714)], [(33, 47), (300, 420), (690, 714)], [(50, 120), (100, 200)]],
)
def test_splicing_the_rows_that_changed_is_encoding_the_whole_photo(photo: np.ndarray, spans) -> None:
    before = encode_rows(photo)
    after = _changed(photo, spans)
    spliced = splice_rows(before, after, spans)
    assert spliced == encode_rows(after)
    assert spliced != before


def test_rows_left_out_of_the_spans_keep_their_old_bytes(photo: np.ndarray) -> None:
    """Splicing trusts the spans: rows outside them are not encoded again (what makes it cheap)."""
    before = encode_rows(photo)
    after = _changed(photo, [(200, 260)])
    spliced = splice_rows(before, after, [(0, 16)])
    assert spliced != encode_rows(after)
    assert np.array_equal(decode_jpeg(spliced)[:16], decode_jpeg(encode_rows(after))[:16])


def test_a_jpeg_not_cut_in_rows_is_encoded_again_whole(photo: np.ndarray) -> None:
    after = _changed(photo, [(40, 90)])
    assert splice_rows(encode_jpeg(photo), after, [(40, 90)]) == encode_rows(after)


def test_restart_markers_change_no_pixel(photo: np.ndarray) -> None:
    rows = encode_rows(photo)
    assert np.array_equal(decode_jpeg(rows), decode_jpeg(encode_jpeg(photo)))
    assert 0 < len(rows) - len(encode_jpeg(photo)) < 2 * 3 * (714 // 16 + 1)  # ~2 bytes a row


def test_spans_become_disjoint_clipped_mcu_bands() -> None:
    assert _mcu_bands([(40, 90), (85, 100), (300, 301), (-5, 3), (700, 900), (10, 10)], 714) == [
        (0, 1),
        (2, 7),
        (18, 19),
        (43, 45),
    ]


@pytest.mark.parametrize(("y0", "y1"), [(0, 16), (40, 90), (300, 301), (650, 714), (0, 714), (17, 31)])
def test_a_band_of_rows_decodes_as_the_whole_photo_does(photo: np.ndarray, y0: int, y1: int) -> None:
    jpeg = encode_rows(photo)
    top, rows = decode_rows(jpeg, y0, y1)
    assert top <= y0 and top + rows.shape[0] >= y1
    assert np.array_equal(rows, decode_jpeg(jpeg)[top : top + rows.shape[0]])


def test_a_band_of_a_jpeg_not_cut_in_rows_is_the_whole_photo(photo: np.ndarray) -> None:
    jpeg = encode_jpeg(photo)
    top, rows = decode_rows(jpeg, 40, 90)
    assert top == 0 and np.array_equal(rows, decode_jpeg(jpeg))
