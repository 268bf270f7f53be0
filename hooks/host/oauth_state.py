"""The OAuth ``state`` parameter: signed, expiring and bound to one integration.

The callback has nothing else to find the integration by, and an unsigned state would let
anyone attach a portal to someone else's integration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from hooks.errors import BadRequest

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


def verify_state(key: bytes, state: str, *, now: float | None = None) -> int:
    """The integration id in a valid state; ``BadRequest`` for a forged, broken or old one."""
    body, _, mac = state.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not mac or not hmac.compare_digest(mac, expected):
        raise BadRequest(
            "The authorization link is not valid; start the connection again", code="invalid_state"
        )
    try:
        payload = json.loads(_unb64(body))
        integration_id, expires = int(payload["i"]), int(payload["e"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest("The authorization link is not valid", code="invalid_state") from exc
    if (time.time() if now is None else now) > expires:
        raise BadRequest(
            "The authorization link has expired; start the connection again", code="expired_state"
        )
    return integration_id
