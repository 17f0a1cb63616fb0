"""The few array operations the image core needs, on BGR uint8 photos, without OpenCV.

JPEGs are decoded and encoded by libjpeg-turbo through simplejpeg (straight to and from numpy, the
pixels OpenCV's codec gives); halving and box resizing are Pillow's; bilinear resizing, the Gaussian
blur and turns are NumPy's, with OpenCV's geometry. Dropping OpenCV takes ~87 MB out of the worker's
package (docs/decisions/0016-image-core-without-opencv.md).

Pillow resizes every channel alike, so BGR arrays go through it as if they were RGB. A JPEG decoded
only to be resampled is kept 4 bytes a pixel (BGRX) and handed out as its BGR view: Pillow wraps that
buffer without a copy, where an HxWx3 array costs it a 12 MP copy (~30 ms).
Arrays that come back from Pillow (``reduce``, and ``resize`` when shrinking) are read-only.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import simplejpeg
from PIL import Image

Resampling = Literal["area", "linear", "nearest"]
# Sources up to this many pixels are enlarged by matrix products (see _linear).
SMALL_SOURCE = 64 * 64


def decode_jpeg(data: bytes, *, padded: bool = False) -> np.ndarray:
    """BGR pixels of a JPEG, contiguous; ``padded``: a BGR view of a BGRX buffer, for pixels that are
    only resampled (the detector's copies), never blurred: NumPy's arithmetic on such a view runs
    several times slower (see the module docstring).

    Not strict: the caller checks a JPEG it did not write for truncation (image._jpeg_is_complete).
    Raises ValueError when libjpeg cannot decode it.
    """
    if padded:
        return simplejpeg.decode_jpeg(data, "BGRX", strict=False)[:, :, :3]
    return simplejpeg.decode_jpeg(data, "BGR", strict=False)


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """A baseline JFIF stream, 4:2:0 (OpenCV's default), with no metadata at all."""
    return simplejpeg.encode_jpeg(np.ascontiguousarray(pixels), int(quality), "BGR", "420")


def resize(pixels: np.ndarray, width: int, height: int, method: Resampling = "area") -> np.ndarray:
    """``pixels`` (HxW or HxWx3 uint8) resized to ``width`` x ``height``, as OpenCV's cv2.resize would.

    "area" averages what each output pixel covers (for shrinking), "linear" interpolates between the
    four nearest pixels (for enlarging), "nearest" repeats (for pixelating).
    """
    if method == "linear":
        return _linear(pixels, width, height)
    if method == "nearest":
        # OpenCV's INTER_NEAREST: output pixel i takes input pixel floor(i * in / out).
        rows = np.arange(height) * pixels.shape[0] // height
        cols = np.arange(width) * pixels.shape[1] // width
        return pixels[rows[:, None], cols]
    image = _as_image(pixels)
    # Halving (a 2x2 box mean) while the target is at most half the size is several times cheaper than
    # resize's general filter, and OpenCV's INTER_AREA gives the same pixels for it.
    while 2 * width <= image.width and 2 * height <= image.height:
        image = image.reduce(2)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BOX)
    return _as_array(image)


def _linear(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    # Not Pillow's bilinear: it rounds up a sixth of a level on average, a bias that moved CenterFace's
    # low scores enough to change what it finds (docs/decisions/0016).
    if pixels.shape[0] * pixels.shape[1] <= SMALL_SOURCE:
        return _linear_small(pixels, width, height)
    flat = pixels if pixels.ndim == 3 else pixels[:, :, None]
    rows, columns, channels = flat.shape
    left, right, fx = _linear_taps(columns, width)
    top, bottom, fy = _linear_taps(rows, height)
    fx, fy = np.rint(fx * 256).astype(np.uint16), np.rint(fy * 256).astype(np.uint32)[:, None]
    # In 8-bit fixed point (16-bit along the rows, 32-bit down the columns): ~3x faster than float.
    # Pixels are gathered as opaque 3-byte items, whole.
    items = np.ascontiguousarray(flat).view(np.dtype((np.void, channels))).reshape(rows, columns)
    weight = np.repeat(fx, channels)
    across = np.take(items, left, axis=1).view(np.uint8).reshape(rows, -1) * (256 - weight)
    across += np.take(items, right, axis=1).view(np.uint8).reshape(rows, -1) * weight
    out = across[top].astype(np.uint32)
    out *= 256 - fy
    out += across[bottom] * fy
    out += 1 << 15
    out >>= 16
    return out.astype(np.uint8).reshape((height, width, *pixels.shape[2:]))


def _linear_small(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """The blur's downscaled copies: two products with the (dense) weight matrices, ~7x faster than
    gathering rows and columns at the output's size."""
    rows, columns = pixels.shape[:2]
    return _separable(pixels, _linear_weights(columns, width), _linear_weights(rows, height))


def _linear_weights(size: int, out: int) -> np.ndarray:
    """The (out, size) matrix that resamples a line of ``size`` pixels to ``out`` (see _linear_taps)."""
    low, high, weight = _linear_taps(size, out)
    matrix = np.zeros((out, size), np.float32)
    lines = np.arange(out)
    np.add.at(matrix, (lines, low), 1 - weight)
    np.add.at(matrix, (lines, high), weight)
    return matrix


def _linear_taps(size: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two source pixels of each output pixel and the second one's weight: pixel centres aligned,
    edges repeated (OpenCV's INTER_LINEAR geometry)."""
    position = np.clip((np.arange(out) + 0.5) * (size / out) - 0.5, 0, size - 1)
    low = np.floor(position).astype(np.intp)
    return low, np.minimum(low + 1, size - 1), (position - low).astype(np.float32)


def reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """The mean of each ``factor`` x ``factor`` block (a last partial block: of what it holds)."""
    return _as_array(_as_image(pixels).reduce(factor))


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of standard deviation ``sigma`` px, edges extended: OpenCV's GaussianBlur with
    BORDER_REPLICATE and its kernel for 8-bit images (3 sigma each side), in float and rounded.

    For the small, downscaled copies the blur works on (blur.py): a true Gaussian, which Pillow's three
    box blurs only approximate, keeps the strength measured in docs/decisions/0004 and 0005. One matrix
    product per axis: for small images only (the matrices are side x side).
    """
    rows, columns = pixels.shape[:2]
    return _separable(pixels, _gaussian_matrix(columns, sigma), _gaussian_matrix(rows, sigma))


def _separable(pixels: np.ndarray, along_rows: np.ndarray, along_columns: np.ndarray) -> np.ndarray:
    """``pixels`` (HxW or HxWxC uint8) with the (W', W) matrix applied along every row and the (H', H)
    one down every column, in float, rounded: a weighted mean of 0-255 values stays in 0-255."""
    source = pixels.astype(np.float32)
    if source.ndim == 2:
        source = source[:, :, None]
    rows, columns, channels = source.shape
    width, height = along_rows.shape[0], along_columns.shape[0]
    across = along_rows @ source.transpose(1, 0, 2).reshape(columns, -1)
    across = across.reshape(width, rows, channels).transpose(1, 0, 2).reshape(rows, -1)
    out = (along_columns @ across).reshape(height, width, channels)
    np.rint(out, out=out)
    return out.astype(np.uint8).reshape((height, width, *pixels.shape[2:]))


def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """The (size, size) matrix of a Gaussian along a line of ``size`` pixels, its ends repeated outwards."""
    radius = (round(sigma * 6 + 1) | 1) // 2
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma * sigma)).astype(np.float32)
    kernel /= kernel.sum()
    lines = np.arange(size)[:, None]
    taps = np.clip(lines + offsets, 0, size - 1)
    matrix = np.zeros((size, size), np.float32)
    np.add.at(matrix, (lines, taps), np.broadcast_to(kernel, taps.shape))
    return matrix


def to_bgr(pixels: np.ndarray) -> np.ndarray:
    """Grayscale (HxW) or BGRA (HxWx4) uint8 as BGR HxWx3; BGR is returned as it is."""
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return np.ascontiguousarray(pixels[:, :, :3])
    return pixels


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF ``orientation`` (1-8) into the upright frame a viewer shows."""
    turn = {
        2: lambda p: p[:, ::-1],  # mirrored
        3: lambda p: p[::-1, ::-1],  # 180
        4: lambda p: p[::-1],  # mirrored vertically
        5: lambda p: p.swapaxes(0, 1),  # transposed
        6: lambda p: np.rot90(p, -1),  # 90 clockwise
        7: lambda p: p.swapaxes(0, 1)[::-1, ::-1],  # transverse
        8: lambda p: np.rot90(p, 1),  # 90 counter-clockwise
    }.get(orientation)
    if turn is None:
        return pixels
    if pixels.ndim != 3 or not pixels.flags.c_contiguous:
        return np.ascontiguousarray(turn(pixels))
    # Each pixel as one opaque item: NumPy moves those ~2x faster than its channels (37 vs 67 ms at 12 MP).
    items = pixels.view(np.dtype((np.void, pixels.shape[2]))).reshape(pixels.shape[:2])
    turned = np.ascontiguousarray(turn(items))
    return turned.view(np.uint8).reshape(*turned.shape, pixels.shape[2])


def _padded(pixels: np.ndarray) -> np.ndarray | None:
    """The whole BGRX buffer ``pixels`` is the BGR view of, else None."""
    base = pixels.base
    if (
        isinstance(base, np.ndarray)
        and pixels.ndim == 3
        and pixels.shape[2] == 3
        and base.shape == (*pixels.shape[:2], 4)
        and base.dtype == np.uint8
        and base.flags.c_contiguous
        and pixels.ctypes.data == base.ctypes.data
    ):
        return base
    return None


def _as_image(pixels: np.ndarray) -> Image.Image:
    padded = _padded(pixels)
    if padded is None:
        return Image.fromarray(pixels)
    height, width = pixels.shape[:2]
    return Image.frombuffer("RGBX", (width, height), padded, "raw", "RGBX", 0, 1)


def _as_array(image: Image.Image) -> np.ndarray:
    pixels = np.asarray(image)
    return pixels[:, :, :3] if image.mode == "RGBX" else pixels
