"""Open lines as a portal configures them: a fixed (numeric) CRM source, and a session whose
activity Bitrix24 registers after its lead or deal."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import HOOKS, Running, fixture_json

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]


async def new_line(running: Running, **line: object) -> int:
    answer = await running.client.post("/sandbox/api/lines", json=line)
    assert answer.status_code == 201, answer.text
    line_id: int = answer.json()["id"]
    return line_id


async def test_a_line_with_a_fixed_source_writes_it_as_the_official_lead(
    running: Running, token: str
) -> None:
    official = fixture_json("crm.lead.get.json")["result"]["SOURCE_ID"]  # "1"
    leads = await new_line(running, name="Site", crm_create="lead", crm_source=official)
    deals = await new_line(running, name="Sales 2", crm_create="deal", crm_source=official)
    lead_chat = await running.chat(line_id=leads, messages=HELLO)
    deal_chat = await running.chat(line_id=deals, connector="telegrambot", messages=HELLO)
    lead = (await running.ok("crm.lead.get", token, id=lead_chat["lead_id"]))["result"]
    deal = (await running.ok("crm.deal.get", token, id=deal_chat["deal_id"]))["result"]
    assert lead["SOURCE_ID"] == deal["SOURCE_ID"] == official
    assert lead["IM"][0]["VALUE"] == f"imol|{lead_chat['user_code']}"
    listed = (await running.client.get("/sandbox/api/lines")).json()
    assert {(x["id"], x["crm_source"]) for x in listed} >= {(1, None), (leads, official)}
    refused = await running.client.post("/sandbox/api/lines", json={"name": "x", "crm_source": ""})
    assert refused.status_code == 422


async def test_an_activity_registered_late_comes_with_the_next_message(
    running: Running, token: str
) -> None:
    hook = await running.client.post(
        "/sandbox/api/outgoing-webhooks",
        json={"handler": HOOKS + "/all", "events": ["ONCRMDEALADD", "ONCRMACTIVITYADD"]},
    )
    assert hook.status_code == 201
    started = await running.chat(line_id=2, late_activity=True, messages=HELLO)
    assert started["deal_id"] and started["activity_id"] is None
    chats = await running.ok(
        "imopenlines.crm.chat.get",
        token,
        CRM_ENTITY_TYPE="deal",
        CRM_ENTITY=started["deal_id"],
        ACTIVE_ONLY="N",
    )
    assert chats["result"] == []
    more = await running.client.post(
        f"/sandbox/api/chats/{started['chat_id']}/messages",
        json={"messages": [{"author": "visitor", "text": "Still there?"}]},
    )
    activity_id = more.json()["activity_id"]
    assert activity_id is not None
    await running.settled()
    assert [f["event"] for f in running.site.forms()] == ["ONCRMDEALADD", "ONCRMACTIVITYADD"]
    again = await running.client.post(
        f"/sandbox/api/chats/{started['chat_id']}/messages",
        json={"messages": [{"author": "visitor", "text": "Hello?"}]},
    )
    assert again.json()["activity_id"] == activity_id  # registered once
