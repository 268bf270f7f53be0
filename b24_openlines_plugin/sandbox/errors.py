"""Bitrix24's REST errors: ``{"error", "error_description"}`` and the HTTP status it uses."""

from __future__ import annotations

from typing import Any


class RestError(Exception):
    """An error answer of a REST method; codes keep Bitrix24's own (mixed) case."""

    def __init__(self, code: str, description: str, status: int = 400) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.status = status

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description}


def no_auth() -> RestError:
    return RestError("NO_AUTH_FOUND", "Wrong authorization data", 401)


def expired_token() -> RestError:
    return RestError("expired_token", "The access token provided has expired.", 401)


def invalid_token() -> RestError:
    return RestError("invalid_token", "Unable to get application by token", 401)


def insufficient_scope() -> RestError:
    return RestError(
        "insufficient_scope",
        "The request requires higher privileges than provided by the access token",
        403,
    )


def query_limit() -> RestError:
    return RestError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)


def operation_time_limit() -> RestError:
    return RestError("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit.", 429)


def method_not_found() -> RestError:
    return RestError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)


def argument_empty(name: str) -> RestError:
    return RestError("ERROR_ARGUMENT", f"Argument '{name}' is null or empty")


def crm_error(description: str) -> RestError:
    """CRM's own method errors come with an empty code, as in crm.lead.get's documentation."""
    return RestError("", description)


# Codes a test may inject by name; the status and text are the portal's.
KNOWN: dict[str, tuple[int, str]] = {
    "QUERY_LIMIT_EXCEEDED": (503, "Too many requests"),
    "OPERATION_TIME_LIMIT": (429, "Method is blocked due to operation time limit."),
    "OVERLOAD_LIMIT": (503, "REST API is blocked due to overload"),
    "INTERNAL_SERVER_ERROR": (500, "Internal server error"),
    "ERROR_UNEXPECTED_ANSWER": (500, "Server returned an unexpected response"),
    "PORTAL_DELETED": (500, "Portal was deleted"),
    "ACCESS_DENIED": (403, "REST API is available only on commercial plans"),
    "INVALID_CREDENTIALS": (403, "Invalid request credentials"),
    "expired_token": (401, "The access token provided has expired."),
    "invalid_token": (401, "Unable to get application by token"),
    "NO_AUTH_FOUND": (401, "Wrong authorization data"),
}
