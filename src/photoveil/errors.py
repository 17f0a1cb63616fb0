"""Typed errors shared by the image core, the handlers and the command line.

Every error has a stable ``code`` (shown to users in the job status and in ``--json``) and says
whether it is ``permanent``: a permanent error is the input's fault and retrying cannot help (the job
ends ``failed``); anything else is transient and the worker lets the message retry (then the DLQ).
"""

from __future__ import annotations


class PhotoVeilError(Exception):
    code = "internal_error"
    permanent = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(PhotoVeilError):
    """The photo itself is unusable: a clear message for the user, never retried."""

    code = "invalid_image"
    permanent = True


class EmptyFileError(InputError):
    code = "empty_file"


class UnsupportedFormatError(InputError):
    code = "unsupported_format"


class CorruptImageError(InputError):
    code = "corrupt_image"


class AnimatedImageError(InputError):
    code = "animated_image"


class FileTooLargeError(InputError):
    code = "file_too_large"


class ImageTooLargeError(InputError):
    code = "image_too_large"


class ImageTooSmallError(InputError):
    code = "image_too_small"


class RegionOutsidePhotoError(PhotoVeilError):
    """A region to blur, given by hand, does not overlap the photo: the request's mistake, not the photo's."""

    code = "region_outside_photo"
    permanent = True


class DetectorError(PhotoVeilError):
    """Face detection failed: the photo must not be published (fail closed); retry later."""

    code = "detector_error"


# Bad input for Rekognition, not for the image core (which reads these photos, and the in-process detector
# blurs them): so not InputErrors, but as permanent. The photo fails with the code; nothing is retried.
class ImageTooNarrowError(PhotoVeilError):
    """No size of the image fits Rekognition's limits on both sides (80 to 10,000 px): too long and thin."""

    code = "image_too_narrow"
    permanent = True


class ImageRefusedError(PhotoVeilError):
    """Rekognition (face detection or moderation) refused the image itself (its format, size or a parameter):
    retrying the same image cannot help. ``operation`` is the API that refused it (DetectFaces, ...)."""

    code = "image_refused_by_detector"
    permanent = True

    def __init__(self, message: str, *, operation: str = "") -> None:
        super().__init__(message)
        self.operation = operation


class ContentRefusedError(PhotoVeilError):
    """Moderation found content PhotoVeil does not publish: the photo is refused, never retried."""

    code = "content_refused"
    permanent = True


class ModelNotFoundError(PhotoVeilError):
    code = "model_not_found"


class RequestError(Exception):
    """An API request refused with an HTTP status and a stable code (the body says what to fix)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
