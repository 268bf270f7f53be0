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
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from b24_openlines_plugin import appeals, events
from b24_openlines_plugin.bitrix import dialogs
from b24_openlines_plugin.bitrix.client import Command, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.records import Activity
from b24_openlines_plugin.connection import rest_client
from b24_openlines_plugin.settings import B24Settings, stored_settings
from hooks.errors import Conflict, HookError, RetryLater
from hooks.models import Appeal, Integration, ScheduleOutcome
from hooks.services import HostServices

STATE = "catchup"
PAGES_PER_RUN = 10  # at most 500 activities or offline events per run: the rate limit is shared
ALREADY_BOUND = "ERROR_HANDLER_ALREADY_EXIST"
OFFLINE_FEATURE = "rest_offline_extended"  # reading with clear=0, then clearing, needs it
NO_OFFLINE_LICENSE = "WRONG_LICENSE"
MAX_RETRY = 1000
EPOCH = "1970-01-01T00:00:00+00:00"


def handler_url(integration: Integration, host: HostServices) -> str:
    """The integration's Webhook URL (the host's), marked as the application's own delivery."""
    url = urlsplit(host.urls.webhook(integration))
    via = urlencode({"via": events.APP_DELIVERY})
    return urlunsplit(url._replace(query=f"{url.query}&{via}" if url.query else via))


async def run(integration: Integration, host: HostServices) -> ScheduleOutcome:
    settings = stored_settings(integration)
    if not settings.active or not integration.connection.get("member_id"):
        return ScheduleOutcome(note="not active or not connected")
    client = rest_client(integration, host)
    state: dict[str, Any] = dict(integration.connection.get(STATE) or {})
    state = await ensure_bindings(client, integration, settings, host, state)
    written = await _retry_saved(client, integration, settings, host, state)
    if state.get("offline"):
        try:
            written += await drain_offline(client, integration, settings, host, state)
        except BitrixError as exc:
            if exc.b24_code.upper() != NO_OFFLINE_LICENSE:
                raise
            state["offline"] = False  # the plan lacks it after all: walk the activities
    if not state.get("offline") or state.get("walk_pending"):
        written += await walk_activities(client, integration, settings, host, state)
    await _save(integration, host, state)
    return ScheduleOutcome(appeal_keys=[a.key for a in written])


async def ensure_bindings(
    client: RestClient,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
    state: dict[str, Any],
) -> dict[str, Any]:
    """Bind what is missing; remember it, so later runs cost no request."""
    handler = handler_url(integration, host)
    if state.get("handler") == handler and state.get("entity") == settings.entity:
        return state
    wanted = [events.ENTITY_EVENTS[settings.entity], *sorted(events.ACTIVITY_EVENTS)]
    bound = {
        (str(row.get("event", "")).upper(), str(row.get("handler", "")), str(row.get("offline", 0)))
        for row in await client.call("event.get") or []
        if isinstance(row, Mapping)
    }
    commands: dict[str, Command] = {}
    for name in wanted:
        if (name, handler, "0") not in bound:
            commands[f"online_{name}"] = Command("event.bind", {"event": name, "handler": handler})
        if not any(event == name and offline == "1" for event, _, offline in bound):
            commands[f"offline_{name}"] = Command(
                "event.bind", {"event": name, "handler": handler, "event_type": "offline"}
            )
    commands["feature"] = Command("feature.get", {"CODE": OFFLINE_FEATURE})
    results = await client.batch(commands)
    feature = results.pop("feature")
    has_feature = (
        feature.error is None
        and isinstance(feature.result, Mapping)
        and (feature.result.get("value") == "Y")
    )
    for key, result in results.items():
        if (
            key.startswith("online_")
            and result.error is not None
            and ALREADY_BOUND not in result.error.code
        ):
            raise result.error
    offline = has_feature and all(
        result.error is None or ALREADY_BOUND in result.error.code
        for key, result in results.items()
        if key.startswith("offline_")
    )
    return {**state, "handler": handler, "entity": settings.entity, "offline": offline}


async def drain_offline(
    client: RestClient,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
    state: dict[str, Any],
) -> list[Appeal]:
    """Read the offline queue; clear records only once their appeals are written.

    A page read with ``clear=0`` stays reserved for its ``process_id`` and no later read
    returns it, so the id is saved before the page is processed (``state["reserved"]``): a run
    that stops half-way (a worker killed, the database away) leaves it for the next run, which
    reads the same records again by that id. A record that fails is cleared too, but only
    after it is saved in our own retry list (``state["retry"]``): Bitrix24's error marks
    cannot be retried reliably (a record that fails twice stays reserved, out of sight).
    """
    written: list[Appeal] = []
    for _ in range(PAGES_PER_RUN):
        reserved = state.get("reserved")
        query: dict[str, Any] = {"clear": 0, "limit": 50}
        if reserved:
            query["process_id"] = reserved  # what an earlier run reserved and never cleared
        page = await client.call("event.offline.get", query)
        records = [r for r in (page or {}).get("events") or [] if isinstance(r, Mapping)]
        process_id = (page or {}).get("process_id") or reserved
        if not records or not process_id:
            if reserved:
                state.pop("reserved", None)  # cleared before its run could say so
                await _save(integration, host, state)
                continue
            break
        if not reserved:
            state["reserved"] = process_id
            await _save(integration, host, state)
        outcomes = await asyncio.gather(
            *(_process_record(client, integration, settings, host, r) for r in records),
            return_exceptions=True,
        )
        for record, outcome in zip(records, outcomes, strict=True):
            if isinstance(outcome, Appeal):
                written.append(outcome)
            elif isinstance(outcome, HookError):
                _remember(state, record)
            elif isinstance(outcome, BaseException):
                raise outcome
            elif _target(record) is None:
                _walk_since(state, record)
        await _save(integration, host, state)  # the retry list, before the records go
        await client.call("event.offline.clear", {"process_id": process_id})
        state.pop("reserved", None)
        await _save(integration, host, state)
        if len(records) < 50 and not reserved:
            break
    return written


def _target(record: Mapping[str, Any]) -> tuple[str, int] | None:
    data = record.get("EVENT_DATA")
    fields = data.get("FIELDS") if isinstance(data, Mapping) else None
    raw_id = fields.get("ID") if isinstance(fields, Mapping) else None
    if not str(raw_id or "").isdigit():
        return None
    return str(record.get("EVENT_NAME", "")).upper(), int(str(raw_id))


def _walk_since(state: dict[str, Any], record: Mapping[str, Any]) -> None:
    """A record without data (``EVENT_DATA`` false or null, as Bitrix24 documents for some
    events) names nothing to fetch, but something happened: the activities changed since its
    time are walked (from a second before it, in this run and the next until the walk reaches
    the end) before the record is cleared, so that it is never cleared unseen."""
    try:
        since = datetime.fromisoformat(str(record.get("TIMESTAMP_X"))) - timedelta(seconds=1)
    except ValueError:
        since = None
    if since is not None and since.tzinfo is None:  # the portal's zone, unknown: a day's margin
        since = since.replace(tzinfo=UTC) - timedelta(days=1)
    cursor = state.get("cursor") if state.get("walk_pending") else None
    if since is None:
        start = cursor or EPOCH
    elif cursor is None:
        start = since.isoformat()
    else:
        start = min(cursor, since.isoformat(), key=datetime.fromisoformat)
    state.update(cursor=start, cursor_id=0, walk_pending=True)


def _remember(state: dict[str, Any], record: Mapping[str, Any]) -> None:
    target = _target(record)
    if target is not None:
        retry = [tuple(t) for t in state.get("retry", [])]
        if target not in retry:
            state["retry"] = [*retry, target][-MAX_RETRY:]


async def _retry_saved(
    client: RestClient,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
    state: dict[str, Any],
) -> list[Appeal]:
    """Events that failed in an earlier run, tried again; those that work leave the list."""
    saved = [(str(name), int(entity)) for name, entity in state.get("retry", [])]
    if not saved:
        return []
    outcomes = await asyncio.gather(
        *(
            appeals.process_event(client, integration, settings, host, name, entity)
            for name, entity in saved
        ),
        return_exceptions=True,
    )
    state["retry"] = [t for t, o in zip(saved, outcomes, strict=True) if isinstance(o, HookError)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, HookError):
            raise outcome
    return [o for o in outcomes if isinstance(o, Appeal)]


async def _process_record(
    client: RestClient,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
    record: Mapping[str, Any],
) -> Appeal | None:
    target = _target(record)
    if target is None:
        return None  # nothing to act on; cleared like a processed one
    return await appeals.process_event(client, integration, settings, host, *target)


async def walk_activities(
    client: RestClient,
    integration: Integration,
    settings: B24Settings,
    host: HostServices,
    state: dict[str, Any],
) -> list[Appeal]:
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
    cursor: str | None = state.get("cursor")
    if cursor is None:
        # First run: start from now; what came before is history, not a missed event.
        latest = await dialogs.newest_activity(client)
        state["cursor"] = (_cursor_of(latest) if latest else None) or EPOCH
        state["cursor_id"] = latest.id if latest else 0
        return []
    after = int(state.get("cursor_id") or 0)
    written: list[Appeal] = []
    for _ in range(PAGES_PER_RUN):
        same, later = await dialogs.activities_after(client, cursor, after)
        page = same + later
        outcomes = await asyncio.gather(
            *(appeals.process_activity(client, integration, settings, host, a) for a in page),
            return_exceptions=True,
        )
        for activity, outcome in zip(page, outcomes, strict=True):
            if isinstance(outcome, HookError):  # kept for the next run; the walk goes on
                _remember(
                    state,
                    {
                        "EVENT_NAME": "ONCRMACTIVITYUPDATE",
                        "EVENT_DATA": {"FIELDS": {"ID": activity.id}},
                    },
                )
            elif isinstance(outcome, BaseException):
                raise outcome
            elif outcome is not None:
                written.append(outcome)
        if page and (last := _cursor_of(page[-1])) is not None:
            cursor, after = last, page[-1].id
        if len(same) < dialogs.PAGE and len(later) < dialogs.PAGE:
            after = 0  # the end of the list: its last second is read whole next run
            state.pop("walk_pending", None)  # what records without data asked for is done
            break
    state["cursor"], state["cursor_id"] = cursor, after
    return written


def _cursor_of(activity: Activity) -> str | None:
    return activity.last_updated.isoformat() if activity.last_updated else None


async def _save(integration: Integration, host: HostServices, state: dict[str, Any]) -> None:
    """Keep the cursor; a token refresh may have moved the version on, so read and write again."""
    for _ in range(3):
        current = await host.integrations.get(integration.id)
        if current is None:
            return
        try:
            await host.integrations.update(
                current.id, expected_version=current.version, connection={STATE: state}
            )
            return
        except Conflict:
            continue
    raise RetryLater("could not save the catch-up cursor: the integration kept changing")
