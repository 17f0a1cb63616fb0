"""Blur one photo with a CenterFace configuration given on the command line (for tuning with
/work/shared/tools/privacy_eval.py, which runs a command per photo):

    python ../shared/tools/privacy_eval.py --set json --data ../shared/data/faces \\
        --cmd '.venv/bin/python tools/blur_with.py {inp} {out} --set fine_side=1536'
"""

from __future__ import annotations

import argparse
from pathlib import Path

from detect_eval import parse_overrides

from photoveil.imaging.detectors.centerface import CenterFaceConfig, CenterFaceDetector
from photoveil.imaging.pipeline import blur_photo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inp", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    detector = CenterFaceDetector(CenterFaceConfig(**parse_overrides(args.set)))
    args.out.write_bytes(blur_photo(args.inp.read_bytes(), detector).jpeg)


if __name__ == "__main__":
    main()
