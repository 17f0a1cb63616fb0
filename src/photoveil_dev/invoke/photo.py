"""One photo end to end, each function in its Lambda container, the local stack doing what AWS does between
them: ApiFunction presigns (201) -> the photo is POSTed to the form -> S3's notification on BlurQueue ->
BlurFunction (done, faces blurred, original deleted) -> ApiFunction GET /jobs/{id} -> the PhotoPublished
message on VariantsQueue -> VariantsFunction (variants ready) -> MailEventsFunction on a bounce of the
photo's email address (no more mail to it).

This module plays the event source mappings: it receives each message, invokes the function with the batch
event Lambda would give it, and deletes the message once the function reported no failure.
"""

from __future__ import annotations

import copy
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from photoveil.adapters.storage import blurred_key, upload_key
from photoveil.local.account import REGION
from photoveil.local.events import sqs_batch_event
from photoveil.service.quotas import recipient_key
from photoveil_dev.invoke.cases import api_body, batch_failures, expect, fresh_client, load_event, utc_now
from photoveil_dev.invoke.pixels import check_blurred
from photoveil_dev.invoke.queues import object_keys, receive
from photoveil_dev.invoke.runner import Runner

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}


def run_photo(runner: Runner, photo: Path) -> str:
    """The photo's whole way; CheckError at the first step that is not as it should be."""
    email = f"photo-{secrets.token_hex(4)}@example.com"
    fresh_client(runner.stack)  # the events' client address: its day's emails may be spent
    upload = _presign(runner, photo, email)
    job_id = upload["jobId"]
    _post_form(runner, upload, photo)
    faces = _blur(runner, job_id, photo)
    _status(runner, job_id)
    _variants(runner, job_id)
    _bounce(runner, email)
    return f"job {job_id}: {faces} face(s) blurred, published, variants ready, {email} stopped after a bounce"


def _presign(runner: Runner, photo: Path, email: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("api_create_upload.json"))
    content_type = CONTENT_TYPES[photo.suffix.lower()]
    event["body"] = json.dumps({"contentType": content_type, "size": photo.stat().st_size, "email": email})
    body = api_body(runner.invoke("ApiFunction", event, "presign"), 201)
    runner.say(f"201: job {body['jobId']}, form for {body['upload']['fields']['key']}")
    return body


def _post_form(runner: Runner, upload: dict[str, Any], photo: Path) -> None:
    """The browser's part: POST the photo to the presigned form (made in the container for the endpoint it
    sees; the same form, posted from here to the stack's own address)."""
    url = urlsplit(upload["upload"]["url"])
    local = urlunsplit(urlsplit(runner.stack.moto)[:2] + url[2:])
    content_type = CONTENT_TYPES[photo.suffix.lower()]
    files = {"file": (photo.name, photo.read_bytes(), content_type)}
    response = requests.post(local, data=upload["upload"]["fields"], files=files, timeout=30)
    expect(response.status_code in (200, 201, 204), f"form POST: {response.status_code} {response.text}")
    runner.say(f"POST {local}: {response.status_code}")


def _invoke_with_message(runner: Runner, function: str, queue_url: str, key: str, name: str) -> None:
    """FUNCTION on the message about KEY, as Lambda's event source mapping: then the message is deleted."""
    sqs = runner.stack.client("sqs")
    message = receive(sqs, queue_url, lambda m: key in [k for _, k in object_keys(m["Body"])], runner.drained)
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    invoked = runner.invoke(function, sqs_batch_event([message], queue_arn=arn, region=REGION), name)
    expect(batch_failures(invoked) == [], f"{function} reported {invoked.response}")
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    if function == "BlurFunction":
        expect('"email sent"' in invoked.logs, "the worker sent no photo-ready email")


def _blur(runner: Runner, job_id: str, photo: Path) -> int:
    stack = runner.stack
    _invoke_with_message(runner, "BlurFunction", stack.queue_url, upload_key(job_id), "blur")
    job = stack.job(job_id)
    expect(job is not None and job.status == "done" and (job.faces or 0) >= 1, f"job after the worker: {job}")
    assert job is not None and job.faces is not None
    expect(stack.keys(stack.blurred_bucket, blurred_key(job_id)) == [blurred_key(job_id)], "not published")
    expect(stack.keys(stack.uploads_bucket, upload_key(job_id)) == [], "the original was not deleted")
    runner.say(f"done: {job.faces} face(s) blurred, {blurred_key(job_id)} published, original deleted")
    published = stack.object_bytes(stack.blurred_bucket, blurred_key(job_id))
    runner.say(check_blurred(photo.read_bytes(), published))
    return job.faces


def _status(runner: Runner, job_id: str) -> None:
    event = copy.deepcopy(load_event("api_get_job.json"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/jobs/{job_id}"
    event["pathParameters"] = {"jobId": job_id}
    body = api_body(runner.invoke("ApiFunction", event, "status"), 200)
    expect(body["status"] == "done" and body.get("photoUrl", "").endswith(blurred_key(job_id)), f"{body}")
    runner.say(f"200: {body['status']}, {body['faces']} face(s), {body['photoUrl']}")


def _variants(runner: Runner, job_id: str) -> None:
    stack = runner.stack
    queue_url = stack.queue_url_named(runner.variants_queue)
    _invoke_with_message(runner, "VariantsFunction", queue_url, blurred_key(job_id), "variants")
    job = stack.job(job_id)
    expect(job is not None and job.variants_ready, f"variants not ready: {job}")
    runner.say(f"variants ready: {', '.join(stack.keys(stack.blurred_bucket, f'p/{job_id}/'))}")


def _bounce(runner: Runner, email: str) -> None:
    event = copy.deepcopy(load_event("sns_ses_bounce.json"))
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["bounce"]["bouncedRecipients"][0]["emailAddress"] = email
    message["mail"]["destination"] = [email]
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    invoked = runner.invoke("MailEventsFunction", event, "bounce")
    expect(invoked.response == {"stopped": 1}, f"response {invoked.response}")
    expect(runner.stack.quotas.is_suppressed(recipient_key(email), now=utc_now()), f"{email} not suppressed")
    runner.say(f"{{'stopped': 1}}: no more mail to {email}")
