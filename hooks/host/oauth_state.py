"""The OAuth ``state`` parameter: signed, expiring, single-use and bound to one integration.

The callback has nothing else to find the integration by, and an unsigned state would let
anyone attach a portal to someone else's integration. Its nonce lets the callback refuse a
state it has already accepted (``Repository.use_nonce``), so a callback URL that leaked through
history, logs or a referrer cannot be played again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime
from typing import NamedTuple

from hooks.errors import BadRequest
from hooks.host.repository import Repository

STATE_TTL_SECONDS = 600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_state(key: bytes, integration_id: int, *, now: float | None = None) -> str:
    issued = time.time() if now is None else now
    payload = {"i": integration_id, "e": int(issued) + STATE_TTL_SECONDS, "n": secrets.token_hex(8)}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{mac}"


class StaleState(BadRequest):
    """A state the host signed that can no longer be used (expired, or used already): the
    integration it names is known, so the person can be sent back to its settings."""

    def __init__(self, message: str, *, code: str, integration_id: int) -> None:
        super().__init__(message, code=code)
        self.integration_id = integration_id


class VerifiedState(NamedTuple):
    integration_id: int
    nonce: str
    expires: int  # Unix time


def verify_state(key: bytes, state: str, *, now: float | None = None) -> VerifiedState:
    """What a valid state says; ``BadRequest`` for a forged, broken or old one. Whether it was
    used before is the caller's check, against the repository."""
    body, _, mac = state.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    # A state the host signed is ASCII; ``compare_digest`` raises on any other text.
    if not state.isascii() or not mac or not hmac.compare_digest(mac, expected):
        raise BadRequest(
            "The authorization link is not valid; start the connection again", code="invalid_state"
        )
    try:
        payload = json.loads(_unb64(body))
        verified = VerifiedState(int(payload["i"]), str(payload["n"]), int(payload["e"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("The authorization link is not valid", code="invalid_state") from exc
    if (time.time() if now is None else now) > verified.expires:
        raise StaleState(
            "The authorization link has expired; start the connection again",
            code="expired_state",
            integration_id=verified.integration_id,
        )
    return verified


async def accept_state(repo: Repository, state: str, *, now: float | None = None) -> int:
    """The integration id of a valid state seen for the first time; ``BadRequest`` otherwise.

    The nonce is spent before the plugin exchanges the code, so two callbacks racing with one
    state cannot both get through; a failed exchange means starting the connection again.
    """
    at = time.time() if now is None else now
    verified = verify_state(await repo.host_secret_key(), state, now=at)
    first_use = await repo.use_nonce(
        f"oauth_state:{verified.nonce}",
        expires_at=datetime.fromtimestamp(verified.expires, UTC),
        now=datetime.fromtimestamp(at, UTC),
    )
    if not first_use:
        raise StaleState(
            "This authorization link has already been used; start the connection again",
            code="used_state",
            integration_id=verified.integration_id,
        )
    return verified.integration_id
