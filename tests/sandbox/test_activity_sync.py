"""crm.activity.get and the crm.activity.list filters a reconciliation pass relies on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sandbox.conftest import Running

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]
ANSWER = [{"author": "operator", "text": "Hi!"}]


async def activity(running: Running, token: str, activity_id: int) -> dict[str, Any]:
    found: dict[str, Any] = (await running.ok("crm.activity.get", token, id=activity_id))["result"]
    return found


async def ids(running: Running, token: str, **params: Any) -> list[int]:
    body = await running.ok("crm.activity.list", token, **params)
    return [int(row["ID"]) for row in body["result"]]


async def test_get_is_the_list_row_without_communications(running: Running, token: str) -> None:
    chat = await running.chat(connector="telegrambot", messages=HELLO)
    got = await activity(running, token, chat["activity_id"])
    (row,) = (await running.ok("crm.activity.list", token, filter={"ID": chat["activity_id"]}))[
        "result"
    ]
    assert got == row and "COMMUNICATIONS" not in got
    missing = await running.rest("crm.activity.get", token, id=99999)
    assert (missing.status_code, missing.json()) == (
        400,
        {"error": "", "error_description": "Not found"},
    )
    bad = await running.rest("crm.activity.get", token, id="x")
    assert bad.json()["error_description"] == "ID is not defined or invalid"


async def test_last_updated_moves_when_an_operator_answers_and_when_closed(
    running: Running, token: str
) -> None:
    chat = await running.chat(messages=HELLO)
    first = await activity(running, token, chat["activity_id"])
    assert first["LAST_UPDATED"] == first["CREATED"] == "2026-09-21T17:13:20+03:00"
    running.clock.advance(60)
    await running.client.post(
        f"/sandbox/api/chats/{chat['chat_id']}/messages", json={"messages": ANSWER}
    )
    answered = await activity(running, token, chat["activity_id"])
    assert answered["LAST_UPDATED"] == "2026-09-21T17:14:20+03:00"
    assert answered["RESULT_STATUS"] == "2" and answered["COMPLETED"] == "N"
    running.clock.advance(60)
    await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    closed = await activity(running, token, chat["activity_id"])
    assert closed["LAST_UPDATED"] == closed["END_TIME"] == "2026-09-21T17:15:20+03:00"
    assert closed["COMPLETED"] == "Y"


async def test_reconciliation_filters(running: Running, token: str) -> None:
    chats = []
    for _ in range(3):
        chats.append(await running.chat(messages=HELLO))
        running.clock.advance(60)
    a, b, c = (chat["activity_id"] for chat in chats)
    await running.client.post(f"/sandbox/api/chats/{chats[0]['chat_id']}/close")  # a at +180 s

    assert await ids(running, token, filter={">ID": a}, order={"ID": "ASC"}) == [b, c]
    since = {">=LAST_UPDATED": "2026-09-21T17:14:20+03:00"}
    assert await ids(running, token, filter=since, order={"ID": "ASC"}) == [a, b, c]
    assert await ids(
        running, token, filter={">LAST_UPDATED": "2026-09-21T14:14:20Z"}, order={"ID": "ASC"}
    ) == [a, c]
    assert await ids(
        running, token, filter={"PROVIDER_ID": "IMOPENLINES_SESSION", "COMPLETED": "N"}
    ) == [b, c]
    assert await ids(running, token, filter={"@ID": [a, c]}, order={"ID": "DESC"}) == [c, a]
    assert await ids(running, token, filter={"ID": [b, c]}) == [b, c]
    assert await ids(running, token, order={"LAST_UPDATED": "DESC", "ID": "ASC"}) == [a, c, b]

    fast = await running.ok(
        "crm.activity.list", token, filter={">ID": 0}, order={"ID": "ASC"}, start=-1
    )
    assert "total" not in fast and "next" not in fast
    assert [int(r["ID"]) for r in fast["result"]] == [a, b, c]
    counted = await running.ok("crm.activity.list", token, start=0)
    assert counted["total"] == 3
