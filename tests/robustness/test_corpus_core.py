"""The bad-input corpus through the image core, the pipeline and the real command line.

Every case must end in its stable error code, or (valid images) in a clean JPEG of the right size
with the face region changed. Decompression bombs must be refused from the header, in bounded memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import corpus
import cv2
import numpy as np
import pytest

from conftest import CentreDetector, assert_clean_jpeg, centre_box
from photoveil.errors import InputError, PhotoVeilError
from photoveil.imaging.image import load_image
from photoveil.imaging.pipeline import blur_photo

CASES = corpus.core_cases()
OK_CASES = [case for case in CASES if case.expected == corpus.OK]
BAD_CASES = [case for case in CASES if case.expected != corpus.OK]
BOMBS = [case for case in CASES if case.expected == "image_too_large"]
REPO = Path(__file__).resolve().parents[2]
CLI = REPO / ".venv" / "bin" / "photoveil"


def test_corpus_is_big_and_covers_every_input_error() -> None:
    codes = {case.expected for case in corpus.build_corpus(max_upload_bytes=4096)}
    input_errors = {cls.code for cls in _subclasses(InputError)} - {InputError.code}
    assert len(corpus.build_corpus(max_upload_bytes=4096)) >= 40
    assert input_errors <= codes, f"no corpus case for {sorted(input_errors - codes)}"


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_load_image_judges_each_case(case: corpus.Case) -> None:
    if case.expected == corpus.OK:
        loaded = load_image(case.data)
        assert (loaded.width, loaded.height) == case.size
        assert loaded.pixels.shape == (case.size[1], case.size[0], 3)
        assert loaded.pixels.dtype == np.uint8
    else:
        with pytest.raises(InputError) as caught:
            load_image(case.data)
        assert caught.value.code == case.expected, caught.value.message
        assert caught.value.permanent
        assert caught.value.message  # users see it: never empty


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda case: case.name)
def test_blur_photo_refuses_bad_input_before_detecting(case: corpus.Case) -> None:
    detector = CentreDetector()
    with pytest.raises(PhotoVeilError) as caught:
        blur_photo(case.data, detector)
    assert caught.value.code == case.expected
    assert detector.calls == [], "the detector ran on input that was refused"


@pytest.mark.parametrize("case", OK_CASES, ids=lambda case: case.name)
def test_blur_photo_publishes_only_a_clean_blurred_jpeg(case: corpus.Case) -> None:
    detector = CentreDetector()
    result = blur_photo(case.data, detector)
    assert_clean_jpeg(result.jpeg)
    width, height = case.size
    assert (result.width, result.height) == (width, height)
    assert detector.calls == [(width, height)], "the detector must see the oriented image, once"
    before = load_image(case.data).pixels.astype(np.int16)
    after = cv2.imdecode(np.frombuffer(result.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert after.shape == before.shape
    x1, y1, x2, y2 = centre_box(width, height)
    # The base image is a high-detail test card: blurring its face region removes most of its fine
    # detail (Laplacian energy), which JPEG re-encoding alone does not.
    detail_before = detail(before[y1:y2, x1:x2])
    detail_after = detail(after[y1:y2, x1:x2].astype(np.int16))
    assert detail_before > 0, "test card has no detail there: the check would prove nothing"
    assert detail_after < 0.6 * detail_before, (
        f"face region not blurred: {detail_after=:.1f} {detail_before=:.1f}"
    )


def detail(pixels: np.ndarray) -> float:
    """Mean absolute Laplacian of the grey image: high for sharp detail, low once blurred."""
    grey = cv2.cvtColor(np.clip(pixels, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    return float(np.abs(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)).mean())


# The bomb cases run in a fresh interpreter so the peak resident size (ru_maxrss) measures only them.
_BOMB_PROBE = textwrap.dedent(
    """
    import json, resource, sys, tracemalloc
    sys.path.insert(0, sys.argv[1])
    import corpus
    from photoveil.errors import PhotoVeilError
    from photoveil.imaging.image import load_image
    from photoveil.imaging.pipeline import blur_photo

    class NoFaces:
        name = "none"
        def detect(self, image):
            return []

    cases = [c for c in corpus.core_cases() if c.expected == "image_too_large"]
    # Warm up: imports, codecs and one small real decode, so the baseline includes them.
    load_image(next(c for c in corpus.core_cases() if c.expected == "ok").data)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    codes = {}
    for case in cases:
        for run in (lambda d: load_image(d), lambda d: blur_photo(d, NoFaces())):
            try:
                run(case.data)
                codes[case.name] = "ok"
            except PhotoVeilError as exc:
                codes[case.name] = exc.code
    peak_py = tracemalloc.get_traced_memory()[1]
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    print(json.dumps({"codes": codes, "rss_growth_mb": grown_kb / 1024, "traced_peak_mb": peak_py / 2**20}))
    """
)


def test_bombs_are_refused_in_bounded_memory() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _BOMB_PROBE, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["codes"] == {case.name: "image_too_large" for case in BOMBS}
    # Decoding any one of them would need 268 MB to 12 GB; refusing from the header needs next to nothing.
    assert report["rss_growth_mb"] < 40, report
    assert report["traced_peak_mb"] < 10, report


def test_command_line_judges_the_corpus_in_one_run(tmp_path: Path) -> None:
    """All cases in ONE `photoveil blur --json` process: per-file results, bad files never abort the rest."""
    if not CLI.exists():
        pytest.skip(f"{CLI} is missing: run `make install`")
    inputs, expected = [], {}
    for case in CASES:
        path = tmp_path / "in" / f"{case.name}-{case.filename}"  # outputs share one folder: unique stems
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(case.data)
        inputs.append(str(path))
        expected[str(path)] = case
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = subprocess.run(
        [str(CLI), "blur", "--json", "--out-dir", str(out_dir), *inputs],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    results = json.loads(run.stdout)["images"]
    by_input = {r["input"]: r for r in results}
    assert set(by_input) == set(expected), run.stderr[-2000:]
    for path, case in expected.items():
        result = by_input[path]
        if case.expected == corpus.OK:
            assert result.get("error") is None, (case.name, result)
            output = Path(result["output"])
            assert_clean_jpeg(output.read_bytes())
        else:
            error = result.get("error") or {}
            assert error.get("code") == case.expected, (case.name, result)
            assert not result.get("output") or not Path(result["output"]).exists(), case.name
    # Some inputs were bad: the exit code says "bad input" (3), not success and not internal error (4).
    assert run.returncode == 3, (run.returncode, run.stderr[-2000:])
