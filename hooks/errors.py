"""Errors a plugin raises and the host turns into HTTP answers, in one place.

HookError
 ├── BadRequest            400  malformed input (a webhook body, a callback query)
 ├── Unauthorized          401  a credential is missing or wrong
 ├── Forbidden             403  a credential is right but not for this
 ├── NotFound              404
 ├── Conflict              409  a compare-and-swap lost to another writer
 ├── PayloadTooLarge       413
 ├── ValidationFailed      422  field errors of a settings submission
 ├── NotAvailable          501  a route whose work arrives with a later version
 ├── UpstreamError         502  the remote service answered with a permanent error
 └── RetryLater            503  transient: the host retries the work later

Messages are shown to people and written to logs: never put a secret in one.
"""

from __future__ import annotations

from collections.abc import Mapping


class HookError(Exception):
    """Base class: ``status`` is the HTTP status, ``code`` a stable machine-readable name."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


class BadRequest(HookError):
    status = 400
    code = "bad_request"


class UnsupportedMediaType(HookError):
    status = 415
    code = "unsupported_media_type"


class Unauthorized(HookError):
    status = 401
    code = "unauthorized"


class Forbidden(HookError):
    status = 403
    code = "forbidden"


class NotFound(HookError):
    status = 404
    code = "not_found"


class Conflict(HookError):
    status = 409
    code = "conflict"


class PayloadTooLarge(HookError):
    status = 413
    code = "payload_too_large"


class ValidationFailed(HookError):
    """Field errors keyed by the field's dotted key (``messenger_map.telegrambot.source_id``)."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: Mapping[str, str], message: str = "Invalid settings") -> None:
        super().__init__(message)
        self.errors = dict(errors)

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), "errors": self.errors}


class NotAvailable(HookError):
    status = 501
    code = "not_available"


class UpstreamError(HookError):
    status = 502
    code = "upstream_error"


class RetryLater(HookError):
    """A transient failure: the work is kept and tried again (after ``retry_after`` s if given)."""

    status = 503
    code = "retry_later"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.retry_after = retry_after
