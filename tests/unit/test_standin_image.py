"""The stand-in Lambda image's archive (photoveil_dev.invoke.image): what `docker load` reads of it."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from photoveil_dev.invoke import image


def test_the_image_archive_says_arm64_and_names_its_layer_by_digest(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        data = b"#!/bin/sh\n"
        info = tarfile.TarInfo("var/runtime/bootstrap")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    config = image.ImageConfig(tag="public.ecr.aws/lambda/python:3.13-arm64", architecture="arm64")
    out = io.BytesIO()
    image_id = image.write_archive(rootfs, config, out)

    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as archive:
        (manifest,) = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        document = archive.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
        layer = archive.extractfile(manifest["Layers"][0]).read()  # type: ignore[union-attr]
    assert manifest["RepoTags"] == [config.tag]
    assert manifest["Config"] == f"{image_id}.json" and hashlib.sha256(document).hexdigest() == image_id
    parsed = json.loads(document)
    assert (parsed["architecture"], parsed["variant"], parsed["os"]) == ("arm64", "v8", "linux")
    assert layer == rootfs.read_bytes()
    assert parsed["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
