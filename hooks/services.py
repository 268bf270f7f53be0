"""What the host lends to hooks: its stores, its HTTP client, its public URLs and shared rate
limits.

Plugins depend on these protocols only, so any host (this repository's reference host, the real
platform, a test double) can serve them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from hooks.models import (
    Appeal,
    Catalog,
    Integration,
    Language,
    SessionBinding,
    StoredAppeal,
    VisitorSession,
)


class SessionStore(Protocol):
    """The host's visitor sessions (campaign, source, site, UTM) and their bindings."""

    async def get(self, session_id: str) -> VisitorSession | None:
        """The visit, or ``None`` for an id the host does not know or did not issue: the ids
        its tracker hands out are signed, so one written by anyone else is never found."""
        ...

    async def bind(self, integration_id: int, external_id: str, session_id: str) -> SessionBinding:
        """Tie a visitor session to a plugin's conversation id. The first binding of
        ``external_id`` is kept and returned ever after: a binding never replaces another.
        Its ``created_at`` is when it was first made."""
        ...

    async def binding(self, integration_id: int, external_id: str) -> SessionBinding | None: ...


class AppealSink(Protocol):
    """Raw data → Appeals and goals."""

    async def upsert(self, appeal: Appeal) -> StoredAppeal:
        """Insert the appeal, or replace the fields of the one with the same key."""
        ...

    async def get(self, key: str) -> Appeal | None:
        """The appeal with this key, to update it when more is learnt."""
        ...


class IntegrationStore(Protocol):
    """Integrations with compare-and-swap, so two workers never lose a rotated token."""

    async def get(self, integration_id: int) -> Integration | None: ...

    async def update(
        self,
        integration_id: int,
        *,
        expected_version: int,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, SecretStr | None] | None = None,
        connection: Mapping[str, Any] | None = None,
    ) -> Integration:
        """Write if the stored version is still ``expected_version``, else raise ``Conflict``.

        ``settings`` replaces the stored settings; ``secrets`` and ``connection`` are merged
        key by key (a ``None`` secret deletes that key).
        """
        ...


class HostUrls(Protocol):
    """The absolute URLs of the host's public surface that a plugin shows or hands out.

    The host owns its routes: a plugin asks for these and never spells a host path itself.
    """

    def webhook(self, integration: Integration) -> str:
        """The integration's Webhook URL, its secret token included: where the integration's
        events are delivered (Bitrix24's outbound webhook, event handlers). Treat it as a secret.
        """
        ...

    def oauth_redirect(self) -> str:
        """The OAuth redirect URL: where the browser comes back after authorizing an application."""
        ...

    def session_report(self, integration_id: int) -> str:
        """Where the site script of integration ``integration_id`` reports a visitor's session."""
        ...


class RateLimits(Protocol):
    """Leaky buckets kept by the host and shared by all its processes, on every machine.

    Each bucket, named by ``key``, is a level that drains by ``rate`` per second (never below
    zero) and rises by one per request counted. It is for limits that a remote service counts
    on its side (a Bitrix24 portal's request rate): every process of the host that calls the
    service counts its requests in the same bucket, so together they stay under the limit.
    Times are the host's wall clock. A bucket never used holds 0. Keys are shared by every
    plugin: name the remote thing (``bitrix24:portal.bitrix24.ru``), not the caller.
    """

    async def take(self, key: str, *, rate: float, burst: float) -> float:
        """Count one request now, atomically however many processes count at once, and return
        the level including it. The caller then waits until the bucket has drained to its place
        under ``burst`` (the bucket's capacity): about ``(level - burst) / rate`` seconds, if
        that is positive. Counting before waiting reserves the place, so callers queue in
        order without a lock."""
        ...

    async def fill(self, key: str, *, rate: float, burst: float) -> None:
        """The service refused a request as over its limit: believe it (someone else counts
        there too). The bucket is drained to now, then raised to ``burst`` if it was lower."""
        ...


@dataclass(frozen=True)
class HostServices:
    """Handed to every hook as ``host``."""

    urls: HostUrls
    language: Language
    http: httpx.AsyncClient
    sessions: SessionStore
    appeals: AppealSink
    integrations: IntegrationStore
    rate_limits: RateLimits
    catalog: Catalog
