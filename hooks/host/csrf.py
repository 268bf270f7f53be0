"""CSRF protection of the host's HTML forms: a token bound to the browser's session.

A platform puts these pages behind a cookie session, and a page on any other site could then
submit their forms in a signed-in person's browser: change the credentials, retry webhooks. So
each browser gets a random session id in an HttpOnly, SameSite=Lax cookie, and every form
carries a token made from it (an HMAC with the host's signing key), in a hidden field that
another site can neither read nor guess. A POST (or any unsafe method) whose token is not the
one of the session its cookie names gets 403 before its handler runs, for every route outside
``EXEMPT``, so a new form is protected without anyone remembering to. Scripts may send the token
in ``x-csrf-token`` instead: another site cannot set that header without the host's CORS consent.

The token is not the cookie: a page shows the token, never the session id, so a token copied
from another browser's page (or its HTML saved, or its screen shared) is refused without that
browser's cookie, which no page and no script can read. Over HTTPS the cookie is ``Secure`` and
``__Host-`` prefixed, which browsers let no sibling subdomain set: nobody can plant their own
session, with its token, in someone else's browser.

``/api/`` is not cookie-authenticated and ``/webhooks/`` is called by Bitrix24: neither gets a
token nor needs one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hooks.errors import Forbidden, HookError
from hooks.host.api import host_of
from hooks.host.i18n import N_
from hooks.host.state import read_capped_body

SESSION_COOKIE = "host_session"
SECURE_SESSION_COOKIE = f"__Host-{SESSION_COOKIE}"  # HTTPS only: no subdomain may set it
FIELD = "csrf_token"
HEADER = "x-csrf-token"
EXEMPT = ("/api/", "/webhooks/", "/static/", "/tracker.js")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # ``secrets.token_urlsafe(32)``

Refuse = Callable[[Request, HookError], Awaitable[Response]]


def session_cookie(*, secure: bool) -> str:
    """The session cookie's name: ``__Host-`` prefixed when the host is served over HTTPS."""
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def _token(key: bytes, session_id: str) -> str:
    return hmac.new(key, f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    """Constant-time, and safe for any text a client sends (``compare_digest`` refuses
    non-ASCII strings)."""
    return hmac.compare_digest(a.encode(), b.encode())


def csrf_token(request: Request) -> str:
    """The token of this request's browser, for a form to carry."""
    token: str = request.state.csrf_token
    return token


@pass_context
def csrf_field(context: Context) -> Markup:
    """``{{ csrf_field() }}`` in a template: the hidden input every POST form needs."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FIELD, csrf_token(context["request"])
    )


class CsrfMiddleware:
    """Hands each browser a session (its cookie) and refuses unsafe requests that do not send
    the session's token back.

    ``refuse`` renders the 403 (the host's error page); ``max_body`` caps what is read to find
    the form field; ``secure`` marks the cookie for HTTPS only.
    """

    def __init__(self, app: ASGIApp, *, refuse: Refuse, max_body: int, secure: bool) -> None:
        self.app = app
        self.refuse = refuse
        self.max_body = max_body
        self.secure = secure
        self.cookie = session_cookie(secure=secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        key = await host_of(request).repo.host_secret_key()
        session_id = request.cookies.get(self.cookie, "")
        known = _SESSION_ID.fullmatch(session_id) is not None
        if not known:
            session_id = secrets.token_urlsafe(32)
            send = self._setting_cookie(send, session_id)
        token = _token(key, session_id)
        scope.setdefault("state", {})["csrf_token"] = token
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_capped_body(request, self.max_body)
        except HookError as exc:
            await (await self.refuse(request, exc))(scope, receive, send)
            return
        if not (known and _same(_submitted(request, body), token)):
            refused = Forbidden(
                N_(
                    "The form is out of date or was sent from another site: reload the page and"
                    " submit it again"
                ),
                code="csrf_failed",
            )
            await (await self.refuse(request, refused))(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _setting_cookie(self, send: Send, session_id: str) -> Send:
        cookie = f"{self.cookie}={session_id}; Path=/; HttpOnly; SameSite=Lax" + (
            "; Secure" if self.secure else ""
        )

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("set-cookie", cookie)
            await send(message)

        return sending


def _submitted(request: Request, body: bytes) -> str:
    """The token the request sends back: the header, or the field of a urlencoded form."""
    header = request.headers.get(HEADER)
    if header is not None:
        return header
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in parse_qsl(body.decode("latin-1")):
            if name == FIELD:
                return value
    return ""


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the handler: the body already read, then whatever comes next."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
