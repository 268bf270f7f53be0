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

from hooks.host.i18n import N_, gettext, ngettext
from hooks.host.redact import redact
from hooks.host.repository import InboxItem
from hooks.models import Language, LocalizedText

# Error codes (the part before ": ") the page explains: code → message (translated on the page).
_ACCESS_DENIED: Final = N_(
    "Bitrix24 denied access: the application lacks a permission or the employee who"
    " connected the portal lost it — check the permissions and reconnect Bitrix24"
)
_TOKEN: Final = N_("Bitrix24 refused the access token — reconnect Bitrix24 in the settings")
_KNOWN_CODES: Final = {
    "bitrix24:ACCESS_DENIED": _ACCESS_DENIED,
    "bitrix24:insufficient_scope": _ACCESS_DENIED,
    "bitrix24:QUERY_LIMIT_EXCEEDED": N_(
        "Bitrix24 limited the request rate; the event will be processed later"
    ),
    "bitrix24:expired_token": _TOKEN,
    "bitrix24:invalid_token": _TOKEN,
    "bitrix24:NO_AUTH_FOUND": _TOKEN,
    "not_connected": N_("The portal is not connected — press “Connect Bitrix24” in the settings"),
    "reconnect_required": N_("Bitrix24 has to be connected again in the settings"),
    "wrong_portal": N_("The event came from another Bitrix24 portal"),
    "malformed_event": N_("Not a Bitrix24 event"),
    "upstream_error": N_("An error on Bitrix24's side"),
    "internal error": N_("An internal error of the plugin"),
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
        return Reason(gettext("ignored by the plugin", language))
    return Reason(redact(raw)) if raw else None


def error_reason(error: str, language: Language) -> Reason:
    detail = redact(error)
    attempts = _GAVE_UP.match(error)
    rest = error[attempts.end() :] if attempts else error
    code = _CODE.match(rest)
    known = _KNOWN_CODES.get(code.group(1)) if code else None
    if known is not None:
        text = gettext(known, language)
    elif code and code.group(1).startswith("bitrix24:"):
        bitrix24_code = code.group(1).removeprefix("bitrix24:")
        text = gettext("Bitrix24 answered with error %(code)s", language) % {"code": bitrix24_code}
    else:
        text = gettext("The event could not be processed", language)
    if attempts:
        n = int(attempts.group(1))
        gave_up = ngettext(
            "Gave up after %(num)d attempt.", "Gave up after %(num)d attempts.", n, language
        )
        text = gave_up % {"num": n} + " " + text
    return Reason(text, detail)
