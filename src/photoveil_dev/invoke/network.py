"""How a function in a Lambda container reaches the local stack, which listens on 127.0.0.1 only.

A container on Docker's bridge has a loopback of its own, and SAM 1.170 cannot run it on the host's network
(`--docker-network host` is skipped: samcli's container.py connects no network named "host", and the
container stays on the bridge). So the container is given the bridge's gateway address, and one DNAT rule
turns what it sends there, on that port only, into a connection to 127.0.0.1: nothing listens anywhere but
on loopback, and only this machine's containers can use the rule
(docs/decisions/invoke-0001-lambda-containers.md). Docker Desktop reaches the host's loopback by itself:
there, PHOTOVEIL_CONTAINER_HOST=host.docker.internal and no rule.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

CONTAINER_HOST_VARIABLE = "PHOTOVEIL_CONTAINER_HOST"


class NetworkError(RuntimeError):
    """The containers cannot be given a way to the local stack."""


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def bridge() -> tuple[str, str]:
    """Docker's default bridge: its interface and the gateway address containers on it see."""
    name = '{{index .Options "com.docker.network.bridge.name"}}'
    interface = _docker("network", "inspect", "bridge", "-f", name) or "docker0"
    # The default bridge's IPAM config names no gateway (Docker 20.10): it is the interface's address.
    shown = ["ip", "-4", "-o", "addr", "show", "dev", interface]
    address = subprocess.run(shown, capture_output=True, text=True, check=True).stdout.split()
    return interface, address[address.index("inet") + 1].split("/")[0]


def forward_rule(interface: str, gateway: str, port: int) -> list[str]:
    """The nat PREROUTING rule that sends what containers send to GATEWAY:PORT to 127.0.0.1:PORT."""
    return [
        "-i", interface, "-d", gateway, "-p", "tcp", "--dport", str(port),
        "-j", "DNAT", "--to-destination", f"127.0.0.1:{port}",
    ]  # fmt: skip


def _iptables(action: str, rule: list[str]) -> None:
    subprocess.run(["iptables", "-t", "nat", action, "PREROUTING", *rule], check=True)


def _route_localnet(interface: str) -> str:
    """The interface's route_localnet setting path: 1 lets packets to 127.0.0.1 arrive on it (dockerd
    --userland-proxy=false sets it on the bridge itself)."""
    return f"/proc/sys/net/ipv4/conf/{interface}/route_localnet"


@contextmanager
def container_endpoint(local_endpoint: str) -> Iterator[str]:
    """The URL at which a container reaches LOCAL_ENDPOINT (http://127.0.0.1:PORT), while in the block."""
    port = urlsplit(local_endpoint).port
    assert port is not None, local_endpoint
    host = os.environ.get(CONTAINER_HOST_VARIABLE)
    if host:
        yield f"http://{host}:{port}"
        return
    if os.geteuid() != 0:
        raise NetworkError(
            "a container reaches the local stack (on 127.0.0.1) through a DNAT rule, which needs root; "
            f"with Docker Desktop set {CONTAINER_HOST_VARIABLE}=host.docker.internal instead"
        )
    interface, gateway = bridge()
    localnet = Path(_route_localnet(interface))
    before = localnet.read_text().strip()
    rule = forward_rule(interface, gateway, port)
    _iptables("-I", rule)
    try:
        if before != "1":
            localnet.write_text("1")
        yield f"http://{gateway}:{port}"
    finally:
        _iptables("-D", rule)
        if before != "1":
            localnet.write_text(before)
