"""The REST client against a Bitrix24 stand-in answering over ``httpx.MockTransport``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from b24_openlines_plugin.bitrix.client import Command, Credentials, RestClient
from b24_openlines_plugin.bitrix.errors import BitrixError
from b24_openlines_plugin.bitrix.limits import LeakyBucket
from hooks.errors import RetryLater, UpstreamError

pytestmark = pytest.mark.anyio
ENDPOINT = "https://b24.example.ru/rest/"
TOKEN = "access-token-0123456789"


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
    bucket = LeakyBucket(rate=1000.0, burst=1000)
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
    client.bucket = LeakyBucket(rate=200.0, burst=5)
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
    bucket = LeakyBucket(rate=20.0, burst=3, clock=lambda: 0.0)  # time stands still
    for _ in range(3):
        await bucket.acquire()
    fourth = asyncio.ensure_future(bucket.acquire())
    await asyncio.sleep(0)
    assert not fourth.done()  # over the burst: it waits for the bucket to drain
    await asyncio.wait_for(fourth, 5.0)
    assert bucket.level == 4  # counted, as the portal will count it


async def test_a_refusal_from_the_portal_fills_the_bucket() -> None:
    bucket = LeakyBucket(rate=2.0, burst=50, clock=lambda: 0.0)
    await bucket.acquire()
    bucket.saturate()
    assert bucket.level == 50
