"""The pure parts of `make invoke` (photoveil_dev.invoke): what the invoked functions are given, the events'
names, the emulated timeouts, the forward to the local stack, the stand-in image's archive. Running the
functions in containers is `make invoke-check`'s (it needs Docker); nothing here does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from photoveil.adapters import clients
from photoveil.local.account import Credentials
from photoveil.local.template import load_template, read_stack_spec
from photoveil_dev.invoke.network import forward_rule
from photoveil_dev.invoke.photo import object_keys
from photoveil_dev.invoke.sam import declared_variables, emulated_template, env_vars

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


def test_the_message_about_a_key_is_found_by_its_decoded_key() -> None:
    body = json.dumps({"Records": [{"s3": {"object": {"key": "uploads%2Fab+c"}}}]})
    assert object_keys(body) == ["uploads/ab c"]
    assert object_keys('{"Event": "s3:TestEvent"}') == [] and object_keys("not json") == []


def test_role_sessions_survive_stack_json() -> None:
    keys = Credentials("ASIA", "secret", "token")
    assert Credentials.from_json(json.loads(json.dumps(keys.as_json()))) == keys
    admin = Credentials("AKIA", "secret")
    assert admin.as_json() == {"accessKeyId": "AKIA", "secretAccessKey": "secret"}
