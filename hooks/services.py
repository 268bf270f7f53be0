"""What the host lends to hooks: its stores, its HTTP client and its address.

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

    async def get(self, session_id: str) -> VisitorSession | None: ...

    async def bind(self, integration_id: int, external_id: str, session_id: str) -> SessionBinding:
        """Tie a visitor session to a plugin's conversation id; binding again is harmless."""
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


@dataclass(frozen=True)
class HostServices:
    """Handed to every hook as ``host``."""

    public_url: str
    language: Language
    http: httpx.AsyncClient
    sessions: SessionStore
    appeals: AppealSink
    integrations: IntegrationStore
    catalog: Catalog

    def url(self, path: str) -> str:
        """An absolute URL of the host's public surface (``/oauth2/callback`` → ``https://…``)."""
        return self.public_url.rstrip("/") + "/" + path.lstrip("/")
