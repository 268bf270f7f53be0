"""CRM list methods asked for many records at once, as the plugin's merged lookups ask them:
``@ID`` (the docs' IN: an array is passed), ``@OWNER_ID``, and ``BINDINGS`` with one object per
entity (any of them matches; an activity bound to two is listed twice); JSON and form-encoded
inside ``batch``, paged by 50 with ``next``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import Running

pytestmark = pytest.mark.anyio


async def chats(running: Running, count: int, **body: Any) -> list[dict[str, Any]]:
    answer = await running.client.post(
        "/sandbox/api/chats/bulk", json={"count": count, "seed": 5, **body}
    )
    assert answer.status_code == 201, answer.text
    started: list[dict[str, Any]] = answer.json()["chats"]
    return started


def ids(answer: dict[str, Any]) -> list[int]:
    return [int(row["ID"]) for row in answer["result"]]


async def test_the_in_filter_lists_exactly_the_ids_asked(running: Running, token: str) -> None:
    started = await chats(running, 6, lines=[1])
    leads = [c["lead_id"] for c in started]
    asked = [leads[0], leads[3], leads[5], 10**6]
    found = await running.ok(
        "crm.lead.list", token, filter={"@ID": asked}, select=["*", "PHONE", "IM"]
    )
    assert sorted(ids(found)) == sorted(asked[:3]) and found["total"] == 3
    assert all("IM" in row and "UTM_SOURCE" in row for row in found["result"])
    none = await running.ok("crm.lead.list", token, filter={"!@ID": leads[1:]})
    assert leads[0] in ids(none) and not set(leads[1:]) & set(ids(none))


async def test_activities_by_ids_and_by_owners(running: Running, token: str) -> None:
    started = await chats(running, 4, lines=[1])
    activities = [c["activity_id"] for c in started]
    by_id = await running.ok("crm.activity.list", token, filter={"@ID": activities[:3]})
    assert sorted(ids(by_id)) == sorted(activities[:3])
    owners = [c["lead_id"] for c in started[1:]]
    by_owner = await running.ok(
        "crm.activity.list",
        token,
        filter={"OWNER_TYPE_ID": 1, "@OWNER_ID": owners},
        order={"ID": "DESC"},
    )
    assert ids(by_owner) == sorted(activities[1:], reverse=True)


async def test_bindings_of_many_entities_in_a_batch_command(running: Running, token: str) -> None:
    started = await chats(running, 3, lines=[1])
    pairs = "&".join(
        f"filter[BINDINGS][{n}][OWNER_TYPE_ID]=1&filter[BINDINGS][{n}][OWNER_ID]={c['lead_id']}"
        for n, c in enumerate(started[:2])
    )
    body = await running.ok(
        "batch",
        token,
        halt=0,
        cmd={
            "acts": f"crm.activity.list?{pairs}&order[ID]=DESC",
            "leads": "crm.lead.list?"
            + "&".join(f"filter[@ID][{n}]={c['lead_id']}" for n, c in enumerate(started)),
        },
    )
    results = body["result"]["result"]
    assert [int(r["ID"]) for r in results["acts"]] == sorted(
        (c["activity_id"] for c in started[:2]), reverse=True
    )
    assert sorted(int(r["ID"]) for r in results["leads"]) == [c["lead_id"] for c in started]


async def test_an_in_list_longer_than_a_page_pages_with_next(running: Running, token: str) -> None:
    started = await chats(running, 60, lines=[1])
    leads = [c["lead_id"] for c in started]
    first = await running.ok("crm.lead.list", token, filter={"@ID": leads})
    assert len(first["result"]) == 50 and first["next"] == 50 and first["total"] == 60
    rest = await running.ok("crm.lead.list", token, filter={"@ID": leads}, start=50)
    assert "next" not in rest or rest["next"] is None
    assert sorted(ids(first) + ids(rest)) == sorted(leads)
