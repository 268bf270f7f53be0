"""Drawing messenger codes: short enough to travel in a Telegram start link or a prefilled
WhatsApp text, random enough that nobody guesses another visitor's (31⁸ ≈ 8.5·10¹¹)."""

from __future__ import annotations

import secrets
from datetime import timedelta

from hooks.services import MESSENGER_CODE_ALPHABET, MESSENGER_CODE_LENGTH

LIFETIME = timedelta(days=30)
"""How long a code waits for its dialog: a visitor may write days after clicking the link."""
BITRIX_PREFIX = "BTRX"
"""Bitrix24 hides Telegram start codes beginning with ``btrx`` (its own tracking)."""


def draw() -> str:
    """A random code that Bitrix24 will show in the chat."""
    while True:
        code = "".join(
            secrets.choice(MESSENGER_CODE_ALPHABET) for _ in range(MESSENGER_CODE_LENGTH)
        )
        if not code.startswith(BITRIX_PREFIX):
            return code


def is_code(text: str) -> bool:
    """Whether ``text`` (upper case) could be a code the host drew."""
    return len(text) == MESSENGER_CODE_LENGTH and all(c in MESSENGER_CODE_ALPHABET for c in text)
