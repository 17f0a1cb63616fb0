"""The floor for `make bench`: the plainest Python process that decodes a JPEG and re-encodes it at q85.

    python bench/floor.py IN OUT

OpenCV only, nothing else imported (no photoveil, no Pillow): `photoveil blur` / this is what the face
blurring costs on top of the least any photo service must do.
"""

import sys

import cv2

cv2.imwrite(sys.argv[2], cv2.imread(sys.argv[1], cv2.IMREAD_COLOR), [cv2.IMWRITE_JPEG_QUALITY, 85])
