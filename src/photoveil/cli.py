"""`photoveil` command line: blur the faces in photos on disk, or run the local stack.

    photoveil blur IN... [-o OUT | --out-dir DIR] [--detector centerface|rekognition|both]
                        [--style gaussian|pixelate|solid] [--threshold T] [--quality Q] [--json]
                        [--verify] [--region X1,Y1,X2,Y2 ...]
    photoveil local ...   (the whole product on this machine; see photoveil.local)

Exit codes: 0 every photo done; 2 usage error; 3 some photo was unusable (bad input);
4 internal or detector error. An output file is written only for a photo that fully succeeded,
through a temporary file renamed into place, so a failure never leaves a partial or unblurred file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photoveil.errors import InputError, PhotoVeilError, RegionOutsidePhotoError
from photoveil.imaging.faces import Detector, Face
from photoveil.settings import BLUR_STYLES, DETECTORS

if TYPE_CHECKING:
    from tqdm import tqdm

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_INTERNAL = 4

OUTPUT_SUFFIX = ".blurred.jpg"


def load_detector(name: str, threshold: float | None) -> Detector:
    """The detector to use (the seam tests replace with a fake; imported late: the model runtime is heavy)."""
    from photoveil.imaging.detectors import get_detector

    return get_detector(name, threshold=threshold)


@dataclass
class Outcome:
    input: str
    output: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: PhotoVeilError | Exception | None = None

    @property
    def exit_code(self) -> int:
        if self.error is None:
            return EXIT_OK
        if isinstance(self.error, RegionOutsidePhotoError):
            return EXIT_USAGE  # a --region that misses the photo is a mistake in the command
        return EXIT_BAD_INPUT if isinstance(self.error, InputError) else EXIT_INTERNAL

    def as_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"input": self.input, "output": self.output, **self.result}
        if self.error is not None:
            code = getattr(self.error, "code", "internal_error")
            doc["error"] = {"code": code, "message": _message(self.error)}
        return doc


def _message(error: BaseException) -> str:
    return getattr(error, "message", None) or str(error) or type(error).__name__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photoveil",
        description="Blur every face in photos. `photoveil local ...` runs the whole product locally.",
        epilog="exit codes: 0 ok, 2 usage, 3 bad input photo, 4 internal or detector error",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{blur,local,admin}")
    blur = commands.add_parser(
        "blur",
        help="blur the faces in photos on disk",
        description="Blur every face in each photo (JPEG, PNG, WebP, HEIC); write a JPEG without metadata.",
    )
    blur.add_argument("inputs", nargs="+", metavar="IN", type=Path, help="photo files")
    where = blur.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT", help="output file (one input only)")
    where.add_argument(
        "--out-dir", type=Path, metavar="DIR", help=f"write DIR/NAME{OUTPUT_SUFFIX} for each input"
    )
    blur.add_argument("--detector", choices=DETECTORS, default="centerface", help="default: %(default)s")
    blur.add_argument("--style", choices=BLUR_STYLES, default="gaussian", help="default: %(default)s")
    blur.add_argument(
        "--threshold", type=_unit_float, default=None, help="detector score threshold, 0-1 (default: its own)"
    )
    blur.add_argument(
        "--quality", type=_quality, default=85, help="JPEG quality 1-100 (default: %(default)s)"
    )
    blur.add_argument(
        "--max-pixels", type=int, default=50_000_000, help="refuse larger images (default: %(default)s)"
    )
    blur.add_argument("--json", action="store_true", help="print one JSON document with per-photo results")
    blur.add_argument(
        "--region",
        action="append",
        type=_region,
        default=[],
        metavar="X1,Y1,X2,Y2",
        help="also blur this rectangle (pixels of the photo as displayed, EXIF rotation applied); repeatable",
    )
    blur.add_argument(
        "--verify",
        action="store_true",
        help="look for the blurred faces again in the output and blur again what is found (what the "
        "service does; costs up to one more detection pass, see README)",
    )
    blur.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal and there are several photos)",
    )
    commands.add_parser("local", help="run the whole product on this machine (see `photoveil local --help`)")
    commands.add_parser("admin", help="review reported photos (see `photoveil admin --help`)")
    return parser


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _region(text: str) -> Face:
    try:
        x1, y1, x2, y2 = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not X1,Y1,X2,Y2 (four numbers)") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        raise argparse.ArgumentTypeError(f"{text!r}: X2 must exceed X1 and Y2 exceed Y1")
    return Face(x1, y1, x2, y2, 1.0)


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and 100")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `photoveil` console script; returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["local"]:
        # Forward everything after `local` untouched: the local stack owns its options.
        from photoveil import local

        return local.main(args_list[1:])
    if args_list[:1] == ["admin"]:
        # The operator's review of reported photos owns its options too.
        from photoveil import admin

        try:
            return admin.main(args_list[1:])
        except SystemExit as exc:  # argparse: 2 on usage errors, 0 for --help
            return int(exc.code or 0)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 for --help
        return int(exc.code or 0)
    return _blur_command(parser, args)


def _blur_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        jobs = _plan_outputs(args.inputs, args.output, args.out_dir)
    except ValueError as exc:
        parser.print_usage(sys.stderr)
        print(f"photoveil blur: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    # Loaded before the first photo: overlapping it with the first decode bought nothing measurable
    # (docs/decisions/0013-cli-loads-the-detector-first.md).
    try:
        detector = load_detector(args.detector, args.threshold)
    except Exception as exc:  # model missing, bad AWS config...: nothing can be blurred
        print(f"photoveil: cannot start the {args.detector} detector: {_message(exc)}", file=sys.stderr)
        if args.json:
            _print_json(args, [Outcome(str(src), error=exc) for src, _ in jobs])
        return EXIT_INTERNAL

    show_progress = args.progress if args.progress is not None else (len(jobs) > 1 and sys.stderr.isatty())
    bar = _progress_bar(len(jobs)) if show_progress else None
    # tqdm's write clears the bar, prints the line and draws the bar again below it.
    say = bar.write if bar is not None else print
    outcomes = []
    for src, dest in jobs:
        outcome = _blur_one(src, dest, detector, args)
        outcomes.append(outcome)
        if outcome.error is not None:
            code = getattr(outcome.error, "code", "internal_error")
            say(f"photoveil: {src}: {_message(outcome.error)} ({code})", file=sys.stderr)
        elif not args.json:
            faces = len(outcome.result["faces"])
            took = outcome.result["timings"]["total"]
            say(
                f"{src} -> {dest}: {faces} face{'s' if faces != 1 else ''} blurred ({took:.2f} s)",
                file=sys.stdout,
            )
        if bar is not None:
            bar.set_postfix_str(src.name, refresh=False)
            bar.update()
    if bar is not None:
        bar.close()
    if args.json:
        _print_json(args, outcomes)
    return max((o.exit_code for o in outcomes), default=EXIT_OK)


def _progress_bar(total: int) -> tqdm:
    # Imported here, so a one-photo run (no bar) does not pay for tqdm's import
    # (docs/decisions/0015-cli-progress-with-tqdm.md).
    from tqdm import tqdm

    return tqdm(total=total, unit="photo", file=sys.stderr)


def _plan_outputs(inputs: list[Path], output: Path | None, out_dir: Path | None) -> list[tuple[Path, Path]]:
    """(input, output) pairs; ValueError on anything that is the user's mistake."""
    for src in inputs:
        if not src.is_file():
            raise ValueError(f"{src}: no such file")
    if output is not None:
        if len(inputs) != 1:
            raise ValueError("-o/--output takes exactly one input; use --out-dir for several")
        if not output.parent.is_dir():
            raise ValueError(f"-o {output}: no such directory {output.parent}")
        jobs = [(inputs[0], output)]
    else:
        if out_dir is not None and not out_dir.is_dir():
            raise ValueError(f"--out-dir {out_dir}: no such directory")
        jobs = [(src, (out_dir or src.parent) / f"{src.stem}{OUTPUT_SUFFIX}") for src in inputs]
    seen: dict[Path, Path] = {}
    sources = {src.resolve() for src in inputs}
    for src, dest in jobs:
        key = dest.resolve()
        if key in sources:
            raise ValueError(f"{dest} is also an input: refusing to overwrite an original")
        if key in seen:
            raise ValueError(f"{seen[key]} and {src} would both be written to {dest}")
        seen[key] = src
    return jobs


def _blur_one(src: Path, dest: Path, detector: Detector, args: argparse.Namespace) -> Outcome:
    from photoveil.imaging.pipeline import blur_photo  # late: keeps `photoveil --help` and `local` light

    outcome = Outcome(str(src))
    start = time.perf_counter()
    try:
        data = src.read_bytes()
        result = blur_photo(
            data,
            detector,
            style=args.style,
            quality=args.quality,
            max_pixels=args.max_pixels,
            verify=args.verify,
            regions=args.region,
        )
        _write_atomically(dest, result.jpeg)
    except Exception as exc:  # reported per photo; the others still run, the exit code says it
        outcome.error = exc
        return outcome
    timings = {k: round(v, 4) for k, v in result.timings.items()}
    timings["total"] = round(time.perf_counter() - start, 4)
    outcome.output = str(dest)
    outcome.result = {
        "width": result.width,
        "height": result.height,
        "faces": [face.as_dict() for face in result.faces],
        # Heads the verify step still found in the output and blurred again (photoveil.imaging.verify).
        "reblurred": [face.as_dict() for face in result.reblurred],
        "regions": [[r.x1, r.y1, r.x2, r.y2] for r in args.region],
        "timings": timings,
        "output_bytes": len(result.jpeg),
    }
    return outcome


def _write_atomically(dest: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory renamed over ``dest``: never a partial file."""
    # A random name opened exclusively, as tempfile.mkstemp does, but with the usual mode (0666 less the
    # umask, applied by the kernel) and without importing tempfile (shutil, random...) in every process.
    tmp = dest.with_name(f".{dest.name}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _print_json(args: argparse.Namespace, outcomes: list[Outcome]) -> None:
    import json  # here: only --json needs it

    doc = {
        "detector": args.detector,
        "style": args.style,
        "verify": args.verify,
        "images": [o.as_dict() for o in outcomes],
        "ok": all(o.error is None for o in outcomes),
    }
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")
