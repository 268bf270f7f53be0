"""Visitor session ids that only the host can make: a random part and the host's MAC over it.

The tracker's id travels through browsers, site scripts and chat text, and whoever has one can
attribute a chat to its visit. Random ids are unguessable, but nothing told an id the host
issued from one someone wrote: signed, the host believes an id only if it made it, before any
lookup, and every process of the host checks it with the same key (the database's signing key,
``Repository.host_secret_key``, under its own label so it signs nothing else).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_NONCE_CHARS = 22  # secrets.token_urlsafe(16)
_TAG_BYTES = 16  # 128 bits of HMAC-SHA256: forging one is 2**128 guesses, each refused
ID_LENGTH = _NONCE_CHARS + 22  # base64url of 16 bytes, unpadded: [A-Za-z0-9_-] only


def _tag(key: bytes, nonce: str) -> str:
    mac = hmac.new(key, f"visit:{nonce}".encode("ascii"), hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def issue(key: bytes) -> str:
    """A new visitor session id, signed with ``key``."""
    nonce = secrets.token_urlsafe(16)
    return nonce + _tag(key, nonce)


def issued(key: bytes, session_id: str) -> bool:
    """Whether the host made ``session_id`` (constant time; any text is safe to ask about)."""
    if len(session_id) != ID_LENGTH or not session_id.isascii():
        return False
    nonce, tag = session_id[:_NONCE_CHARS], session_id[_NONCE_CHARS:]
    return hmac.compare_digest(tag, _tag(key, nonce))
