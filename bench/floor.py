"""The floor for `make bench`: the same Python process as `photoveil blur`, doing only decode + encode.

    python bench/floor.py IN OUT

Imports what the real command imports for these two stages (photoveil.image) and writes the file the
same way, so `photoveil blur` time / floor time is the cost of detection + blur + the detector's start-up.
"""

from __future__ import annotations

import sys
from pathlib import Path

from photoveil.image import encode_jpeg, load_image


def main(argv: list[str]) -> int:
    src, dest = (Path(a) for a in argv)
    image = load_image(src.read_bytes())
    dest.write_bytes(encode_jpeg(image.pixels))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
