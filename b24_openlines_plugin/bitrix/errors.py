"""Bitrix24's error codes, sorted into what the host should do about them."""

from __future__ import annotations

from hooks.errors import HookError, RetryLater, UpstreamError

# Refused before running, or the portal is busy: the same request can simply be sent again.
TRANSIENT_CODES = frozenset(
    {
        "query_limit_exceeded",
        "operation_time_limit",
        "internal_server_error",
        "error_unexpected_answer",
        "overload_limit",
    }
)


class BitrixError(UpstreamError):
    """Bitrix24 refused a request for good; the message carries its code and description."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"Bitrix24 error {code}: {description}".strip(), code=f"bitrix24:{code}")
        self.b24_code = code
        self.description = description


def error_for(code: str, description: str, *, retry_after: float | None = None) -> HookError:
    """The exception for a Bitrix24 error code (compared case-insensitively, as Bitrix24 varies)."""
    if code.lower() in TRANSIENT_CODES:
        return RetryLater(
            f"Bitrix24 is busy ({code}): {description}",
            retry_after=retry_after,
            code=f"bitrix24:{code}",
        )
    return BitrixError(code, description)
