"""Drawing messenger codes: short enough to travel in a Telegram start link or a prefilled
WhatsApp text, random enough that nobody guesses another visitor's (31⁸ ≈ 8.5·10¹¹)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hooks.host.repository import Repository
from hooks.services import MESSENGER_CHANNELS, MESSENGER_CODE_ALPHABET, MESSENGER_CODE_LENGTH

LIFETIME = timedelta(days=30)
"""How long a code waits for its dialog: a visitor may write days after clicking the link."""
REUSE_MARGIN = timedelta(days=1)
"""A visit's unused code is handed out again only while it has this long to live: a visitor
who clicks a link writes within minutes, rarely the next day."""
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


async def code_for_visit(
    repo: Repository,
    integration_id: int,
    session_id: str,
    *,
    channel: str | None,
    zone: ZoneInfo,
    now: datetime,
) -> str:
    """The visit's code, one click on ``channel``'s links counted (by the account's day).

    The same code while no dialog has taken it: the script asks on page load and again on each
    click, and a code per request would fill the table. Two first requests at once may both
    draw one; both codes are valid, and whichever dialog brings one takes that one's visit.
    """
    if channel is not None and channel not in MESSENGER_CHANNELS:
        raise ValueError(f"unknown messenger channel {channel!r}")
    code = await repo.unused_messenger_code(
        integration_id, session_id, valid_after=now + REUSE_MARGIN
    )
    while code is None:  # a collision is one in 10¹¹ per code already drawn: draw again
        drawn = draw()
        if await repo.add_messenger_code(
            integration_id, drawn, session_id, expires_at=now + LIFETIME, now=now
        ):
            code = drawn
    if channel is not None:
        await repo.count_messenger_click(integration_id, channel, now.astimezone(zone).date())
    return code
