"""The line the site script writes into a site chat, and the one place it is believed.

The site script gives the live-chat widget ``setCustomData([{MESSAGE: "<marker>: <visit>"}])``.
The widget sends it with each page's data request, Bitrix24 keeps the latest per guest, and
when a dialog is created it posts it once, as a system message (author 0) whose attach holds
the blocks: ``[B]Data received:[/B]`` (imopenlines ``Connector::addMessage``, ``Widget\\Cache``;
``Rest::widgetDialogGet``). So that message is the chat's own word about its visit, written on
the client's site in the visitor's browser. The same words typed by a visitor (on any channel),
posted by an operator or a bot, or filled into a form are not: only a MESSAGE block of a
system message in a live-chat dialog counts, and only when the whole block is the marker.
"""

from __future__ import annotations

import re

from b24_openlines_plugin.bitrix.records import SessionHistory
from hooks.models import Language

SITE_CHAT = "livechat"
"""The connector of the site's live-chat widget: the only one that carries custom data."""

MARKERS: dict[Language, str] = {"ru": "Сессия аналитики", "en": "Analytics session"}
"""What precedes the visit's id, in the host's language (operators read it)."""

_BLOCK = re.compile(
    r"\s*(?:" + "|".join(re.escape(m) for m in MARKERS.values()) + r"):\s*([A-Za-z0-9_-]{8,64})\s*"
)


def marker_prefix(language: Language) -> str:
    return MARKERS[language]


def visit_in_block(text: str) -> str | None:
    """The visit id of a custom-data block that is the marker and nothing else, in any of the
    host's languages (a host may change its language after chats were written)."""
    match = _BLOCK.fullmatch(text)
    return match[1] if match else None


def visit_of_dialog(history: SessionHistory, connector: str) -> str | None:
    """The visit the dialog's own custom data names: the first marker block of a system message
    of a live-chat dialog. ``None`` for any other channel, or when no such block is there."""
    if connector != SITE_CHAT:
        return None
    for message in history.messages:
        if message.author_id != 0:
            continue
        for block in message.attach_messages:
            if found := visit_in_block(block):
                return found
    return None
