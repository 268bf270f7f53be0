"""Dialogs found through their activities' bindings, and Open Lines entities known by their
dialogs rather than their SOURCE_ID (issue 11, item 3): host + plugin + sandbox over HTTP.

A returning customer's dialog that makes a deal may be owned by the contact, the deal bound
second (``crm.activity.list`` filters ``OWNER_*`` on the owner only; ``BINDINGS`` reaches the
rest). A line with a fixed CRM source writes ``SOURCE_ID`` "1", as crm.lead.get's official
example shows, instead of ``<line>|<TYPE>``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

import httpx
import pytest

from tests.examples import load_json
from tests.stack import PORTAL_URL, Stack, running_stack

pytestmark = pytest.mark.anyio
OFFICIAL_SOURCE = load_json("crm.lead.get.json")["result"]["SOURCE_ID"]  # "1"


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3") as running:
        yield running


async def connected(stack: Stack, **settings: Any) -> dict[str, Any]:
    integration = await stack.configure(**settings)
    answer = await stack.connect(integration["id"])
    assert answer.status_code == 303, answer.text
    await stack.settled()
    return integration


async def sandbox_api(stack: Stack, verb: str, path: str, /, **body: Any) -> Any:
    answer = await stack.browser.request(verb, f"{PORTAL_URL}/sandbox/api/{path}", json=body)
    assert answer.status_code < 300, answer.text
    return answer.json() if answer.content else None


async def deliveries_lost(stack: Stack) -> None:
    """From now on every event delivery is dropped (until ``faults_off``)."""
    await sandbox_api(stack, "POST", "faults", webhook_drop_rate=1.0, seed=1)


async def faults_off(stack: Stack) -> None:
    await sandbox_api(stack, "DELETE", "faults")


async def replay(stack: Stack, event: str, entity_id: int) -> None:
    """Deliver one lost event, as the portal had sent it, and let the host process it."""
    lost = await sandbox_api(stack, "GET", "deliveries")
    delivery = next(
        d for d in lost if d["event"] == event and d["entity_id"] == entity_id and d["dropped"]
    )
    answer = await stack.browser.post(
        delivery["handler"],
        content=delivery["body"].encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 200, answer.text
    await stack.settled()


def returning_contact(stack: Stack) -> int:
    """The portal's customer who called before (seeded): her next chat is a return."""
    return min(stack.sandbox.portal.contacts)


async def contact_owned_deal_chat(stack: Stack, **more: Any) -> dict[str, Any]:
    """A returning customer writes to the deal line: a deal, whose dialog the contact owns."""
    return await stack.chat(
        connector="telegrambot",
        line_id=2,
        returning_contact_id=returning_contact(stack),
        activity_owner="contact",
        messages=[{"author": "visitor", "text": "Нужен счёт на оплату"}],
        **more,
    )


def assert_deal_appeal(appeal: dict[str, Any], started: dict[str, Any]) -> None:
    assert appeal["key"].endswith(f":session:{started['session_id']}")
    assert (appeal["crm"]["entity_type"], appeal["crm"]["entity_id"]) == (
        "deal",
        started["deal_id"],
    )
    assert appeal["contact"]["name"] == "Irina Kozlova"  # the deal's contact
    assert "Нужен счёт на оплату" in appeal["text"]


async def test_a_deal_owned_by_its_contact_gets_its_appeal_from_the_activity_event(
    stack: Stack,
) -> None:
    await connected(stack, entity="deal")
    await deliveries_lost(stack)
    started = await contact_owned_deal_chat(stack)
    await faults_off(stack)
    await replay(stack, "ONCRMACTIVITYADD", started["activity_id"])
    [appeal] = await stack.appeals()
    assert_deal_appeal(appeal, started)


async def test_a_deal_owned_by_its_contact_gets_its_own_dialog_from_the_deal_event(
    stack: Stack,
) -> None:
    """Found through its activity, not through the chat: by then the customer has written
    again in the same chat, and the chat's current dialog is another deal's."""
    await connected(stack, entity="deal")
    await deliveries_lost(stack)
    started = await contact_owned_deal_chat(stack, close=True)
    later = await sandbox_api(
        stack,
        "POST",
        f"chats/{started['chat_id']}/sessions",
        messages=[{"author": "visitor", "text": "И ещё вопрос"}],
    )
    assert later["deal_id"] != started["deal_id"]
    await faults_off(stack)
    await replay(stack, "ONCRMDEALADD", started["deal_id"])
    [appeal] = await stack.appeals()
    assert_deal_appeal(appeal, started)
    assert "И ещё вопрос" not in appeal["text"]


async def test_a_portal_refusing_the_bindings_filter_is_asked_by_owner(stack: Stack) -> None:
    """crm.activity.list's documented general error: the owner filter and the chat lookup
    still find the dialog."""
    await connected(stack, entity="deal")
    await deliveries_lost(stack)
    started = await contact_owned_deal_chat(stack)
    await faults_off(stack)
    await sandbox_api(
        stack,
        "POST",
        "faults",
        method="crm.activity.list",
        error="",
        error_description="Failed to get list. General error.",
        status=400,
    )
    await replay(stack, "ONCRMDEALADD", started["deal_id"])
    [appeal] = await stack.appeals()
    assert_deal_appeal(appeal, started)
    assert (await sandbox_api(stack, "GET", "faults"))["pending"] == []  # it was asked


async def test_a_walk_of_the_activities_finds_the_deal_of_a_contact_owned_dialog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without offline events the periodic run walks the activities, which come without
    their bindings: they are read before the dialog's entity is."""
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", offline_events=False) as stack:
        integration = await connected(stack, entity="deal")
        await stack.catch_up(integration["id"])  # the walk's cursor starts here
        await deliveries_lost(stack)
        started = await contact_owned_deal_chat(stack)
        assert await stack.appeals() == []
        await stack.catch_up(integration["id"])
        [appeal] = await stack.appeals()
        assert_deal_appeal(appeal, started)


async def new_line(stack: Stack, crm_create: str) -> int:
    line = await sandbox_api(
        stack, "POST", "lines", name="Сайт", crm_create=crm_create, crm_source=OFFICIAL_SOURCE
    )
    line_id: int = line["id"]
    return line_id


async def eventually_appeals(stack: Stack, seconds: float = 15.0) -> list[dict[str, Any]]:
    """The appeals once there are some: a retried delivery falls due after its backoff."""
    deadline = time.monotonic() + seconds
    while not (appeals := await stack.appeals()) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        await stack.settled()
    return appeals


async def test_a_lead_of_a_line_with_a_numeric_source_is_retried_until_its_dialog_is_there(
    stack: Stack,
) -> None:
    await connected(stack)
    line_id = await new_line(stack, "lead")
    started = await stack.chat(
        connector="livechat",
        line_id=line_id,
        late_activity=True,
        visitor={"name": "Мария"},
        messages=[{"author": "visitor", "text": "Есть доставка?"}],
    )
    lead = started["lead_id"]
    assert started["activity_id"] is None and await stack.appeals() == []
    [waiting] = await stack.host.repo.list_inbox()
    assert waiting.status == "pending" and "not registered" in (waiting.last_error or "")
    # The dialog's activity comes with the next message; its own events are lost, so the
    # appeal can only come from the lead's retried event.
    await deliveries_lost(stack)
    more = await sandbox_api(
        stack, "POST", f"chats/{started['chat_id']}/messages", messages=[{"text": "Алло?"}]
    )
    assert more["activity_id"] is not None
    await faults_off(stack)
    [appeal] = await eventually_appeals(stack)
    assert (appeal["crm"]["entity_type"], appeal["crm"]["entity_id"]) == ("lead", lead)
    assert "Есть доставка?" in appeal["text"]
    [done] = await stack.host.repo.list_inbox()
    assert done.status == "done" and done.attempts == waiting.attempts == 1  # one retry


async def test_a_deal_of_a_line_with_a_numeric_source_gets_its_appeal_once_its_dialog_is_there(
    stack: Stack,
) -> None:
    """The deal tells nothing (no IM field, no ``<line>|<TYPE>`` source) and its dialog is not
    there yet when its event comes: the dialog's own event, once registered, makes its appeal,
    owned by the contact as it is."""
    await connected(stack, entity="deal")
    line_id = await new_line(stack, "deal")
    started = await stack.chat(
        connector="telegrambot",
        line_id=line_id,
        returning_contact_id=returning_contact(stack),
        activity_owner="contact",
        late_activity=True,
        messages=[{"author": "visitor", "text": "Нужен счёт на оплату"}],
    )
    assert stack.sandbox.portal.deals[started["deal_id"]].source_id == OFFICIAL_SOURCE
    assert await stack.appeals() == []
    more = await sandbox_api(
        stack, "POST", f"chats/{started['chat_id']}/messages", messages=[{"text": "Алло?"}]
    )
    await stack.settled()
    [appeal] = await stack.appeals()
    assert_deal_appeal(appeal, {**started, "activity_id": more["activity_id"]})


class IgnoresBindings(httpx.AsyncBaseTransport):
    """A portal whose crm.activity.list does not know the BINDINGS filter key and, as list
    methods do with keys they do not know, answers as if it were not there."""

    def __init__(self, portal: httpx.AsyncBaseTransport) -> None:
        self.portal = portal
        self.ignored = 0

    def _without_bindings(self, query: str) -> str:
        kept = [pair for pair in query.split("&") if "BINDINGS" not in unquote(pair)]
        self.ignored += len(kept) < len(query.split("&"))
        return "&".join(kept)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if b"BINDINGS" in unquote_to_bytes(request.content):
            body = json.loads(request.content)
            for key, value in body.get("cmd", {}).items():  # batch commands: method?query
                method, mark, query = value.partition("?")
                body["cmd"][key] = method + mark + self._without_bindings(query)
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            request = httpx.Request(request.method, request.url, headers=headers, json=body)
        return await self.portal.handle_async_request(request)


async def test_a_portal_ignoring_the_bindings_filter_never_gets_another_chats_dialog(
    stack: Stack,
) -> None:
    """Asked by binding, such a portal answers every dialog it has, the newest first: the lead
    of an older chat must still get its own dialog, never the newest visitor's."""
    await connected(stack)
    await deliveries_lost(stack)
    first = await stack.chat(
        connector="telegrambot", messages=[{"author": "visitor", "text": "первый"}]
    )
    stack.clock.advance(2)
    await stack.chat(connector="viber", messages=[{"author": "visitor", "text": "второй"}])
    await faults_off(stack)
    netloc = httpx.URL(PORTAL_URL).netloc.decode()
    portal = stack.network.apps[netloc]
    old_portal = IgnoresBindings(portal)
    stack.network.apps[netloc] = old_portal  # type: ignore[assignment]
    await replay(stack, "ONCRMLEADADD", first["lead_id"])
    stack.network.apps[netloc] = portal
    assert old_portal.ignored > 0
    [appeal] = await stack.appeals()
    assert appeal["key"].endswith(f":session:{first['session_id']}")
    assert "первый" in appeal["text"] and "второй" not in appeal["text"]
