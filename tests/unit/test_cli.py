"""`photoveil` command line: outputs, --json, exit codes, and no output file when anything failed."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import photoveil
from photoveil import cli
from photoveil.errors import DetectorError, ModelNotFoundError
from photoveil.imaging.faces import Face

ASTRONAUT_FACE = Face(170, 40, 270, 160, 0.99)


class FixedDetector:
    """Fake detector: the same faces for every photo."""

    name = "fixed"

    def __init__(self, faces: list[Face]) -> None:
        self.faces = faces

    def detect(self, image: np.ndarray) -> list[Face]:
        return list(self.faces)


class BrokenDetector:
    name = "broken"

    def detect(self, image: np.ndarray) -> list[Face]:
        raise DetectorError("the face detector is unavailable")


@pytest.fixture
def use_detector(monkeypatch: pytest.MonkeyPatch):
    """Install a fake detector behind cli.load_detector; records the arguments it was asked for."""
    asked: list[tuple[str, float | None]] = []

    def install(detector) -> list[tuple[str, float | None]]:
        def load(name: str, threshold: float | None):
            asked.append((name, threshold))
            return detector

        monkeypatch.setattr(cli, "load_detector", load)
        return asked

    return install


@pytest.fixture
def photos(tmp_path: Path, astronaut_path: Path) -> dict[str, Path]:
    astronaut = Image.open(astronaut_path).convert("RGB")
    paths = {}
    for name, fmt in (("one.jpg", "JPEG"), ("two.png", "PNG"), ("three.webp", "WEBP")):
        paths[name] = tmp_path / name
        astronaut.save(paths[name], fmt)
    paths["broken.jpg"] = tmp_path / "broken.jpg"
    data = paths["one.jpg"].read_bytes()
    paths["broken.jpg"].write_bytes(data[: len(data) // 2])
    paths["notes.txt"] = tmp_path / "notes.txt"
    paths["notes.txt"].write_text("not a photo\n" * 20)
    return paths


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_blur_one_photo_to_output(use_detector, photos, tmp_path: Path, capsys) -> None:
    use_detector(FixedDetector([ASTRONAUT_FACE]))
    out = tmp_path / "out.jpg"
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(out)]) == 0
    decoded = cv2.imread(str(out))
    assert decoded.shape == (512, 512, 3)
    original = cv2.imread(str(photos["one.jpg"]))
    assert np.abs(decoded[70:130, 195:245].astype(int) - original[70:130, 195:245].astype(int)).mean() > 15
    assert "1 face blurred" in capsys.readouterr().out


def test_out_dir_and_default_names(use_detector, photos, tmp_path: Path) -> None:
    use_detector(FixedDetector([]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = cli.main(["blur", str(photos["one.jpg"]), str(photos["two.png"]), "--out-dir", str(out_dir)])
    assert code == 0
    assert files_in(out_dir) == {"one.blurred.jpg", "two.blurred.jpg"}
    # without -o/--out-dir, next to the input
    assert cli.main(["blur", str(photos["three.webp"])]) == 0
    assert (tmp_path / "three.blurred.jpg").is_file()


def test_output_has_the_usual_mode_and_no_temporary_file_stays(use_detector, photos, tmp_path: Path) -> None:
    # Written through a temporary file renamed into place: the result must carry the mode any new file
    # gets under the umask (0666 less it), not a temporary file's 0600.
    use_detector(FixedDetector([]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    previous = os.umask(0o027)
    try:
        assert cli.main(["blur", str(photos["one.jpg"]), "--out-dir", str(out_dir)]) == 0
    finally:
        os.umask(previous)
    assert files_in(out_dir) == {"one.blurred.jpg"}
    assert stat.S_IMODE((out_dir / "one.blurred.jpg").stat().st_mode) == 0o640


def test_json_document(use_detector, photos, tmp_path: Path, capsys) -> None:
    asked = use_detector(FixedDetector([ASTRONAUT_FACE]))
    out = tmp_path / "out.jpg"
    code = cli.main(
        ["blur", str(photos["two.png"]), "-o", str(out), "--json", "--threshold", "0.4", "--detector", "both"]
    )
    assert code == 0
    assert asked == [("both", 0.4)]
    doc = json.loads(capsys.readouterr().out)  # stdout is ONE JSON document, nothing else
    assert doc["ok"] is True
    (image,) = doc["images"]
    assert image["input"] == str(photos["two.png"])
    assert image["output"] == str(out)
    assert image["faces"] == [{"box": [170.0, 40.0, 270.0, 160.0], "score": 0.99}]
    assert set(image["timings"]) == {"decode", "detect", "blur", "encode", "total"}
    assert image["reblurred"] == []
    assert image["output_bytes"] == out.stat().st_size
    assert (image["width"], image["height"]) == (512, 512)


def test_bad_input_exits_3_writes_nothing_for_it_and_still_does_the_rest(
    use_detector, photos, tmp_path: Path, capsys
) -> None:
    use_detector(FixedDetector([]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = ["blur", str(photos["broken.jpg"]), str(photos["notes.txt"]), str(photos["one.jpg"])]
    code = cli.main([*args, "--out-dir", str(out_dir), "--json"])
    assert code == 3
    assert files_in(out_dir) == {"one.blurred.jpg"}  # no partial or temporary files either
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    errors = {Path(i["input"]).name: i.get("error", {}).get("code") for i in doc["images"]}
    assert errors == {"broken.jpg": "corrupt_image", "notes.txt": "unsupported_format", "one.jpg": None}
    assert doc["ok"] is False
    assert "broken.jpg" in captured.err and "damaged or truncated" in captured.err


def test_detector_error_exits_4_and_writes_no_file(use_detector, photos, tmp_path: Path, capsys) -> None:
    use_detector(BrokenDetector())
    out = tmp_path / "out" / "x.jpg"
    out.parent.mkdir()
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(out)]) == 4
    assert files_in(out.parent) == set()
    assert "unavailable" in capsys.readouterr().err


def test_existing_output_is_not_replaced_when_the_photo_fails(use_detector, photos, tmp_path: Path) -> None:
    use_detector(BrokenDetector())
    out = tmp_path / "keep.jpg"
    out.write_bytes(b"previous result")
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(out)]) == 4
    assert out.read_bytes() == b"previous result"


def test_detector_that_cannot_start_exits_4(monkeypatch, photos, tmp_path: Path, capsys) -> None:
    def missing(name: str, threshold: float | None):
        raise ModelNotFoundError("face model not found: run `make install`")

    monkeypatch.setattr(cli, "load_detector", missing)
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(tmp_path / "o.jpg")]) == 4
    assert "make install" in capsys.readouterr().err
    assert not (tmp_path / "o.jpg").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["blur"],
        ["blur", "{one}", "{two}", "-o", "{tmp}/x.jpg"],  # -o with two inputs
        ["blur", "{tmp}/missing.jpg"],
        ["blur", "{one}", "-o", "{one}"],  # would overwrite the original
        ["blur", "{one}", "--out-dir", "{tmp}/nowhere"],
        ["blur", "{one}", "-o", "{tmp}/nowhere/x.jpg"],
        ["blur", "{one}", "--quality", "0"],
        ["blur", "{one}", "--threshold", "1.5"],
        ["blur", "{one}", "--style", "swirl"],
        ["blur", "{one}", "--detector", "haar"],
        ["blur", "{one}", "--region", "1,2,3"],
        ["blur", "{one}", "--region", "10,10,5,20"],
        ["blur", "{one}", "--region", "a,b,c,d"],
        ["blur", "{one}", "-o", "{tmp}/a.jpg", "--out-dir", "{tmp}"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(use_detector, photos, tmp_path: Path, argv: list[str], capsys) -> None:
    use_detector(FixedDetector([]))
    values = {"one": photos["one.jpg"], "two": photos["two.png"], "tmp": tmp_path}
    before = files_in(tmp_path)
    assert cli.main([a.format(**values) for a in argv]) == 2
    assert files_in(tmp_path) == before
    assert capsys.readouterr().err


def test_two_inputs_with_the_same_name_are_a_usage_error(use_detector, photos, tmp_path: Path) -> None:
    use_detector(FixedDetector([]))
    other = tmp_path / "sub"
    other.mkdir()
    twin = other / "one.jpg"
    twin.write_bytes(photos["one.jpg"].read_bytes())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert cli.main(["blur", str(photos["one.jpg"]), str(twin), "--out-dir", str(out_dir)]) == 2


def test_progress_bar_goes_to_stderr(use_detector, photos, tmp_path: Path, capsys) -> None:
    use_detector(FixedDetector([]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs = [str(photos["one.jpg"]), str(photos["two.png"])]
    code = cli.main(["blur", *inputs, "--out-dir", str(out_dir), "--json", "--progress"])
    assert code == 0
    captured = capsys.readouterr()
    assert "2/2" in captured.err and "two.png" in captured.err
    json.loads(captured.out)  # the bar never pollutes the JSON on stdout


class Terminal(io.StringIO):
    """stdout and stderr of a terminal: one screen, so a line printed over the bar shows."""

    def isatty(self) -> bool:
        return True


def on_terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    # Called in the test body: pytest puts its own capture back on sys.stdout/stderr after fixtures.
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    return screen


def test_per_photo_lines_are_printed_above_the_bar_not_into_it(
    use_detector, photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = on_terminal(monkeypatch)
    use_detector(FixedDetector([ASTRONAUT_FACE]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    inputs = [str(photos["one.jpg"]), str(photos["broken.jpg"]), str(photos["two.png"])]
    assert cli.main(["blur", *inputs, "--out-dir", str(out_dir)]) == 3
    # Split where the terminal returns to the start of a line: each message must begin its own piece,
    # not follow a bar drawn on the same line.
    pieces = re.split(r"[\r\n]", terminal.getvalue())
    for name in ("one.jpg", "two.png"):
        assert any(p.startswith(f"{photos[name]} -> ") for p in pieces), pieces
    assert any(p.startswith(f"photoveil: {photos['broken.jpg']}: ") for p in pieces), pieces
    assert any("3/3" in p for p in pieces), "the bar is on by default on a terminal with several photos"


def test_no_bar_for_one_photo_or_with_no_progress(
    use_detector, photos, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = on_terminal(monkeypatch)
    use_detector(FixedDetector([]))
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(tmp_path / "o.jpg")]) == 0
    inputs = [str(photos["one.jpg"]), str(photos["two.png"])]
    assert cli.main(["blur", *inputs, "--out-dir", str(tmp_path), "--no-progress"]) == 0
    lines = terminal.getvalue().splitlines()
    assert len(lines) == 3 and all(" -> " in line and "\r" not in line for line in lines), lines


def test_output_file_gets_normal_permissions(use_detector, photos, tmp_path: Path) -> None:
    use_detector(FixedDetector([]))
    out = tmp_path / "o.jpg"
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(out)]) == 0
    assert out.stat().st_mode & 0o044  # readable by others per umask, not mkstemp's 0600


def test_local_forwards_the_rest_of_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[list[str]] = []
    fake = types.ModuleType("photoveil.local")
    fake.main = lambda argv: received.append(argv) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "photoveil.local", fake)
    monkeypatch.setattr(photoveil, "local", fake, raising=False)
    assert cli.main(["local", "--port", "3001", "--blur"]) == 7
    assert received == [["--port", "3001", "--blur"]]


def test_real_detector_end_to_end(photos, tmp_path: Path, capsys) -> None:
    pytest.importorskip("photoveil.imaging.detectors")
    out = tmp_path / "real.jpg"
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(out), "--json"]) == 0
    (image,) = json.loads(capsys.readouterr().out)["images"]
    assert len(image["faces"]) >= 1
    assert cv2.imdecode(np.frombuffer(out.read_bytes(), np.uint8), cv2.IMREAD_COLOR).shape == (512, 512, 3)
    assert io.BytesIO(out.read_bytes()).read(3) == b"\xff\xd8\xff"


def test_verify_is_opt_in_passed_to_the_pipeline_and_reported(
    use_detector, photos, tmp_path: Path, capsys
) -> None:
    use_detector(FixedDetector([ASTRONAUT_FACE]))
    for extra, verify in (([], False), (["--verify"], True)):
        assert (
            cli.main(["blur", str(photos["two.png"]), "-o", str(tmp_path / "o.jpg"), "--json", *extra]) == 0
        )
        doc = json.loads(capsys.readouterr().out)
        assert doc["verify"] is verify
        assert ("verify" in doc["images"][0]["timings"]) is verify


def test_region_blurs_that_rectangle_too_and_nothing_else(
    use_detector, photos, tmp_path: Path, capsys
) -> None:
    use_detector(FixedDetector([]))  # no face found: only the hand-made region changes
    plain, edited = tmp_path / "plain.jpg", tmp_path / "edited.jpg"
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(plain)]) == 0
    argv = ["blur", str(photos["one.jpg"]), "-o", str(edited), "--region", "320,320,480,480", "--json"]
    assert cli.main(argv) == 0

    before, after = (cv2.imread(str(p)).astype(int) for p in (plain, edited))
    assert np.abs(after[330:470, 330:470] - before[330:470, 330:470]).mean() > 8  # blurred inside
    # Outside the rectangle and its feather band (and the JPEG blocks touching it): the very same pixels.
    assert np.array_equal(after[:280], before[:280]) and np.array_equal(after[:, :280], before[:, :280])
    (image,) = json.loads(capsys.readouterr().out.split("\n", 1)[1])["images"]
    assert image["regions"] == [[320.0, 320.0, 480.0, 480.0]]


def test_a_region_off_the_photo_is_refused_and_writes_nothing(
    use_detector, photos, tmp_path: Path, capsys
) -> None:
    use_detector(FixedDetector([]))
    out = tmp_path / "out.jpg"
    assert cli.main(["blur", str(photos["one.jpg"]), "-o", str(out), "--region", "600,600,700,700"]) == 2
    assert not out.exists()
    assert "region_outside_photo" in capsys.readouterr().err
