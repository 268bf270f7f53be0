"""Handlers and deliveries: form bodies as the examples, two auth blocks, order, never retried."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

import pytest

from tests.sandbox.conftest import HOOKS, Factory, Running, fixture_form_keys, fixture_json

pytestmark = pytest.mark.anyio
HELLO = [{"author": "visitor", "text": "Hello"}]


async def add_webhook(running: Running, path: str, *events: str) -> dict[str, object]:
    response = await running.client.post(
        "/sandbox/api/outgoing-webhooks", json={"handler": HOOKS + path, "events": list(events)}
    )
    assert response.status_code == 201, response.text
    webhook: dict[str, object] = response.json()
    return webhook


async def test_event_bind_get_unbind(running: Running, token: str) -> None:
    bound = await running.ok("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/a")
    assert set(bound) == set(fixture_json("event.bind.response.json")) and bound["result"] is True
    await running.ok("event.bind", token, event="onCrmDealAdd", handler=HOOKS + "/a", auth_type=2)
    await running.ok(
        "event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/off", event_type="offline"
    )
    listed = (await running.ok("event.get", token))["result"]
    example_row = fixture_json("event.get.response.json")["result"][0]
    assert all(list(row) == list(example_row) for row in listed if not row["offline"])
    # An offline row shows its source key, not a handler (event-get.md, rest Api\Event).
    assert listed == [
        {"event": "ONCRMLEADADD", "handler": HOOKS + "/a", "auth_type": "0", "offline": 0},
        {"event": "ONCRMDEALADD", "handler": HOOKS + "/a", "auth_type": "2", "offline": 0},
        {"event": "ONCRMLEADADD", "connector_id": "", "offline": 1},
    ]
    duplicate = await running.rest("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/a")
    assert duplicate.status_code == 400
    assert duplicate.json() == {
        "error": "ERROR_HANDLER_ALREADY_EXIST",
        "error_description": "Handler already exists!",
    }
    unknown = await running.rest("event.bind", token, event="ONNOTHING", handler=HOOKS + "/a")
    assert (unknown.status_code, unknown.json()) == (400, fixture_json("event.bind.error.json"))

    removed = await running.ok("event.unbind", token, event="ONCRMLEADADD", handler=HOOKS + "/a")
    assert removed["result"] == fixture_json("event.unbind.response.json")["result"]
    again = await running.ok("event.unbind", token, event="ONCRMLEADADD", handler=HOOKS + "/a")
    assert again["result"] == {"count": 0}
    handlers = (await running.client.get("/sandbox/api/event-handlers")).json()
    assert [h["event"] for h in handlers] == ["ONCRMDEALADD", "ONCRMLEADADD"]


async def test_outgoing_webhook_body_is_the_example_form(running: Running) -> None:
    webhook = await add_webhook(running, "/webhooks/1/secret", "ONCRMDEALADD")
    assert len(str(webhook["application_token"])) == 32
    chat = await running.chat(connector="telegrambot", line_id=2, messages=HELLO)
    await running.settled()

    ((path, body, headers),) = running.site.received
    assert path == "/webhooks/1/secret"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["user-agent"] == "Bitrix24 Webhook Engine"
    pairs = parse_qsl(body, keep_blank_values=True)
    assert [k for k, _ in pairs] == fixture_form_keys("ONCRMDEALADD.outgoing_webhook.form.txt")
    form = dict(pairs)
    assert form["event"] == "ONCRMDEALADD" and form["data[FIELDS][ID]"] == str(chat["deal_id"])
    assert form["event_handler_id"] == str(webhook["id"])
    assert form["ts"] == str(int(running.clock.now))
    assert form["auth[application_token]"] == webhook["application_token"]
    assert form["auth[domain]"] == "127.0.0.1:8100"
    assert form["auth[client_endpoint]"] == "http://127.0.0.1:8100/rest/"
    assert form["auth[member_id]"] == running.sandbox.config.member_id


async def test_event_bind_body_is_the_example_form_with_working_tokens(
    running: Running, token: str
) -> None:
    await running.ok("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/app")
    chat = await running.chat(messages=HELLO)
    await running.settled()

    (form,) = running.site.forms("/app")
    body = running.site.received[0][1]
    # The docs' example without the two keys real deliveries add where captures show them:
    # the token's expiry after it, its user before the refresh token.
    expected = fixture_form_keys("ONCRMLEADADD.app.form.txt")
    expected.insert(expected.index("auth[access_token]") + 1, "auth[expires]")
    expected.insert(expected.index("auth[refresh_token]"), "auth[user_id]")
    assert [k for k, _ in parse_qsl(body)] == expected
    assert form["data[FIELDS][ID]"] == str(chat["lead_id"])
    assert form["auth[application_token]"] == running.sandbox.app.application_token
    assert form["auth[status]"] == "L" and form["auth[expires_in]"] == "3600"
    assert form["auth[expires]"] == str(int(running.clock.now) + 3600)
    assert form["auth[user_id]"] == "1"  # the administrator, whose action the chat stands for
    assert form["auth[scope]"] == "crm,imopenlines,im,contact_center"
    lead = await running.ok("crm.lead.get", form["auth[access_token]"], id=chat["lead_id"])
    assert lead["result"]["ID"] == str(chat["lead_id"])


async def test_webhook_and_app_handlers_get_different_auth(running: Running, token: str) -> None:
    await add_webhook(running, "/hook", "ONCRMLEADADD")
    await running.ok("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/app")
    await running.chat(messages=HELLO)
    await running.settled()
    (hook,), (app,) = running.site.forms("/hook"), running.site.forms("/app")
    auth = {k for k in hook if k.startswith("auth[")}
    assert auth == {
        f"auth[{k}]" for k in fixture_json("ONCRMDEALADD.outgoing_webhook.json")["auth"]
    }
    assert {"auth[access_token]", "auth[refresh_token]"} <= set(app)
    assert hook["auth[application_token]"] != app["auth[application_token]"]


async def test_event_auth_without_tokens(make_sandbox: Factory) -> None:
    running = await make_sandbox(event_auth_tokens=False)
    token = (await running.authorize())["access_token"]
    await running.ok("event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/app")
    await running.chat(messages=HELLO)
    await running.settled()
    (form,) = running.site.forms()
    tokens = {"access_token", "refresh_token", "expires", "expires_in", "user_id"}
    assert not {f"auth[{k}]" for k in tokens} & set(form)
    assert form["auth[application_token]"] == running.sandbox.app.application_token


async def test_events_come_in_the_order_things_happen(running: Running) -> None:
    await add_webhook(
        running, "/all", "ONCRMLEADADD", "ONCRMACTIVITYADD", "ONCRMACTIVITYUPDATE", "ONCRMDEALADD"
    )
    chat = await running.chat(messages=[*HELLO, {"author": "operator", "text": "Hi!"}], close=True)
    await running.settled()
    seen = [(f["event"], f["data[FIELDS][ID]"]) for f in running.site.forms()]
    activity = str(chat["activity_id"])
    assert seen == [
        ("ONCRMLEADADD", str(chat["lead_id"])),
        ("ONCRMACTIVITYADD", activity),
        ("ONCRMACTIVITYUPDATE", activity),  # the operator answered
        ("ONCRMACTIVITYUPDATE", activity),  # the dialog was closed
    ]


async def test_offline_bindings_are_not_posted(running: Running, token: str) -> None:
    await running.ok(
        "event.bind", token, event="ONCRMLEADADD", handler=HOOKS + "/off", event_type="offline"
    )
    await running.chat(messages=HELLO)
    await running.settled()
    assert running.site.received == []


async def test_failed_deliveries_are_logged_and_never_retried(running: Running) -> None:
    running.site.status["/broken"] = 500
    await add_webhook(running, "/broken", "ONCRMLEADADD")
    await running.client.post(
        "/sandbox/api/outgoing-webhooks",
        json={"handler": "https://down.test/hook", "event": "ONCRMLEADADD"},
    )
    await add_webhook(running, "/fine", "ONCRMLEADADD")
    await running.chat(messages=HELLO)
    await running.settled()
    await asyncio.sleep(0.05)  # give a retry every chance to happen
    await running.settled()

    log = (await running.client.get("/sandbox/api/deliveries")).json()
    assert [(d["handler"], d["status_code"], d["attempts"]) for d in log] == [
        (HOOKS + "/broken", 500, 1),
        ("https://down.test/hook", None, 1),
        (HOOKS + "/fine", 200, 1),
    ]
    assert "ConnectError" in log[1]["error"] and [d["ok"] for d in log] == [False, False, True]
    assert [p for p, _, _ in running.site.received] == ["/broken", "/fine"]


async def test_deliveries_page(running: Running) -> None:
    await add_webhook(running, "/fine", "ONCRMLEADADD")
    await running.chat(messages=HELLO)
    await running.settled()
    page = await running.client.get("/sandbox/deliveries")
    assert page.status_code == 200 and "ONCRMLEADADD" in page.text
