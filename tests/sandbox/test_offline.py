"""Offline events: bound with event.bind, queued instead of POSTed, read with event.offline.*."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from b24_openlines_plugin.sandbox.chaos import FaultSettings
from tests.sandbox.conftest import Factory, Running, fixture_json

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]
ANSWER = [{"author": "operator", "text": "Hi!"}]


async def bind_offline(running: Running, token: str, *events: str, **extra: Any) -> None:
    for event in events:
        await running.ok("event.bind", token, event=event, event_type="offline", **extra)


async def listed(running: Running, token: str, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await running.ok("event.offline.list", token, **params))["result"]
    return rows


def md5(event: str, entity_id: int) -> str:
    encoded = json.dumps({"FIELDS": {"ID": str(entity_id)}}, separators=(",", ":"))
    return hashlib.md5(f"{event}|{encoded}".encode()).hexdigest()


async def test_bound_events_are_queued_not_posted_one_record_per_change(
    running: Running, token: str
) -> None:
    await bind_offline(running, token, "ONCRMLEADADD", "ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE")
    chat = await running.chat(messages=[*HELLO, *ANSWER])
    await running.settled()
    assert running.site.received == []

    rows = await listed(running, token)
    lead, activity = str(chat["lead_id"]), str(chat["activity_id"])
    assert [(r["EVENT_NAME"], r["EVENT_DATA"]) for r in rows] == [
        ("ONCRMLEADADD", {"FIELDS": {"ID": lead}}),
        ("ONCRMACTIVITYADD", {"FIELDS": {"ID": activity}}),
        ("ONCRMACTIVITYUPDATE", {"FIELDS": {"ID": activity}}),
    ]
    assert rows[0]["MESSAGE_ID"] == md5("ONCRMLEADADD", chat["lead_id"])
    assert rows[0]["EVENT_ADDITIONAL"] == {"user_id": "1"}
    assert rows[0]["TIMESTAMP_X"] == "2026-09-21T17:13:20+03:00"
    assert {(r["PROCESS_ID"], r["ERROR"]) for r in rows} == {("", "0")}
    update = rows[2]

    running.clock.advance(90)
    await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    again = await listed(running, token)
    assert len(again) == 3  # the second update of the same activity merged into the first
    assert again[2]["ID"] == update["ID"] and again[2]["MESSAGE_ID"] == update["MESSAGE_ID"]
    assert again[2]["TIMESTAMP_X"] == "2026-09-21T17:14:50+03:00"


async def test_get_answers_the_documented_shape_and_clears_by_default(
    running: Running, token: str
) -> None:
    await bind_offline(running, token, "ONCRMLEADADD")
    chat = await running.chat(messages=HELLO)
    body = await running.ok("event.offline.get", token)
    example = fixture_json("event.offline.get.response.json")
    assert list(body["result"]) == list(example["result"])
    assert body["result"]["process_id"] is None
    (event,) = body["result"]["events"]
    assert list(event) == list(example["result"]["events"][0])
    assert event["EVENT_DATA"] == {"FIELDS": {"ID": str(chat["lead_id"])}}
    assert await listed(running, token) == []
    empty = await running.ok("event.offline.get", token)
    assert empty["result"] == {"process_id": None, "events": []}


async def test_reserved_batches_are_not_shared_until_cleared(running: Running, token: str) -> None:
    await bind_offline(running, token, "ONCRMLEADADD", "ONCRMACTIVITYADD")
    for _ in range(3):
        await running.chat(messages=HELLO)
        running.clock.advance(1)

    first = (await running.ok("event.offline.get", token, clear=0, limit=2))["result"]
    second = (await running.ok("event.offline.get", token, clear=0, limit=2))["result"]
    assert len(first["process_id"]) == 32 and first["process_id"] != second["process_id"]
    ids = [e["ID"] for e in first["events"]] + [e["ID"] for e in second["events"]]
    assert ids == ["1", "2", "3", "4"]
    again = await running.ok("event.offline.get", token, clear=0, process_id=first["process_id"])
    assert again["result"] == first
    reserved = {r["ID"]: r["PROCESS_ID"] for r in await listed(running, token)}
    assert reserved == {
        "1": first["process_id"],
        "2": first["process_id"],
        "3": second["process_id"],
        "4": second["process_id"],
        "5": "",
        "6": "",
    }

    await running.ok("event.offline.clear", token, process_id=first["process_id"], id=[1])
    assert [r["ID"] for r in await listed(running, token)] == ["2", "3", "4", "5", "6"]
    await running.ok(
        "event.offline.clear",
        token,
        process_id=second["process_id"],
        message_id=[second["events"][1]["MESSAGE_ID"]],
    )
    await running.ok("event.offline.clear", token, process_id=first["process_id"])
    assert [r["ID"] for r in await listed(running, token)] == ["3", "5", "6"]

    rest = (await running.ok("event.offline.get", token))["result"]
    assert [e["ID"] for e in rest["events"]] == ["5", "6"] and rest["process_id"] is None
    assert [r["ID"] for r in await listed(running, token)] == ["3"]


async def test_errors_leave_the_batch_and_come_back_only_with_error_1(
    running: Running, token: str
) -> None:
    await bind_offline(running, token, "ONCRMLEADADD")
    await running.chat(messages=HELLO)
    await running.chat(messages=HELLO)
    batch = (await running.ok("event.offline.get", token, clear=0))["result"]
    failed = batch["events"][0]
    await running.ok(
        "event.offline.error",
        token,
        process_id=batch["process_id"],
        message_id=[failed["MESSAGE_ID"]],
    )
    rows = {r["ID"]: (r["PROCESS_ID"], r["ERROR"]) for r in await listed(running, token)}
    assert rows == {failed["ID"]: ("", "1"), batch["events"][1]["ID"]: (batch["process_id"], "0")}
    normal = (await running.ok("event.offline.get", token, clear=0))["result"]
    assert normal["events"] == []
    errors = (await running.ok("event.offline.get", token, error=1))["result"]
    assert [e["ID"] for e in errors["events"]] == [failed["ID"]]


async def test_a_repeat_of_a_reserved_record_makes_a_new_one(running: Running, token: str) -> None:
    await bind_offline(running, token, "ONCRMACTIVITYUPDATE")
    chat = await running.chat(messages=HELLO)
    await running.client.post(
        f"/sandbox/api/chats/{chat['chat_id']}/messages", json={"messages": ANSWER}
    )
    batch = (await running.ok("event.offline.get", token, clear=0))["result"]
    (reserved,) = batch["events"]
    await running.client.post(f"/sandbox/api/chats/{chat['chat_id']}/close")
    rows = await listed(running, token)
    assert [(r["ID"], r["PROCESS_ID"]) for r in rows] == [
        (reserved["ID"], batch["process_id"]),
        ("2", ""),
    ]
    assert rows[1]["MESSAGE_ID"] == reserved["MESSAGE_ID"]
    # Marking the reserved one erroneous deletes its unreserved twin (EventOfflineTable).
    await running.ok(
        "event.offline.error",
        token,
        process_id=batch["process_id"],
        message_id=[reserved["MESSAGE_ID"]],
    )
    assert [(r["ID"], r["ERROR"]) for r in await listed(running, token)] == [(reserved["ID"], "1")]


async def test_filter_order_and_limit(running: Running, token: str) -> None:
    await bind_offline(running, token, "ONCRMLEADADD", "ONCRMACTIVITYADD")
    for _ in range(3):
        await running.chat(messages=HELLO)
        running.clock.advance(60)
    leads = await running.ok(
        "event.offline.list", token, filter={"=EVENT_NAME": "oncrmleadadd", ">ID": 1}
    )
    assert [r["ID"] for r in leads["result"]] == ["3", "5"] and leads["total"] == 2
    later = await running.ok(
        "event.offline.get",
        token,
        clear=0,
        filter={">=TIMESTAMP_X": "2026-09-21T14:14:20Z"},  # the second chat on
        order={"ID": "DESC"},
        limit=3,
    )
    assert [e["ID"] for e in later["result"]["events"]] == ["6", "5", "4"]


@pytest.mark.parametrize(
    ("method", "params", "description"),
    [
        ("event.offline.get", {"limit": 0}, "Value must be positive integer"),
        ("event.offline.get", {"filter": {"!ID": 1}}, "Filter operation not allowed: !"),
        ("event.offline.get", {"filter": {"ERROR": 1}}, "Filter field not allowed: ERROR"),
        (
            "event.offline.get",
            {"filter": {"ID": [1, 2]}},
            "The value of an argument 'ID' has an invalid type",
        ),
        (
            "event.offline.get",
            {"order": {"ID": "UP"}},
            "Order direction should be one of {ASC|DESC}",
        ),
        ("event.offline.list", {"order": {"HANDLER": "ASC"}}, "Order field not allowed: HANDLER"),
        ("event.offline.clear", {}, "Argument 'PROCESS_ID' is null or empty"),
        ("event.offline.clear", {"process_id": "p", "id": 5}, "Value must be array of integers"),
        (
            "event.offline.clear",
            {"process_id": "p", "message_id": ["short"]},
            "Value must be array of MESSAGE_ID values",
        ),
        ("event.offline.error", {"process_id": "p"}, "Value must be array of MESSAGE_ID values"),
    ],
)
async def test_argument_errors(
    running: Running, token: str, method: str, params: dict[str, Any], description: str
) -> None:
    response = await running.rest(method, token, **params)
    assert response.status_code == 400
    assert response.json() == {"error": "ERROR_ARGUMENT", "error_description": description}


async def test_source_keys_keep_separate_queues(running: Running, token: str) -> None:
    await bind_offline(running, token, "ONCRMLEADADD")
    await bind_offline(running, token, "ONCRMLEADADD", auth_connector="sync")
    listed_handlers = (await running.ok("event.get", token))["result"]
    assert listed_handlers == [
        {"event": "ONCRMLEADADD", "connector_id": "", "offline": 1},
        {"event": "ONCRMLEADADD", "connector_id": "sync", "offline": 1},
    ]
    await running.chat(messages=HELLO)
    plain = (await running.ok("event.offline.get", token))["result"]["events"]
    keyed = (await running.ok("event.offline.get", token, auth_connector="sync"))["result"]
    assert len(plain) == 1 and len(keyed["events"]) == 1
    assert plain[0]["MESSAGE_ID"] == keyed["events"][0]["MESSAGE_ID"]
    removed = await running.ok(
        "event.unbind", token, event="ONCRMLEADADD", event_type="offline", auth_connector="sync"
    )
    assert removed["result"] == {"count": 1}


async def test_without_the_plan_feature_a_batch_cannot_be_reserved(make_sandbox: Factory) -> None:
    running = await make_sandbox(offline_events=False)
    token = (await running.authorize())["access_token"]
    feature = await running.ok("feature.get", token, CODE="rest_offline_extended")
    assert feature["result"] == {"value": "N"}
    await bind_offline(running, token, "ONCRMLEADADD")  # binding itself is not licensed
    await running.chat(messages=HELLO)
    refused = await running.rest("event.offline.get", token, clear=0)
    assert (refused.status_code, refused.json()) == (
        403,
        {
            "error": "WRONG_LICENSE",
            "error_description": "This feature is not enabled for the current license: "
            "extended offline events handling",
        },
    )
    read = await running.ok("event.offline.get", token)  # read-and-delete still works
    assert len(read["result"]["events"]) == 1


async def test_feature_get(running: Running, token: str) -> None:
    for code in ("rest_offline_extended", "rest_auth_connector"):
        assert (await running.ok("feature.get", token, CODE=code))["result"] == {"value": "Y"}
    empty = await running.rest("feature.get", token)
    assert empty.json() == {"error": "CODE_EMPTY", "error_description": "CODE can't be empty"}


async def test_only_administrators_bind_and_read_offline_events(running: Running) -> None:
    operator = (await running.authorize(user_id=2))["access_token"]
    bind = await running.rest("event.bind", operator, event="ONCRMLEADADD", event_type="offline")
    assert (bind.status_code, bind.json()["error_description"]) == (
        403,
        "Offline events binding requires administrator access rights",
    )
    for method in ("event.offline.get", "event.offline.list"):
        refused = await running.rest(method, operator)
        assert (refused.status_code, refused.json()) == (
            403,
            {"error": "ACCESS_DENIED", "error_description": "Access denied!"},
        )


async def test_offline_records_survive_dropped_deliveries(make_sandbox: Factory) -> None:
    running = await make_sandbox(faults=FaultSettings(seed=1, webhook_drop_rate=1.0))
    token = (await running.authorize())["access_token"]
    await running.ok("event.bind", token, event="ONCRMLEADADD", handler="https://x.test/h")
    await bind_offline(running, token, "ONCRMLEADADD")
    await running.chat(messages=HELLO)
    await running.settled()
    assert running.site.received == []
    assert len(await listed(running, token)) == 1
    api = (await running.client.get("/sandbox/api/offline-events")).json()
    assert [r["EVENT_NAME"] for r in api] == ["ONCRMLEADADD"] and api[0]["CONNECTOR_ID"] == ""
