"""Security checks the other suites do not already make.

Already covered elsewhere (not repeated here): the presign policy's exact conditions and the common
refusals (tests/functional/test_api.py); buckets private, encrypted and TLS-only, the CSP's script-src
(tests/template/test_template_promises.py); checkov (tests/template/test_checkov.py).

Here: hostile presign requests over real HTTP through the local gateway, unguessable job ids, a status
endpoint that reveals nothing of other jobs, photos served only by exact key, a page that works under
its CSP (no inline script), and no secret or account id anywhere in the repository.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from localstack import RunningStack

from photoveil.local.template import load_template

REPO = Path(__file__).resolve().parents[2]
JOB_ID = re.compile(r"[0-9a-f]{32}")


def presign(stack: RunningStack, body: Any = None, raw: bytes | None = None) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(
        f"{stack.url}/uploads", data=data, headers={"Content-Type": "application/json"}, timeout=10
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"contentType": "image/svg+xml", "size": 10}, "unsupported_content_type"),
        ({"contentType": "text/html", "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/gif", "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/jpeg; charset=utf-8", "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/jpeg ", "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/jpeg\r\nx-amz-acl: public-read", "size": 10}, "unsupported_content_type"),
        ({"contentType": None, "size": 10}, "unsupported_content_type"),
        ({"contentType": "image/jpeg", "size": 10**30}, "file_too_large"),
        ({"contentType": "image/jpeg", "size": 1e3 + 0.5}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": None}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": [10]}, "invalid_size"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b.com, c@d.com"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b@c.com"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a b@c.com"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b.com\rBcc: x@evil.test"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b.com%0d%0aBcc:x@evil.test"}, "invalid_email"),
        (
            {"contentType": "image/jpeg", "size": 10, "email": "a@b.com\u2028Bcc: x@evil.test"},
            "invalid_email",
        ),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@b.com\x00"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "<a@b.com>"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": '"a"@b.com'}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": "a@localhost"}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "email": ["a@b.com"]}, "invalid_email"),
        ({"contentType": "image/jpeg", "size": 10, "key": "p/evil.jpg"}, "unknown_field"),
        ({"contentType": "image/jpeg", "size": 10, "acl": "public-read"}, "unknown_field"),
    ],
)
def test_presign_refuses_hostile_requests(stack: RunningStack, body: dict[str, Any], code: str) -> None:
    response = presign(stack, body)
    assert response.status_code == 400, response.text
    assert response.json() == {"error": {"code": code, "message": response.json()["error"]["message"]}}


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{" * 3000, "invalid_json"),
        (
            b'{"contentType": "image/jpeg", "size": 10, "email": "' + b"a" * 1_000_000 + b'@b.com"}',
            "body_too_large",
        ),
        (b"\xff\xfe{}", "invalid_json"),
        (b'{"contentType": "image/jpeg", "size": NaN}', "invalid_size"),
        (b'{"contentType": "image/jpeg", "size": Infinity}', "invalid_size"),
    ],
)
def test_presign_refuses_malformed_and_oversized_bodies(stack: RunningStack, raw: bytes, code: str) -> None:
    response = presign(stack, raw=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code


@pytest.mark.e2e
def test_deeply_nested_json_is_a_client_error(stack: RunningStack) -> None:
    response = presign(stack, raw=b"[" * 2000 + b"]" * 2000)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.e2e
def test_job_ids_are_128_bit_random(stack: RunningStack) -> None:
    ids = [presign(stack, {"contentType": "image/jpeg", "size": 10}).json()["jobId"] for _ in range(48)]
    assert all(JOB_ID.fullmatch(job_id) for job_id in ids)
    assert len(set(ids)) == len(ids)
    # Not a counter, a clock or a hash of the request: no shared 6-hex prefix (p < 1e-4 for random ids)...
    assert len({job_id[:6] for job_id in ids}) == len(ids)
    # ...and the bits are balanced: 48 x 128 bits, ones within 5 % of half (over 9 sigma for random bits).
    ones = sum(bin(int(job_id, 16)).count("1") for job_id in ids)
    assert abs(ones / (48 * 128) - 0.5) < 0.05


@pytest.mark.e2e
def test_status_reveals_nothing_of_other_jobs(stack: RunningStack, tmp_path: Path) -> None:
    secret = "private.person@example.com"
    mine = presign(stack, {"contentType": "image/jpeg", "size": 10, "email": secret}).json()
    other = presign(stack, {"contentType": "image/jpeg", "size": 10}).json()
    seen = []
    for job in (mine, other):
        response = requests.get(f"{stack.url}/jobs/{job['jobId']}", timeout=10)
        assert response.status_code == 200
        assert set(response.json()) <= {"jobId", "status", "faces", "photoUrl", "expiresAt", "error"}
        seen.append(response.text)
    everything = "".join(seen)
    for leak in (secret, "uploads/", stack.state()["uploadsBucket"], stack.state()["jobsTable"]):
        assert leak not in everything, f"{leak!r} leaked through the status endpoint"
    assert mine["jobId"] not in seen[1] and other["jobId"] not in seen[0]
    # Unknown and malformed ids are refused with a code and nothing else.
    for job_id, status in (("0" * 32, 404), ("X" * 32, 400), ("0" * 31, 400), ("%2e%2e%2fuploads", 400)):
        response = requests.get(f"{stack.url}/jobs/{job_id}", timeout=10)
        assert response.status_code == status, (job_id, response.status_code)
        assert set(response.json()) == {"error"}, response.text


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["/p/", "/p", "/p/?list-type=2", "/p/%2e%2e/uploads/", "/p/../uploads/x"])
def test_photos_are_served_only_by_exact_key(stack: RunningStack, path: str) -> None:
    response = requests.get(f"{stack.url}{path}", timeout=10)
    assert response.status_code in (403, 404), (path, response.status_code, response.text[:200])
    assert "<ListBucketResult" not in response.text


def test_blurred_photos_are_not_listable_through_the_cdn() -> None:
    """CloudFront may only GetObject under p/: without s3:ListBucket a missing key is 403, not a listing."""
    template = load_template(REPO / "template.yaml")
    policy = template["Resources"]["BlurredBucketPolicy"]["Properties"]["PolicyDocument"]
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allows, "no statement lets CloudFront read the photos"
    for statement in allows:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert actions == ["s3:GetObject"], statement
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}, statement


def test_the_page_needs_no_inline_script() -> None:
    """script-src 'self' (no 'unsafe-inline') only works if the page has no inline code at all."""
    pages = sorted((REPO / "frontend").glob("*.html"))
    assert pages, "frontend/ has no page"
    for page in pages:
        text = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>(.*?)</script>", text, flags=re.S | re.I):
            assert not tag.strip(), f"{page.name}: inline <script> content"
        assert not re.search(r"<script\b(?![^>]*\bsrc=)[^>]*>", text, flags=re.I), (
            f"{page.name}: inline script"
        )
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", text, flags=re.I), f"{page.name}: inline event handler"
        assert "javascript:" not in text.lower(), f"{page.name}: javascript: URL"
        assert not re.search(r"<(script|link)\b[^>]*(src|href)=[\"']?(https?:)?//", text, flags=re.I), (
            f"{page.name}: loads a third-party script or stylesheet"
        )


# --------------------------------------------------------------------------- secrets

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}\b", re.I),
    "private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "account id in an ARN": re.compile(r"arn:aws[a-z-]*:[a-z0-9-]*:[a-z0-9-]*:(\d{12}):"),
    "account id": re.compile(
        r"[\"']?(?:account_?id|AccountId|aws_account)[\"']?\s*[=:]\s*[\"']?(\d{12})\b", re.I
    ),
}
# The documentation's example account (AWS docs and moto use it) and all-zeros are not real accounts.
EXAMPLE_ACCOUNTS = {"123456789012", "000000000000"}


def repository_files() -> list[Path]:
    """Every file git would commit: tracked plus untracked-but-not-ignored (nothing is committed yet)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return [REPO / name for name in listed.decode().split("\0") if name]


def test_no_secret_or_account_id_in_the_repository() -> None:
    files = repository_files()
    assert any(path.name == "template.yaml" for path in files), "the scan would prove nothing"
    findings = []
    for path in files:
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary (images, models)
        text = data.decode("utf-8", errors="replace")
        for name, pattern in SECRET_PATTERNS.items():
            for match in pattern.finditer(text):
                account = match.group(match.lastindex) if match.lastindex else None
                if account in EXAMPLE_ACCOUNTS or (account is None and name.startswith("account")):
                    continue
                line = text.count("\n", 0, match.start()) + 1
                findings.append(f"{path.relative_to(REPO)}:{line}: {name}")
    assert not findings, "\n".join(findings)
