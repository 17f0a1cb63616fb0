"""S3's authorisation of a browser's form upload (a presigned POST), in front of moto's server.

S3 authorises a form POST as the identity whose credential signed the form's policy (X-Amz-Credential):
the signature must match and that identity needs s3:PutObject on the object's key. moto cannot do it
with IAM enforced: it expects an Authorization header, which a form has not (it fails with a KeyError),
and it would check the bucket's ARN rather than the key's. So this middleware makes S3's check, with
moto's own policy evaluator, and passes an authorised form on to moto signed as the stack's admin.

The page's CORS preflight before the upload fails in moto the same way; S3 answers preflights from the
bucket's CORS rules without authorising anyone, so they are passed on signed as the admin too.

Not checked, here or by moto: the policy document's conditions and expiry (the worker re-checks size and
type itself: docs/decisions/local-0004-iam-enforced.md).
"""

from __future__ import annotations

import hmac
import io
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth, S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials
from moto.core.exceptions import ServiceException
from moto.iam.access_control import S3IAMRequest
from moto.s3.exceptions import BucketAccessDeniedError, BucketSignatureDoesNotMatchError
from werkzeug.wrappers import Request, Response

from photoveil.local.account import ACCOUNT_ID, REGION, Credentials

WSGIApp = Any


class FormPostAuthoriser:
    """WSGI middleware: authorises form POSTs as S3 does, lets CORS preflights through, and hands both
    to moto signed as FORWARD_AS."""

    def __init__(
        self,
        app: WSGIApp,
        identities: Mapping[str, Credentials] | None = None,
        forward_as: Credentials | None = None,
    ) -> None:
        """IDENTITIES: the keys the stack made, by access key id (their secrets check the signature);
        FORWARD_AS: who signs an authorised form for moto. Both may be set once moto serves and the
        identities exist in it."""
        self.app = app
        self.identities = identities or {}
        self.forward_as = forward_as

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if _is_preflight(environ):
            environ.update(self._signature_for_moto(environ, b""))
            return self.app(environ, start_response)
        if not _is_form_post(environ):
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        form = Request({**environ, "wsgi.input": io.BytesIO(body)}).form
        fields = {name.lower(): value for name, value in form.items()}
        try:
            self._authorise(fields, _bucket(environ))
        except ServiceException as refusal:  # moto's S3 errors: S3's codes and messages
            return _error_response(refusal)(environ, start_response)
        environ.update(self._signature_for_moto(environ, body))
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    def _authorise(self, fields: dict[str, str], bucket: str) -> None:
        """Raise moto's S3 error unless the form's signer may put its key (InvalidAccessKeyId,
        SignatureDoesNotMatch, AccessDenied)."""
        credential = fields.get("x-amz-credential", "")
        if len(credential.split("/")) != 5:
            raise BucketAccessDeniedError(bucket)  # an anonymous form: the buckets here are private
        headers = {
            "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=-"
        }
        if "x-amz-security-token" in fields:
            headers["X-Amz-Security-Token"] = fields["x-amz-security-token"]
        # Resolves the credential to its IAM user or role session (or raises InvalidAccessKeyId).
        check = S3IAMRequest(
            account_id=ACCOUNT_ID,
            method="POST",
            path=f"/{bucket}",
            data={"BucketName": bucket},
            body=b"",
            headers=headers,
            action="PutObject",
        )
        keys = self.identities.get(credential.split("/")[0])
        if keys is None or not hmac.compare_digest(
            _policy_signature(keys, credential, fields), fields.get("x-amz-signature", "")
        ):
            raise BucketSignatureDoesNotMatchError(bucket)
        check.check_action_permitted(f"arn:aws:s3:::{bucket}/{fields.get('key', '')}")

    def _signature_for_moto(self, environ: dict[str, Any], body: bytes) -> dict[str, str]:
        """The headers of the request signed as FORWARD_AS, as WSGI environ entries."""
        query = environ.get("QUERY_STRING")
        url = f"http://{environ['HTTP_HOST']}{_raw_path(environ)}" + (f"?{query}" if query else "")
        request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, data=body)
        keys = self.forward_as
        assert keys is not None, "forward_as is set before any form can be posted"
        S3SigV4Auth(BotocoreCredentials(keys.access_key_id, keys.secret_access_key), "s3", REGION).add_auth(
            request
        )
        return {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in request.headers.items()}


def _is_preflight(environ: dict[str, Any]) -> bool:
    return environ.get("REQUEST_METHOD") == "OPTIONS" and "HTTP_AUTHORIZATION" not in environ


def _is_form_post(environ: dict[str, Any]) -> bool:
    return (
        environ.get("REQUEST_METHOD") == "POST"
        and "HTTP_AUTHORIZATION" not in environ
        and environ.get("CONTENT_TYPE", "").startswith("multipart/form-data")
    )


def _raw_path(environ: dict[str, Any]) -> str:
    """The path as it arrived, before percent-decoding, as moto reads it to check signatures.

    RAW_URI holds a path or, from some clients, the whole URL.
    """
    raw_uri = environ.get("RAW_URI") or environ.get("PATH_INFO") or "/"
    parsed = urlparse(raw_uri)
    return (parsed.path if parsed.scheme else raw_uri.split("?", 1)[0]) or "/"


def _bucket(environ: dict[str, Any]) -> str:
    """The bucket a form is posted to: in the host (virtual-hosted style) or the path (path style)."""
    host = environ.get("HTTP_HOST", "").split(":")[0]
    if ".s3." in host:
        return host.split(".s3.")[0]
    return _raw_path(environ).strip("/").split("/")[0]


def _policy_signature(keys: Credentials, credential: str, fields: dict[str, str]) -> str:
    """SigV4 of the form's policy, signed with KEYS for the date and region its credential names."""
    _, _date, region, service, _ = (credential.split("/") + [""] * 5)[:5]
    request = AWSRequest()
    request.context["timestamp"] = fields.get("x-amz-date", "")
    signer = S3SigV4PostAuth(BotocoreCredentials(keys.access_key_id, keys.secret_access_key), service, region)
    return str(signer.signature(fields.get("policy", ""), request))


def _error_response(error: ServiceException) -> Response:
    """S3's XML error document; all three refusals here are 403s."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
    )
    return Response(body, 403, mimetype="application/xml")
