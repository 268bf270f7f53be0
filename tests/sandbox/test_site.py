"""The demo website, its <head> code setting and the stand-in live-chat widget, over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from b24_openlines_plugin.sandbox.site import WIDGET_JS
from tests.sandbox.conftest import Running

pytestmark = pytest.mark.anyio

HARNESS = Path(__file__).with_name("widget_harness.js")
LANDING = "/site/landing?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"
TRACKER = '<script src="https://analytics.example.test/static/tracker.js"></script>'
HEAD = TRACKER + "\n<script>/* site script */ window.siteScript = 1;</script>"
# What widget.js POSTs to /sandbox/api/chats for a first message (see widget_harness.js).
WIDGET_START: dict[str, Any] = {
    "connector": "livechat",
    "line_id": 1,
    "visitor": {"name": None, "phone": "+7 999 000-11-22", "email": None},
    "messages": [{"author": "visitor", "text": "Hello, is the chair in stock?"}],
    "custom_data": [
        {"MESSAGE": "Analytics session: abcdef123456"},
        {"GRID": [{"NAME": "Visit", "VALUE": "v1", "DISPLAY": "LINE"}]},
    ],
}


async def _first_message(running: Running, token: str, session_id: int) -> dict[str, Any]:
    history = await running.ok("imopenlines.session.history.get", token, SESSION_ID=session_id)
    messages = history["result"]["message"]
    first: dict[str, Any] = messages[min(messages, key=int)]
    return first


def _custom_lines(message: dict[str, Any]) -> list[str]:
    """The MESSAGE blocks of a system message's attach: where the widget's custom data is."""
    assert message["senderid"] == "0" and message["text"] == "[B]Data received:[/B]"
    blocks = message["params"]["attach"][0]["blocks"]
    return [block["message"] for block in blocks if "message" in block]


DEMO_MESSENGERS = {
    "telegram_bot": "garden_shop_bot",
    "whatsapp_number": "79990001122",
    "viber_uri": "gardenshop",
}


async def test_site_api_round_trip(running: Running) -> None:
    assert (await running.client.get("/sandbox/api/site")).json() == {
        "head_html": "",
        **DEMO_MESSENGERS,
    }
    put = await running.client.put("/sandbox/api/site", json={"head_html": HEAD})
    assert put.status_code == 200 and put.json() == {"head_html": HEAD, **DEMO_MESSENGERS}
    assert (await running.client.get("/sandbox/api/site")).json()["head_html"] == HEAD
    assert running.sandbox.site.head_html == HEAD
    bad = await running.client.put("/sandbox/api/site", json={"head_html": 5})
    assert bad.status_code == 422
    assert (await running.client.put("/sandbox/api/site", json={})).status_code == 422
    bot = await running.client.put("/sandbox/api/site", json={"telegram_bot": "other_shop_bot"})
    assert bot.json() == {"head_html": HEAD, **DEMO_MESSENGERS, "telegram_bot": "other_shop_bot"}
    for bad_value in ({"telegram_bot": "a b"}, {"whatsapp_number": "+7 999"}, {"viber_uri": ""}):
        assert (await running.client.put("/sandbox/api/site", json=bad_value)).status_code == 422


async def test_settings_page_saves_the_code_and_shows_it_escaped(running: Running) -> None:
    saved = await running.client.post("/sandbox/site/settings", data={"head_html": HEAD})
    assert saved.status_code == 303 and saved.headers["location"] == "/sandbox/site/settings"
    page = (await running.client.get("/sandbox/site/settings")).text
    assert "Code for the &lt;head&gt; of every page" in page
    assert "&lt;script src=&#34;https://analytics.example.test/static/tracker.js&#34;&gt;" in page
    assert TRACKER not in page
    index = (await running.client.get("/sandbox/")).text
    assert 'href="/sandbox/site/settings"' in index and TRACKER not in index
    assert LANDING.replace("&", "&amp;") in index


async def test_demo_pages_carry_the_head_code_then_the_widget(running: Running) -> None:
    await running.client.put("/sandbox/api/site", json={"head_html": HEAD})
    page = await running.client.get(LANDING)
    assert page.status_code == 200 and "Spring sale" in page.text
    head = page.text.split("</head>")[0]
    assert HEAD in head and "/sandbox/widget.js?line=1" in head
    assert head.index(HEAD) < head.index("/sandbox/widget.js")
    assert 'href="/site/catalog"' in page.text and 'href="/site/contacts"' in page.text
    before = (await running.client.get(LANDING + "&widget=before")).text.split("</head>")[0]
    assert before.index("/sandbox/widget.js") < before.index(HEAD)
    for path in ("/site/", "/site/catalog", "/site/product", "/site/contacts"):
        other = await running.client.get(path)
        assert other.status_code == 200 and HEAD in other.text, path
    missing = await running.client.get("/site/nowhere")
    assert missing.status_code == 404 and "/sandbox/widget.js" in missing.text
    deal_line = (await running.client.get("/site/catalog?line=2")).text
    assert "/sandbox/widget.js?line=2" in deal_line


async def test_demo_pages_without_head_code(running: Running) -> None:
    page = await running.client.get("/site/")
    assert page.status_code == 200 and "/sandbox/widget.js?line=1" in page.text


async def test_widget_js_is_served_with_the_documented_names(running: Running) -> None:
    widget = await running.client.get("/sandbox/widget.js?line=1&29000000")
    assert widget.status_code == 200
    assert "javascript" in widget.headers["content-type"]
    for name in (
        "onBitrixLiveChat",
        "setCustomData",
        "setUserRegisterData",
        "SubscriptionType",
        "sessionStart",
        "userMessage",
        "BXLiveChat",
        "window.BX = window.BX || {}",
        "b24-widget-button",
        "/sandbox/api/chats",
    ):
        assert name in widget.text, name


async def test_a_chat_started_as_the_widget_starts_it(running: Running, token: str) -> None:
    chat = await running.chat(**WIDGET_START)
    assert chat["lead_id"] and chat["client_chat_id"] and chat["session_id"]
    lead = (await running.ok("crm.lead.get", token, id=chat["lead_id"]))["result"]
    assert lead["SOURCE_ID"] == "1|OPENLINE"
    first = await _first_message(running, token, chat["session_id"])
    assert _custom_lines(first) == ["Analytics session: abcdef123456"]
    assert first["params"]["attach"][0]["blocks"][1]["grid"][0]["value"] == "v1"
    default = await running.chat(
        **{**WIDGET_START, "visitor": None, "custom_data": [{"MESSAGE": "Site: http://x/"}]}
    )
    assert _custom_lines(await _first_message(running, token, default["session_id"])) == [
        "Site: http://x/"
    ]


async def test_custom_data_keeps_the_objects_of_a_list(running: Running, token: str) -> None:
    chat = await running.chat(
        **{**WIDGET_START, "custom_data": ["dropped", 7, {"MESSAGE": "kept"}, None]}
    )
    assert _custom_lines(await _first_message(running, token, chat["session_id"])) == ["kept"]
    nothing = await running.chat(**{**WIDGET_START, "custom_data": ["only junk"]})
    first = await _first_message(running, token, nothing["session_id"])
    assert first["text"] == "Hello, is the chair in stock?"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_widget_js_under_node(running: Running, token: str) -> None:
    """widget.js in a fake DOM: its surface, events, and the body it starts a chat with."""
    run = subprocess.run(
        ["node", str(HARNESS), str(WIDGET_JS)], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["globalBeforeBoot"] == "undefined" and seen["sameAsGlobal"] is True
    assert seen["detail"] == ["widget", "widgetCode", "widgetHost"]
    assert seen["widgetHost"] == "http://127.0.0.1:8100"
    assert {"configLoaded", "sessionStart", "userMessage", "every"} <= set(seen["types"])
    assert seen["unknownSubscription"] is False and seen["unsubscribeIsFunction"] is True
    assert seen["badCustomData"] is False and seen["badRegisterData"] is False
    assert seen["panelOpen"] == "block" and seen["chatsStarted"] == 1
    start, second, closed, reopened = seen["requests"]
    assert start["url"] == "http://127.0.0.1:8100/sandbox/api/chats"
    assert start["body"] == {
        **WIDGET_START,
        "visitor": {"name": "Ann Young", "phone": "+7 999 000-11-22", "email": None},
    }
    assert second["url"].endswith("/sandbox/api/chats/3/messages")
    assert closed["url"] == second["url"] and reopened["url"].endswith("/chats/3/sessions")
    types = [e["type"] for e in seen["events"]]
    assert types == [
        "configLoaded",
        "widgetOpen",
        "userMessage",
        "userMessage",
        "sessionStart",
        "userMessage",
        "sessionFinish",
        "sessionStart",
    ]
    assert seen["events"][2]["data"]["text"] == "Hello, is the chair in stock?"
    assert seen["sessionStart"] == {"sessionId": 6} and seen["panelSession"] == "6"
    assert seen["userData"]["id"] == 11 and len(seen["userData"]["hash"]) == 32
    assert seen["userData"]["name"] == "Ann" and seen["userData"]["lastName"] == "Young"
    assert [status for _, status in seen["messages"]] == ["sent", "sent", "sent"]
    assert any("page bug" in w for w in seen["warnings"])  # a failing subscriber is contained
    # The very body the widget sent starts a chat whose first message is the custom data.
    chat = await running.chat(**start["body"])
    first = await _first_message(running, token, chat["session_id"])
    assert _custom_lines(first) == ["Analytics session: abcdef123456"]
