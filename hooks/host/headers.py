"""The headers every response of the host carries: what a browser may do with its pages.

- ``Content-Security-Policy``: scripts and styles come only from the host's own files (no inline
  script, no ``eval``, no other origin), so a value that escaped escaping still runs nothing;
  no plugins; no ``<base>``; forms post only to the host; and no other site may frame a page
  (``frame-ancestors 'none'``: clickjacking the *Save* or *Retry* buttons).
- ``X-Frame-Options: DENY``: the same, for browsers older than ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``: a response is only what its content type says (a JSON
  answer that echoes its input is never taken for a script or a page).
- ``Referrer-Policy: no-referrer``: a page's address (the OAuth callback's code, a settings
  page) is never sent to the sites it links to.

A response that sets one of them itself keeps its own. ``tracker.js`` and the site endpoints are
used by other sites' pages: these headers restrict only documents of this host, not their use.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",  # data: for the empty favicon of base.html
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: Final = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
)


class SecurityHeadersMiddleware:
    """Adds ``SECURITY_HEADERS`` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, sending)
