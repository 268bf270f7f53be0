"""Credentials are taken out of every log record before any handler sees it.

Secrets travel in URLs the host neither writes nor logs itself: Bitrix24's OAuth server takes
the client secret and the refresh token in the query (httpx logs each request's URL), the REST
API takes ``auth=``, the Webhook URL carries its token in the path and the OAuth callback its
code (uvicorn's access log prints both). Rewriting records as they are made covers every logger,
a plugin's included, whatever the handlers are.
"""

from __future__ import annotations

import logging
import re
from typing import Any

HIDDEN = "***"
# Any name with secret, token or password in it (auth[access_token] too), and a few exact ones
# (``auth`` is Bitrix24's REST token, ``code`` and ``state`` the OAuth callback's): not every
# name containing "code" (error_code) or "auth" (auth[domain]) is worth hiding.
_NAME_PART = r"[^\s=&?\"':]*"
_SECRET_NAME = rf"{_NAME_PART}(?:secret|token|passw){_NAME_PART}|auth|code|state|key|signature"
_PATTERNS = (
    # name=value in a query or a form body (also auth[access_token]=, percent-encoded or not)
    (re.compile(rf"(?i)((?:^|[?&\s])(?:{_SECRET_NAME})=)[^&\s\"'#]+"), rf"\g<1>{HIDDEN}"),
    # "name": "value" in JSON
    (re.compile(rf'(?i)("(?:{_SECRET_NAME})"\s*:\s*")[^"]*"'), rf'\g<1>{HIDDEN}"'),
    # the Webhook URL's token
    (re.compile(r"(/webhooks/\d+/)[^/?#\s\"']+"), rf"\g<1>{HIDDEN}"),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redacted(value: Any) -> Any:
    """A log argument, replaced by its redacted text only if it held a secret: the others keep
    their type, since formats like ``%d`` and uvicorn's access formatter rely on it."""
    text = str(value)
    clean = redact(text)
    return value if clean == text else clean


def _redact_record(record: logging.LogRecord) -> None:
    record.msg = _redacted(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_redacted(arg) for arg in record.args)
    elif isinstance(record.args, dict):
        record.args = {key: _redacted(value) for key, value in record.args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))


def install_log_redaction() -> None:
    """Make every log record of this process redacted (once, however often it is called)."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacts", False):
        return

    def redacting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        _redact_record(record)
        return record

    redacting.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting)
