"""The webhook inbox: a delivery is saved before it is answered, then drained per integration.

Bitrix24 never re-sends an event, so the only safe answer is one given after the request is on
disk. Processing happens later, in a drain job that holds the integration's queue key, retries
transient failures with capped exponential backoff and parks permanent ones for a person.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse

from hooks.errors import HookError, NotFound, RetryLater
from hooks.host.repository import InboxItem
from hooks.host.state import Host, hook_request, read_capped_body
from hooks.models import Integration
from hooks.services import HostServices

log = logging.getLogger("hooks.host.inbox")

DRAIN = "drain"
TICK = "tick"
SCHEDULE_NOW = "schedule-now"
JOB_NAMES = frozenset({DRAIN, TICK, SCHEDULE_NOW})
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
    raw_id = request.path_params["integration_id"]
    integration = await host.repo.get_integration(int(raw_id)) if raw_id.isdigit() else None
    token = request.path_params["token"]
    if integration is None or not hmac.compare_digest(
        token.encode(), integration.webhook_token.get_secret_value().encode()
    ):
        raise NotFound("No such webhook")
    body = await read_capped_body(request, host.config.webhook_max_bytes)
    # The path carries the webhook token: keep it out of the stored request.
    req = hook_request(request, body, path=f"/webhooks/{integration.id}/")
    verdict = await host.plugins.webhook_verify(
        integration, request=req, host=await host.services()
    )
    ignored = (verdict.reason or "ignored") if verdict.result == "ignore" else None
    item = await host.repo.add_inbox_item(
        integration.id, req, dedupe_key=verdict.dedupe_key, ignored=ignored
    )
    if item.status == "pending":
        await host.queue.enqueue(DRAIN, str(integration.id))
    return JSONResponse({"accepted": ignored is None, "inbox_id": item.id, "status": item.status})


async def drain(host: Host, key: str) -> None:
    """Process the integration's due deliveries, then its periodic work when that is due.

    Both run in this one job, keyed by the integration, so they never overlap for it.
    """
    integration = await host.repo.get_integration(int(key))
    if integration is None:
        return
    await _drain_inbox(host, integration, key)
    if host.schedule_due(integration.id):
        await run_schedule(host, integration.id)


async def run_schedule(host: Host, integration_id: int) -> None:
    integration = await host.repo.get_integration(integration_id)
    if integration is None:
        return
    try:
        outcome = await host.plugins.schedule(integration, host=await host.services())
    except RetryLater as exc:
        log.info("periodic work of integration %s postponed: %s", integration_id, exc.message)
    except HookError as exc:
        if exc.status != 404:  # 404: the plugin has no periodic work
            log.warning("periodic work of integration %s failed: %s", integration_id, exc.message)
    except Exception:
        log.exception("periodic work of integration %s failed", integration_id)
    else:
        if outcome.appeal_keys or outcome.note:
            log.info(
                "integration %s: %d appeals caught up. %s",
                integration_id,
                len(outcome.appeal_keys),
                outcome.note or "",
            )


async def schedule_now(host: Host, key: str) -> None:
    """An integration was just connected: its periodic work (binding its handlers, catching up)
    runs in its next drain instead of within the interval. A job of its own, because the drain
    and its schedule live where jobs run, which may be another process."""
    host.last_scheduled.pop(int(key), None)
    await host.queue.enqueue(DRAIN, key)


async def start_jobs(host: Host) -> None:
    """Register the host's jobs on its queue, start it, and ask for the work already waiting:
    the drains of integrations with pending deliveries, and the scheduler."""
    host.queue.register(DRAIN, partial(drain, host))
    host.queue.register(TICK, partial(tick, host))
    host.queue.register(SCHEDULE_NOW, partial(schedule_now, host))
    await host.queue.start()
    for integration_id in await host.repo.pending_integrations():
        await host.queue.enqueue(DRAIN, str(integration_id))
    if host.config.schedule_seconds > 0:
        await host.queue.enqueue(TICK, "all")


async def tick(host: Host, key: str) -> None:
    """The scheduler: ask for every integration's job, then come back after the interval."""
    for integration in await host.repo.list_integrations():
        await host.queue.enqueue(DRAIN, str(integration.id))
    await host.queue.enqueue(TICK, key, delay=host.config.schedule_seconds)


async def _drain_inbox(host: Host, integration: Integration, key: str) -> None:
    items = await host.repo.due_inbox_items(
        integration.id, now=datetime.now(UTC), limit=DRAIN_BATCH
    )
    services = await host.services(for_inbox=True)
    await asyncio.gather(*(_process(host, services, integration, item) for item in items))
    if len(items) == DRAIN_BATCH:
        await host.queue.enqueue(DRAIN, key)
        return
    next_at = await host.repo.next_inbox_attempt(integration.id)
    if next_at is not None:
        delay = max((next_at - datetime.now(UTC)).total_seconds(), 0.0)
        await host.queue.enqueue(DRAIN, key, delay=delay)


async def _process(
    host: Host, services: HostServices, integration: Integration, item: InboxItem
) -> None:
    try:
        outcome = await host.plugins.webhook(integration, request=item.request, host=services)
    except RetryLater as exc:
        if item.attempts + 1 >= MAX_ATTEMPTS:
            await host.repo.fail_inbox_item(
                item.id, error=f"gave up after {MAX_ATTEMPTS} attempts: {exc.message}"
            )
        else:
            delay = retry_delay(item.attempts + 1, exc.retry_after)
            next_at = datetime.now(UTC) + timedelta(seconds=delay)
            await host.repo.retry_inbox_item(item.id, error=exc.message, next_attempt_at=next_at)
    except HookError as exc:
        await host.repo.fail_inbox_item(item.id, error=f"{exc.code}: {exc.message}")
    except Exception as exc:  # a plugin bug: park the item, keep draining the others
        log.exception("inbox item %s of integration %s failed", item.id, integration.id)
        await host.repo.fail_inbox_item(item.id, error=f"internal error: {type(exc).__name__}")
    else:
        status: Literal["done", "ignored"] = "done" if outcome.result == "processed" else "ignored"
        await host.repo.finish_inbox_item(item.id, status, outcome.model_dump(mode="json"))
