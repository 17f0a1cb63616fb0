"""The pure parts of `make invoke` (photoveil_dev.invoke): what the invoked functions are given, the events'
names, the emulated timeouts, the forward to the local stack, the stand-in image's archive. Running the
functions in containers is `make invoke-check`'s (it needs Docker); nothing here does."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from photoveil.adapters import clients
from photoveil.local.account import Credentials
from photoveil.local.template import load_template, read_stack_spec
from photoveil_dev.invoke.__main__ import image_verdict, lanes, usage_error
from photoveil_dev.invoke.cases import BAD_JOB, CASES, GOOD_JOB, Case
from photoveil_dev.invoke.network import forward_rule
from photoveil_dev.invoke.queues import object_keys
from photoveil_dev.invoke.runner import Runner
from photoveil_dev.invoke.sam import (
    declared_variables,
    emulated_template,
    env_vars,
    function_timeout,
    run_within,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "template.yaml"
EVENTS = REPO / "events"
ENDPOINT = "http://172.17.0.1:4566"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return json.loads(json.dumps(load_template(TEMPLATE)))


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    """The environment the local stack gives its functions (names resolved for its account)."""
    return read_stack_spec(TEMPLATE).env


def _env_file(template: dict[str, Any], stack_env: dict[str, str]) -> dict[str, str]:
    return env_vars(declared_variables(template), stack_env, ENDPOINT)["Parameters"]


def test_the_env_file_sets_every_declared_variable_and_only_those(template, stack_env) -> None:
    values = _env_file(template, stack_env)
    declared = declared_variables(template)
    # `--env-vars` sets only declared variables: one the template lacks would silently do nothing.
    assert set(values) <= declared
    # Every declared one is set (POWERTOOLS_* keep the template's own): none is left to SAM, which would
    # give a resource's logical id (UPLOADS_BUCKET=UploadsBucket) or the worker's MailConfigurationSet.
    assert {name for name in declared if not name.startswith("POWERTOOLS_")} == set(values)
    assert values["MAIL_CONFIGURATION_SET"] == "" and values["DISTRIBUTION_ID"] == ""
    assert values[clients.ENDPOINT_VARIABLE] == ENDPOINT


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _s3_records(name: str) -> list[dict[str, Any]]:
    records = []
    for record in _event(name)["Records"]:
        body = json.loads(record["body"])
        body = json.loads(body["Message"]) if body.get("Type") == "Notification" else body
        records += body.get("Records", [])
    return records


@pytest.mark.parametrize(
    ("event", "variable"),
    [
        ("sqs_s3_put.json", "UPLOADS_BUCKET"),
        ("sqs_batch_one_bad.json", "UPLOADS_BUCKET"),
        ("sqs_published_raw.json", "BLURRED_BUCKET"),
        ("sqs_published_sns_envelope.json", "BLURRED_BUCKET"),
    ],
)
def test_the_events_name_the_buckets_the_invoked_function_is_given(
    template, stack_env, event, variable
) -> None:
    # Else the function ignores the event as another bucket's, as it did with SAM's logical ids.
    buckets = {record["s3"]["bucket"]["name"] for record in _s3_records(event)}
    assert buckets == {_env_file(template, stack_env)[variable]}


def test_the_events_name_the_local_stacks_queues_and_topics() -> None:
    spec = read_stack_spec(TEMPLATE, {"SenderEmail": "photoveil@localhost"})  # as the local stack starts
    queues = {queue.arn for queue in spec.queues.values()}
    topics = {topic.arn for topic in spec.topics.values()}
    named = 0
    for path in sorted(EVENTS.glob("*.json")):
        for record in _event(path.name).get("Records", []):
            if "eventSourceARN" in record:
                assert record["eventSourceARN"] in queues, path.name
                envelope = json.loads(record["body"])
                if envelope.get("Type") == "Notification":
                    assert envelope["TopicArn"] in topics, path.name
            if "Sns" in record:
                assert record["Sns"]["TopicArn"] in topics, path.name
            named += 1
    assert named >= 7  # the SQS and SNS records of events/


def test_under_emulation_fixed_timeouts_are_longer_and_the_workers_is_left_to_its_parameter(template) -> None:
    emulated = emulated_template(template, factor=10)
    resources, original = emulated["Resources"], template["Resources"]
    assert (
        resources["ApiFunction"]["Properties"]["Timeout"]
        == 10 * original["ApiFunction"]["Properties"]["Timeout"]
    )
    assert resources["BlurFunction"]["Properties"]["Timeout"] == {"Ref": "WorkerTimeout"}
    assert resources["SiteContentFunction"]["Properties"]["Timeout"] <= 900  # Lambda's maximum
    assert template["Resources"]["ApiFunction"]["Properties"]["Timeout"] == 10  # the original is untouched


def test_the_forward_sends_only_the_stacks_port_on_the_bridge_to_loopback() -> None:
    rule = forward_rule("docker0", "172.17.0.1", 4566)
    assert rule == [
        "-i", "docker0", "-d", "172.17.0.1", "-p", "tcp", "--dport", "4566",
        "-j", "DNAT", "--to-destination", "127.0.0.1:4566",
    ]  # fmt: skip


def _s3_body(bucket: str, key: str) -> str:
    return json.dumps({"Records": [{"s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]})


def test_the_message_about_a_key_is_found_by_its_decoded_key() -> None:
    assert object_keys(_s3_body("b", "uploads%2Fab+c")) == [("b", "uploads/ab c")]
    envelope = json.dumps({"Type": "Notification", "Message": _s3_body("b", "p/x.jpg")})
    assert object_keys(envelope) == [("b", "p/x.jpg")]  # a subscription without raw delivery
    assert object_keys('{"Event": "s3:TestEvent"}') == [] and object_keys("not json") == []


def test_role_sessions_survive_stack_json() -> None:
    keys = Credentials("ASIA", "secret", "token")
    assert Credentials.from_json(json.loads(json.dumps(keys.as_json()))) == keys
    admin = Credentials("AKIA", "secret")
    assert admin.as_json() == {"accessKeyId": "AKIA", "secretAccessKey": "secret"}


# ---------------------------------------------------------------- which checks run, and where
def test_every_events_file_has_its_case_and_every_case_its_file() -> None:
    # A file added to events/ without a case would run nowhere under `make invoke-check`.
    assert sorted(case.event for case in CASES) == sorted(path.name for path in EVENTS.glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.event)
def test_a_case_names_the_fixed_jobs_its_event_names(case: Case) -> None:
    # Cases that remake the same job share a lane (run one after another): the lanes come from this field.
    text = (EVENTS / case.event).read_text()
    assert {job for job in (GOOD_JOB, BAD_JOB) if job in text} == set(case.jobs)


def test_cases_that_remake_a_job_share_the_first_lane_and_the_photo_leads_the_second() -> None:
    checks = [(case, (case.event, lambda: "")) for case in CASES]
    end_to_end = ("photo", lambda: "")
    first, second = lanes(checks, end_to_end)
    same_job = [case.event for case in CASES if case.jobs]
    assert len(same_job) >= 3
    assert [label for label, _ in first[: len(same_job)]] == same_job
    assert second[0] is end_to_end
    assert sorted(label for label, _ in first + second[1:]) == sorted(case.event for case in CASES)


@pytest.mark.parametrize(
    ("fn", "event", "wrong"),
    [
        ("", "", "needs EVENT"),
        ("BlurFunction", "", "needs EVENT"),
        ("", "events/no_such.json", "no such event file"),
        ("", "pyproject.toml", "FN=<function>"),
        ("", "events/sqs_s3_put.json", None),  # the file's own function
        ("BlurFunction", "events/sqs_s3_put.json", None),
        ("ApiFunction", "pyproject.toml", None),  # the user's own event: invoked, unchecked
    ],
)
def test_make_invoke_says_what_is_wrong_with_fn_and_event(fn: str, event: str, wrong: str | None) -> None:
    args = argparse.Namespace(command="event", function=fn, event=event and str(REPO / event))
    refusal = usage_error(args)
    assert (refusal is None) if wrong is None else (wrong in (refusal or ""))


def test_the_checks_fail_unless_the_functions_ran_as_arm64() -> None:
    assert image_verdict("arm64", "aarch64")[0]
    assert not image_verdict("amd64", "x86_64")[0]
    assert not image_verdict("arm64", "x86_64")[0]  # an arm64 label on an image that runs x86 programs
    assert not image_verdict("", "")[0]


# ---------------------------------------------------------------- how long an invocation may take
def test_an_invocation_may_take_its_functions_timeout_as_sam_runs_it(template) -> None:
    assert function_timeout(template, "ApiFunction", {}) == 10
    assert function_timeout(template, "BlurFunction", {}) == 30  # WorkerTimeout's default
    assert function_timeout(template, "BlurFunction", {"WorkerTimeout": "300"}) == 300
    emulated = emulated_template(template, factor=10)
    assert function_timeout(emulated, "ApiFunction", {}) == 100


def test_under_emulation_the_containers_are_given_qemus_cpu(template) -> None:
    variables = emulated_template(template, qemu_cpu="neoverse-n1")["Globals"]["Function"]["Environment"]
    assert variables["Variables"]["QEMU_CPU"] == "neoverse-n1"
    assert "QEMU_CPU" not in json.dumps(emulated_template(template, qemu_cpu=""))


def test_a_command_over_its_time_limit_is_interrupted_then_given_up() -> None:
    # SIGINT first: SAM removes its container on it.
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: (print('interrupted', flush=True), sys.exit(3)))\n"
        "time.sleep(60)\n"
    )
    started = time.monotonic()
    done = run_within([sys.executable, "-c", code], env=dict(os.environ), limit_s=1, grace_s=10)
    assert time.monotonic() - started < 10
    assert done.returncode is None and "interrupted" in done.stdout


# ---------------------------------------------------------------- a check that breaks fails alone
def test_an_unexpected_error_fails_its_check_and_not_the_run(capsys) -> None:
    runner = Runner(stack=None, invoker=None, variants_queue="VariantsQueue")  # type: ignore[arg-type]

    def broken() -> str:
        return {}["statusCode"]

    assert runner.run("a check", broken) is False
    assert runner.run("the next", lambda: "fine") is True
    out = capsys.readouterr().out
    assert "FAIL a check: KeyError: 'statusCode'" in out and "ok   the next: fine" in out


def test_sigterm_ends_the_run_through_its_finally_blocks() -> None:
    # Python's default SIGTERM skips `finally`: the forward's rules and the stack would be left behind.
    code = (
        "import os, signal, time\n"
        "from photoveil_dev.invoke.__main__ import main\n"
        "main(['--preflight', 'check'])\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(10)\n"
        "finally:\n"
        "    print('undone', flush=True)\n"
    )
    env = dict(os.environ, PHOTOVEIL_CONTAINER_HOST="host.example")  # no root needed for the preflight
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (143, "undone"), done.stderr
