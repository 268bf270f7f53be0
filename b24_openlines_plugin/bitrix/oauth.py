"""OAuth 2.0 with Bitrix24: the allow-listed OAuth servers, code exchange and refresh.

Bitrix24 has two OAuth servers and names the one to use in the callback (``server_domain``).
That name comes from the browser, so it is only ever used to *pick* one of the allowed servers:
a client secret is never sent anywhere else.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from b24_openlines_plugin import REQUIRED_SCOPES
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.records import TokenGrant
from b24_openlines_plugin.bitrix.wire import WireError, parse_error, parse_token_grant
from hooks.errors import Forbidden, RetryLater, UpstreamError

DEFAULT_OAUTH_SERVERS = ("https://oauth.bitrix.info", "https://oauth.bitrix24.tech")
OAUTH_SERVERS_ENV = "B24_OAUTH_SERVERS"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _server_base(entry: str) -> str:
    """``https://host[:port]`` of an allow-list entry; plain http only for loopback."""
    parts = urlsplit(entry.strip().rstrip("/"))
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host or parts.path or parts.query:
        raise ValueError(
            f"{OAUTH_SERVERS_ENV}: {entry!r} is not a server address like https://oauth.example"
        )
    if parts.scheme == "http" and not is_loopback(host):
        raise ValueError(
            f"{OAUTH_SERVERS_ENV}: plain http is allowed for loopback servers only ({entry!r})"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def allowed_oauth_servers(environ: Mapping[str, str] = os.environ) -> list[str]:
    extra = [e for e in environ.get(OAUTH_SERVERS_ENV, "").split(",") if e.strip()]
    return [_server_base(entry) for entry in (*DEFAULT_OAUTH_SERVERS, *extra)]


def oauth_server_hosts(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The hosts of the allowed OAuth servers, none of which is a portal: a loopback one is
    left out, as the sandbox is a portal and its own OAuth server. A malformed extra entry is
    refused where OAuth needs the list; here the defaults stand in for it."""
    try:
        servers = allowed_oauth_servers(environ)
    except ValueError:
        servers = list(DEFAULT_OAUTH_SERVERS)
    hosts = (urlsplit(server).hostname or "" for server in servers)
    return frozenset(host for host in hosts if host and not is_loopback(host))


def oauth_server_for(server_domain: str, allowed: list[str]) -> str:
    """The allowed server whose ``host[:port]`` is ``server_domain``; ``Forbidden`` otherwise."""
    wanted = server_domain.strip().lower()
    for base in allowed:
        if urlsplit(base).netloc == wanted:
            return base
    raise Forbidden(
        f"OAuth server {server_domain[:100]!r} is not allowed; allowed: "
        + ", ".join(urlsplit(b).netloc for b in allowed),
        code="oauth_server_not_allowed",
    )


async def _token_request(
    http: httpx.AsyncClient, server: str, params: dict[str, str]
) -> TokenGrant:
    try:
        answer = await http.get(f"{server}/oauth/token/", params=params)
    except httpx.TransportError as exc:
        raise RetryLater(
            f"OAuth server {urlsplit(server).netloc} unreachable: {type(exc).__name__}"
        ) from exc
    if answer.status_code >= 500:
        raise RetryLater(f"OAuth server answered {answer.status_code}")
    try:
        payload = answer.json()
    except ValueError as exc:
        raise UpstreamError(f"OAuth server answered {answer.status_code} without JSON") from exc
    error = parse_error(payload)
    if error is not None:
        raise BitrixError(error.error, error.description)
    try:
        return parse_token_grant(payload)
    except WireError as exc:
        raise UpstreamError(f"Unexpected OAuth answer: {exc}") from exc


async def exchange_code(
    http: httpx.AsyncClient, server: str, *, client_id: str, client_secret: str, code: str
) -> TokenGrant:
    return await _token_request(
        http,
        server,
        {
            "grant_type": "authorization_code",
            "client_id": client_id,
            "client_secret": client_secret,
            "code": code,
        },
    )


async def refresh_tokens(
    http: httpx.AsyncClient, server: str, *, client_id: str, client_secret: str, refresh_token: str
) -> TokenGrant:
    """A new pair; the refresh token used here stops working (Bitrix24 rotates it)."""
    return await _token_request(
        http,
        server,
        {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        },
    )


def missing_scopes(granted: list[str]) -> list[str]:
    return [scope for scope in REQUIRED_SCOPES if scope not in granted]
