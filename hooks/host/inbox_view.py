"""What the inbox page shows of an item: its event, and why it stopped, in the reader's language.

An item stores its error as the drain wrote it (``code: message``, English, for the logs and the
API); the page names the known codes in people's words and keeps the stored text as a detail.
Reasons the plugin gives in people's words (``reason_text``) are shown as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs

from hooks.host.i18n import t
from hooks.host.redact import redact
from hooks.host.repository import InboxItem
from hooks.models import Language, LocalizedText

# Error codes (the part before ": ") the page explains: code → i18n key.
_KNOWN_CODES: Final = {
    "bitrix24:ACCESS_DENIED": "error_access_denied",
    "bitrix24:insufficient_scope": "error_access_denied",
    "bitrix24:QUERY_LIMIT_EXCEEDED": "error_query_limit",
    "bitrix24:expired_token": "error_token",
    "bitrix24:invalid_token": "error_token",
    "bitrix24:NO_AUTH_FOUND": "error_token",
    "not_connected": "error_not_connected",
    "reconnect_required": "error_reconnect",
    "wrong_portal": "error_wrong_portal",
    "malformed_event": "error_malformed_event",
    "upstream_error": "error_upstream",
    "internal error": "error_internal",
}
_CODE: Final = re.compile(r"^(bitrix24:[A-Za-z0-9_]+|[a-z_]+(?: error)?): ")
_GAVE_UP: Final = re.compile(r"^gave up after (\d+) attempts: ")


@dataclass(frozen=True)
class Reason:
    """What the page says (``text``) and the stored words behind it (``detail``, redacted)."""

    text: str
    detail: str = ""


def event_name(item: InboxItem) -> str:
    """The event the delivery names (Bitrix24 sends ``event=ONCRMLEADADD`` as a form field, a
    JSON body ``{"event": …}``); empty when it names none."""
    body = item.request.body.decode("utf-8", "replace")
    found: object = None
    try:
        parsed = json.loads(body)
        found = parsed.get("event") if isinstance(parsed, dict) else None
    except ValueError:
        found = next(iter(parse_qs(body).get("event", [])), None)
    return str(found)[:100] if found else ""


def reason(item: InboxItem, language: Language) -> Reason | None:
    """The error of a failed or waiting item, the plugin's reason of a finished one."""
    if item.status in ("failed", "pending") and item.last_error:
        return error_reason(item.last_error, language)
    outcome = item.outcome or {}
    raw = str(outcome.get("reason") or "")
    if isinstance(outcome.get("reason_text"), dict):
        text = LocalizedText.model_validate(outcome["reason_text"]).get(language)
        return Reason(text, redact(raw))
    if item.status == "ignored" and raw in ("", "ignored"):
        return Reason(t("reason_ignored", language))
    return Reason(redact(raw)) if raw else None


def error_reason(error: str, language: Language) -> Reason:
    detail = redact(error)
    attempts = _GAVE_UP.match(error)
    rest = error[attempts.end() :] if attempts else error
    code = _CODE.match(rest)
    key = _KNOWN_CODES.get(code.group(1)) if code else None
    if key is not None:
        text = t(key, language)
    elif code and code.group(1).startswith("bitrix24:"):
        text = t("error_bitrix24", language).format(code=code.group(1).removeprefix("bitrix24:"))
    else:
        text = t("error_other", language)
    if attempts:
        text = t("error_gave_up", language).format(attempts=attempts.group(1)) + " " + text
    return Reason(text, detail)
