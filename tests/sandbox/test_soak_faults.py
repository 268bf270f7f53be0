"""Soak knobs: each fault happens as configured, from a seeded RNG, and is counted."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from b24_openlines_plugin.sandbox.chaos import FaultSettings
from tests.sandbox.conftest import HOOKS, Factory, Running, fixture_json

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]
FULL_CHAT = [*HELLO, {"author": "operator", "text": "Hi!"}]
ZERO = {
    "rest_error": 0,
    "rest_timeout": 0,
    "token_expiry": 0,
    "webhook_dropped": 0,
    "webhook_duplicated": 0,
    "webhook_reordered": 0,
}


async def faulty(make_sandbox: Factory, **knobs: Any) -> tuple[Running, str]:
    running = await make_sandbox(faults=FaultSettings(**knobs))
    token: str = (await running.authorize())["access_token"]
    return running, token


async def injected(running: Running) -> dict[str, int]:
    counters: dict[str, int] = (await running.client.get("/sandbox/api/faults")).json()["injected"]
    return counters


async def statuses(running: Running, token: str, method: str, n: int) -> list[int]:
    """N calls, 10 s apart: past the block an injected OPERATION_TIME_LIMIT leaves."""
    seen = []
    for _ in range(n):
        seen.append((await running.rest(method, token)).status_code)
        running.clock.advance(10)
    return seen


async def test_rest_errors_at_a_seeded_rate(make_sandbox: Factory) -> None:
    running, token = await faulty(make_sandbox, seed=7, rest_error_rate=0.3)
    seen = await statuses(running, token, "scope", 100)
    failed = [s for s in seen if s != 200]
    assert 15 <= len(failed) <= 45 and set(failed) <= {503, 500, 429}
    assert (await injected(running)) == {**ZERO, "rest_error": len(failed)}

    twin, twin_token = await faulty(make_sandbox, seed=7, rest_error_rate=0.3)
    assert await statuses(twin, twin_token, "scope", 100) == seen


async def test_each_rest_error_is_the_portals_own(make_sandbox: Factory) -> None:
    running, token = await faulty(make_sandbox, seed=1, rest_error_rate=1.0)
    bodies = {}
    for _ in range(30):
        response = await running.rest("scope", token)
        bodies[response.status_code] = response.json()
        running.clock.advance(10)  # past any injected OPERATION_TIME_LIMIT block
    assert bodies == {
        503: fixture_json("error.QUERY_LIMIT_EXCEEDED.json"),
        500: {"error": "INTERNAL_SERVER_ERROR", "error_description": "Internal server error"},
        429: fixture_json("error.OPERATION_TIME_LIMIT.json"),
    }
    batches = [
        (await running.rest("batch", token, cmd={"a": "scope"})).status_code for _ in range(30)
    ]
    assert set(batches) == {503, 500}  # the outer batch is not under the operating limit


async def test_an_injected_operation_limit_blocks_the_method_a_few_seconds(
    make_sandbox: Factory,
) -> None:
    running, token = await faulty(
        make_sandbox, seed=1, rest_error_rate=1.0, operating_block_seconds=5
    )
    lead_id = min(running.sandbox.portal.leads)
    while (await running.rest("crm.lead.get", token, id=lead_id)).status_code != 429:
        pass
    await running.client.post("/sandbox/api/faults", json={"rest_error_rate": 0})
    assert (await running.rest("crm.lead.get", token, id=lead_id)).status_code == 429
    assert (await running.rest("crm.deal.list", token)).status_code == 200
    running.clock.advance(5)
    assert (await running.rest("crm.lead.get", token, id=lead_id)).status_code == 200


async def test_a_hanging_request_lets_the_client_timeout_fire(make_sandbox: Factory) -> None:
    running, token = await faulty(
        make_sandbox, seed=1, rest_timeout_rate=1.0, rest_timeout_seconds=5.0
    )
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(running.rest("scope", token), timeout=0.05)
    await running.client.post("/sandbox/api/faults", json={"rest_timeout_seconds": 0.01})
    answered = await running.rest("scope", token)
    assert answered.status_code == 504 and "504 Gateway Time-out" in answered.text
    assert answered.headers["content-type"].startswith("text/html")
    assert (await injected(running)) == {**ZERO, "rest_timeout": 2}


async def test_tokens_expire_every_n_requests_and_refresh_works(make_sandbox: Factory) -> None:
    running, _ = await faulty(make_sandbox, expire_tokens_every=3)
    tokens = await running.authorize()
    token = tokens["access_token"]
    assert await statuses(running, token, "scope", 2) == [200, 200]
    expired = await running.rest("scope", token)
    assert (expired.status_code, expired.json()) == (401, fixture_json("error.expired_token.json"))
    config = running.sandbox.config
    refreshed = await running.client.get(
        "/oauth/token/",
        params={
            "grant_type": "refresh_token",
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "refresh_token": tokens["refresh_token"],
        },
    )
    fresh = refreshed.json()["access_token"]
    assert await statuses(running, fresh, "scope", 3) == [200, 200, 401]
    assert (await injected(running))["token_expiry"] == 2


async def test_dropped_deliveries_are_logged_not_sent(make_sandbox: Factory) -> None:
    running, token = await faulty(make_sandbox, seed=3, webhook_drop_rate=0.5)
    await running.ok("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/app")
    for _ in range(40):
        await running.chat(messages=HELLO)
    await running.settled()
    log = (await running.client.get("/sandbox/api/deliveries")).json()
    dropped = [d for d in log if d["dropped"]]
    assert 10 <= len(dropped) <= 30 and len(log) == 40
    assert all(d["attempts"] == 0 and not d["ok"] for d in dropped)
    assert len(running.site.received) == 40 - len(dropped)
    assert (await injected(running)) == {**ZERO, "webhook_dropped": len(dropped)}


async def test_duplicated_deliveries_arrive_twice(make_sandbox: Factory) -> None:
    running, token = await faulty(make_sandbox, seed=3, webhook_duplicate_rate=1.0)
    await running.ok("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/app")
    await running.chat(messages=HELLO)
    await running.settled()
    first, second = running.site.received
    assert first[1] == second[1]
    log = (await running.client.get("/sandbox/api/deliveries")).json()
    assert [(d["id"], d["duplicate_of"]) for d in log] == [(1, None), (2, 1)]
    assert (await injected(running))["webhook_duplicated"] == 1


async def test_reordered_deliveries_come_shuffled(make_sandbox: Factory) -> None:
    running, _ = await faulty(make_sandbox, seed=2, webhook_reorder=8)
    await running.client.post(
        "/sandbox/api/outgoing-webhooks",
        json={
            "handler": HOOKS + "/all",
            "events": ["ONCRMLEADADD", "ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE"],
        },
    )
    await running.chat(messages=FULL_CHAT, close=True)
    await running.settled()
    arrived = [f["event"] for f in running.site.forms()]
    emitted = ["ONCRMLEADADD", "ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE", "ONCRMACTIVITYUPDATE"]
    assert Counter(arrived) == Counter(emitted) and arrived != emitted
    moved = sum(1 for a, e in zip(arrived, emitted, strict=True) if a != e)
    assert 0 < moved <= (await injected(running))["webhook_reordered"]


async def test_the_faults_api(running: Running, token: str) -> None:
    state = (await running.client.get("/sandbox/api/faults")).json()
    assert state == {
        "injected": ZERO,
        **FaultSettings().to_json(),
        "pending": [],
    }
    changed = await running.client.post(
        "/sandbox/api/faults", json={"seed": 5, "rest_error_rate": 1.0}
    )
    assert changed.status_code == 200
    assert changed.json()["rest_error_rate"] == 1.0 and changed.json()["seed"] == 5
    assert (await running.rest("scope", token)).status_code != 200
    for bad in ({"rest_error_rate": 1.5}, {"webhook_drop": 0.1}, {"expire_tokens_every": -1}):
        assert (await running.client.post("/sandbox/api/faults", json=bad)).status_code == 422
    assert (await running.client.delete("/sandbox/api/faults")).status_code == 204
    after = (await running.client.get("/sandbox/api/faults")).json()
    assert after["rest_error_rate"] == 0.0 and after["seed"] == 5
    assert after["injected"]["rest_error"] == 1  # what happened stays counted
    assert (await running.rest("scope", token)).status_code == 200
