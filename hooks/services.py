"""What the host lends to hooks: its stores, its HTTP client, its public URLs, shared rate
limits and a place to report what the plugin's work costs (``Metrics``).

Plugins depend on these protocols only, so any host (this repository's reference host, the real
platform, a test double) can serve them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

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

MESSENGER_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""What a messenger code is made of: no 0/O, 1/I/L look-alikes, since visitors may retype it."""
MESSENGER_CODE_LENGTH = 8
MessengerChannel = Literal["telegram", "whatsapp", "viber"]
"""A messenger whose links carry a code; clicks and chats with a code are counted by these."""
MESSENGER_CHANNELS: tuple[MessengerChannel, ...] = get_args(MessengerChannel)


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

    async def mint_code(
        self, integration_id: int, session_id: str, channel: str | None = None
    ) -> str | None:
        """A code of ``MESSENGER_CODE_LENGTH`` characters of ``MESSENGER_CODE_ALPHABET`` that
        carries the visit into a messenger chat (never starting with ``BTRX``: Bitrix24 hides
        Telegram start codes that do), valid for 30 days; ``None`` for a visit the host does not
        know or did not issue. The visit's code while no dialog has taken it and it has a day
        left to live (the site script asks on every page and click), else a new one. A
        ``channel`` (one of ``MESSENGER_CHANNELS``, else ``ValueError``) counts one click on
        that messenger's links, on the account's day."""
        ...

    async def redeem_code(
        self, integration_id: int, code: str, external_id: str, channel: str | None = None
    ) -> VisitorSession | None:
        """The visit of the integration's ``code`` (in any case) for the conversation
        ``external_id``: the first conversation to redeem a valid code takes it, and only that
        one gets the visit, then and ever after. ``None`` for any other conversation, or a code
        expired before it was taken, unknown or not a code at all. The code remembers the
        ``channel`` (``MESSENGER_CHANNELS``) of the conversation that took it: the chats that
        arrived with a code, per channel, in ``IntegrationHealth.messenger_links``."""
        ...


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

    def messenger_code(self, integration_id: int) -> str:
        """Where the site script of integration ``integration_id`` asks for the visitor's
        messenger code (and counts a click on a messenger link)."""
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


class Metrics(Protocol):
    """What a plugin reports about its calls to a remote service, for the host's monitoring
    (the reference host: Prometheus, ``GET /metrics``). The host labels each figure with the
    integration only; the other arguments become labels too, so they must come from a small
    fixed set (a REST method name, an error code): never a secret, a URL or free text."""

    def rest_request(self, integration_id: int, *, method: str, outcome: str) -> None:
        """One HTTP request to the remote API (``batch``…), answered with ``outcome`` (``ok``,
        the remote's error code such as ``QUERY_LIMIT_EXCEEDED``, ``timeout``, ``http_502``)."""
        ...

    def rest_command(self, integration_id: int, *, method: str, outcome: str) -> None:
        """One command carried inside a request (``crm.lead.get`` in a ``batch``)."""
        ...

    def rate_limit_wait(self, integration_id: int, seconds: float) -> None:
        """Time spent waiting for the remote's rate limit before a request could go."""
        ...

    def token_refresh_failed(self, integration_id: int) -> None:
        """Renewing the remote's access token failed."""
        ...


class NoMetrics:
    """``Metrics`` that keeps nothing: for hosts that do not monitor (and test doubles)."""

    def rest_request(self, integration_id: int, *, method: str, outcome: str) -> None:
        return None

    def rest_command(self, integration_id: int, *, method: str, outcome: str) -> None:
        return None

    def rate_limit_wait(self, integration_id: int, seconds: float) -> None:
        return None

    def token_refresh_failed(self, integration_id: int) -> None:
        return None


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
    metrics: Metrics = field(default_factory=NoMetrics)
