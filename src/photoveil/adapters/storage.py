"""S3: the private uploads bucket (presigned POST in, originals read once and deleted) and the blurred
bucket (``p/{jobId}.jpg`` and its variants, public through CloudFront only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from photoveil.adapters.clients import s3_client
from photoveil.errors import EmptyFileError, FileTooLargeError, PhotoVeilError
from photoveil.imaging.sizes import VARIANT_NAMES

# The URL never changes (a new photo gets a new job id), so it is immutable; but only for a day, like the
# CloudFront cache policy, so no browser keeps showing a photo long after its 30 days are over.
BLURRED_CACHE_CONTROL = "public, max-age=86400, immutable"


# S3's answer for a key that is not there, to a caller with s3:ListBucket on the bucket (every role that
# reads or copies keys that may be gone has it). Without it S3 answers 403 AccessDenied instead; that stays
# an error here, never "gone": it is a missing permission. S3 API reference, GetObject / HeadObject /
# CopyObject, "Permissions": https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html
_GONE = frozenset({"NoSuchKey", "404"})


def _gone(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _GONE


class UploadMissingError(PhotoVeilError):
    """The uploaded object is gone although its job never finished (e.g. the 1-day lifecycle ran)."""

    code = "upload_missing"
    permanent = True


def upload_key(job_id: str) -> str:
    return f"uploads/{job_id}"


def blurred_key(job_id: str) -> str:
    return f"p/{job_id}.jpg"


def edited_key(job_id: str, version: str) -> str:
    """Where an edit is published: a new key, so no cache anywhere serves the version it replaces."""
    return f"p/{job_id}-{version}.jpg"


def variant_key(photo_key: str, name: str) -> str:
    """``p/{jobId}.jpg`` -> ``p/{jobId}/800x600.jpeg``.

    Under the CloudFront photo path and the bucket's expiry, but outside the PhotoPublished topic's
    filter (suffix ``.jpg``): writing a variant can never publish again.
    """
    return f"{photo_key.removesuffix('.jpg')}/{name}.jpeg"


# A withdrawn photo (reported, pending review) and its variants wait here: outside p/, so neither CloudFront
# nor the local gateway serves them, outside the PhotoPublished filter, under the bucket's 30-day expiry
# counted from the move (untagged: the operator has 30 days to review, or preserve, what was withheld).
WITHHELD_PREFIX = "withheld/"

# S3's expiry counts from an object's creation, and a copy or a new object starts again: a photo restored,
# edited or given its sizes late would stay public up to 30 days past its expiresAt. So every object
# written to p/ after the photo's first publication carries the whole days the photo has left, rounded up,
# and BlurredBucket has one lifecycle rule per value (template.yaml); where a rule and the 30-day one
# overlap, S3 honours the shorter expiration ("How Amazon S3 handles conflicts in lifecycle
# configurations": https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-conflicts.html). Setting
# a tag-set with PutObject or CopyObject needs s3:PutObjectTagging too (S3 API reference, PutObject,
# "Permissions").
DAYS_LEFT_TAG = "photoveil-days-left"
MAX_DAYS_LEFT = 30  # the rules go 1 to 30: a photo lives PHOTO_TTL_DAYS


def days_left_tagging(days_left: int) -> str:
    """The tag-set (as S3's x-amz-tagging header takes it) of an object with DAYS_LEFT days to live."""
    return f"{DAYS_LEFT_TAG}={min(max(days_left, 1), MAX_DAYS_LEFT)}"


def photo_and_variant_keys(photo_key: str) -> list[str]:
    return [photo_key, *(variant_key(photo_key, name) for name in VARIANT_NAMES)]


@dataclass(frozen=True)
class PresignedUpload:
    url: str
    fields: dict[str, str]


class PhotoStorage:
    """Reads originals from the uploads bucket and writes blurred photos to the blurred bucket."""

    def __init__(self, uploads_bucket: str, blurred_bucket: str, client: Any = None) -> None:
        self.uploads_bucket = uploads_bucket
        self.blurred_bucket = blurred_bucket
        self._client = client or s3_client()

    def presign_upload(
        self, job_id: str, *, content_type: str, max_bytes: int, expires_in: int
    ) -> PresignedUpload:
        """A browser form POST that can only create ``uploads/{jobId}``, with exactly this Content-Type
        and 1..max_bytes bytes. boto3 adds the bucket, key and x-amz-* conditions itself; every other
        form field gets its own condition here (S3 rejects a form field the policy does not cover)."""
        key = upload_key(job_id)
        post = self._client.generate_presigned_post(
            Bucket=self.uploads_bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=expires_in,
        )
        return PresignedUpload(url=post["url"], fields=dict(post["fields"]))

    def read_original(self, job_id: str, *, max_bytes: int) -> bytes:
        """The uploaded bytes, refusing anything over ``max_bytes`` without reading it all.

        Raises FileTooLargeError / EmptyFileError (permanent), UploadMissingError if the object is gone,
        ClientError for anything transient.
        """
        try:
            response = self._client.get_object(Bucket=self.uploads_bucket, Key=upload_key(job_id))
        except ClientError as error:
            if _gone(error):
                raise UploadMissingError("the uploaded photo is no longer there") from None
            raise
        body = response["Body"]
        try:
            length = int(response.get("ContentLength", 0))
            if length > max_bytes:
                raise FileTooLargeError(too_large_message(max_bytes))
            # Read one byte past the cap: a lying Content-Length still cannot make us buffer more.
            data = body.read(max_bytes + 1)
        finally:
            body.close()
        if len(data) > max_bytes:
            raise FileTooLargeError(too_large_message(max_bytes))
        if not data:
            raise EmptyFileError("the uploaded file is empty")
        return data

    def put_blurred(self, job_id: str, jpeg: bytes) -> str:
        """Write the blurred JPEG at ``p/{jobId}.jpg``; returns the key."""
        key = blurred_key(job_id)
        self.put_published(key, jpeg)
        return key

    def put_published(self, key: str, jpeg: bytes, *, days_left: int | None = None) -> None:
        """Write a full-size photo (its ObjectCreated event publishes it to the PhotoPublished topic); a
        later version of a photo (an edit) lives only the DAYS_LEFT its photo has."""
        self._put_jpeg(key, jpeg, days_left)

    def delete_published(self, photo_key: str) -> None:
        """Withdraw a published photo and its variants (those not there are fine)."""
        self._client.delete_object(Bucket=self.blurred_bucket, Key=photo_key)
        self.delete_variants(photo_key)

    def read_blurred(self, key: str) -> bytes:
        """A published photo's bytes (ClientError if it is gone: its job said it was published)."""
        response = self._client.get_object(Bucket=self.blurred_bucket, Key=key)
        with response["Body"] as body:
            return body.read()

    def put_variant(self, key: str, jpeg: bytes, *, days_left: int) -> None:
        """Write a variant (see variant_key) with the published photo's headers, to live the DAYS_LEFT its
        photo has (a variant made late, after a redrive or for an edit, must not outlive it)."""
        self._put_jpeg(key, jpeg, days_left)

    def _put_jpeg(self, key: str, jpeg: bytes, days_left: int | None) -> None:
        tagging = {} if days_left is None else {"Tagging": days_left_tagging(days_left)}
        self._client.put_object(
            Bucket=self.blurred_bucket,
            Key=key,
            Body=jpeg,
            ContentType="image/jpeg",
            CacheControl=BLURRED_CACHE_CONTROL,
            **tagging,
        )

    def delete_variants(self, photo_key: str) -> None:
        """Withdraw the variants of a photo (missing ones are fine: S3 deletes are idempotent)."""
        for name in VARIANT_NAMES:
            self._client.delete_object(Bucket=self.blurred_bucket, Key=variant_key(photo_key, name))

    def withhold(self, photo_key: str) -> int:
        """Take a published photo and its variants offline, keeping them under withheld/ for the review
        (untagged: 30 days from now); how many objects were moved. Repeating it is harmless (what is gone
        from p/ was moved already)."""
        keys = photo_and_variant_keys(photo_key)
        return sum(self._move(key, WITHHELD_PREFIX + key, tagging="") for key in keys)

    def release(self, photo_key: str, *, days_left: int) -> int:
        """Publish a withheld photo and its variants again, to live the DAYS_LEFT the photo has (copying
        the photo back announces it once more; its variants exist, so nothing is remade). How many
        objects were moved."""
        tagging = days_left_tagging(days_left)
        keys = photo_and_variant_keys(photo_key)
        return sum(self._move(WITHHELD_PREFIX + key, key, tagging=tagging) for key in keys)

    def delete_withheld(self, photo_key: str) -> None:
        for key in photo_and_variant_keys(photo_key):
            self._client.delete_object(Bucket=self.blurred_bucket, Key=WITHHELD_PREFIX + key)

    def _move(self, source: str, target: str, *, tagging: str) -> bool:
        """Copy with the tag-set TAGGING (none if empty; the source's never, so the copy needs no
        s3:GetObjectTagging), then delete (a retry after a failed delete copies the same bytes again);
        False if SOURCE is gone."""
        try:
            self._client.copy_object(
                Bucket=self.blurred_bucket,
                Key=target,
                CopySource={"Bucket": self.blurred_bucket, "Key": source},
                MetadataDirective="COPY",
                TaggingDirective="REPLACE",
                **({"Tagging": tagging} if tagging else {}),
            )
        except ClientError as error:
            if _gone(error):
                return False
            raise
        self._client.delete_object(Bucket=self.blurred_bucket, Key=source)
        return True

    def delete_blurred(self, job_id: str) -> None:
        """Withdraw ``p/{jobId}.jpg`` (only for a job that did not end done)."""
        self._client.delete_object(Bucket=self.blurred_bucket, Key=blurred_key(job_id))

    def delete_original(self, job_id: str) -> None:
        """Delete the original (idempotent: S3 deletes of a missing key succeed)."""
        self._client.delete_object(Bucket=self.uploads_bucket, Key=upload_key(job_id))

    def delete_upload_key(self, key: str) -> None:
        """Delete a stray object under uploads/ that belongs to no job."""
        self._client.delete_object(Bucket=self.uploads_bucket, Key=key)


def too_large_message(max_bytes: int) -> str:
    return f"the photo is larger than {max_bytes // (1024 * 1024)} MB"
