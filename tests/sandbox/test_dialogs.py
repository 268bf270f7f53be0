"""GET /sandbox/api/dialogs: every dialog with its channel and messages, for checks run from
another process (the cluster soak reads the truth over HTTP)."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Running

pytestmark = pytest.mark.anyio


async def test_every_dialog_with_its_channel_and_own_messages(running: Running) -> None:
    first = await running.chat(
        connector="telegrambot",
        messages=[
            {"author": "visitor", "text": "Is this still in stock?"},
            {"author": "operator", "text": "Yes, we have it."},
        ],
        close=True,
    )
    back = await running.client.post(
        f"/sandbox/api/chats/{first['chat_id']}/sessions",
        json={"messages": [{"author": "visitor", "text": "Me again"}]},
    )
    assert back.status_code == 201, back.text
    other = await running.chat(connector="livechat", line_id=2)

    answer = await running.client.get("/sandbox/api/dialogs")

    assert answer.status_code == 200
    dialogs = {d["session_id"]: d for d in answer.json()}
    returning = back.json()["session_id"]
    assert set(dialogs) == {first["session_id"], returning, other["session_id"]}
    closed, again = dialogs[first["session_id"]], dialogs[returning]
    assert (closed["chat_id"], closed["connector"], closed["line_id"]) == (
        first["chat_id"],
        "telegrambot",
        1,
    )
    assert closed["closed"] and not again["closed"]
    assert (closed["lead_id"], closed["activity_id"]) == (first["lead_id"], first["activity_id"])
    assert again["chat_id"] == first["chat_id"]
    people = [m["text"] for m in closed["messages"] if m["author_id"] != 0]
    assert people == ["Is this still in stock?", "Yes, we have it."]
    assert [m["text"] for m in again["messages"] if m["author_id"] != 0] == ["Me again"]
    assert dialogs[other["session_id"]]["connector"] == "livechat"
    assert dialogs[other["session_id"]]["line_id"] == 2


async def test_it_is_read_only(running: Running) -> None:
    answer = await running.client.post("/sandbox/api/dialogs", json={})
    assert answer.status_code == 405
