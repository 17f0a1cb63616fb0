"""The fixed sizes every published photo is also offered in: the API names them, photoveil.imaging.variants
makes them. Nominal (landscape) sizes, largest first; a portrait photo gets each box turned."""

from __future__ import annotations

VARIANT_SIZES = ((800, 600), (400, 300), (200, 150))
VARIANT_NAMES = tuple(f"{width}x{height}" for width, height in VARIANT_SIZES)
