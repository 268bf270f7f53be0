"""``batch``: chained ``$result[...]`` references, halt, the 50-command cap, PHP's empty ``[]``."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Running, fixture_json

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]


async def test_one_round_trip_from_lead_to_transcript(running: Running, token: str) -> None:
    chat = await running.chat(connector="telegrambot", messages=HELLO)
    body = await running.ok(
        "batch",
        token,
        halt=0,
        cmd={
            "lead": f"crm.lead.get?id={chat['lead_id']}",
            "chats": "imopenlines.crm.chat.get?CRM_ENTITY_TYPE=lead"
            "&CRM_ENTITY=$result[lead][ID]&ACTIVE_ONLY=N",
            "dialog": "imopenlines.dialog.get?CHAT_ID=$result[chats][0][CHAT_ID]",
            "acts": "crm.activity.list?filter[OWNER_TYPE_ID]=1&filter[OWNER_ID]=$result[lead][ID]",
            "history": "imopenlines.session.history.get"
            "?SESSION_ID=$result[acts][0][ASSOCIATED_ENTITY_ID]",
        },
    )
    batch = body["result"]
    assert list(batch) == list(fixture_json("batch.response.json")["result"])
    assert set(body["time"]) == set(fixture_json("batch.response.json")["time"])
    assert batch["result_error"] == [] and batch["result_next"] == []
    assert batch["result_total"] == {"acts": 1}
    assert list(batch["result_time"]) == ["lead", "chats", "dialog", "acts", "history"]
    assert batch["result"]["dialog"]["id"] == chat["chat_id"]
    assert batch["result"]["history"]["sessionId"] == chat["session_id"]


async def test_halt_0_runs_everything(running: Running, token: str) -> None:
    body = await running.ok(
        "batch",
        token,
        halt=0,
        cmd={"get_user": "user.current", "get_department": "user.current?ID=1"},
    )
    assert body["result"] == fixture_json("batch.error.halt0.json")["result"]


async def test_halt_1_stops_at_the_first_error(running: Running, token: str) -> None:
    body = await running.ok(
        "batch",
        token,
        halt=1,
        cmd={"get_user": "user.current", "get_department": "user.current?ID=1"},
    )
    assert body["result"] == fixture_json("batch.error.halt1.json")["result"]


async def test_errors_and_results_side_by_side(running: Running, token: str) -> None:
    lead_id = min(running.sandbox.portal.leads)
    body = await running.ok(
        "batch",
        token,
        cmd={
            "ok": f"crm.lead.get?id={lead_id}",
            "missing": "crm.lead.get?id=99999",
            "unknown": "crm.nothing.here",
            "after": "crm.deal.list",
        },
    )
    batch = body["result"]
    assert list(batch["result"]) == ["ok", "after"]
    assert batch["result_error"] == {
        "missing": {"error": "", "error_description": "Not found"},
        "unknown": {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"},
    }
    assert batch["result_total"] == {"after": 1}


async def test_more_than_50_commands(running: Running, token: str) -> None:
    cmd = {f"c{i:02}": "scope" for i in range(52)}
    batch = (await running.ok("batch", token, cmd=cmd))["result"]
    assert len(batch["result"]) == 50
    overflow = {
        "error": "ERROR_BATCH_LENGTH_EXCEEDED",
        "error_description": "Max batch length exceeded",
    }
    assert batch["result_error"] == {"c50": overflow, "c51": overflow}


async def test_nested_batch_is_refused(running: Running, token: str) -> None:
    batch = (await running.ok("batch", token, cmd={"inner": "batch?cmd[x]=scope"}))["result"]
    assert batch["result"] == []
    assert batch["result_error"]["inner"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"


async def test_a_list_of_commands_gives_lists(running: Running, token: str) -> None:
    batch = (await running.ok("batch", token, cmd=["scope", "crm.deal.list"]))["result"]
    assert isinstance(batch["result"], list) and len(batch["result"]) == 2
    assert batch["result_total"] == {"1": 1}


async def test_list_results_report_next(running: Running, token: str) -> None:
    for i in range(50):
        await running.chat(messages=[{"author": "visitor", "text": str(i)}])
    batch = (await running.ok("batch", token, cmd={"page": "crm.lead.list?start=0"}))["result"]
    assert batch["result_next"] == {"page": 50} and batch["result_total"] == {"page": 52}


async def test_batch_as_a_form_with_php_keys(running: Running, token: str) -> None:
    lead_id = min(running.sandbox.portal.leads)
    response = await running.client.post(
        "/rest/batch.json",
        data={
            "auth": token,
            "halt": "0",
            "cmd[lead]": f"crm.lead.get?id={lead_id}",
            "cmd[same]": "crm.lead.list?filter[ID]=$result[lead][ID]&select[]=TITLE",
        },
    )
    batch = response.json()["result"]
    assert batch["result"]["same"] == [
        {"ID": str(lead_id), "TITLE": batch["result"]["lead"]["TITLE"]}
    ]


async def test_a_batch_needs_auth(running: Running) -> None:
    response = await running.rest("batch", None, cmd={"a": "scope"})
    assert response.status_code == 401
