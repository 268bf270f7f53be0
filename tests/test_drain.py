"""A drain keeps its pipe full: webhooks stored while it runs join it, each finished item is
written (its appeal with its outcome) as it finishes, and items still in flight are left pending
for the next drain. On both backends (SQLite's jobs table, procrastinate on PostgreSQL).

The plugin here is the host's own test double (``Held``, registered as any plugin is): a webhook
``n=<k>`` becomes the appeal ``held:<k>``, and the test can hold any of them in flight until it
lets it go, which is how "while a drain runs" is made to last as long as a test needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs

import anyio
import httpx
import pytest

from hooks import hookimpl
from hooks.host.app import create_app
from hooks.host.database import open_repository
from hooks.host.inbox import DRAIN
from hooks.host.plugins import get_plugin_manager
from hooks.host.repository import Repository
from hooks.host.state import Host, HostConfig
from hooks.models import (
    Appeal,
    Attribution,
    CrmRef,
    HookRequest,
    Integration,
    PortalRef,
    WebhookOutcome,
    WebhookVerdict,
)
from hooks.services import HostServices
from tests.conftest import HOST_KEY, PUBLIC_URL

pytestmark = pytest.mark.anyio
HANG = 30.0  # only guards against a hang
PLUGIN = "held"


def appeal_key(n: str) -> str:
    return f"held:{n}"


class Held:
    """Webhooks ``n=<k>`` → appeals ``held:<k>``; ``hold(k)`` keeps ``k`` in flight until
    ``let_go(k)``. Counts how often each was processed."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.processed: Counter[str] = Counter()

    def hold(self, n: str) -> None:
        self.gates[n] = asyncio.Event()

    def let_go(self, n: str) -> None:
        self.gates[n].set()

    @hookimpl
    def on_webhook_verify(
        self, integration: Integration, request: HookRequest, host: HostServices
    ) -> WebhookVerdict | None:
        return WebhookVerdict(result="accept") if integration.plugin == PLUGIN else None

    @hookimpl
    def on_webhook(
        self, integration: Integration, request: HookRequest, host: HostServices
    ) -> object:
        if integration.plugin != PLUGIN:
            return None
        return self._process(integration, request, host)

    async def _process(
        self, integration: Integration, request: HookRequest, host: HostServices
    ) -> WebhookOutcome:
        n = parse_qs(request.body.decode())["n"][0]
        self.started[n].set()
        if n in self.gates:
            await self.gates[n].wait()
        await host.appeals.upsert(_appeal(integration.id, n))
        self.processed[n] += 1
        return WebhookOutcome(result="processed", appeal_keys=[appeal_key(n)])


def _appeal(integration_id: int, n: str) -> Appeal:
    now = datetime.now(UTC)
    return Appeal(
        key=appeal_key(n),
        integration_id=integration_id,
        created_at=now,
        channel="livechat",
        attribution=Attribution(method="default", traffic_type="source", source_id=1),
        text=f"chat {n}",
        crm=CrmRef(entity_type="lead", entity_id=int(n)),
        portal=PortalRef(domain="held.example", member_id="held"),
    )


@dataclass
class Running:
    host: Host
    client: httpx.AsyncClient
    plugin: Held
    integration: Integration

    @property
    def repo(self) -> Repository:
        return self.host.repo

    async def send(self, *numbers: int) -> None:
        """Deliver webhooks as a portal does; each is stored (and its drain asked for)."""
        token = self.integration.webhook_token.get_secret_value()
        for n in numbers:
            answer = await self.client.post(
                f"/webhooks/{self.integration.id}/{token}", content=f"n={n}".encode()
            )
            assert answer.status_code == 200, answer.text

    async def appeal_keys(self) -> set[str]:
        keys = set()
        for appeal in await self.repo.list_appeals(integration_id=self.integration.id, limit=1000):
            keys.add(appeal.appeal.key)
        return keys

    async def statuses(self) -> Counter[str]:
        return Counter(item.status for item in await self.repo.list_inbox(limit=1000))


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> HostConfig:
    db = str(tmp_path / "host.sqlite3")
    if request.param == "postgres":
        db = request.getfixturevalue("postgres_url")
    return HostConfig(db=db, public_url=PUBLIC_URL, host_key=HOST_KEY, schedule_seconds=0)


@contextlib.asynccontextmanager
async def running(config: HostConfig) -> AsyncIterator[Running]:
    """The host with its inline worker and the ``Held`` plugin, and an integration of it."""
    plugin = Held()
    app = create_app(config, plugins=get_plugin_manager(extra={PLUGIN: plugin}))
    async with app.router.lifespan_context(app):
        host: Host = app.state.host
        integration = await host.repo.create_integration(PLUGIN, "Held")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            yield Running(host, client, plugin, integration)


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls ``condition`` until it holds (``HANG`` only guards against a hang)."""
    with anyio.fail_after(HANG):
        while not await condition():
            await asyncio.sleep(0.02)
    assert await condition(), what


async def test_webhooks_stored_during_a_drain_are_processed_by_it(config: HostConfig) -> None:
    """One drain per integration at a time: a webhook done while the first one is still in
    flight can only have been taken by the drain that holds it."""
    async with running(config) as run:
        run.plugin.hold("1")
        await run.send(1)
        with anyio.fail_after(HANG):
            await run.plugin.started["1"].wait()  # the drain runs, item 1 in flight
        await run.send(2, 3)

        async def later_ones_written() -> bool:
            return {appeal_key("2"), appeal_key("3")} <= await run.appeal_keys()

        await _until(later_ones_written, "items 2 and 3 written")
        assert run.plugin.processed["1"] == 0  # the drain that took 1 is still running
        assert appeal_key("1") not in await run.appeal_keys()
        assert (await run.statuses())["pending"] == 1  # only item 1, still in flight

        run.plugin.let_go("1")
        with anyio.fail_after(HANG):
            await run.host.queue.idle()
        assert await run.appeal_keys() == {appeal_key(str(n)) for n in (1, 2, 3)}
        assert await run.statuses() == Counter({"done": 3})
        assert run.plugin.processed == Counter({"1": 1, "2": 1, "3": 1})


async def test_a_long_drain_writes_each_item_as_it_finishes(config: HostConfig) -> None:
    """Items that finish are committed, appeal with outcome, while others are still held;
    the held ones were all in flight together (the drain does not wait for a group)."""
    async with running(config) as run:
        held = ["1", "5", "9"]
        for n in held:
            run.plugin.hold(n)
        await run.send(*range(1, 13))
        with anyio.fail_after(HANG):
            for n in held:
                await run.plugin.started[n].wait()

        async def the_others_written() -> bool:
            return len(await run.appeal_keys()) == 9

        await _until(the_others_written, "the nine not held written")
        assert await run.appeal_keys() == {
            appeal_key(str(n)) for n in range(1, 13) if str(n) not in held
        }
        assert await run.statuses() == Counter({"done": 9, "pending": 3})
        for n in held:
            run.plugin.let_go(n)
            await _until(partial(_has, run, appeal_key(n)), f"item {n} written once let go")
        with anyio.fail_after(HANG):
            await run.host.queue.idle()
        assert await run.statuses() == Counter({"done": 12})
        assert run.plugin.processed == Counter({str(n): 1 for n in range(1, 13)})


async def _has(run: Running, key: str) -> bool:
    return key in await run.appeal_keys()


async def test_a_drain_stopped_mid_way_leaves_its_unfinished_items_to_the_next_one(
    config: HostConfig,
) -> None:
    """The worker stops while items are in flight (as a killed worker's job is taken again):
    what finished is written, what did not is still pending and is processed by the next
    drain, once; no appeal twice, none lost."""
    async with running(config) as run:
        held = ["2", "4"]
        for n in held:
            run.plugin.hold(n)
        await run.send(1, 2, 3, 4, 5)
        with anyio.fail_after(HANG):
            for n in held:
                await run.plugin.started[n].wait()

        async def three_written() -> bool:
            return len(await run.appeal_keys()) == 3

        await _until(three_written, "the three not held written")
    # The host stopped: its worker cancelled the drain with 2 and 4 in flight.
    assert run.plugin.processed == Counter({"1": 1, "3": 1, "5": 1})

    restarted = Held()
    app = create_app(config, plugins=get_plugin_manager(extra={PLUGIN: restarted}))
    async with app.router.lifespan_context(app):
        host: Host = app.state.host
        statuses = Counter(item.status for item in await host.repo.list_inbox(limit=100))
        with anyio.fail_after(HANG):
            while restarted.processed.total() < 2:  # the starting worker asks for the drain
                await asyncio.sleep(0.02)
            await host.queue.idle()
        appeals = await host.repo.list_appeals(limit=100)
        final = Counter(item.status for item in await host.repo.list_inbox(limit=100))
    assert statuses == Counter({"done": 3, "pending": 2})
    assert restarted.processed == Counter({"2": 1, "4": 1})
    assert sorted(a.appeal.key for a in appeals) == sorted(appeal_key(str(n)) for n in range(1, 6))
    assert final == Counter({"done": 5})


async def test_a_drain_asked_for_with_nothing_due_ends_at_once(config: HostConfig) -> None:
    """A drain request that finds its webhooks already taken (they joined the drain before)
    does not keep a job slot waiting for more."""
    async with running(config) as run:
        await run.send(1)
        with anyio.fail_after(HANG):
            await run.host.queue.idle()
        await run.host.queue.enqueue(DRAIN, str(run.integration.id))
        with anyio.fail_after(HANG):
            await run.host.queue.idle()
        assert await run.statuses() == Counter({"done": 1})


async def test_several_portals_drain_side_by_side(config: HostConfig) -> None:
    """A portal whose drain is held does not keep another portal's webhooks waiting."""
    async with running(replace(config, concurrency=4)) as run:
        other = await run.repo.create_integration(PLUGIN, "Other")
        run.plugin.hold("1")
        await run.send(1)
        with anyio.fail_after(HANG):
            await run.plugin.started["1"].wait()
        token = other.webhook_token.get_secret_value()
        answer = await run.client.post(f"/webhooks/{other.id}/{token}", content=b"n=100")
        assert answer.status_code == 200

        async def others_written() -> bool:
            found = await run.repo.list_appeals(integration_id=other.id, limit=10)
            return [a.appeal.key for a in found] == [appeal_key("100")]

        await _until(others_written, "the other portal's appeal written")
        assert run.plugin.processed["1"] == 0
        run.plugin.let_go("1")
        with anyio.fail_after(HANG):
            await run.host.queue.idle()


async def test_the_inbox_read_leaves_out_the_items_in_flight(config: HostConfig) -> None:
    """``due_inbox_items(exclude=…)``: a drain topping up never takes an item it already has."""
    repo = await open_repository(config.db, key=HOST_KEY)
    try:
        integration = await repo.create_integration(PLUGIN, "Held")
        now = datetime.now(UTC)
        items = [
            await repo.add_inbox_item(
                integration.id,
                HookRequest(method="POST", path="/", body=f"n={n}".encode(), received_at=now),
            )
            for n in range(5)
        ]
        ids = [item.id for item in items]
        due = await repo.due_inbox_items(integration.id, now=now, limit=2, exclude=ids[:3])
        assert [item.id for item in due] == ids[3:]
        due = await repo.due_inbox_items(integration.id, now=now, limit=10, exclude=[ids[1]])
        assert [item.id for item in due] == [ids[0], *ids[2:]]
        assert await repo.due_inbox_items(integration.id, now=now, exclude=ids) == []
        assert [i.id for i in await repo.due_inbox_items(integration.id, now=now)] == ids
    finally:
        await repo.close()
