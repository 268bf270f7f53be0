"""Credentials are taken out of every log record before any handler sees it.

Secrets travel in URLs the host neither writes nor logs itself: Bitrix24's OAuth server takes
the client secret and the refresh token in the query (httpx logs each request's URL), the REST
API takes ``auth=``, the Webhook URL carries its token in the path and the OAuth callback its
code (uvicorn's access log prints both). Rewriting records as they are made covers every logger,
a plugin's included, whatever the handlers are. A path is matched as a client may write it, not
only as the host's own URLs spell it: percent-encoded, with another spelling of the id.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

HIDDEN = "***"
# Any name with secret, token or password in it (auth[access_token] too), and a few exact ones
# (``auth`` is Bitrix24's REST token, ``code`` and ``state`` the OAuth callback's): not every
# name containing "code" (error_code) or "auth" (auth[domain]) is worth hiding.
_NAME_PART = r"[^\s=&?\"':]*"
_SECRET_NAME = rf"{_NAME_PART}(?:secret|token|passw){_NAME_PART}|auth|code|state|key|signature"
_SLASH = "(?:/|%2f)"
_PATTERNS = (
    # name=value in a query or a form body (also auth[access_token]=, percent-encoded or not)
    (re.compile(rf"(?i)((?:^|[?&\s])(?:{_SECRET_NAME})=)[^&\s\"'#]+"), rf"\g<1>{HIDDEN}"),
    # "name": "value" in JSON
    (re.compile(rf'(?i)("(?:{_SECRET_NAME})"\s*:\s*")[^"]*"'), rf'\g<1>{HIDDEN}"'),
    # the Webhook URL's token: the rest of the path after its id segment, however that id is
    # spelt (uvicorn logs the path percent-encoded again: "/webhooks/%D9%A1/…") and whether a
    # slash is one or "%2F"
    (
        re.compile(rf"(?i)(/webhooks{_SLASH}+[^/\s?#\"']*?{_SLASH}+)[^?#\s\"']+"),
        rf"\g<1>{HIDDEN}",
    ),
)
# Percent-encoding is undone at most this many times (``%2541`` is "%41", then "A").
_DECODINGS = 3
# What each pattern cannot match without (``=``; ``"`` then ``:``; "webhooks"), and what
# percent-decoding changes (``%`` and two hex digits): a text with none of them is its own
# redaction. Most log arguments (addresses, methods, ids, statuses) and format strings
# (``%s`` is no escape) have none, and are let through at the cost of one search.
_MAY_HOLD_SECRET = re.compile(r'(?i)=|"\s*:|webhooks|%[0-9a-f]{2}')


def redact(text: str) -> str:
    """``text`` without its secrets. A secret that shows only once percent-encoding is undone
    (``/%77ebhooks/1/…``, ``client%5Fsecret=…``) is hidden too: the text is then given decoded."""
    if _MAY_HOLD_SECRET.search(text) is None:
        return text
    return _redact_each_spelling(text)


def _redact_each_spelling(text: str) -> str:
    clean = _redact_as_written(text)
    decoded = _percent_decoded(clean)
    if decoded != clean:
        hidden = _redact_as_written(decoded)
        if hidden != decoded:
            return hidden
    return clean


def _redact_as_written(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _percent_decoded(text: str) -> str:
    for _ in range(_DECODINGS):
        if "%" not in text:
            break
        text = unquote(text)
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
