"""The test launcher survives a port taken between free_port() and the stack's bind (a shared machine)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoveil_dev import launcher


def test_ports_taken_meanwhile_are_chosen_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        real = launcher.free_port
        ports: Iterator[int] = iter([busy, real()])  # the first pick is taken by someone else
        monkeypatch.setattr(launcher, "free_port", lambda: next(ports, None) or real())

        stack = launcher.launch([], data_dir=tmp_path / "data", log=tmp_path / "stack.log", timeout_s=120)
        try:
            assert stack.url != f"http://127.0.0.1:{busy}"
        finally:
            stack.stop()


def test_ports_given_by_the_caller_are_not_replaced(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(launcher.PortTakenError):
            launcher.launch([], data_dir=tmp_path / "data", log=tmp_path / "log", port=busy, timeout_s=60)
