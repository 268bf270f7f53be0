"""A burst of webhooks from many portals at once, on both backends: the requests in flight
share their queries (``hooks.host.batching``), and still each is stored once, answered with its
own inbox item, and asks for its integration's drain, after its answer: the answer waits for its
row's commit and nothing else."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from hooks import hookimpl
from hooks.host.app import create_app
from hooks.host.plugins import get_plugin_manager
from hooks.host.state import Host, HostConfig
from hooks.models import HookRequest, Integration, WebhookVerdict
from hooks.services import HostServices
from tests.conftest import HOST_KEY, PUBLIC_URL
from tests.uvicorn_server import serving

pytestmark = pytest.mark.anyio
PLUGIN = "burst"
PORTALS = 10
PER_PORTAL = 5


class Burst:
    """Accepts every webhook of its integrations, but ignores ``ping``s."""

    @hookimpl
    def on_webhook_verify(
        self, integration: Integration, request: HookRequest, host: HostServices
    ) -> WebhookVerdict | None:
        if integration.plugin != PLUGIN:
            return None
        if request.body.startswith(b"ping"):
            return WebhookVerdict(result="ignore", reason="ping")
        return WebhookVerdict(result="accept")


@pytest.fixture(params=["sqlite", "postgres"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> HostConfig:
    db = str(tmp_path / "host.sqlite3")
    if request.param == "postgres":
        db = request.getfixturevalue("postgres_url")
    # No worker: the drains asked for stay waiting, to be counted.
    return HostConfig(
        db=db, public_url=PUBLIC_URL, host_key=HOST_KEY, schedule_seconds=0, worker="none"
    )


async def test_a_burst_of_webhooks_is_stored_and_answered_one_by_one(config: HostConfig) -> None:
    app = create_app(config, plugins=get_plugin_manager(extra={PLUGIN: Burst()}))
    async with app.router.lifespan_context(app):
        host: Host = app.state.host
        portals = [await host.repo.create_integration(PLUGIN, f"P{n}") for n in range(PORTALS)]
        gone = await host.repo.create_integration(PLUGIN, "Gone")
        gone_url = f"/webhooks/{gone.id}/{gone.webhook_token.get_secret_value()}"
        assert await host.repo.delete_integration(gone.id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:

            async def send(url: str, body: bytes) -> httpx.Response:
                return await client.post(url, content=body)

            def url(portal: Integration) -> str:
                return f"/webhooks/{portal.id}/{portal.webhook_token.get_secret_value()}"

            sent = [
                (portal, f"event={n}".encode()) for portal in portals for n in range(PER_PORTAL)
            ]
            sent += [(portals[0], b"event=0"), (portals[1], b"ping")]  # a redelivery, a ping
            answers = await asyncio.gather(
                *(send(url(portal), body) for portal, body in sent),
                send(gone_url, b"event=0"),  # a deleted integration's
                send(f"/webhooks/{portals[2].id}/not-the-token", b"event=0"),
                send("/webhooks/99999/whatever", b"event=0"),
            )
        *stored, deleted, bad_token, unknown = answers
        assert [a.status_code for a in (deleted, bad_token, unknown)] == [404, 404, 404]
        assert all(answer.status_code == 200 for answer in stored), [a.text for a in stored]
        by_request = {
            (portal.id, body): answer.json()
            for (portal, body), answer in zip(sent, stored, strict=True)
        }
        items = {item.id: item for item in await host.repo.list_inbox(limit=1000)}
        assert len(items) == PORTALS * PER_PORTAL + 1  # the redelivery is no new item
        for (portal_id, body), answer in by_request.items():
            item = items[answer["inbox_id"]]  # each answered with its own stored item
            assert (item.integration_id, item.request.body) == (portal_id, body)
            assert answer["status"] == item.status
            assert answer["accepted"] == (body != b"ping")
        assert stored[0].json() == stored[-2].json()  # the redelivery: the first one's item
        assert Counter(item.status for item in items.values()) == Counter(
            {"pending": PORTALS * PER_PORTAL, "ignored": 1}
        )
        status = await host.queue.status()
        assert status.due == PORTALS  # one waiting drain per portal


async def test_the_answer_does_not_wait_for_the_drain_request(postgres_url: str) -> None:
    """The answer promises a stored row, nothing more: with the job table locked (a long
    ``VACUUM FULL``, say) a webhook is still answered at once, on a real server, and its
    drain is asked for once the lock is gone."""
    config = HostConfig(
        db=postgres_url, public_url=PUBLIC_URL, host_key=HOST_KEY, schedule_seconds=0,
        worker="none",
    )  # fmt: skip
    app = create_app(config, plugins=get_plugin_manager(extra={PLUGIN: Burst()}))
    async with serving(app) as (address, port), httpx.AsyncClient(timeout=10.0) as client:
        host: Host = app.state.host
        portal = await host.repo.create_integration(PLUGIN, "P")
        url = f"http://{address}:{port}/webhooks/{portal.id}/"
        url += portal.webhook_token.get_secret_value()
        async with await psycopg.AsyncConnection.connect(postgres_url) as locker:
            await locker.execute("LOCK TABLE procrastinate_jobs IN ACCESS EXCLUSIVE MODE")
            answer = await asyncio.wait_for(client.post(url, content=b"event=1"), 5.0)
            assert answer.status_code == 200 and answer.json()["status"] == "pending"
            await asyncio.sleep(0.2)
            (waiting,) = await (
                await locker.execute("SELECT count(*) FROM procrastinate_jobs")
            ).fetchone()  # the lock's own transaction sees the table
            assert waiting == 0
            await locker.rollback()  # the lock goes
        for _ in range(100):
            if (await host.queue.status()).due == 1:
                break
            await asyncio.sleep(0.05)
        assert (await host.queue.status()).due == 1
