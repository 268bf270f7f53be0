"""The host's data seam: every read and write of host data goes through ``Repository``.

Two implementations, chosen by the database URL (``hooks.host.database.open_repository``):
SQLite, the embedded default (``hooks.host.sqlite``), and PostgreSQL for several processes on
several machines (``hooks.host.postgres``). No SQL lives outside them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol, TypedDict, Unpack

from pydantic import SecretStr

from hooks.models import (
    Appeal,
    Catalog,
    ContractModel,
    HookRequest,
    Integration,
    IntegrationHealth,
    LocalizedText,
    SessionBinding,
    StoredAppeal,
    VisitorSession,
)

InboxStatus = Literal["pending", "done", "ignored", "failed"]


class AppealQuery(TypedDict, total=False):
    """Which appeals ``list_appeals`` and ``count_appeals`` read; each one left out: all."""

    integration_id: int | None
    created_from: datetime | None  # inclusive
    created_before: datetime | None  # exclusive
    # After this one in the list's order (``created_at`` then ``key``, both descending): the
    # next page of a list that keeps changing, without offsets that skip or repeat rows.
    after: tuple[datetime, str] | None


# What goes with a deleted integration: work it can no longer do. Its appeals stay.
DELETED_WITH_INTEGRATION = (
    "webhook_inbox",
    "session_bindings",
    "messenger_codes",
    "messenger_clicks",
)


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


@dataclass(frozen=True)
class NewInboxItem:
    """A delivery to store (``Repository.add_inbox_items``): pending, or ignored with the
    reason (``ignored_text``: the same in people's words)."""

    integration_id: int
    request: HookRequest
    dedupe_key: str | None = None
    ignored: str | None = None
    ignored_text: LocalizedText | None = None


class InboxOutcome(ContractModel):
    """What became of one inbox item in a drain; written with the drain's appeals at once.

    ``done``/``ignored``: finished, with the plugin's ``outcome``. ``retry``: an attempt is
    counted and the item stays pending until ``next_attempt_at``. ``failed``: an attempt is
    counted and the item is parked for a person. ``error`` goes with the last two.
    """

    item_id: int
    status: Literal["done", "ignored", "retry", "failed"]
    outcome: dict[str, Any] | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


class Repository(Protocol):
    # integrations
    async def create_integration(self, plugin: str, name: str) -> Integration:
        """A new integration with empty settings and a fresh unguessable webhook token."""
        ...

    async def get_integration(self, integration_id: int) -> Integration | None: ...

    async def get_integrations(self, ids: Collection[int]) -> dict[int, Integration]:
        """The integrations of ``ids`` by id, in one query; deleted and unknown ones absent."""
        ...

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

    async def rename_integration(self, integration_id: int, name: str) -> Integration:
        """A new name (``NotFound`` if there is no such integration); the version stays, as
        the name is no part of what compare-and-swap guards."""
        ...

    async def delete_integration(self, integration_id: int) -> bool:
        """The integration gone from every lookup, its secrets and connection dropped and its
        ``DELETED_WITH_INTEGRATION`` rows deleted, in one transaction; its appeals stay (the
        client's raw data). ``False`` if there was no such integration (or it was deleted)."""
        ...

    async def integration_health(
        self, integration_id: int, *, today: datetime, week: datetime, failures_since: datetime
    ) -> IntegrationHealth:
        """The integration's last event and appeal, its appeals created since ``today`` and
        ``week`` (midnights in the account's zone), and its deliveries failed since
        ``failures_since`` with the newest one's reason; per messenger channel, the clicks
        counted on the days from ``week``'s date (in ``week``'s own zone) and the codes taken
        by a dialog since ``week`` (``messenger_links``)."""
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

    async def add_messenger_code(
        self,
        integration_id: int,
        code: str,
        session_id: str,
        *,
        expires_at: datetime,
        now: datetime,
    ) -> bool:
        """Keep ``code`` for the visit ``session_id``; ``False`` (nothing written) if the code
        is taken already, by any integration: the caller draws another."""
        ...

    async def redeem_messenger_code(
        self,
        integration_id: int,
        code: str,
        external_id: str,
        *,
        now: datetime,
        channel: str | None = None,
    ) -> str | None:
        """The visit of the integration's ``code`` for the dialog ``external_id``. The first
        dialog to ask before ``expires_at`` takes the code, atomically however many ask at once,
        and gets its visit ever after (expired or not); any other dialog, an expired code not
        taken, or an unknown one: ``None``. The code keeps the ``channel`` and the time (``now``)
        of the first time it was taken."""
        ...

    async def unused_messenger_code(
        self, integration_id: int, session_id: str, *, valid_after: datetime
    ) -> str | None:
        """The newest code of the visit that no dialog has taken and that expires after
        ``valid_after``, if any: the visit's code is asked for again on every page and click."""
        ...

    async def count_messenger_click(self, integration_id: int, channel: str, day: date) -> None:
        """One more click on the integration's ``channel`` links on ``day`` (the account's)."""
        ...

    # appeals
    async def upsert_appeal(self, appeal: Appeal) -> StoredAppeal:
        """Insert, or replace every field of the appeal with this key; ``first_seen_at`` stays."""
        ...

    async def get_appeal(self, key: str) -> StoredAppeal | None: ...

    async def get_appeals(self, keys: Collection[str]) -> dict[str, StoredAppeal]:
        """The stored appeals among ``keys``, by key: one round trip for a drain's many reads."""
        ...

    async def list_appeals(
        self, *, limit: int = 100, offset: int = 0, **filters: Unpack[AppealQuery]
    ) -> list[StoredAppeal]:
        """Newest first (by the appeal's ``created_at``); ``created_from`` (inclusive) and
        ``created_before`` (exclusive) bound its ``created_at``, whatever offset it came with."""
        ...

    async def count_appeals(self, **filters: Unpack[AppealQuery]) -> int:
        """How many appeals ``list_appeals`` with the same filters has in all (for paging)."""
        ...

    # the webhook inbox
    async def add_inbox_item(
        self,
        integration_id: int,
        request: HookRequest,
        *,
        dedupe_key: str | None = None,
        ignored: str | None = None,
        ignored_text: LocalizedText | None = None,
    ) -> InboxItem:
        """Persist a delivery as pending, or as ignored with the reason (``ignored_text``: the
        same in people's words, kept as the outcome's ``reason_text``). A delivery with the same
        dedupe key (by default: the same body) for the same integration is a duplicate: the
        existing item is returned and nothing is added. ``add_inbox_items`` of one item."""
        ...

    async def add_inbox_items(self, items: Sequence[NewInboxItem]) -> list[InboxItem]:
        """``add_inbox_item`` of each, in one transaction (one statement where the engine
        allows), committed when this returns; the stored items in the order of ``items``. Two
        duplicates in one call both get the one item stored. ``NotFound`` if an integration is
        unknown: then nothing is written."""
        ...

    async def due_inbox_items(
        self,
        integration_id: int,
        *,
        now: datetime,
        limit: int = 50,
        exclude: Collection[int] = (),
    ) -> list[InboxItem]:
        """Pending items whose ``next_attempt_at`` has come, oldest first, leaving out the ids
        in ``exclude`` (a drain's items in flight)."""
        ...

    async def next_inbox_attempt(self, integration_id: int) -> datetime | None:
        """When the integration's earliest pending item is due, if it has one."""
        ...

    async def pending_integrations(self) -> list[int]:
        """Integrations with pending items (to resume their drains after a restart)."""
        ...

    async def inbox_counts(self) -> dict[tuple[int, InboxStatus], int]:
        """How many inbox items each integration has in each state (states without any left
        out), for the host's monitoring."""
        ...

    async def appeal_counts(self) -> dict[int, int]:
        """How many appeals each integration has (integrations without any left out)."""
        ...

    async def finish_drain(
        self, outcomes: Sequence[InboxOutcome], appeals: Sequence[Appeal]
    ) -> None:
        """One transaction: upsert ``appeals`` (as ``upsert_appeal``, the last of one key wins)
        and write every outcome. Nothing is written if any part fails (``NotFound`` for an
        unknown item or integration), so a drain is either wholly recorded or done again."""
        ...

    async def requeue_inbox_item(self, item_id: int, *, now: datetime) -> InboxItem | None:
        """A person asked to retry a failed item: pending, due now, with a fresh retry budget
        and without its last error (it belongs to the attempts given up on)."""
        ...

    async def list_inbox(
        self, *, status: InboxStatus | None = None, limit: int = 100
    ) -> list[InboxItem]:
        """Newest first."""
        ...

    async def claim_period(self, name: str, *, period_seconds: float, now: datetime) -> bool:
        """Atomically: ``True`` (and remember ``now``) if ``name`` was last claimed
        ``period_seconds`` or more before ``now`` or never; else ``False``. However many
        workers ask, one claim per period wins (the periodic scheduler's guard)."""
        ...

    # rate limits shared by the host's processes (``hooks.services.RateLimits``)
    async def take_rate(
        self, key: str, *, rate: float, now: float, count: float = 1.0, at_least: float = 0.0
    ) -> float:
        """Atomically, however many processes ask at once: drain the leaky bucket ``key`` (empty
        if new) by ``rate`` per second from its last update to ``now`` (Unix seconds; never
        below 0, and a ``now`` before the last update, from a clock behind another machine's,
        drains nothing), add ``count``, raise it to ``at_least``, and return the new level.
        Counting a request: ``count=1``; the remote refused us: ``count=0, at_least=burst``."""
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
