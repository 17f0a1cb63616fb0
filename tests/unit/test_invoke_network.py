"""The forward from the Lambda containers to the local stack (photoveil_dev.invoke.network): which rules,
how a run finds the rules of a run that died, when route_localnet is put back, and where no rule is
needed. Adding the rules needs root and Docker: `make invoke-check` does it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from photoveil_dev.invoke import network
from photoveil_dev.invoke.network import (
    DESKTOP_HOST,
    comment,
    container_host,
    forward_needs_root,
    forward_rule,
    guard_rule,
    original_localnet,
    pid_alive,
    tagged_rules,
)

# `iptables -t nat -S` and `-t raw -S` as they list the rules of two runs (pids 101, 202) among Docker's.
NAT = """-P PREROUTING ACCEPT
-N DOCKER
-A PREROUTING -i docker0 -d 172.17.0.1/32 -p tcp -m tcp --dport 4566 -m comment --comment photoveil-invoke:pid=202:localnet=1 -j DNAT --to-destination 127.0.0.1:4566
-A PREROUTING -i docker0 -d 172.17.0.1/32 -p tcp -m tcp --dport 4566 -m comment --comment photoveil-invoke:pid=101:localnet=0 -j DNAT --to-destination 127.0.0.1:4566
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -i eth0 -m comment --comment "someone else's" -j ACCEPT
"""  # noqa: E501
RAW = """-P PREROUTING ACCEPT
-A PREROUTING -d 127.0.0.0/8 -i docker0 -m comment --comment photoveil-invoke:pid=101:localnet=0 -j DROP
"""


def test_the_forward_sends_only_the_stacks_port_on_the_bridge_to_loopback() -> None:
    assert forward_rule("docker0", "172.17.0.1", 4566) == [
        "-i", "docker0", "-d", "172.17.0.1", "-p", "tcp", "--dport", "4566",
        "-j", "DNAT", "--to-destination", "127.0.0.1:4566",
    ]  # fmt: skip


def test_the_guard_drops_what_arrives_on_the_bridge_for_loopback() -> None:
    # In the raw table, before DNAT: a crafted packet's destination is 127.x there, the forward's is the
    # gateway's (the rule's effect on both is checked by hand, docs/decisions/invoke-0001).
    assert guard_rule("docker0") == ["-i", "docker0", "-d", "127.0.0.0/8", "-j", "DROP"]


def test_a_runs_rules_are_found_by_their_comment_with_its_pid_and_the_setting_it_found() -> None:
    rules = tagged_rules("nat", NAT) + tagged_rules("raw", RAW)
    assert [(rule.table, rule.pid, rule.localnet, rule.interface) for rule in rules] == [
        ("nat", 202, "1", "docker0"),
        ("nat", 101, "0", "docker0"),
        ("raw", 101, "0", "docker0"),
    ]
    # Deleted as listed: the same words after -A.
    assert rules[2].delete_command() == [
        "iptables", "-t", "raw", "-D", "PREROUTING", "-d", "127.0.0.0/8", "-i", "docker0",
        "-m", "comment", "--comment", "photoveil-invoke:pid=101:localnet=0", "-j", "DROP",
    ]  # fmt: skip
    assert comment(101, "0") == "photoveil-invoke:pid=101:localnet=0"


def test_route_localnet_is_put_back_as_the_first_run_on_record_found_it() -> None:
    rules = tagged_rules("nat", NAT)  # 202 came when 101 had set it to 1: 101 found 0
    assert original_localnet(list(reversed(rules)), "docker0", current="1") == "0"
    assert original_localnet([], "docker0", current="1") == "1"  # dockerd --userland-proxy=false's
    assert original_localnet(rules, "br-other", current="0") == "0"


def test_a_process_is_alive_until_it_is_reaped() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    assert not pid_alive(0)


def test_someone_elses_process_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(pid: int, signal: int) -> None:
        raise PermissionError(pid)

    monkeypatch.setattr(network.os, "kill", refused)  # a stack run by another user
    assert pid_alive(4242)


def test_docker_desktop_and_the_variable_need_no_rule() -> None:
    assert container_host({}, "Debian GNU/Linux 12 (bookworm)", "linux") is None
    assert container_host({}, "Docker Desktop", "linux") == DESKTOP_HOST
    assert container_host({}, "", "darwin") == DESKTOP_HOST
    variable = {network.CONTAINER_HOST_VARIABLE: "gateway.local"}
    assert container_host(variable, "Docker Desktop", "linux") == "gateway.local"


def test_without_root_on_a_linux_engine_the_run_is_refused_before_anything_starts() -> None:
    refusal = forward_needs_root({}, "Debian GNU/Linux 12 (bookworm)", euid=1000)
    assert refusal is not None and "root" in refusal
    assert forward_needs_root({}, "Debian GNU/Linux 12 (bookworm)", euid=0) is None
    assert forward_needs_root({}, "Docker Desktop", euid=1000) is None


def _stack_json(path: Path, pid: int) -> None:
    keys = {"accessKeyId": "AKIA", "secretAccessKey": "secret"}
    path.write_text(
        json.dumps(
            {
                "pid": pid, "moto": "http://127.0.0.1:4566", "uploadsBucket": "u", "blurredBucket": "b",
                "jobsTable": "j", "queueUrl": "q", "credentials": keys, "roles": {}, "environment": {},
                "workers": 0,
            }
        )
    )  # fmt: skip


def test_make_runs_stack_is_found_where_there_is_no_proc(tmp_path: Path, monkeypatch) -> None:
    # macOS has no /proc: the stack's process is asked for by signal 0.
    from photoveil_dev.invoke import __main__ as invoke_main

    gone = 2**22 + 17  # above Linux's pid_max: no /proc entry, whatever runs here
    _stack_json(tmp_path / "stack.json", gone)
    assert invoke_main._usable(tmp_path) is None
    monkeypatch.setattr(invoke_main, "pid_alive", lambda pid: pid == gone)  # as if it ran, on macOS
    found = invoke_main._usable(tmp_path)
    assert found is not None and found.pid == gone
