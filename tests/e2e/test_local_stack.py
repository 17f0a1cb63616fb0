"""The local stack end to end over real HTTP: presign -> multipart POST to moto -> worker -> status -> /p/.

Everything a user meets is real: the `photoveil local` command, moto's S3/SQS/DynamoDB/SES over HTTP,
the real handlers, the CenterFace detector and a real photo with a face.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Where the astronaut's face is (checked against CenterFace's box on this image: ~x 175-265, y 75-195).
FACE = (slice(80, 190), slice(175, 260))  # rows, cols well inside the face
BACKGROUND = (slice(400, 500), slice(20, 120))  # bottom-left: suit and flag, far from any face
JOB_TIMEOUT_S = 60  # generous for a shared 2-core machine; not a speed assertion


def upload(stack: Any, data: bytes, content_type: str, email: str | None = None) -> str:
    """The browser's flow: POST /uploads, then the multipart POST of the form fields + file to the URL."""
    body: dict[str, Any] = {"contentType": content_type, "size": len(data)}
    if email:
        body["email"] = email
    created = requests.post(f"{stack.url}/uploads", json=body, timeout=10)
    assert created.status_code == 201, created.text
    job = created.json()
    form = job["upload"]
    # The page posts from its own origin: the preflight must pass the bucket's CORS rule.
    preflight = requests.options(
        form["url"], timeout=10, headers={"Origin": stack.url, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == stack.url
    posted = requests.post(
        form["url"],
        data=form["fields"],
        files={"file": ("photo", data, content_type)},
        headers={"Origin": stack.url},
        timeout=30,
    )
    assert posted.status_code in (200, 201, 204), posted.text
    assert posted.headers.get("Access-Control-Allow-Origin") == stack.url
    return job["jobId"]


def wait_for_job(stack: Any, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        status = requests.get(f"{stack.url}/jobs/{job_id}", timeout=10).json()
        if status["status"] in ("done", "failed"):
            return status
        if time.monotonic() > deadline:
            pytest.fail(
                f"job {job_id} still {status['status']} after {JOB_TIMEOUT_S} s:\n{stack.log_text()[-3000:]}"
            )
        time.sleep(0.2)


def sharpness(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def test_config_json_points_the_page_at_the_local_api(local_stack: Any) -> None:
    config = requests.get(f"{local_stack.url}/config.json", timeout=10).json()
    assert config == {"apiUrl": local_stack.url}
    assert requests.get(f"{local_stack.url}/", timeout=10).status_code == 200


def test_photo_comes_back_blurred_and_the_original_is_gone(local_stack: Any, astronaut_path: Path) -> None:
    original = astronaut_path.read_bytes()
    job_id = upload(local_stack, original, "image/png", email="someone@example.com")

    status = wait_for_job(local_stack, job_id)

    assert status["status"] == "done", status
    assert status["faces"] == 1
    assert status["photoUrl"] == f"{local_stack.url}/p/{job_id}.jpg"
    photo = requests.get(status["photoUrl"], timeout=10)
    assert photo.status_code == 200
    assert photo.headers["Content-Type"] == "image/jpeg"
    unchanged = requests.get(status["photoUrl"], headers={"If-None-Match": photo.headers["ETag"]}, timeout=10)
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    blurred = cv2.imdecode(np.frombuffer(photo.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    source = cv2.imdecode(np.frombuffer(original, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert blurred.shape == source.shape
    # The face lost its detail; the background kept it (only JPEG noise).
    assert sharpness(blurred[FACE]) < 0.2 * sharpness(source[FACE])
    assert sharpness(blurred[BACKGROUND]) > 0.5 * sharpness(source[BACKGROUND])
    diff = np.abs(blurred.astype(int) - source.astype(int))
    assert diff[FACE].mean() > 3 * diff[BACKGROUND].mean()

    s3 = local_stack.boto3_client("s3")
    state = local_stack.state()
    left = s3.list_objects_v2(Bucket=state["uploadsBucket"], Prefix="uploads/").get("Contents", [])
    assert f"uploads/{job_id}" not in [o["Key"] for o in left]
    emails = requests.get(f"{local_stack.url}/outbox.json", timeout=10).json()["emails"]
    # The email links the photo's page (the same after edits), not the JPEG.
    assert status["viewUrl"] == f"{local_stack.url}/view.html#{job_id}"
    assert any(status["viewUrl"] in (e["body"] or "") and e["to"] == ["someone@example.com"] for e in emails)


def test_the_site_gets_the_security_headers_cloudfront_adds(local_stack: Any) -> None:
    from photoveil.local.template import load_template

    template_path = Path(__file__).resolve().parents[2] / "template.yaml"
    policy = load_template(template_path)["Resources"]["SiteHeadersPolicy"]["Properties"]
    deployed = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    deployed_csp = deployed["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"][0]
    page = requests.get(f"{local_stack.url}/", timeout=10)

    assert page.headers["Referrer-Policy"] == deployed["ReferrerPolicy"]["ReferrerPolicy"]
    assert page.headers["X-Frame-Options"] == deployed["FrameOptions"]["FrameOption"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    # Every directive of the deployed CSP, with its AWS origins (execute-api, S3) swapped for the local
    # ones: the API is the page's own origin here, and uploads go to moto.
    local = dict(d.strip().split(" ", 1) for d in page.headers["Content-Security-Policy"].split(";"))
    for directive in deployed_csp.split(";"):
        name, *sources = directive.split()
        expected = [s for s in sources if not s.startswith("https://")]
        if any(s.startswith("https://") for s in sources):
            expected.append(local_stack.moto)
        assert local[name].split() == expected, name
    assert len(local) == len(deployed_csp.split(";"))
    # And the page's own policy, as the site publisher writes it (naming the API, here the page's origin).
    policy = f"connect-src &#x27;self&#x27; {local_stack.moto}"
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    for name in ("", "view.html"):
        text = requests.get(f"{local_stack.url}/{name}", timeout=10).text
        assert meta in text and text.index(meta) < text.index("<script"), name


def test_missing_photo_is_404_on_the_cdn_path_with_a_page_that_says_it_is_gone(local_stack: Any) -> None:
    response = requests.get(f"{local_stack.url}/p/{'0' * 32}.jpg", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "This photo is gone" in response.text and "<Error>" not in response.text


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/uploads"), ("PATCH", f"/jobs/{'a' * 32}"), ("POST", "/nope")]
)
def test_a_method_or_path_the_template_does_not_route_is_404(
    local_stack: Any, method: str, path: str
) -> None:
    # What HTTP API answers: the function never sees the request.
    response = requests.request(method, f"{local_stack.url}{path}", json={}, timeout=10)
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})


def test_the_cors_preflight_is_answered_from_the_template(local_stack: Any) -> None:
    from photoveil.local.template import load_template

    api = load_template(REPO / "template.yaml")["Resources"]["HttpApi"]["Properties"]
    cors = api["CorsConfiguration"]["Fn::If"][2]  # ExtraAllowedOrigins is empty by default
    preflight = requests.options(
        f"{local_stack.url}/uploads",
        headers={"Origin": local_stack.url, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == local_stack.url
    assert preflight.headers["Access-Control-Allow-Methods"] == ",".join(cors["AllowMethods"])
    assert preflight.headers["Access-Control-Allow-Headers"] == ",".join(cors["AllowHeaders"])
    assert preflight.headers["Access-Control-Max-Age"] == str(cors["MaxAge"])


def test_a_crashing_function_is_a_500_from_the_gateway(local_stack: Any) -> None:
    requests.delete(f"{local_stack.url}/__faults", timeout=10)
    armed = requests.post(
        f"{local_stack.url}/__faults", json={"operation": "dynamodb.PutItem", "kind": "crash"}, timeout=10
    )
    assert armed.status_code == 200, armed.text

    response = requests.post(
        f"{local_stack.url}/uploads", json={"contentType": "image/png", "size": 10}, timeout=10
    )

    assert (response.status_code, response.json()) == (500, {"message": "Internal Server Error"})
    assert requests.get(f"{local_stack.url}/__faults", timeout=10).json()["armed"] == []


def test_32_clients_at_once_are_all_served(local_stack: Any) -> None:
    # More clients than a listen backlog of 5 holds, all at the same moment: none may be reset.
    clients, requests_each = 32, 3
    start = threading.Barrier(clients)

    def create_uploads(_: int) -> list[int | str]:
        start.wait(timeout=30)
        statuses: list[int | str] = []
        for _ in range(requests_each):
            try:
                response = requests.post(
                    f"{local_stack.url}/uploads", json={"contentType": "image/jpeg", "size": 1000}, timeout=30
                )
                statuses.append(response.status_code)
            except requests.ConnectionError as error:
                statuses.append(f"{type(error).__name__}: {error}")
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        statuses = [status for client in pool.map(create_uploads, range(clients)) for status in client]

    assert [s for s in statuses if s != 201] == []


def test_concurrent_requests_never_see_each_other_s_headers(local_stack: Any) -> None:
    # Owner requests (with a token) racing status polls (without): each must be answered on its own
    # headers. The API's handler keeps the request in module state, as one Lambda environment may.
    job_id, clients, rounds = "0" * 32, 16, 10
    start = threading.Barrier(clients)

    def requests_of(client: int) -> list[tuple[str, int]]:
        start.wait(timeout=30)
        answers = []
        for _ in range(rounds):
            if client % 2:
                response = requests.get(f"{local_stack.url}/jobs/{job_id}", timeout=30)
                answers.append(("GET", response.status_code))
            else:
                response = requests.post(
                    f"{local_stack.url}/jobs/{job_id}/regions",
                    json={"regions": []},
                    headers={"Authorization": "Bearer " + "t" * 43},
                    timeout=30,
                )
                answers.append(("POST", response.status_code))
        return answers

    with ThreadPoolExecutor(clients) as pool:
        answers = [answer for client in pool.map(requests_of, range(clients)) for answer in client]

    # No such photo, for both; a 401 would be a POST answered on a poll's (token-less) headers.
    assert [a for a in answers if a[1] != 404] == []


def test_a_file_that_is_not_an_image_fails_with_a_clear_code(local_stack: Any) -> None:
    job_id = upload(local_stack, b"this is a text file, not a photo\n" * 20, "image/jpeg")

    status = wait_for_job(local_stack, job_id)

    assert status["status"] == "failed"
    assert status["error"]["code"] == "unsupported_format"
    assert status["error"]["message"]
    assert requests.get(f"{local_stack.url}/p/{job_id}.jpg", timeout=10).status_code == 404


@pytest.mark.parametrize("kind", ["crash", "error"])
def test_a_worker_failing_mid_photo_does_not_lose_it(
    local_stack: Any, astronaut_path: Path, kind: str
) -> None:
    # crash: the invocation dies (nothing deleted, the message returns after the visibility timeout);
    # error: the handler reports the record in batchItemFailures. Either way the photo is retried.
    requests.delete(f"{local_stack.url}/__faults", timeout=10)
    armed = requests.post(
        f"{local_stack.url}/__faults",
        timeout=10,
        json={"operation": "s3.GetObject", "kind": kind, "count": 1},
    )
    assert armed.status_code == 200, armed.text

    job_id = upload(local_stack, astronaut_path.read_bytes(), "image/png")
    status = wait_for_job(local_stack, job_id)

    faults = requests.get(f"{local_stack.url}/__faults", timeout=10).json()
    assert faults["fired"][-1] == {"operation": "s3.GetObject", "kind": kind}
    assert faults["armed"] == []
    assert status["status"] == "done", status
    assert requests.get(status["photoUrl"], timeout=10).status_code == 200
    dlq = local_stack.boto3_client("sqs").get_queue_attributes(
        QueueUrl=local_stack.state()["dlqUrl"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert f"job {job_id}: received by" in local_stack.log_text()


@pytest.mark.parametrize("problem", ["missing", "unreadable"])
def test_a_template_it_cannot_read_is_a_clear_error(launcher: Any, tmp_path: Path, problem: str) -> None:
    template = tmp_path / "template.yaml"
    if problem == "unreadable":
        template.write_text("Resources:\n  Queue: [unclosed\n")
    result = subprocess.run(
        [*launcher.command(), "local", "--port", "0", "--template", str(template)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 5
    assert f"template {template}" in result.stderr


def test_a_taken_port_is_a_clear_error(launcher: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*launcher.command(), "local", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 3
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


def _port_is_free(port: int) -> bool:
    """True when nothing listens on the port (as a restarted server would bind it: SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_ctrl_c_stops_everything_and_frees_the_ports(launcher: Any, tmp_path: Path) -> None:
    stack = launcher.start(["--workers", "1"], log=tmp_path / "stack.log", data_dir=tmp_path / "data")
    port = int(stack.url.rsplit(":", 1)[1])
    moto_port = int(stack.moto.rsplit(":", 1)[1])
    assert (tmp_path / "data" / "stack.json").exists()

    assert launcher.stop(stack) == 0

    assert _port_is_free(port) and _port_is_free(moto_port)
    assert not (tmp_path / "data" / "stack.json").exists()
    assert "stopped" in stack.log_text()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{stack.url}/config.json", timeout=2)


def test_redrive_moves_dlq_messages_back(local_stack: Any, launcher: Any) -> None:
    sqs = local_stack.boto3_client("sqs")
    state = local_stack.state()
    # A message that is not an S3 event: the worker acknowledges it, so it cannot loop.
    sqs.send_message(QueueUrl=state["dlqUrl"], MessageBody=json.dumps({"note": "redrive me"}))

    result = subprocess.run(
        [*launcher.command(), "local", "redrive", "--data-dir", str(local_stack.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert "moved 1 message(s)" in result.stdout
    left = sqs.get_queue_attributes(QueueUrl=state["dlqUrl"], AttributeNames=["ApproximateNumberOfMessages"])
    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_redrive_without_a_running_stack_says_so(launcher: Any, tmp_path: Path) -> None:
    result = subprocess.run(
        [*launcher.command(), "local", "redrive", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 4
    assert "no running local stack" in result.stderr


def test_the_emulated_resources_have_the_template_settings(local_stack: Any) -> None:
    from photoveil.local.template import load_template

    template_path = Path(__file__).resolve().parents[2] / "template.yaml"
    if not template_path.exists():
        pytest.skip("template.yaml is not there yet")
    resources = load_template(template_path)["Resources"]
    queue_props = resources["BlurQueue"]["Properties"]
    state = local_stack.state()
    sqs, s3 = local_stack.boto3_client("sqs"), local_stack.boto3_client("s3")

    queue = sqs.get_queue_attributes(QueueUrl=state["queueUrl"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=state["dlqUrl"], AttributeNames=["All"])["Attributes"]
    assert (
        json.loads(queue["RedrivePolicy"])["maxReceiveCount"]
        == queue_props["RedrivePolicy"]["maxReceiveCount"]
    )
    assert json.loads(queue["RedrivePolicy"])["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(queue["MessageRetentionPeriod"]) == queue_props["MessageRetentionPeriod"]
    dlq_props = resources["BlurDLQ"]["Properties"]
    assert int(dlq["MessageRetentionPeriod"]) == dlq_props["MessageRetentionPeriod"]

    uploads_props = resources["UploadsBucket"]["Properties"]
    notification = s3.get_bucket_notification_configuration(Bucket=state["uploadsBucket"])
    [queue_config] = notification["QueueConfigurations"]
    assert queue_config["QueueArn"] == queue["QueueArn"]
    [cfn_queue_config] = uploads_props["NotificationConfiguration"]["QueueConfigurations"]
    [cfn_rule] = cfn_queue_config["Filter"]["S3Key"]["Rules"]
    [rule] = queue_config["Filter"]["Key"]["FilterRules"]
    assert (rule["Name"].lower(), rule["Value"]) == (cfn_rule["Name"].lower(), cfn_rule["Value"])
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=state["uploadsBucket"])["Rules"]
    cfn_days = [r["ExpirationInDays"] for r in uploads_props["LifecycleConfiguration"]["Rules"]]
    assert [r["Expiration"]["Days"] for r in lifecycle] == cfn_days
    cors = s3.get_bucket_cors(Bucket=state["uploadsBucket"])["CORSRules"]
    assert cors[0]["AllowedOrigins"] == [local_stack.url]  # the CloudFront site origin, locally

    ttl = local_stack.boto3_client("dynamodb").describe_time_to_live(TableName=state["jobsTable"])
    cfn_ttl = resources["JobsTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"]
    assert ttl["TimeToLiveDescription"]["AttributeName"] == cfn_ttl


# ---------------------------------------------------------------- IAM, enforced as on AWS
def test_only_the_stack_s_identities_are_let_in(local_stack: Any) -> None:
    from botocore.exceptions import ClientError

    from photoveil.local.account import client

    anonymous = client("s3", local_stack.moto)  # the fake keys the environment has, no IAM user's
    with pytest.raises(ClientError) as refused:
        anonymous.list_objects_v2(Bucket=local_stack.state()["uploadsBucket"])
    assert refused.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_an_upload_form_is_authorised_as_the_role_that_presigned_it(local_stack: Any) -> None:
    created = requests.post(
        f"{local_stack.url}/uploads", json={"contentType": "image/jpeg", "size": 3}, timeout=10
    ).json()
    form = created["upload"]
    tampered = {**form["fields"], "x-amz-signature": "0" * 64}
    # ApiRole may put uploads/* only; the policy's own conditions are not checked locally (nor by moto).
    elsewhere = {**form["fields"], "key": f"p/{created['jobId']}.jpg"}

    answers = [
        requests.post(form["url"], data=fields, files={"file": ("x.jpg", b"\xff\xd8\xff")}, timeout=10)
        for fields in (tampered, elsewhere)
    ]

    assert [(a.status_code, code_of(a.text)) for a in answers] == [
        (403, "SignatureDoesNotMatch"),
        (403, "AccessDenied"),
    ]
    s3, state = local_stack.boto3_client("s3"), local_stack.state()
    assert s3.list_objects_v2(Bucket=state["uploadsBucket"]).get("KeyCount", 0) == 0


def code_of(xml: str) -> str:
    return xml.split("<Code>", 1)[-1].split("</Code>", 1)[0]


@pytest.mark.parametrize(("flags", "status"), [([], 500), (["--no-iam"], 201)], ids=["enforced", "no-iam"])
def test_a_permission_the_template_lacks_is_access_denied(
    launcher: Any, tmp_path: Path, flags: list[str], status: int
) -> None:
    grant = "Action: [dynamodb:PutItem, dynamodb:GetItem, dynamodb:UpdateItem]"  # ApiRole's Jobs statement
    template = (REPO / "template.yaml").read_text()
    assert template.count(grant) == 1
    (tmp_path / "template.yaml").write_text(template.replace(grant, grant.replace("dynamodb:PutItem, ", "")))
    args = ["--workers", "1", "--template", str(tmp_path / "template.yaml"), *flags]
    stack = launcher.start(args, log=tmp_path / "log", data_dir=tmp_path)

    created = requests.post(f"{stack.url}/uploads", json={"contentType": "image/jpeg", "size": 3}, timeout=10)
    launcher.stop(stack)

    assert created.status_code == status, created.text
    denied = "AccessDenied" in stack.log_text() and "dynamodb:PutItem" in stack.log_text()
    assert denied == (status == 500)


def test_the_local_stack_enforces_the_quotas_per_client_address(launcher: Any, tmp_path: Path) -> None:
    # A deployment's code and counters; only the limit is lowered, as `sam deploy --parameter-overrides`
    # would. 127.0.0.2 is another client: the whole of 127.0.0.0/8 is loopback on Linux.
    stack = launcher.start(
        ["--workers", "1", "--parameter-overrides", "UploadsPerClientHour=2"],
        log=tmp_path / "stack.log",
        data_dir=tmp_path / "data",
    )
    address = urllib.parse.urlsplit(stack.url)

    def post_upload(source: str) -> tuple[int, str | None, dict[str, Any]]:
        connection = http.client.HTTPConnection(
            address.hostname, address.port, timeout=30, source_address=(source, 0)
        )
        body = json.dumps({"contentType": "image/jpeg", "size": 1000})
        connection.request("POST", "/uploads", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = response.status, response.getheader("Retry-After"), json.loads(response.read())
        connection.close()
        return answer

    assert [post_upload("127.0.0.1")[0] for _ in range(2)] == [201, 201]
    status, retry_after, body = post_upload("127.0.0.1")
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert retry_after is not None and 1 <= int(retry_after) <= 3600
    assert post_upload("127.0.0.2")[0] == 201
    assert launcher.stop(stack) == 0
