"""The REST client against a Bitrix24 stand-in answering over ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from b24_openlines_plugin.bitrix.client import Command, Credentials, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.limits import LeakyBucket, bucket_for
from b24_openlines_plugin.connection import rest_client
from hooks.errors import RetryLater, UpstreamError
from hooks.host.app import create_app
from hooks.host.state import HostConfig
from hooks.models import Catalog, Integration
from hooks.services import HostServices
from tests.conftest import HOST_KEY

pytestmark = pytest.mark.anyio
ENDPOINT = "https://b24.example.ru/rest/"
TOKEN = "access-token-0123456789"


class MemoryRateLimits:
    """``hooks.services.RateLimits`` in memory on ``clock``, for unit tests (the host's own are
    in its database)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}  # key: (level, updated at)

    def _drained(self, key: str, rate: float) -> tuple[float, float]:
        now = self.clock()
        level, then = self.buckets.get(key, (0.0, now))
        return max(0.0, level - max(0.0, now - then) * rate), max(now, then)

    async def take(self, key: str, *, rate: float, burst: float) -> float:
        level, now = self._drained(key, rate)
        self.buckets[key] = (level + 1, now)
        return level + 1

    async def fill(self, key: str, *, rate: float, burst: float) -> None:
        level, now = self._drained(key, rate)
        self.buckets[key] = (max(level, burst), now)


def memory_bucket(
    rate: float, burst: int, clock: Callable[[], float] = time.monotonic
) -> LeakyBucket:
    return LeakyBucket(MemoryRateLimits(clock), "bitrix24:b24.example.ru", rate, burst)


class Portal:
    """Answers ``batch`` like Bitrix24: each command echoes its method and params."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.valid_tokens = {TOKEN}
        self.script: list[Callable[[dict[str, Any]], httpx.Response | None]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append({"url": str(request.url), **body})
        if self.script:
            answer = self.script.pop(0)(body)
            if answer is not None:
                return answer
        if body.get("auth") not in self.valid_tokens:
            return httpx.Response(
                401,
                json={
                    "error": "expired_token",
                    "error_description": "The access token provided has expired.",
                },
            )
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        for key, query in body["cmd"].items():
            method, _, params = query.partition("?")
            if method == "fail.me":
                errors[key] = {"error": "ACCESS_DENIED", "error_description": "no"}
            else:
                results[key] = {"method": method, "params": params}
        return httpx.Response(
            200,
            json={
                "result": {
                    "result": results or [],
                    "result_error": errors or [],
                    "result_total": [],
                    "result_next": [],
                    "result_time": [],
                },
                "time": {},
            },
        )


def make_client(
    portal: Portal, refresh: Callable[[str], Any] | None = None, **kwargs: Any
) -> tuple[RestClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(portal))

    async def renew(stale: str) -> str:
        new = f"fresh-{len(portal.valid_tokens)}"
        portal.valid_tokens = {new}
        return new

    credentials = Credentials(TOKEN, refresh or renew)
    bucket = memory_bucket(rate=1000.0, burst=1000)
    return RestClient(http, ENDPOINT, credentials, bucket, **kwargs), http


async def test_concurrent_callers_share_one_batch_and_keep_their_references() -> None:
    portal = Portal()
    client, http = make_client(portal)
    async with http:
        first, second = await asyncio.gather(
            client.batch(
                {
                    "a": Command("crm.lead.get", {"id": 1}),
                    "b": Command("crm.contact.get", {"id": "$result[a][CONTACT_ID]"}),
                }
            ),
            client.batch({"a": Command("crm.deal.get", {"id": 2})}),
        )
    assert len(portal.requests) == 1 and portal.requests[0]["url"] == ENDPOINT + "batch"
    cmd = portal.requests[0]["cmd"]
    assert set(cmd) == {"g0_a", "g0_b", "g1_a"}
    assert "$result[g0_a][CONTACT_ID]" in cmd["g0_b"].replace("%5B", "[").replace(
        "%5D", "]"
    ).replace("%24", "$")
    assert first["a"].unwrap()["method"] == "crm.lead.get"
    assert second["a"].unwrap()["method"] == "crm.deal.get"
    assert portal.requests[0]["halt"] == 0


async def test_more_than_fifty_commands_go_out_in_several_batches() -> None:
    portal = Portal()
    client, http = make_client(portal)
    async with http:
        answers = await asyncio.gather(
            *(client.call("crm.lead.get", {"id": n}) for n in range(120))
        )
    assert len(answers) == 120
    assert [len(r["cmd"]) for r in portal.requests] == [50, 50, 20]
    assert client.requests == 3


class IdList:
    """A list command whose ids are whatever was asked until the batch is composed."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __len__(self) -> int:
        return 1

    def seal(self, room: int) -> dict[str, Command]:
        return {"list": Command("crm.lead.list", {"filter": {"@ID": list(self.ids)}})}


async def test_a_gathering_takes_the_ids_asked_until_its_batch_is_composed() -> None:
    """Ids added while the request waits (a moment, or the rate limit) join its command, and
    it shares the HTTP request with the other callers' commands."""
    portal = Portal()
    client, http = make_client(portal, window=0.01)
    gathering = IdList()
    gathering.ids.append(1)
    async with http:
        pending = asyncio.ensure_future(client.gathered(gathering))
        other = asyncio.ensure_future(client.call("crm.deal.get", {"id": 9}))
        await asyncio.sleep(0)
        gathering.ids += [2, 3]
        results, deal = await asyncio.gather(pending, other)
    assert len(portal.requests) == 1
    params = results["list"].unwrap()["params"].replace("%40", "@")
    assert [p.split("=")[1] for p in params.split("&")] == ["1", "2", "3"]
    assert deal["method"] == "crm.deal.get"


async def test_a_gathering_waits_for_room_in_a_batch() -> None:
    portal = Portal()
    client, http = make_client(portal)
    async with http:
        calls = [client.call("crm.lead.get", {"id": n}) for n in range(50)]
        gathering = IdList()
        gathering.ids.append(7)
        await asyncio.gather(*calls, client.gathered(gathering))
    assert [len(r["cmd"]) for r in portal.requests] == [50, 1]


async def test_a_caller_that_gives_up_stops_no_one_elses_batch() -> None:
    """Batches are sent by a task of the client's own, not by the first caller: cancelling
    that caller (a drain's item timing out) leaves the others' commands to go out."""
    portal = Portal()
    client, http = make_client(portal, window=0.01)
    async with http:
        calls = [asyncio.ensure_future(client.call("crm.lead.get", {"id": n})) for n in range(60)]
        await asyncio.sleep(0)
        calls[0].cancel()
        answers = await asyncio.wait_for(asyncio.gather(*calls[1:]), timeout=5)
    assert [a["method"] for a in answers] == ["crm.lead.get"] * 59
    assert calls[0].cancelled()


async def test_one_refresh_for_many_callers_on_expired_token() -> None:
    portal = Portal()
    portal.valid_tokens = {"someone-else"}
    refreshes: list[str] = []

    async def refresh(stale: str) -> str:
        refreshes.append(stale)
        await asyncio.sleep(0.01)
        portal.valid_tokens = {"renewed"}
        return "renewed"

    client, http = make_client(portal, refresh, window=0.0)
    async with http:
        results = await asyncio.gather(*(client.call("crm.lead.get", {"id": n}) for n in range(5)))
    assert len(results) == 5
    assert refreshes == [TOKEN]
    assert client.credentials.token == "renewed"


async def test_a_command_error_is_its_own_and_keeps_bitrix_code() -> None:
    portal = Portal()
    client, http = make_client(portal)
    async with http:
        results = await client.batch(
            {"ok": Command("crm.lead.get", {"id": 1}), "bad": Command("fail.me")}
        )
    assert results["ok"].unwrap()["method"] == "crm.lead.get"
    with pytest.raises(BitrixError) as caught:
        results["bad"].unwrap()
    assert caught.value.b24_code == "ACCESS_DENIED" and caught.value.status == 502


async def test_query_limit_is_retried_after_backing_off() -> None:
    portal = Portal()
    limit = httpx.Response(
        503, json={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    )
    portal.script = [lambda body: limit, lambda body: limit]
    client, http = make_client(portal)
    client.bucket = memory_bucket(rate=200.0, burst=5)
    async with http:
        assert (await client.call("crm.lead.get", {"id": 1}))["method"] == "crm.lead.get"
    assert len(portal.requests) == 3


async def test_operation_time_limit_says_when_to_come_back() -> None:
    portal = Portal()
    portal.script = [
        lambda body: httpx.Response(
            429,
            json={
                "error": "OPERATION_TIME_LIMIT",
                "error_description": "Method is blocked due to operation time limit.",
                "time": {"operating_reset_at": 1_000_120},
            },
        )
    ]
    client, http = make_client(portal, clock=lambda: 1_000_000.0)
    async with http:
        with pytest.raises(RetryLater) as caught:
            await client.call("crm.lead.get", {"id": 1})
    assert caught.value.retry_after == 120.0


@pytest.mark.parametrize("failure", ["500", "timeout", "connect"])
async def test_server_errors_and_timeouts_are_transient(failure: str) -> None:
    def fail(body: dict[str, Any]) -> httpx.Response:
        if failure == "timeout":
            raise httpx.ReadTimeout("slow")
        if failure == "connect":
            raise httpx.ConnectError("refused")
        return httpx.Response(500, text="oops")

    portal = Portal()
    portal.script = [fail]
    client, http = make_client(portal)
    async with http:
        with pytest.raises(RetryLater) as caught:
            await client.call("crm.lead.get", {"id": 1})
    assert TOKEN not in str(caught.value)


async def test_invalid_token_is_permanent_and_never_shows_the_token() -> None:
    portal = Portal()
    portal.script = [
        lambda body: httpx.Response(
            401,
            json={
                "error": "invalid_token",
                "error_description": "Unable to get application by token",
            },
        )
    ]
    client, http = make_client(portal)
    async with http:
        with pytest.raises(UpstreamError) as caught:
            await client.call("crm.lead.get", {"id": 1})
    assert "invalid_token" in str(caught.value) and TOKEN not in str(caught.value)


async def test_bucket_makes_a_burst_wait_instead_of_overflowing() -> None:
    bucket = memory_bucket(rate=20.0, burst=3, clock=lambda: 0.0)  # time stands still
    for _ in range(3):
        await bucket.acquire()
    fourth = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    assert not fourth.done()  # over the burst: it waits for the bucket to drain
    await asyncio.wait_for(fourth, 5.0)
    assert bucket.level == 4  # counted, as the portal will count it


async def test_a_refusal_from_the_portal_fills_the_bucket() -> None:
    bucket = memory_bucket(rate=2.0, burst=50, clock=lambda: 0.0)
    await bucket.acquire()
    await bucket.saturate()
    assert bucket.level == 50
    assert await bucket.limits.take(bucket.key, rate=2.0, burst=50) == 51  # the host's, too


def test_a_portals_bucket_is_named_after_the_portal() -> None:
    limits = MemoryRateLimits()
    standard = bucket_for(limits, "https://Name.Bitrix24.ru/rest/")
    enterprise = bucket_for(limits, "https://name.bitrix24.ru/rest", "enterprise")
    assert standard.key == enterprise.key == "bitrix24:name.bitrix24.ru"
    assert (standard.rate, standard.burst) == (2.0, 50)
    assert (enterprise.rate, enterprise.burst) == (5.0, 250)
    assert standard.limits is limits


async def test_a_portals_client_counts_in_the_hosts_bucket_on_its_plan() -> None:
    def integration(version: int, plan: str) -> Integration:
        return Integration(
            id=41,
            plugin="b24_openlines",
            name="Bitrix24",
            settings={"plan": plan},
            secrets={"access_token": SecretStr(TOKEN)},
            connection={"client_endpoint": ENDPOINT},
            webhook_token=SecretStr("w" * 43),
            version=version,
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            updated_at=datetime(2026, 1, 1, tzinfo=UTC),
        )

    async with httpx.AsyncClient() as http:
        host = HostServices(
            urls=None,  # type: ignore[arg-type]
            language="ru",
            http=http,
            sessions=None,  # type: ignore[arg-type]
            appeals=None,  # type: ignore[arg-type]
            integrations=None,  # type: ignore[arg-type]
            rate_limits=MemoryRateLimits(),
            catalog=Catalog(),
        )
        client = rest_client(integration(1, "standard"), host)
        assert client.bucket.limits is host.rate_limits
        assert client.bucket.key == "bitrix24:b24.example.ru"
        assert (client.bucket.rate, client.bucket.burst) == (2.0, 50)
        assert rest_client(integration(1, "standard"), host) is client  # one per portal
        # Settings saved since: the same client, on the plan now chosen.
        assert rest_client(integration(2, "enterprise"), host) is client
        assert (client.bucket.rate, client.bucket.burst) == (5.0, 250)


async def test_when_the_host_cannot_count_every_waiting_caller_gets_the_error() -> None:
    """The bucket's level lives in the host's database: if it cannot be reached, the callers
    sharing the batch all fail, and none is left waiting."""

    class Unreachable(MemoryRateLimits):
        async def take(self, key: str, *, rate: float, burst: float) -> float:
            raise ConnectionError("the database is down")

    portal = Portal()
    client, http = make_client(portal)
    client.bucket = LeakyBucket(Unreachable(), "bitrix24:b24.example.ru", 2.0, 50)
    async with http:
        outcomes = await asyncio.wait_for(
            asyncio.gather(
                *(client.call("crm.lead.get", {"id": n}) for n in range(3)),
                return_exceptions=True,
            ),
            5.0,
        )
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes), outcomes
    assert portal.requests == [] and client._pending == []


async def test_processes_of_one_host_share_a_portals_bucket(tmp_path: Path) -> None:
    """Two hosts on one SQLite file, as a web process and a worker: the second one's bucket
    starts where the first one's requests left it, and waits."""
    config = HostConfig(
        db=str(tmp_path / "host.sqlite3"), host_key=HOST_KEY, worker="none", schedule_seconds=0
    )
    first_app, second_app = create_app(config), create_app(config)
    async with first_app.router.lifespan_context(first_app):
        async with second_app.router.lifespan_context(second_app):
            first: HostServices = await first_app.state.host.services()
            second: HostServices = await second_app.state.host.services()
            assert first.rate_limits is not second.rate_limits
            mine = bucket_for(first.rate_limits, ENDPOINT)  # standard: 2/s, burst 50
            began = time.monotonic()
            for _ in range(mine.burst - 1):
                await mine.acquire()  # each fits: no wait
            assert mine.level == pytest.approx(49, abs=0.5)
            theirs = bucket_for(second.rate_limits, ENDPOINT)
            started = time.monotonic()
            await theirs.acquire()
            waited = time.monotonic() - started
            # It counted on top of the first one's 49, less what drained meanwhile (2/s)...
            drained = 2.0 * (started - began)
            assert 50 - drained - 0.05 <= theirs.level <= 50
            # ...and waited for its place, one under the burst: about half a second.
            assert theirs.level > 49.2  # a wait of a tenth of a second at least
            assert waited == pytest.approx((theirs.level - 49) / 2, abs=0.1)
            other_portal = bucket_for(second.rate_limits, "https://other.example.ru/rest/")
            started = time.monotonic()
            await other_portal.acquire()
            assert other_portal.level == 1 and time.monotonic() - started < 0.2
