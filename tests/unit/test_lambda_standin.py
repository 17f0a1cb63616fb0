"""scripts/lambda_standin.sh, the parts that decide and undo, run with fakes for what they would change:
whether it may touch this machine's Docker at all (opt-in, Debian, no other Docker), what it says when an
engine answers but not to you, arm64 machines left without emulation, runs sharing one engine (flock),
the engine stopped (SIGKILL if it must), half-built files removed. Building the image and running the
engine is `make invoke-check`'s, in CI."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "lambda_standin.sh"
NO_ENGINE = (
    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
)
DENIED = (
    "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"
)


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    """A folder put first on PATH: fake commands go there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    _command(folder, "iptables", "exit 1")  # nothing to check, add or delete here
    return folder


def _command(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)
    return path


def _env(tmp_path: Path, fake: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PHOTOVEIL_LAMBDA_STANDIN")}
    return env | {"PATH": f"{fake}:{env['PATH']}", "PHOTOVEIL_CACHE": str(tmp_path / "cache")} | extra


def _bash(snippet: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = ["bash", "-c", f'source "{SCRIPT}"\n{snippet}']
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _root(
    tmp_path: Path, *, packages: tuple[str, ...] = (), units: tuple[str, ...] = (), **flags: bool
) -> Path:
    """A machine's files as refusal() reads them: Debian unless debian=False; dpkg's status with PACKAGES
    installed; docker.service at each of UNITS (docker.io's if docker_io_unit); systemd running if systemd."""
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    if flags.get("debian", True):
        (root / "etc").mkdir()
        (root / "etc/debian_version").write_text("12.11\n")
    status = "".join(f"Package: {p}\nStatus: install ok installed\n\n" for p in ("bash", *packages))
    (root / "var/lib/dpkg/status").write_text(status)
    for unit in units:
        (root / unit.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (root / unit.lstrip("/")).write_text("[Unit]\n")
    if flags.get("docker_io_unit"):
        (root / "var/lib/dpkg/info/docker.io.list").write_text("/lib/systemd/system/docker.service\n")
    if flags.get("systemd"):
        (root / "run/systemd/system").mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    ("machine", "refused"),
    [
        ({}, None),
        ({"debian": False}, "not Debian"),
        ({"packages": ("docker-ce",)}, "docker-ce is installed"),
        ({"packages": ("containerd.io",)}, "containerd.io is installed"),
        ({"packages": ("docker-desktop",)}, "docker-desktop is installed"),
        ({"units": ("/etc/systemd/system/docker.service",)}, "another Docker's"),
        # Debian's docker.io, installed by an earlier run on a machine with no systemd: its unit is inert.
        ({"units": ("/lib/systemd/system/docker.service",), "docker_io_unit": True}, None),
        (
            {"units": ("/lib/systemd/system/docker.service",), "docker_io_unit": True, "systemd": True},
            "systemctl start docker",
        ),
    ],
)
def test_the_stand_in_refuses_a_machine_whose_docker_is_someone_elses(
    tmp_path: Path, fake: Path, machine: dict, refused: str | None
) -> None:
    root = _root(tmp_path, **machine)
    said = _bash("refusal", _env(tmp_path, fake, STANDIN_ROOT=str(root))).stdout.strip()
    assert (said == "") if refused is None else (refused in said), said


@pytest.mark.parametrize(
    ("docker", "opt_in", "machine", "code", "said"),
    [
        (f"echo '{NO_ENGINE}' >&2; exit 1", {}, {}, 3, "PHOTOVEIL_LAMBDA_STANDIN=1"),
        (f"echo '{NO_ENGINE}' >&2; exit 1", {"PHOTOVEIL_LAMBDA_STANDIN": "1"}, {}, 0, ""),
        (f"echo '{NO_ENGINE}' >&2; exit 1", {"CI": "true"}, {}, 0, ""),
        (f"echo '{NO_ENGINE}' >&2; exit 1", {"CI": "true"}, {"packages": ("docker-ce",)}, 3, "docker-ce"),
        (f"echo '{DENIED}' >&2; exit 1", {"CI": "true"}, {}, 3, "docker group"),
        ("exit 0", {"CI": "true"}, {}, 1, ""),  # an engine answers: SAM uses it
    ],
    ids=["no-engine", "opted-in", "ci", "docker-ce", "denied", "engine"],
)
def test_the_stand_in_is_wanted_only_where_asked_for_and_no_engine_answers(
    tmp_path: Path, fake: Path, docker: str, opt_in: dict, machine: dict, code: int, said: str
) -> None:
    _command(fake, "docker", docker)
    env = _env(tmp_path, fake, STANDIN_ROOT=str(_root(tmp_path, **machine)), **opt_in)
    done = _bash("wanted", env)
    assert done.returncode == code, done.stderr
    assert said in done.stderr


@pytest.mark.parametrize(("machine", "emulated"), [("aarch64", False), ("arm64", False), ("x86_64", True)])
def test_an_arm64_machine_gets_no_emulation(tmp_path: Path, fake: Path, machine: str, emulated: bool) -> None:
    # Registering qemu-aarch64 on an arm64 machine would hand every native program to it.
    _command(fake, "uname", f"echo {machine}")
    stubs = "fetch_qemu() { echo FETCHED; }; register_qemu() { echo REGISTERED; }"
    out = _bash(f"{stubs}; ensure_emulation", _env(tmp_path, fake)).stdout
    assert ("REGISTERED" in out) is emulated and ("FETCHED" in out) is emulated


@pytest.fixture
def fake_dockerd(tmp_path: Path, fake: Path) -> Iterator[int]:
    """A process named dockerd, not this test's child (as `ensure`'s is not the script's: setsid --fork),
    its pid where `ensure` has dockerd write it."""
    pid_file = tmp_path / "cache/lambda/dockerd.pid"
    pid_file.parent.mkdir(parents=True)
    body = f'echo $$ >"{pid_file}"\n[[ ${{1:-}} == stubborn ]] && trap "" TERM\nwhile :; do sleep 0.1; done'
    path = _command(fake, "dockerd", body)
    subprocess.run(["setsid", "--fork", str(path), os.environ.get("FAKE_DOCKERD_MODE", "")], check=True)
    deadline = time.monotonic() + 5
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    yield pid
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ended(pid: int, within_s: float = 5) -> bool:
    deadline = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_engine_is_left_to_a_run_that_still_uses_it(tmp_path: Path, fake: Path, fake_dockerd) -> None:
    with (tmp_path / "cache/lambda/run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # another run, using the engine
        done = _bash("stop_unless_used", _env(tmp_path, fake))
        assert "another run uses it" in done.stdout, done.stderr
        assert not _ended(fake_dockerd, within_s=1)
    # That run over, its own stop finds no other.
    done = _bash("stop_unless_used", _env(tmp_path, fake))
    assert "stopped dockerd" in done.stdout, done.stderr
    assert _ended(fake_dockerd)
    assert not (tmp_path / "cache/lambda/dockerd.pid").exists()


def test_an_engine_that_ignores_sigterm_is_killed(
    tmp_path: Path, fake: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("FAKE_DOCKERD_MODE", "stubborn")
    dockerd = request.getfixturevalue("fake_dockerd")
    done = _bash("STOP_GRACE_S=1; stop_unless_used", _env(tmp_path, fake), timeout=30)
    assert "SIGKILL" in done.stderr
    assert _ended(dockerd)


def test_a_failed_debootstrap_leaves_no_half_made_base(tmp_path: Path, fake: Path) -> None:
    cache = tmp_path / "cache/lambda"
    snippet = 'run_debootstrap() { touch "$1/half"; return 1; }\ntrap on_exit EXIT\nmkdir -p "$CACHE"\n'
    done = _bash(snippet + 'build_base "$CACHE/base-x.tar"', _env(tmp_path, fake))
    assert done.returncode != 0
    assert sorted(path.name for path in cache.iterdir()) == []


def test_a_pyproject_without_a_boto3_pin_stops_the_script(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPT, tmp_path / "scripts")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["requests==2"]\n')
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts/lambda_standin.sh"), "wanted"], capture_output=True, text=True
    )
    assert done.returncode != 0 and "no boto3== pin" in done.stderr


CHILD = """
import os, signal, sys, time
def target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""  # listdir's own
locks = [target(fd) for fd in os.listdir("/proc/self/fd")]
print("locks held:", [path for path in locks if path.endswith(".lock")], flush=True)
print("skip pull:", os.environ.get("SAM_SKIP_PULL_IMAGE"), flush=True)
signal.signal(signal.SIGTERM, lambda *_: (print("undone", flush=True), sys.exit(7)))
print("ready", flush=True)
time.sleep(30)
"""


def test_a_run_passes_sigterm_on_then_stops_the_engine(tmp_path: Path, fake: Path) -> None:
    snippet = (
        "ensure() { echo ENSURED; }\nstop_dockerd() { echo STOPPED; }\n"
        f'run_with_standin "{sys.executable}" -c "$CHILD"'
    )
    wrapper = subprocess.Popen(
        ["bash", "-c", f'source "{SCRIPT}"\n{snippet}'],
        env=_env(tmp_path, fake, CHILD=CHILD),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert wrapper.stdout is not None
    lines = []
    while not lines or lines[-1] != "ready\n":
        lines.append(wrapper.stdout.readline())
        assert lines[-1], wrapper.stderr.read() if wrapper.stderr else ""
    wrapper.send_signal(signal.SIGTERM)
    out, _ = wrapper.communicate(timeout=30)
    said = "".join(lines) + out
    assert wrapper.returncode == 7, said
    assert "locks held: []" in said  # nothing the run leaves behind may keep the engine from stopping
    assert "skip pull: 1" in said  # the stand-in is the image: SAM must not look for it in a registry
    assert "undone" in said and said.index("undone") < said.index("STOPPED")


def test_a_failed_setup_still_stops_the_engine_it_started(tmp_path: Path, fake: Path) -> None:
    # The setup lock is still held when the failure ends the script: stopping must not wait for it.
    snippet = "ensure() { return 1; }\nstop_dockerd() { echo STOPPED; }\nrun_with_standin true"
    done = _bash(snippet, _env(tmp_path, fake), timeout=20)
    assert done.returncode != 0 and "STOPPED" in done.stdout
