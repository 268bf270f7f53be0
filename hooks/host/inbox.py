"""The webhook inbox: a delivery is saved before it is answered, then drained per integration.

Bitrix24 never re-sends an event, so the only safe answer is one given after the request is on
disk. Processing happens later, in a drain job that holds the integration's lock (on whichever
worker takes it), retries transient failures with capped exponential backoff and parks permanent
ones for a person.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from datetime import UTC, datetime, timedelta
from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse

from hooks.errors import HookError, NotFound, RetryLater
from hooks.host.logs import log_context
from hooks.host.params import path_id
from hooks.host.repository import InboxItem, InboxOutcome, Repository
from hooks.host.state import Host, hook_request, read_capped_body
from hooks.models import Appeal, Integration, StoredAppeal
from hooks.services import HostServices

log = logging.getLogger("hooks.host.inbox")

# The host's jobs (``hooks.host.jobs``). A drain and the periodic work of an integration hold
# its lock, so they never overlap; ``wake`` (key ``<id>@<unix second>``) asks for a drain when
# a retried delivery falls due, without holding the lock meanwhile; ``tick`` is the scheduler.
DRAIN = "drain"
SCHEDULE = "schedule"
WAKE = "wake"
TICK = "tick"
LOCKED_JOBS = frozenset({DRAIN, SCHEDULE})
DRAIN_BATCH = 50
MAX_ATTEMPTS = 8
FIRST_RETRY_SECONDS = 2.0
MAX_RETRY_SECONDS = 600.0


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: doubling from 2 s, capped at 10 minutes."""
    delay: float = min(FIRST_RETRY_SECONDS * 2.0 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return max(delay, retry_after or 0.0)


async def receive_webhook(request: Request) -> JSONResponse:
    host: Host = request.app.state.host
    integration_id = path_id(request, "integration_id")
    integration = (
        None if integration_id is None else await host.repo.get_integration(integration_id)
    )
    token = request.path_params["token"]
    if integration is None or not hmac.compare_digest(
        token.encode(), integration.webhook_token.get_secret_value().encode()
    ):
        host.metrics.webhook_refused(integration.id if integration else None, "unknown_webhook")
        raise NotFound("No such webhook")
    try:
        body = await read_capped_body(request, host.config.webhook_max_bytes)
        # The path carries the webhook token: keep it out of the stored request.
        req = hook_request(request, body, path=f"/webhooks/{integration.id}/")
        verdict = await host.plugins.webhook_verify(
            integration, request=req, host=await host.services()
        )
    except HookError as exc:
        host.metrics.webhook_refused(integration.id, exc.code)
        raise
    ignored = (verdict.reason or "ignored") if verdict.result == "ignore" else None
    item = await host.repo.add_inbox_item(
        integration.id,
        req,
        dedupe_key=verdict.dedupe_key,
        ignored=ignored,
        ignored_text=verdict.reason_text if ignored is not None else None,
    )
    host.metrics.webhook_received(integration.id)
    if item.status == "pending":
        try:
            await host.queue.enqueue(DRAIN, str(integration.id))
        except Exception:  # stored is what the answer promises: the scheduler's tick finds it
            log.exception("could not ask for the drain of integration %s", integration.id)
    return JSONResponse({"accepted": ignored is None, "inbox_id": item.id, "status": item.status})


async def drain(host: Host, key: str) -> None:
    """Process up to ``DRAIN_BATCH`` due deliveries of the integration concurrently, then write
    their appeals and outcomes in one transaction: a drain that dies before it is done again,
    whole. Ask for the next drain when more are due, and a wake-up for the earliest retry."""
    integration = await host.repo.get_integration(int(key))
    if integration is None:
        return
    started = time.monotonic()
    items = await host.repo.due_inbox_items(
        integration.id, now=datetime.now(UTC), limit=DRAIN_BATCH
    )
    sink = DrainAppeals(host.repo)
    services = await host.services(appeals=sink)
    with log_context(integration_id=integration.id):
        outcomes = await asyncio.gather(
            *(_process(host, services, integration, item) for item in items)
        )
    await host.repo.finish_drain(outcomes, sink.appeals)
    host.metrics.drain_finished(integration.id, time.monotonic() - started)
    if len(items) == DRAIN_BATCH:
        await host.queue.enqueue(DRAIN, key)
        return
    next_at = await host.repo.next_inbox_attempt(integration.id)
    if next_at is not None:
        await wake_at(host, integration.id, next_at)


async def wake_at(host: Host, integration_id: int, at: datetime) -> None:
    """A drain of the integration at ``at`` (to the next second), asked for then."""
    delay = (at - datetime.now(UTC)).total_seconds()
    if delay <= 0:
        await host.queue.enqueue(DRAIN, str(integration_id))
        return
    second = math.ceil(at.timestamp())
    await host.queue.enqueue(WAKE, f"{integration_id}@{second}", delay=delay)


async def wake(host: Host, key: str) -> None:
    await host.queue.enqueue(DRAIN, key.partition("@")[0])


async def schedule(host: Host, key: str) -> None:
    """The integration's periodic work (binding its handlers, catching up on lost events)."""
    integration_id = int(key)
    integration = await host.repo.get_integration(integration_id)
    if integration is None:
        return
    with log_context(integration_id=integration_id):
        try:
            outcome = await host.plugins.schedule(integration, host=await host.services())
        except RetryLater as exc:
            log.info("periodic work of integration %s postponed: %s", integration_id, exc.message)
        except HookError as exc:
            if exc.status != 404:  # 404: the plugin has no periodic work
                log.warning(
                    "periodic work of integration %s failed: %s", integration_id, exc.message
                )
        except Exception:
            log.exception("periodic work of integration %s failed", integration_id)
        else:
            host.metrics.catchup_succeeded(integration_id)
            if outcome.appeal_keys or outcome.note:
                log.info(
                    "integration %s: %d appeals caught up. %s",
                    integration_id,
                    len(outcome.appeal_keys),
                    outcome.note or "",
                )


async def tick(host: Host, key: str) -> None:
    """The scheduler, once per period however many workers run: every integration's periodic
    work, and a drain for each with pending deliveries (one whose drain request was lost with
    a power cut or a crash between storing a webhook and asking for its drain)."""
    period = host.config.schedule_seconds
    if period <= 0:
        return
    # A tenth of slack: the tick that claimed the last period comes back after ``period`` by
    # its own timer, a little early or late, and must not find the period not yet over.
    if await host.repo.claim_period(TICK, period_seconds=period * 0.9, now=datetime.now(UTC)):
        for integration in await host.repo.list_integrations():
            await host.queue.enqueue(SCHEDULE, str(integration.id))
        for integration_id in await host.repo.pending_integrations():
            await host.queue.enqueue(DRAIN, str(integration_id))
    await host.queue.enqueue(TICK, key, delay=period)


def register_jobs(host: Host) -> None:
    """What a worker runs for each of the host's jobs."""
    host.queue.register(DRAIN, partial(drain, host))
    host.queue.register(SCHEDULE, partial(schedule, host))
    host.queue.register(WAKE, partial(wake, host))
    host.queue.register(TICK, partial(tick, host))


async def start_scheduler(host: Host) -> None:
    """Make sure the scheduler's tick is asked for (a worker does this when it starts)."""
    if host.config.schedule_seconds > 0:
        await host.queue.enqueue(TICK, "all")


class DrainAppeals:
    """The appeal sink of a drain: it keeps the appeals the drain's hooks write, so that they
    are written with the items' outcomes in one transaction; reads see them first."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._kept: dict[str, Appeal] = {}

    @property
    def appeals(self) -> list[Appeal]:
        return list(self._kept.values())

    async def upsert(self, appeal: Appeal) -> StoredAppeal:
        self._kept[appeal.key] = appeal
        stored = await self._repo.get_appeal(appeal.key)
        now = datetime.now(UTC)
        return StoredAppeal(
            appeal=appeal,
            first_seen_at=stored.first_seen_at if stored is not None else now,
            updated_at=now,
        )

    async def get(self, key: str) -> Appeal | None:
        if key in self._kept:
            return self._kept[key]
        stored = await self._repo.get_appeal(key)
        return stored.appeal if stored is not None else None


async def _process(
    host: Host, services: HostServices, integration: Integration, item: InboxItem
) -> InboxOutcome:
    """One item; every line logged meanwhile (a plugin's too) carries its id."""
    with log_context(inbox_item_id=item.id):
        outcome = await _attempt(host, services, integration, item)
        error = f": {outcome.error}" if outcome.error else ""
        log.info(
            "inbox item %s of integration %s: %s%s", item.id, integration.id, outcome.status, error
        )
    return outcome


async def _attempt(
    host: Host, services: HostServices, integration: Integration, item: InboxItem
) -> InboxOutcome:
    try:
        outcome = await host.plugins.webhook(integration, request=item.request, host=services)
    except RetryLater as exc:
        if item.attempts + 1 >= MAX_ATTEMPTS:
            return InboxOutcome(
                item_id=item.id,
                status="failed",
                error=f"gave up after {MAX_ATTEMPTS} attempts: {exc.message}",
            )
        delay = retry_delay(item.attempts + 1, exc.retry_after)
        return InboxOutcome(
            item_id=item.id,
            status="retry",
            error=exc.message,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
        )
    except HookError as exc:
        return InboxOutcome(item_id=item.id, status="failed", error=f"{exc.code}: {exc.message}")
    except Exception as exc:  # a plugin bug: park the item, keep draining the others
        log.exception("inbox item %s of integration %s failed", item.id, integration.id)
        return InboxOutcome(
            item_id=item.id, status="failed", error=f"internal error: {type(exc).__name__}"
        )
    return InboxOutcome(
        item_id=item.id,
        status="done" if outcome.result == "processed" else "ignored",
        outcome=outcome.model_dump(mode="json"),
    )
