"""The local application and its OAuth grants: codes live 30 s, access tokens 1 h, refresh rotates.

A refresh consumes the refresh token and also retires the access token issued with it
(API-FACTS §1.5); pairs issued separately (another authorization, an event) live on.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b24_openlines_plugin.sandbox import errors
from b24_openlines_plugin.sandbox.config import SandboxConfig

CODE_TTL = 30
ACCESS_TTL = 3600
REFRESH_TTL = 180 * 24 * 3600
ALL_SCOPES = (
    "crm",
    "imopenlines",
    "im",
    "imconnector",
    "contact_center",
    "user",
    "user_brief",
    "user_basic",
    "department",
    "task",
    "entity",
    "placement",
)


def random_token(length: int = 32) -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class LocalApp:
    """Developer resources → Other → Local application, as the portal admin created it."""

    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: list[str]
    application_token: str
    name: str = "Analytics (local application)"
    version: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": self.redirect_uri,
            "scopes": list(self.scopes),
            "application_token": self.application_token,
        }


@dataclass
class Grant:
    """One access/refresh pair, issued together and retired together."""

    access_token: str
    refresh_token: str
    user_id: int
    scopes: tuple[str, ...]
    issued_at: float
    revoked: bool = False
    expired: bool = False  # made to expire early (soak faults), as if its hour were up

    @property
    def expires(self) -> int:
        return int(self.issued_at) + ACCESS_TTL


@dataclass
class AuthCode:
    user_id: int
    scopes: tuple[str, ...]
    expires_at: float
    used: bool = False


class OAuthError(Exception):
    """An answer of the OAuth server's token endpoint (HTTP 400)."""

    def __init__(self, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.description = description

    def to_json(self) -> dict[str, Any]:
        # invalid_grant comes without a description (error.invalid_grant.json).
        body: dict[str, Any] = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return body


@dataclass
class TokenStore:
    clock: Callable[[], float]
    codes: dict[str, AuthCode] = field(default_factory=dict)
    by_access: dict[str, Grant] = field(default_factory=dict)
    by_refresh: dict[str, Grant] = field(default_factory=dict)

    def issue_code(self, user_id: int, scopes: list[str]) -> str:
        code = random_token()
        self.codes[code] = AuthCode(user_id, tuple(scopes), self.clock() + CODE_TTL)
        return code

    def issue(self, user_id: int, scopes: tuple[str, ...]) -> Grant:
        grant = Grant(random_token(), random_token(), user_id, scopes, self.clock())
        self.by_access[grant.access_token] = grant
        self.by_refresh[grant.refresh_token] = grant
        return grant

    def exchange(self, app: LocalApp, params: dict[str, str]) -> Grant:
        """The token endpoint: ``grant_type`` authorization_code or refresh_token."""
        grant_type = params.get("grant_type", "")
        if not grant_type:
            raise OAuthError("invalid_request", 'No "grant_type" parameter found')
        if params.get("client_id") != app.client_id or not secrets.compare_digest(
            params.get("client_secret", ""), app.client_secret
        ):
            raise OAuthError("invalid_client", "Invalid client_id or client_secret")
        if grant_type == "authorization_code":
            return self._redeem_code(params.get("code", ""))
        if grant_type == "refresh_token":
            return self._rotate(params.get("refresh_token", ""))
        raise OAuthError("invalid_request", f'Unsupported "grant_type" "{grant_type}"')

    def _redeem_code(self, code: str) -> Grant:
        if not code:
            raise OAuthError("invalid_request", 'No "code" parameter found')
        found = self.codes.get(code)
        if found is None or found.used or self.clock() > found.expires_at:
            raise OAuthError("invalid_grant")
        found.used = True
        return self.issue(found.user_id, found.scopes)

    def _rotate(self, refresh_token: str) -> Grant:
        if not refresh_token:
            raise OAuthError("invalid_request", 'No "refresh_token" parameter found')
        old = self.by_refresh.get(refresh_token)
        if old is None or old.revoked or self.clock() > old.issued_at + REFRESH_TTL:
            raise OAuthError("invalid_grant")
        old.revoked = True
        return self.issue(old.user_id, old.scopes)

    def authenticate(self, access_token: str) -> Grant:
        """The REST side: a retired or unknown token is invalid, an old one is expired."""
        grant = self.by_access.get(access_token)
        if grant is None or grant.revoked:
            raise errors.invalid_token()
        if grant.expired or self.clock() >= grant.expires:
            raise errors.expired_token()
        return grant

    def expire_all(self) -> None:
        """Every access token issued so far expires now; refresh tokens keep working."""
        for grant in self.by_access.values():
            grant.expired = True


def token_response(grant: Grant, config: SandboxConfig) -> dict[str, Any]:
    """oauth.token.*.response.json: ``domain`` is the OAuth server, the portal is the endpoint."""
    return {
        "access_token": grant.access_token,
        "client_endpoint": config.client_endpoint,
        "domain": config.domain,
        "expires": grant.expires,
        "expires_in": ACCESS_TTL,
        "member_id": config.member_id,
        "refresh_token": grant.refresh_token,
        "scope": ",".join(grant.scopes),
        "server_endpoint": config.server_endpoint,
        "status": "L",
        "user_id": grant.user_id,
    }
