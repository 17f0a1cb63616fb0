"""Reports and the operator's review through the running local stack (issues 20 and 27): real HTTP from
distinct client addresses and networks (127.20.1.2, 127.20.2.1, ...: the whole of 127/8 is this machine's,
and the gateway gives the API the connection's address, as API Gateway does), the real worker moving the
photo, and the `photoveil admin` command.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from test_local_stack import upload, wait_for_job

from conftest import REPO, photoveil_command  # the e2e files share their helpers by module name
from photoveil.local.iam import OPERATOR_USER, read_operator_policy

pytestmark = pytest.mark.e2e
WAIT_S = 30


def report_from(stack: Any, address: str, job_id: str, reason: str = "violence") -> int:
    """POST a report from ADDRESS (a loopback address this machine answers on); the HTTP status."""
    parts = urlsplit(stack.url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(address, 0)
    )
    try:
        body = json.dumps({"reason": reason, "note": f"from {address}"})
        connection.request("POST", f"/jobs/{job_id}/report", body, {"Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def http_status(url: str) -> int:
    return requests.get(url, timeout=10).status_code


def eventually(check: Any, what: str, stack: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {WAIT_S} s:\n{stack.log_tail()}")
        time.sleep(0.2)


def admin(stack: Any, *args: str) -> subprocess.CompletedProcess[str]:
    """`photoveil admin ARGS` as an operator runs it, from a script (stdin is not a terminal)."""
    command = [*photoveil_command(), "admin", "--data-dir", str(stack.data_dir), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def job_status(stack: Any, job_id: str) -> str:
    return str(requests.get(f"{stack.url}/jobs/{job_id}", timeout=10).json()["status"])


@pytest.fixture
def published(local_stack: Any, astronaut_path: Path) -> tuple[str, str]:
    job_id = upload(local_stack, astronaut_path.read_bytes(), "image/png")
    status = wait_for_job(local_stack, job_id)
    assert status["status"] == "done", status
    return job_id, status["photoUrl"]


def test_three_networks_withdraw_a_photo_one_does_not_and_restore_brings_it_back(
    local_stack: Any, published: tuple[str, str]
) -> None:
    job_id, photo_url = published
    # Three addresses of one /24 (and a repeat): recorded, one network, not enough.
    one_network = ("127.20.1.2", "127.20.1.3", "127.20.1.4", "127.20.1.2")
    assert [report_from(local_stack, a, job_id) for a in one_network] == [202] * 4
    assert job_status(local_stack, job_id) == "done" and http_status(photo_url) == 200

    assert report_from(local_stack, "127.20.2.1", job_id) == 202
    assert report_from(local_stack, "127.20.3.1", job_id, "hate") == 202  # the third /24

    assert job_status(local_stack, job_id) == "withdrawn"
    eventually(lambda: http_status(photo_url) == 404, "the worker withholding the photo", local_stack)
    outbox = requests.get(f"{local_stack.url}/outbox.json", timeout=10).json()["emails"]
    assert any(job_id in (mail["body"] or "") for mail in outbox), "the operator is told"
    listed = admin(local_stack, "reports", "--json")
    assert listed.returncode == 0, listed.stderr
    (photo,) = [p for p in json.loads(listed.stdout)["photos"] if p["jobId"] == job_id]
    assert photo["status"] == "withdrawn" and photo["reasons"] == {"violence": 4, "hate": 1}
    assert (photo["reporters"], photo["networks"]) == (5, 3)

    restored = admin(local_stack, "restore", "--yes", job_id)

    assert restored.returncode == 0, restored.stderr
    assert job_status(local_stack, job_id) == "done" and http_status(photo_url) == 200
    assert admin(local_stack, "restore", "--yes", job_id).returncode == 3  # not withdrawn any more
    # The same networks cannot withdraw it again, whichever of their addresses reports.
    again = ("127.20.1.2", "127.20.2.1", "127.20.3.1", "127.20.1.9", "127.20.2.9", "127.20.3.9")
    assert [report_from(local_stack, a, job_id) for a in again] == [202] * 6
    assert job_status(local_stack, job_id) == "done" and http_status(photo_url) == 200
    # Three networks that had not reported it can.
    assert [report_from(local_stack, a, job_id) for a in ("127.20.4.1", "127.20.5.1")] == [202] * 2
    assert job_status(local_stack, job_id) == "done"
    assert report_from(local_stack, "127.20.6.1", job_id) == 202
    assert job_status(local_stack, job_id) == "withdrawn"
    eventually(lambda: http_status(photo_url) == 404, "the worker withholding the photo again", local_stack)


def test_takedown_removes_a_photo_for_good_and_a_late_event_cannot_republish_it(
    local_stack: Any, published: tuple[str, str], astronaut_path: Path
) -> None:
    job_id, photo_url = published
    for address in ("127.21.1.5", "127.21.2.6", "127.21.3.7"):  # three networks
        assert report_from(local_stack, address, job_id) == 202
    eventually(lambda: http_status(photo_url) == 404, "the worker withholding the photo", local_stack)

    taken = admin(local_stack, "takedown", "--yes", job_id)

    assert taken.returncode == 0, taken.stderr
    assert job_status(local_stack, job_id) == "deleted"
    blurred = local_stack.state()["blurredBucket"]
    s3 = local_stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=blurred).get("Contents", []) if job_id in o["Key"]]
    assert keys == [], "nothing of it is kept, withheld or published"
    # A late S3 event: the original lands again; the worker must not publish it.
    s3.put_object(
        Bucket=local_stack.state()["uploadsBucket"], Key=f"uploads/{job_id}", Body=astronaut_path.read_bytes()
    )
    eventually(
        lambda: (
            not s3.list_objects_v2(
                Bucket=local_stack.state()["uploadsBucket"], Prefix=f"uploads/{job_id}"
            ).get("Contents")
        ),
        "the worker deleting the late original",
        local_stack,
    )
    assert http_status(photo_url) == 404 and job_status(local_stack, job_id) == "deleted"


def test_photoveil_admin_signs_with_exactly_the_operator_policy_the_docs_list(local_stack: Any) -> None:
    # Every `photoveil admin` call of these tests runs as this user, with IAM enforced: the policy
    # docs/deploy.md lists (the template's OperatorPolicy; a template test keeps the two equal) is enough.
    iam = local_stack.client("iam")
    (name,) = iam.list_user_policies(UserName=OPERATOR_USER)["PolicyNames"]
    granted = iam.get_user_policy(UserName=OPERATOR_USER, PolicyName=name)["PolicyDocument"]
    assert granted == read_operator_policy(REPO / "template.yaml")
    operator = local_stack.state()["operatorCredentials"]
    keys = iam.list_access_keys(UserName=OPERATOR_USER)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [operator["accessKeyId"]]


def test_takedown_from_a_script_without_yes_is_refused_and_changes_nothing(
    local_stack: Any, published: tuple[str, str]
) -> None:
    job_id, photo_url = published

    refused = admin(local_stack, "takedown", job_id)

    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert job_status(local_stack, job_id) == "done" and http_status(photo_url) == 200
