"""Catching up on what push delivery missed, and completing transcripts (``on_schedule``).

Bitrix24 never re-sends an event, and a lead is created at the first message, so pushes alone
lose chats and cut transcripts short. Each periodic run, per integration:

1. the plugin's own handlers are bound (``event.bind``, checked with ``event.get``): the
   entity event of the settings and the Open Lines activity events, and, where the portal
   allows it, the same as offline events — Bitrix24's only lossless delivery;
2. with offline events (the plan's ``rest_offline_extended``), the queue is read
   (``event.offline.get`` with ``clear=0``), each event processed, and only then cleared;
   what failed is kept in the plugin's own retry list and tried again next run;
3. without them, the Open Lines activities changed since a cursor are walked
   (``crm.activity.list`` by ``LAST_UPDATED`` and ``ID``, a keyset): a lost event, a
   returning customer's new dialog without a new lead, a dialog answered or closed after its
   lead was made — each upserts its dialog's appeal, so every dialog arrives once, with its
   whole text.

The first run after connecting starts the walk the settings' number of days back, so the
dialogs of the days before connecting arrive too (``HistoryImport``), whatever the delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from b24_openlines_plugin import appeals, events
from b24_openlines_plugin.bitrix import dialogs, event_queue
from b24_openlines_plugin.bitrix.client import RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.records import Activity, OfflineEvent
from b24_openlines_plugin.connection import rest_client
from b24_openlines_plugin.context import Portal
from b24_openlines_plugin.state import CATCHUP, PROBLEM, Catchup, HistoryImport, save_connection
from hooks.errors import HookError
from hooks.models import Appeal, Integration, ScheduleOutcome
from hooks.services import HostServices

PAGES_PER_RUN = 10  # at most 500 activities or offline events per run: the rate limit is shared
PAGES_READ_AT_ONCE = 3  # pages of the walk whose dialogs are being read side by side
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_T = TypeVar("_T")


async def run(integration: Integration, host: HostServices) -> ScheduleOutcome:
    portal = Portal.of(integration, host)
    if not portal.settings.active or not portal.connection.connected:
        return ScheduleOutcome(note="not active or not connected")
    client = rest_client(integration, host)
    state = portal.connection.catchup or Catchup()
    await ensure_bindings(client, portal, state)
    written = await _retry_saved(client, portal, state)
    if state.offline:
        try:
            written += await drain_offline(client, portal, state)
        except BitrixError as exc:
            if not event_queue.is_offline_unlicensed(exc):
                raise
            state.offline = False  # the plan lacks it after all: walk the activities
    starting = state.cursor is None
    if starting:
        await _start_walk(client, portal, state)
    if state.walk_pending or not (starting or state.offline):
        written += await walk_activities(client, portal, state)
    await _save(portal, state)
    return ScheduleOutcome(appeal_keys=[a.key for a in written])


async def ensure_bindings(client: RestClient, portal: Portal, state: Catchup) -> None:
    """Bind what is missing; remember it, so later runs cost no request."""
    handler = events.handler_url(portal.integration, portal.host)
    entity = portal.settings.entity
    if state.handler == handler and state.entity == entity:
        return
    state.offline = await event_queue.bind_handlers(
        client, handler, event_queue.wanted_events(entity)
    )
    state.handler, state.entity = handler, entity


async def drain_offline(client: RestClient, portal: Portal, state: Catchup) -> list[Appeal]:
    """Read the offline queue; clear records only once their appeals are written.

    A page read with ``clear=0`` stays reserved for its ``process_id`` and no later read
    returns it, so the id is saved before the page is processed (``state.reserved``): a run
    that stops half-way (a worker killed, the database away) leaves it for the next run, which
    reads the same records again by that id. A record that fails is cleared too, but only
    after it is saved in our own retry list (``state.retry``): Bitrix24's error marks cannot
    be retried reliably (a record that fails twice stays reserved, out of sight).
    """
    written: list[Appeal] = []
    for _ in range(PAGES_PER_RUN):
        reserved = state.reserved
        page = await event_queue.read_offline(client, reserved)
        process_id = page.process_id or reserved
        if not page.events or not process_id:
            if reserved:
                state.reserved = None  # cleared before its run could say so
                await _save(portal, state)
                continue
            break
        if not reserved:
            state.reserved = process_id
            await _save(portal, state)
        written += await _each(page.events, lambda e: _process_offline(client, portal, state, e))
        await _save(portal, state)  # the retry list, before the records go
        await event_queue.clear_offline(client, process_id)
        state.reserved = None
        await _save(portal, state)
        if len(page.events) < event_queue.OFFLINE_PAGE and not reserved:
            break
    return written


async def _process_offline(
    client: RestClient, portal: Portal, state: Catchup, event: OfflineEvent
) -> Appeal | None:
    if event.entity_id is None:
        _walk_since(state, event)
        return None
    try:
        return await appeals.process_event(client, portal, event.name, event.entity_id)
    except HookError:
        state.remember(event.name, event.entity_id)
        raise


def _walk_since(state: Catchup, event: OfflineEvent) -> None:
    """A record without data (``EVENT_DATA`` false or null, as Bitrix24 documents for some
    events) names nothing to fetch, but something happened: the activities changed since its
    time are walked (from a second before it, in this run and the next until the walk reaches
    the end) before the record is cleared, so that it is never cleared unseen."""
    since = event.at - timedelta(seconds=1) if event.at is not None else None
    if since is not None and since.tzinfo is None:  # the portal's zone, unknown: a day's margin
        since = since.replace(tzinfo=UTC) - timedelta(days=1)
    cursor = state.cursor if state.walk_pending else None
    starts = [moment for moment in (cursor, since) if moment is not None]
    state.cursor = min(starts) if starts else EPOCH
    state.cursor_id = 0
    state.walk_pending = True


async def _each(
    items: Sequence[_T], process: Callable[[_T], Awaitable[Appeal | None]]
) -> list[Appeal]:
    """Process items side by side; one that fails stays failed (its ``process`` has kept it
    for a retry) while the others go on. Anything but a ``HookError`` is a bug: raised."""
    outcomes = await asyncio.gather(*(process(item) for item in items), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, HookError):
            raise outcome
    return [outcome for outcome in outcomes if isinstance(outcome, Appeal)]


async def _retry_saved(client: RestClient, portal: Portal, state: Catchup) -> list[Appeal]:
    """Events that failed in an earlier run, tried again; those that fail again stay."""
    saved, state.retry = state.retry, []

    async def again(target: tuple[str, int]) -> Appeal | None:
        try:
            return await appeals.process_event(client, portal, *target)
        except HookError:
            state.remember(*target)
            raise

    return await _each(saved, again)


async def _start_walk(client: RestClient, portal: Portal, state: Catchup) -> None:
    """The first run: the walk starts the settings' days before connecting (counting what it
    will import, for the settings page), or, with no days, at the moment of connecting — the
    dialogs between connecting and this run's bindings have no events to bring them."""
    days = portal.settings.import_days
    connected = portal.connection.connected_at
    if connected is None:  # connected by a version that did not keep the moment
        latest = await dialogs.newest_activity(client)
        state.cursor = (latest.last_updated if latest else None) or EPOCH
        state.cursor_id = latest.id if latest else 0
        return
    if days == 0:
        state.cursor, state.cursor_id, state.walk_pending = connected, 0, True
        return
    until = connected
    since = until - timedelta(days=days)
    state.history = HistoryImport(
        since=since, until=until, total=await dialogs.count_activities(client, since, until)
    )
    state.cursor, state.cursor_id, state.walk_pending = since, 0, True


async def walk_activities(client: RestClient, portal: Portal, state: Catchup) -> list[Appeal]:
    """Every Open Lines dialog changed since the cursor → its appeal.

    The cursor is a keyset, (``LAST_UPDATED``, ``ID``) of the last activity read, never an
    offset: each step reads the rest of the cursor's second by ``ID`` and what came after it,
    in one batch. A second of any size is crossed page by page and run by run (no freeze),
    and an activity updated during a walk moves past the cursor, where the walk finds it (no
    skip). Where the walk reaches the end of the list, the last second is read again from its
    start next run: activities updated in that second after it was read may have lower ids.
    A dialog that fails goes to the retry list and the walk goes on, so one bad dialog never
    holds the others back.
    """
    cursor, after = state.cursor or EPOCH, state.cursor_id
    history = state.history if state.history and not state.history.done else None
    written: list[Appeal] = []

    async def process(activity: Activity) -> Appeal | None:
        try:
            return await appeals.process_activity(client, portal, activity)
        except HookError:  # kept for the next run; the walk goes on
            state.remember(event_queue.ACTIVITY_CHANGED, activity.id)
            raise

    # Pipelined: the next page is asked, and this page's dialogs read, while the last pages'
    # are still being read, so their commands ride in shared batches instead of each waiting
    # for the others in a request of its own.
    following: asyncio.Task[tuple[list[Activity], list[Activity]]] | None = None
    reading: list[asyncio.Task[list[Appeal]]] = []
    try:
        for number in range(PAGES_PER_RUN):
            same, later = await (following or dialogs.activities_after(client, cursor, after))
            following = None
            page = same + later
            if page and page[-1].last_updated is not None:
                cursor, after = page[-1].last_updated, page[-1].id
            end = len(same) < dialogs.PAGE and len(later) < dialogs.PAGE
            if not end and number + 1 < PAGES_PER_RUN:
                following = asyncio.ensure_future(dialogs.activities_after(client, cursor, after))
            reading.append(asyncio.ensure_future(_each(page, process)))
            if len(reading) > PAGES_READ_AT_ONCE:
                written += await reading.pop(0)
            if history is not None:
                history.seen += sum(
                    1 for a in page if a.last_updated and a.last_updated <= history.until
                )
            if end:
                after = 0  # the end of the list: its last second is read whole next run
                state.walk_pending = False  # what records without data asked for is done
                if history is not None:
                    history.done = True
                break
        while reading:
            written += await reading.pop(0)
    finally:
        for unread in [*reading, *([following] if following else [])]:
            unread.cancel()  # the walk stopped on an error: nobody reads these
    state.cursor, state.cursor_id = cursor, after
    return written


async def _save(portal: Portal, state: Catchup) -> None:
    """Keep the cursor (and forget a problem that a run getting this far has outlived)."""
    await save_connection(
        portal.host,
        portal.id,
        {CATCHUP: state.to_json(), PROBLEM: None},
        same_as=portal.connection,
    )
