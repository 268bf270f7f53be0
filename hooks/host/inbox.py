"""The webhook inbox: a delivery is saved before it is answered, then drained per integration.

Bitrix24 never re-sends an event, so the only safe answer is one given after the request is on
disk. Processing happens later, in a drain job that holds the integration's lock (on whichever
worker takes it), retries transient failures with capped exponential backoff and parks permanent
ones for a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import time
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import partial

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse

from hooks.errors import HookError, NotFound, RetryLater
from hooks.host.batching import Batcher
from hooks.host.logs import log_context
from hooks.host.params import path_id
from hooks.host.repository import InboxItem, InboxOutcome, NewInboxItem
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
# A drain keeps up to this many items in flight. The plugin merges the concurrent lookups of
# one portal into batches of 50 commands (list commands of up to 50 ids, one history command
# per dialog), so the more items wait together, the fuller each request. By Little's law a
# burst keeps about (webhooks per second) x (an item's time in flight) items busy: Bitrix24
# delivers one webhook at a time, about 150 a second here, and an item takes about three REST
# rounds of up to ~1 s each under the portal's limit, so about 450. 500 lets a burst's whole
# arrival join the pipe, while a drain's memory stays bounded (about 25 KB an item: its
# request and the records fetched for it) whatever the backlog. (1,000 chats, standard limit,
# one run each on a busy machine: 200 → 61 requests, 500 → 58, 1,000 → 55.)
DRAIN_IN_FLIGHT = 500
# How often a drain looks for webhooks stored while it runs, when it has free slots.
DRAIN_POLL_SECONDS = 0.1
# How long a drain with nothing left waits for its portal's next webhooks before it ends.
DRAIN_LINGER_SECONDS = 0.2
# With nothing in flight, a drain that finds fewer than ``DRAIN_GATHER_MIN`` due items waits up
# to ``DRAIN_GATHER_SECONDS`` for more before it starts them: webhooks trickling in one at a
# time (a portal among many, each sending its next event when the last is answered) then go
# out in one request instead of one request each. Items that arrive while others are in
# flight start at once: they join the requests already waiting for the portal's limit.
DRAIN_GATHER_MIN = 50
DRAIN_GATHER_SECONDS = 0.5
# Items written in one transaction at most, and the pause between two: SQLite has one writer at
# a time, and a webhook's answer waits for its own commit, so the drain holds the write lock
# only briefly (10 appeals: about 2 ms) and leaves a gap for the web process's busy handler,
# which retries after 1, 2, 5 ms. (1,000 chats at once: ack p99 9-10 ms with the drain writing
# after the deliveries, 20-24 ms with it writing 50 at a time while they arrive.)
DRAIN_COMMIT_MAX = 10
DRAIN_COMMIT_GAP_SECONDS = 0.002
# After this long a drain takes nothing new and hands over (see ``_Pipe``).
DRAIN_TURN_SECONDS = 10.0
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
    # The webhooks in flight share their round trips (``Host.integration_reads`` and
    # ``inbox_writes`` before the answer, ``job_asks`` after it); each answer still waits for
    # its own row's commit.
    integration = (
        None if integration_id is None else await host.integration_reads.call(integration_id)
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
    item = await host.inbox_writes.call(
        NewInboxItem(
            integration.id,
            req,
            dedupe_key=verdict.dedupe_key,
            ignored=ignored,
            ignored_text=verdict.reason_text if ignored is not None else None,
        )
    )
    host.metrics.webhook_received(integration.id)
    # The drain is asked for after the answer is sent: the answer promises only what is
    # stored, and Bitrix24 sends a slow handler's next events later and at a lower priority.
    ask = BackgroundTask(ask_for_drain, host, integration.id) if item.status == "pending" else None
    return JSONResponse(
        {"accepted": ignored is None, "inbox_id": item.id, "status": item.status}, background=ask
    )


async def ask_for_drain(host: Host, integration_id: int) -> None:
    """Ask for the integration's drain, with the other webhooks asking at the same moment. A
    failure is only logged: the row is stored, and the scheduler's tick asks for the drain of
    every integration with pending rows (as after a crash between storing and asking)."""
    try:
        await host.job_asks.call((DRAIN, str(integration_id)))
    except Exception:
        log.exception("could not ask for the drain of integration %s", integration_id)


async def drain(host: Host, key: str) -> None:
    """Process the integration's due deliveries, keeping up to ``DRAIN_IN_FLIGHT`` in flight
    (``_Pipe``): each finished item's outcome is written with its appeals in one transaction,
    so a drain that dies loses nothing and its unfinished items are taken again. Ask for the
    next drain when this one's turn ended with work left, else a wake-up for the earliest
    retry."""
    integration = await host.repo.get_integration(int(key))
    if integration is None:
        return
    started = time.monotonic()
    with log_context(integration_id=integration.id):
        turn_over = await _Pipe(host, integration).run()
    host.metrics.drain_finished(integration.id, time.monotonic() - started)
    if turn_over:
        await host.queue.enqueue(DRAIN, key)
        return
    next_at = await host.repo.next_inbox_attempt(integration.id)
    if next_at is not None:
        await wake_at(host, integration.id, next_at)


class _Pipe:
    """One drain: items taken as slots free up and as webhooks arrive, written as they finish.

    - Up to ``DRAIN_IN_FLIGHT`` items are processed at once. When some finish, their outcomes
      and the appeals they wrote are committed together (the items that finished together in
      one transaction), and the free slots are filled from the inbox at once while it has more
      due items than were taken; otherwise the inbox is looked at every ``DRAIN_POLL_SECONDS``,
      so that webhooks stored while the drain runs join it.
    - Items in flight stay ``pending`` in the database until their outcome is committed: a
      worker killed at any instant leaves them to the next drain, and appeal keys make a second
      write of an appeal an update.
    - With nothing in flight, a few items found are held up to ``DRAIN_GATHER_SECONDS`` while
      more arrive (fewer requests, each fuller), then started together.
    - With nothing due and nothing in flight, a drain that processed something waits
      ``DRAIN_LINGER_SECONDS`` for its portal's next webhooks before ending (they would
      otherwise start a drain of their own and fill small batches); a drain that found nothing
      at its first look ends at once.
    - After ``DRAIN_TURN_SECONDS`` it takes nothing new, finishes what is in flight and ends
      (``run`` answers ``True``): the integration's periodic work, which shares its lock, and
      other portals waiting for a job slot get their turn before the next drain.
    """

    def __init__(self, host: Host, integration: Integration) -> None:
        self.host = host
        self.integration = integration
        self.sink = DrainAppeals(host.appeal_reads)
        self.tasks: dict[int, asyncio.Task[InboxOutcome]] = {}
        self.finished: list[int] = []
        self.wakeup = asyncio.Event()

    async def run(self) -> bool:
        """Until nothing is due or in flight (``False``) or the turn is over (``True``)."""
        loop = asyncio.get_running_loop()
        services = await self.host.services(appeals=self.sink)
        began = loop.time()
        next_look = began
        backlog = True  # the last look may have left due items behind
        held: list[InboxItem] = []  # found while nothing is in flight: gathering more
        gather_until = began
        idle_since: float | None = None
        processed = False
        try:
            while True:
                now = loop.time()
                turn_over = now - began >= DRAIN_TURN_SECONDS
                free = DRAIN_IN_FLIGHT - len(self.tasks) - len(held)
                if free > 0 and not turn_over and (backlog or now >= next_look):
                    items = await self.host.repo.due_inbox_items(
                        self.integration.id,
                        now=datetime.now(UTC),
                        limit=free,
                        exclude=[*self.tasks, *(item.id for item in held)],
                    )
                    next_look = loop.time() + DRAIN_POLL_SECONDS
                    backlog = len(items) == free
                    if items and not held:
                        gather_until = now + DRAIN_GATHER_SECONDS
                    held += items
                    processed = processed or bool(items)
                if held and (
                    self.tasks
                    or turn_over
                    or backlog
                    or len(held) >= DRAIN_GATHER_MIN
                    or now >= gather_until
                ):
                    for item in held:
                        self._start(services, item)
                    held = []
                if not self.tasks:
                    if held:  # gathering: a few more may come with the next look
                        await asyncio.sleep(max(0.0, min(next_look, gather_until) - now))
                        continue
                    if turn_over:
                        return True
                    if not processed:
                        return False
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= DRAIN_LINGER_SECONDS:
                        return False
                    await asyncio.sleep(
                        max(0.0, min(next_look, idle_since + DRAIN_LINGER_SECONDS) - now)
                    )
                    continue
                idle_since = None
                if not self.finished:
                    looking = len(self.tasks) < DRAIN_IN_FLIGHT and not turn_over
                    timeout = max(0.0, next_look - loop.time()) if looking else None
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), timeout)
                self.wakeup.clear()
                if self.finished:
                    await self._commit()
        finally:
            for task in self.tasks.values():
                task.cancel()
            if self.tasks:
                await asyncio.wait(self.tasks.values())

    def _start(self, services: HostServices, item: InboxItem) -> None:
        task = asyncio.create_task(
            _process(self.host, services, self.integration, item),
            name=f"inbox item {item.id}",
        )
        self.tasks[item.id] = task

        def done(_: asyncio.Task[InboxOutcome]) -> None:
            self.finished.append(item.id)
            self.wakeup.set()

        task.add_done_callback(done)

    async def _commit(self) -> None:
        """The items finished so far, in transactions of up to ``DRAIN_COMMIT_MAX`` items,
        each with their outcomes and appeals; only then do they leave the set in flight (until
        then the inbox reads leave them out). A moment between two transactions lets a waiting
        writer in (on SQLite, the web process storing the next webhook)."""
        finished, self.finished = self.finished, []
        for start in range(0, len(finished), DRAIN_COMMIT_MAX):
            if start:
                await asyncio.sleep(DRAIN_COMMIT_GAP_SECONDS)
            chunk = finished[start : start + DRAIN_COMMIT_MAX]
            outcomes = [self.tasks[item_id].result() for item_id in chunk]
            await self.host.repo.finish_drain(outcomes, self.sink.take(chunk))
            for item_id in chunk:
                del self.tasks[item_id]


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


# The inbox item whose hook is running (set in ``_process``, the item's own task), so that a
# drain's sink knows which item's outcome each appeal is written with.
_ITEM: ContextVar[int | None] = ContextVar("drain_inbox_item", default=None)


class DrainAppeals:
    """The appeal sink of a drain: it keeps the appeals the drain's hooks write, so that they
    are written with their items' outcomes in one transaction (``take``); reads see them first.

    Reads of stored appeals go through ``reads``, shared by the items in flight (one query for
    the many that wait together). A stored key's ``first_seen_at`` never changes, so an upsert
    reads it only for a key the drain has not read or written yet (a key first written by the
    drain is first seen then; the database keeps whichever ``first_seen_at`` came first).
    """

    def __init__(self, reads: Batcher[str, StoredAppeal | None]) -> None:
        self._reads = reads
        self._latest: dict[str, Appeal] = {}  # each key's last upsert, not yet taken
        self._keys: dict[int | None, set[str]] = {}  # the keys each item wrote
        self._first_seen: dict[str, datetime] = {}  # read, or first written by this drain

    @property
    def appeals(self) -> list[Appeal]:
        """Every appeal kept and not yet taken."""
        return list(self._latest.values())

    def take(self, item_ids: Iterable[int]) -> list[Appeal]:
        """The appeals to write with these items' outcomes: each key they wrote at its latest
        version (an item still in flight may have written it since), and those written outside
        any item. A key no other item in flight wrote is then forgotten (reads find it in the
        database)."""
        keys = set(self._keys.pop(None, ()))
        for item_id in item_ids:
            keys |= self._keys.pop(item_id, set())
        appeals = [self._latest[key] for key in keys]
        still_held: set[str] = set().union(*self._keys.values())
        for key in keys - still_held:
            del self._latest[key]
        return appeals

    async def upsert(self, appeal: Appeal) -> StoredAppeal:
        self._latest[appeal.key] = appeal
        self._keys.setdefault(_ITEM.get(), set()).add(appeal.key)
        if appeal.key not in self._first_seen:
            await self._read(appeal.key)
        now = datetime.now(UTC)
        return StoredAppeal(
            appeal=appeal,
            first_seen_at=self._first_seen.setdefault(appeal.key, now),
            updated_at=now,
        )

    async def get(self, key: str) -> Appeal | None:
        if key in self._latest:
            return self._latest[key]
        stored = await self._read(key)
        return stored.appeal if stored is not None else None

    async def _read(self, key: str) -> StoredAppeal | None:
        stored = await self._reads.call(key)
        if stored is not None:
            self._first_seen.setdefault(key, stored.first_seen_at)
        return stored


async def _process(
    host: Host, services: HostServices, integration: Integration, item: InboxItem
) -> InboxOutcome:
    """One item; every line logged meanwhile (a plugin's too) carries its id, and every appeal
    written meanwhile goes with its outcome."""
    _ITEM.set(item.id)
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
