"""A root filesystem tarball as a one-layer image archive that `docker load` takes, with the architecture
its binaries are built for (scripts/lambda_standin.sh makes the stand-in Lambda image with it).

`docker import` would be shorter, but Docker 20.10 (Debian 12's docker.io) records an imported image as
the daemon's own architecture whatever `--platform` says, and SAM then cannot build its arm64 image FROM it.
An archive in `docker save`'s layout names its architecture in the image config, which `docker load` keeps:

    manifest.json             [{"Config": "<sha256 of the config>.json", "RepoTags": [...], "Layers": [...]}]
    <sha256 of the config>.json
    <sha256 of the layer>/layer.tar   the root filesystem, as given

    python -m photoveil_dev.invoke.image rootfs.tar --tag T --arch arm64 --env K=V --label K=V | docker load
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20


@dataclass(frozen=True)
class ImageConfig:
    """What `docker inspect` shows of an image: its platform and how a container of it starts."""

    tag: str
    architecture: str  # Docker's name: arm64, amd64
    env: tuple[str, ...] = ()  # KEY=VALUE
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    labels: dict[str, str] = field(default_factory=dict)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def config_document(config: ImageConfig, layer_sha256: str) -> dict[str, Any]:
    """The image config (OCI/Docker image spec) of a one-layer image."""
    container: dict[str, Any] = {"Env": list(config.env), "Labels": dict(config.labels)}
    if config.entrypoint:
        container["Entrypoint"] = list(config.entrypoint)
    if config.cmd:
        container["Cmd"] = list(config.cmd)
    if config.working_dir:
        container["WorkingDir"] = config.working_dir
    document: dict[str, Any] = {
        "architecture": config.architecture,
        "os": "linux",
        "config": container,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha256}"]},
    }
    if config.architecture == "arm64":
        document["variant"] = "v8"
    return document


def write_archive(rootfs_tar: Path, config: ImageConfig, out: BinaryIO) -> str:
    """Write the image archive of ROOTFS_TAR (an uncompressed tar of a root filesystem) to OUT; returns the
    image id (the sha256 of its config), as `docker images --no-trunc` will show it."""
    layer_sha = file_sha256(rootfs_tar)
    document = json.dumps(config_document(config, layer_sha), sort_keys=True).encode()
    image_id = hashlib.sha256(document).hexdigest()
    layer = f"{layer_sha}/layer.tar"
    manifest = [{"Config": f"{image_id}.json", "RepoTags": [config.tag], "Layers": [layer]}]
    with tarfile.open(fileobj=out, mode="w|") as archive:
        _add_bytes(archive, "manifest.json", json.dumps(manifest).encode())
        _add_bytes(archive, f"{image_id}.json", document)
        with rootfs_tar.open("rb") as stream:
            info = tarfile.TarInfo(layer)
            info.size = rootfs_tar.stat().st_size
            archive.addfile(info, stream)
    return image_id


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def _pairs(values: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in values)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m photoveil_dev.invoke.image", description=__doc__)
    parser.add_argument("rootfs", type=Path, help="uncompressed tar of the root filesystem")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--arch", required=True, help="Docker's architecture name, e.g. arm64")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--entrypoint", nargs="*", default=[])
    parser.add_argument("--cmd", nargs="*", default=[])
    parser.add_argument("--workdir", default="")
    args = parser.parse_args(argv)
    config = ImageConfig(
        tag=args.tag,
        architecture=args.arch,
        env=tuple(args.env),
        entrypoint=tuple(args.entrypoint),
        cmd=tuple(args.cmd),
        working_dir=args.workdir,
        labels=_pairs(args.label),
    )
    image_id = write_archive(args.rootfs, config, sys.stdout.buffer)
    print(f"image {config.tag} ({config.architecture}): sha256:{image_id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
