"""The host's data seam: every read and write of host data goes through ``Repository``.

The embedded implementation is SQLite (``hooks.host.sqlite``); a PostgreSQL one can replace
it without touching the rest, which is why no SQL lives outside the implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import SecretStr

from hooks.models import (
    Appeal,
    Catalog,
    ContractModel,
    HookRequest,
    Integration,
    SessionBinding,
    StoredAppeal,
    VisitorSession,
)

InboxStatus = Literal["pending", "done", "ignored", "failed"]


class InboxItem(ContractModel):
    """A webhook delivery kept until a plugin has processed it."""

    id: int
    integration_id: int
    status: InboxStatus
    request: HookRequest
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str | None = None
    outcome: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class Repository(Protocol):
    # integrations
    async def create_integration(self, plugin: str, name: str) -> Integration:
        """A new integration with empty settings and a fresh unguessable webhook token."""
        ...

    async def get_integration(self, integration_id: int) -> Integration | None: ...

    async def list_integrations(self) -> list[Integration]: ...

    async def update_integration(
        self,
        integration_id: int,
        *,
        expected_version: int,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, SecretStr | None] | None = None,
        connection: Mapping[str, Any] | None = None,
    ) -> Integration:
        """Compare-and-swap write; raises ``hooks.errors.Conflict`` if the version moved on,
        ``hooks.errors.NotFound`` if there is no such integration. ``settings`` replaces,
        ``secrets`` and ``connection`` merge key by key (a ``None`` secret deletes the key)."""
        ...

    # the account catalog
    async def get_catalog(self) -> Catalog: ...

    async def replace_catalog(self, catalog: Catalog) -> None: ...

    # visitor sessions and bindings
    async def add_visitor_session(self, session: VisitorSession) -> None: ...

    async def get_visitor_session(self, session_id: str) -> VisitorSession | None: ...

    async def bind_session(
        self, integration_id: int, external_id: str, session_id: str
    ) -> SessionBinding:
        """Idempotent: the first binding of ``external_id`` wins and is returned again."""
        ...

    async def get_binding(self, integration_id: int, external_id: str) -> SessionBinding | None: ...

    # appeals
    async def upsert_appeal(self, appeal: Appeal, *, redoable: bool = False) -> StoredAppeal:
        """``redoable``: the write is made again if it is lost (a drain's, whose inbox item
        stays pending until its outcome is written after it), so it may skip waiting for the
        disk; the next write that does wait takes it along."""
        ...

    async def get_appeal(self, key: str) -> StoredAppeal | None: ...

    async def list_appeals(
        self, *, integration_id: int | None = None, limit: int = 100, offset: int = 0
    ) -> list[StoredAppeal]:
        """Newest first (by the appeal's ``created_at``)."""
        ...

    # the webhook inbox
    async def add_inbox_item(
        self,
        integration_id: int,
        request: HookRequest,
        *,
        dedupe_key: str | None = None,
        ignored: str | None = None,
    ) -> InboxItem:
        """Persist a delivery as pending, or as ignored with the reason. A delivery with the same
        dedupe key (by default: the same body) for the same integration is a duplicate: the
        existing item is returned and nothing is added."""
        ...

    async def due_inbox_items(
        self, integration_id: int, *, now: datetime, limit: int = 50
    ) -> list[InboxItem]:
        """Pending items whose ``next_attempt_at`` has come, oldest first."""
        ...

    async def next_inbox_attempt(self, integration_id: int) -> datetime | None:
        """When the integration's earliest pending item is due, if it has one."""
        ...

    async def pending_integrations(self) -> list[int]:
        """Integrations with pending items (to resume their drains after a restart)."""
        ...

    # An item's outcome is redoable (if lost, the item is pending and is processed again), so
    # these three may skip waiting for the disk.
    async def finish_inbox_item(
        self, item_id: int, status: Literal["done", "ignored"], outcome: Mapping[str, Any]
    ) -> None: ...

    async def retry_inbox_item(
        self, item_id: int, *, error: str, next_attempt_at: datetime
    ) -> None:
        """Count an attempt and keep the item pending until ``next_attempt_at``."""
        ...

    async def fail_inbox_item(self, item_id: int, *, error: str) -> None:
        """Count an attempt and park the item as failed."""
        ...

    async def requeue_inbox_item(self, item_id: int, *, now: datetime) -> InboxItem | None:
        """A person asked to retry a failed item: pending, due now, with a fresh retry budget."""
        ...

    async def list_inbox(
        self, *, status: InboxStatus | None = None, limit: int = 100
    ) -> list[InboxItem]:
        """Newest first."""
        ...

    # host secrets
    async def host_secret_key(self) -> bytes:
        """The host's signing key, made once and kept (signs OAuth ``state`` and CSRF tokens)."""
        ...

    async def use_nonce(self, nonce: str, *, expires_at: datetime, now: datetime) -> bool:
        """Spend a single-use value: ``True`` the first time, ``False`` ever after (a replay).
        It is kept until ``expires_at``; older ones are pruned, since whatever they guarded is
        refused as expired by then."""
        ...

    async def close(self) -> None: ...
