"""Codes that carry a visit from the client's site into a messenger chat.

The site script asks for a code (``sessions.mint``) when the visitor clicks a messenger link
and puts it into the link: Telegram's start parameter reaches the chat as ``/start <code>``,
WhatsApp's and Viber's prefilled text as ``… [#<code>]``. The code is read in the dialog's first
visitor messages only (``code_in``): a visitor who learns a code later cannot hand a dialog to a
visit by typing it, and the host gives a code's visit to the first dialog that redeems it alone.
Only dialogs of a messenger whose links the settings switch on are read
(``connectors.link_channel``).
"""

from __future__ import annotations

import re

from hooks.models import Message
from hooks.services import MESSENGER_CODE_ALPHABET, MESSENGER_CODE_LENGTH

FIRST_MESSAGES = 3
"""How many of the visitor's messages, before an operator's, may carry the code: the link's
text comes first, but a visitor may send a greeting or a photo before it arrives."""

_CODE = f"[{MESSENGER_CODE_ALPHABET}]{{{MESSENGER_CODE_LENGTH}}}"
_START = re.compile(rf"\s*/start\s+({_CODE})\s*", re.IGNORECASE)
_TAGGED = re.compile(rf"(?<![\w#])#({_CODE})(?!\w)", re.IGNORECASE)


def code_in(messages: list[Message]) -> str | None:
    """The code of the dialog's first visitor messages (upper case), if one carries it."""
    seen = 0
    for message in messages:
        if message.author == "operator" or seen == FIRST_MESSAGES:
            return None
        if message.author != "visitor":
            continue
        seen += 1
        found = _START.fullmatch(message.text) or _TAGGED.search(message.text)
        if found:
            return found[1].upper()
    return None
