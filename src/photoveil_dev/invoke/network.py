"""How a function in a Lambda container reaches the local stack, which listens on 127.0.0.1 only.

A container on Docker's bridge has a loopback of its own, and SAM 1.170 cannot run it on the host's network
(`--docker-network host` is skipped: samcli's container.py connects no network named "host", and the
container stays on the bridge). So the container is given the bridge's gateway address, and one DNAT rule
turns what it sends there, on that port only, into a connection to 127.0.0.1: nothing listens anywhere but
on loopback, and only this machine's containers can use the rule
(docs/decisions/invoke-0001-lambda-containers.md). Docker Desktop reaches the host's loopback by itself:
there (found from `docker info`, or PHOTOVEIL_CONTAINER_HOST=host.docker.internal) no rule.

For the DNAT to deliver to 127.0.0.1, the bridge must accept packets for loopback addresses
(route_localnet). That would also let any container on the bridge send crafted packets straight to
127.0.0.1 (the CVE-2020-8558 class): a raw-table rule drops what arrives on the bridge for 127.0.0.0/8
before DNAT rewrites anything, so only the forward's own packets get there. Each rule carries a comment
with this run's pid and the route_localnet it found: a later run removes the rules of a run that died
without removing its own, and the last run on the bridge puts route_localnet back.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

CONTAINER_HOST_VARIABLE = "PHOTOVEIL_CONTAINER_HOST"
DESKTOP_HOST = "host.docker.internal"  # Docker Desktop's name for the host, its loopback included
RULE_TAG = "photoveil-invoke"
TABLES = ("nat", "raw")


class NetworkError(RuntimeError):
    """The containers cannot be given a way to the local stack."""


def _docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def container_host(environ: dict[str, str], engine_os: str, platform: str = sys.platform) -> str | None:
    """The host name containers reach this machine's loopback at, or None where it takes the DNAT rule:
    PHOTOVEIL_CONTAINER_HOST if set, Docker Desktop's name on Docker Desktop (macOS, Windows, Linux)."""
    if environ.get(CONTAINER_HOST_VARIABLE):
        return environ[CONTAINER_HOST_VARIABLE]
    if "Docker Desktop" in engine_os or platform != "linux":
        return DESKTOP_HOST
    return None


def engine_os() -> str:
    """What the Docker engine says it runs on ("Docker Desktop", "Debian GNU/Linux 12 (bookworm)"...)."""
    try:
        found = subprocess.run(
            ["docker", "info", "-f", "{{.OperatingSystem}}"], capture_output=True, text=True
        )
    except FileNotFoundError:
        return ""  # no Docker yet (the stand-in comes later)
    return found.stdout.strip()


def forward_needs_root(environ: dict[str, str], engine: str, euid: int) -> str | None:
    """Why this run cannot give the containers a way to the stack (before anything is built), or None."""
    if container_host(environ, engine) is not None or euid == 0:
        return None
    return (
        "on Linux a container reaches the local stack (on 127.0.0.1) through a DNAT rule, which needs "
        f"root: run it with sudo, or set {CONTAINER_HOST_VARIABLE} to a name containers reach this "
        "machine's loopback at"
    )


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


def guard_rule(interface: str) -> list[str]:
    """The raw PREROUTING rule that drops what arrives on INTERFACE for loopback addresses: raw comes
    before DNAT, so it sees a crafted packet's 127.x destination and the forward's gateway address."""
    return ["-i", interface, "-d", "127.0.0.0/8", "-j", "DROP"]


def comment(pid: int, localnet: str) -> str:
    return f"{RULE_TAG}:pid={pid}:localnet={localnet}"


@dataclass(frozen=True)
class TaggedRule:
    """A rule a run added, as `iptables -t TABLE -S` lists it."""

    table: str
    spec: list[str]  # after -A: the chain, then the rule
    pid: int
    localnet: str  # route_localnet as the run found it
    interface: str

    def delete_command(self) -> list[str]:
        return ["iptables", "-t", self.table, "-D", *self.spec]


def tagged_rules(table: str, listing: str) -> list[TaggedRule]:
    """The rules of `iptables -t TABLE -S` (LISTING) that carry RULE_TAG."""
    rules = []
    for line in listing.splitlines():
        words = shlex.split(line)
        if len(words) < 2 or words[0] != "-A" or "--comment" not in words:
            continue
        fields = words[words.index("--comment") + 1].split(":")
        if fields[0] != RULE_TAG:
            continue
        values = dict(field.split("=", 1) for field in fields[1:] if "=" in field)
        interface = words[words.index("-i") + 1] if "-i" in words else ""
        rules.append(
            TaggedRule(table, words[1:], int(values.get("pid", 0)), values.get("localnet", ""), interface)
        )
    return rules


def pid_alive(pid: int) -> bool:
    """Whether a process PID runs (on any system: no /proc needed)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's
    return True


def original_localnet(rules: list[TaggedRule], interface: str, current: str) -> str:
    """route_localnet as it was before any run changed it: what the earliest run still on record found."""
    found = [rule.localnet for rule in rules if rule.interface == interface and rule.localnet]
    return found[0] if found else current


def _listed() -> list[TaggedRule]:
    return [rule for table in TABLES for rule in tagged_rules(table, _run(["iptables", "-t", table, "-S"]))]


def _run(command: list[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def sweep(alive: Callable[[int], bool] = pid_alive) -> list[TaggedRule]:
    """Remove the rules of runs that are over (killed before they could); the rules still on record."""
    rules = _listed()
    for rule in rules:
        if not alive(rule.pid):
            subprocess.run(rule.delete_command(), capture_output=True, check=False)
    return rules


def _route_localnet(interface: str) -> Path:
    """1 lets packets to 127.0.0.1 arrive on the interface (dockerd --userland-proxy=false sets it on the
    bridge itself)."""
    return Path(f"/proc/sys/net/ipv4/conf/{interface}/route_localnet")


@contextmanager
def container_endpoint(local_endpoint: str) -> Iterator[str]:
    """The URL at which a container reaches LOCAL_ENDPOINT (http://127.0.0.1:PORT), while in the block."""
    port = urlsplit(local_endpoint).port
    assert port is not None, local_endpoint
    host = container_host(dict(os.environ), engine_os())
    if host:
        yield f"http://{host}:{port}"
        return
    refusal = forward_needs_root(dict(os.environ), "", os.geteuid())
    if refusal:
        raise NetworkError(refusal)
    interface, gateway = bridge()
    localnet = _route_localnet(interface)
    before = original_localnet(sweep(), interface, localnet.read_text().strip())
    tag = ["-m", "comment", "--comment", comment(os.getpid(), before)]
    ours = [
        ["iptables", "-t", "raw", "-I", "PREROUTING", *guard_rule(interface), *tag],
        ["iptables", "-t", "nat", "-I", "PREROUTING", *forward_rule(interface, gateway, port), *tag],
    ]
    try:
        for command in ours:
            subprocess.run(command, check=True)
        localnet.write_text("1")
        yield f"http://{gateway}:{port}"
    finally:
        _undo(interface, localnet, before)


def _undo(interface: str, localnet: Path, before: str) -> None:
    """Remove this run's rules; the last run on INTERFACE also puts route_localnet back as it found it."""
    try:
        ours = [rule for rule in _listed() if rule.pid == os.getpid()]
        failed = [rule for rule in ours if subprocess.run(rule.delete_command(), check=False).returncode]
        if failed:
            raise NetworkError(f"could not remove {[' '.join(rule.delete_command()) for rule in failed]}")
    finally:
        try:
            others = [rule for rule in _listed() if rule.interface == interface and pid_alive(rule.pid)]
        except (OSError, subprocess.CalledProcessError):
            others = []  # no list to read: the setting is put back all the same
        if not others and before != "1":
            localnet.write_text(before)
