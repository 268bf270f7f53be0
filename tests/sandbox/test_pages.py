"""The pages people use, the JSON test API for the same things, and the command line."""

from __future__ import annotations

import re
from typing import Any

import pytest

from b24_openlines_plugin.sandbox import __main__ as cli
from b24_openlines_plugin.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.sandbox.conftest import HOOKS, REDIRECT, Running

pytestmark = pytest.mark.anyio


async def test_app_json_api(running: Running) -> None:
    app = (await running.client.get("/sandbox/api/app")).json()
    assert re.fullmatch(r"local\.[0-9a-f]{14}\.\d{8}", app["client_id"])
    assert len(app["client_secret"]) >= 32
    assert app["scopes"] == ["crm", "imopenlines", "im", "contact_center"]
    assert app["redirect_uri"] == REDIRECT
    updated = await running.client.put(
        "/sandbox/api/app", json={"redirect_uri": HOOKS + "/cb", "scopes": ["crm", "im"]}
    )
    assert updated.json()["redirect_uri"] == HOOKS + "/cb" and updated.json()["scopes"] == [
        "crm",
        "im",
    ]
    bad = await running.client.put("/sandbox/api/app", json={"scopes": ["everything"]})
    assert bad.status_code == 422


async def test_app_page_shows_keys_and_saves_settings(running: Running) -> None:
    page = await running.client.get("/sandbox/app")
    assert page.status_code == 200
    assert (
        running.sandbox.app.client_id in page.text
        and running.sandbox.app.client_secret in page.text
    )
    saved = await running.client.post(
        "/sandbox/app", data={"redirect_uri": HOOKS + "/x", "scopes": ["crm", "imopenlines"]}
    )
    assert saved.status_code == 303
    assert running.sandbox.app.redirect_uri == HOOKS + "/x"
    assert running.sandbox.app.scopes == ["crm", "imopenlines"]


async def test_webhooks_page_creates_a_webhook_with_a_token(running: Running) -> None:
    page = await running.client.get("/sandbox/webhooks")
    assert page.status_code == 200 and "ONCRMACTIVITYUPDATE" in page.text
    created = await running.client.post(
        "/sandbox/webhooks", data={"handler": HOOKS + "/w", "events": ["ONCRMLEADADD"]}
    )
    assert created.status_code == 303
    (webhook,) = (await running.client.get("/sandbox/api/outgoing-webhooks")).json()
    assert webhook["events"] == ["ONCRMLEADADD"]
    assert webhook["application_token"] in (await running.client.get("/sandbox/webhooks")).text
    refused = await running.client.post("/sandbox/webhooks", data={"handler": HOOKS + "/w"})
    assert refused.status_code == 400
    await running.client.post(f"/sandbox/webhooks/{webhook['id']}/delete")
    assert (await running.client.get("/sandbox/api/outgoing-webhooks")).json() == []


async def test_webhook_json_api_validation_and_delete(running: Running) -> None:
    bad = await running.client.post(
        "/sandbox/api/outgoing-webhooks", json={"handler": HOOKS, "events": ["ONTHING"]}
    )
    assert bad.status_code == 422
    made = await running.client.post(
        "/sandbox/api/outgoing-webhooks", json={"handler": HOOKS, "event": "oncrmdealadd"}
    )
    assert made.json()["events"] == ["ONCRMDEALADD"]
    gone = await running.client.delete(f"/sandbox/api/outgoing-webhooks/{made.json()['id']}")
    assert gone.status_code == 204


async def test_starting_and_running_a_chat_from_the_page(running: Running) -> None:
    home = await running.client.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/sandbox/"
    page = await running.client.get("/sandbox/")
    assert page.status_code == 200 and "Start a chat" in page.text
    started = await running.client.post(
        "/sandbox/chats",
        data={
            "connector": "telegrambot",
            "line_id": "1",
            "name": "Page Visitor",
            "phone": "+79990000000",
            "messages": "Hello from the page\nop: Hello, visitor",
            "custom_data": "visit 7",
            "new_lead": "1",
        },
    )
    assert started.status_code == 303
    (chat,) = (await running.client.get("/sandbox/api/chats")).json()
    assert chat["lead_id"] and chat["session_status"] == 10
    chat_id = chat["chat_id"]
    await running.client.post(
        f"/sandbox/chats/{chat_id}/messages", data={"author": "visitor", "text": "thanks"}
    )
    await running.client.post(f"/sandbox/chats/{chat_id}/close")
    await running.client.post(
        f"/sandbox/chats/{chat_id}/sessions", data={"text": "back again", "new_lead": "1"}
    )
    after = (await running.client.get(f"/sandbox/api/chats/{chat_id}")).json()
    assert len(after["sessions"]) == 2 and after["lead_id"] != chat["lead_id"]
    page = await running.client.get("/sandbox/")
    assert "Hello from the page" in page.text and "back again" in page.text
    wrong = await running.client.post("/sandbox/chats", data={"connector": "pigeon"})
    assert wrong.status_code == 400 and "unknown connector" in wrong.text


async def test_portal_json(running: Running) -> None:
    portal = (await running.client.get("/sandbox/api/portal")).json()
    assert portal["domain"] == "127.0.0.1:8100"
    assert portal["client_endpoint"] == "http://127.0.0.1:8100/rest/"
    assert [line["crm_create"] for line in portal["lines"]] == ["lead", "deal"]
    assert portal["rate_limit"] is None
    assert (await running.client.get("/sandbox/api/chats/1")).status_code == 404


def test_command_line_prints_what_a_client_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: ran.update(app=app, **kw))
    cli.main(["--host", "127.0.0.1", "--port", "8123", "--rate-limit", "enterprise"])
    out = capsys.readouterr().out
    assert "127.0.0.1:8123" in out and DEFAULT_CLIENT_ID in out
    assert DEFAULT_CLIENT_SECRET not in out  # secrets stay off the console; the app page shows it
    assert "/sandbox/app" in out and "/sandbox/webhooks" in out
    assert ran["port"] == 8123
    assert ran["app"].state.sandbox.config.rate_limit.burst == 250
