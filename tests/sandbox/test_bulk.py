"""POST /sandbox/api/chats/bulk: many varied chats in one call, seeded, through the same events."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

from b24_openlines_plugin.sandbox.chaos import FaultSettings
from tests.sandbox.conftest import HOOKS, Factory, Running

pytestmark = pytest.mark.anyio
MIX = ["livechat", "telegrambot", "whatsappbyedna", "vkgroup"]


async def bulk(running: Running, **body: Any) -> dict[str, Any]:
    response = await running.client.post("/sandbox/api/chats/bulk", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_bulk_chats_are_varied_and_seeded(make_sandbox: Factory) -> None:
    running = await make_sandbox()
    created = await bulk(running, count=60, mix=MIX, close=True, with_contacts=True, seed=1)
    chats = created["chats"]
    assert created["count"] == len(chats) == 60
    assert set(Counter(c["connector"] for c in chats)) == set(MIX)
    assert {c["line_id"] for c in chats} == {1, 2}
    assert all(c["session_id"] and c["activity_id"] for c in chats)
    assert all((c["lead_id"] or c["deal_id"]) for c in chats)
    assert all(c["contact_id"] for c in chats if c["line_id"] == 2)
    closed = sum(c["closed"] for c in chats)
    assert 20 <= closed <= 50
    returning = Counter(c["contact_id"] for c in chats if c["contact_id"])
    assert max(returning.values()) > 1  # some clients came back
    portal = running.sandbox.portal
    assert {len(portal.session_messages(c["session_id"])) for c in chats} >= {2, 3}

    twin = await make_sandbox()
    assert (await bulk(twin, count=60, mix=MIX, seed=1))["chats"] == chats


async def test_bulk_events_go_through_the_fault_knobs(make_sandbox: Factory) -> None:
    running = await make_sandbox(faults=FaultSettings(seed=4, webhook_drop_rate=1.0))
    token = (await running.authorize())["access_token"]
    await running.ok("event.bind", token, event="ONCRMACTIVITYADD", handler=HOOKS + "/app")
    await bulk(running, count=20, seed=2)
    await running.settled()
    log = (await running.client.get("/sandbox/api/deliveries")).json()
    assert len(log) == 20 and all(d["dropped"] for d in log)
    assert running.site.received == []


async def test_a_thousand_chats_in_one_call(make_sandbox: Factory) -> None:
    running = await make_sandbox()
    began = time.perf_counter()
    created = await bulk(running, count=1000, seed=3)
    assert created["count"] == 1000 and time.perf_counter() - began < 10
    assert len({c["chat_id"] for c in created["chats"]}) == 1000


@pytest.mark.parametrize(
    "body",
    [{"count": 0}, {"count": 5, "mix": ["fax"]}, {"count": 5, "lines": [9]}, {"mix": MIX}],
)
async def test_bulk_refuses_what_it_cannot_do(running: Running, body: dict[str, Any]) -> None:
    response = await running.client.post("/sandbox/api/chats/bulk", json=body)
    assert response.status_code == 422
