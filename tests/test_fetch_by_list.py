"""Issue 14, item 1: the concurrent lookups of one portal are fetched as list commands of up to
50 ids plus one history command per dialog, in shared batches; against the sandbox portal over
HTTP (its ASGI app), every batch it answers recorded command by command."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from b24_openlines_plugin.bitrix import dialogs
from b24_openlines_plugin.bitrix.client import Credentials, RestClient
from b24_openlines_plugin.bitrix.dialogs import ChatRecords
from b24_openlines_plugin.bitrix.records import ChatEntity
from hooks.errors import RetryLater
from tests.sandbox.conftest import PORTAL, Factory, Running
from tests.sandbox.conftest import anyio_backend as anyio_backend
from tests.sandbox.conftest import make_sandbox as make_sandbox
from tests.test_bindings import IgnoresBindings
from tests.test_rest_client import memory_bucket

pytestmark = pytest.mark.anyio


class Recorder(httpx.AsyncBaseTransport):
    """In front of the portal: keeps every batch's commands; ``answer`` may rewrite a batch's
    answer (a command failing on a portal that otherwise answers)."""

    def __init__(self, portal: httpx.AsyncBaseTransport) -> None:
        self.portal = portal
        self.batches: list[list[str]] = []  # each request's commands, ``method?query`` decoded
        self.answer: Callable[[dict[str, str], dict[str, Any]], None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        body = json.loads(request.content)
        commands: dict[str, str] = body.get("cmd", {})
        self.batches.append([unquote(c) for c in commands.values()])
        response = await self.portal.handle_async_request(request)
        if self.answer is None:
            return response
        payload = json.loads(await response.aread())
        self.answer(commands, payload)
        return httpx.Response(response.status_code, json=payload)

    def methods(self) -> Counter[str]:
        return Counter(c.partition("?")[0] for batch in self.batches for c in batch)

    def commands(self, method: str) -> list[str]:
        return [c for batch in self.batches for c in batch if c.startswith(method + "?")]


async def rest_client(
    running: Running,
    wrap: Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport] = lambda t: t,
) -> tuple[RestClient, Recorder]:
    token: str = (await running.authorize())["access_token"]
    recorder = Recorder(wrap(httpx.ASGITransport(app=running.app)))
    http = httpx.AsyncClient(transport=recorder)

    async def no_refresh(stale: str) -> str:
        raise AssertionError("the token does not expire here")

    client = RestClient(
        http, f"{PORTAL}/rest/", Credentials(token, no_refresh), memory_bucket(1000.0, 1000)
    )
    return client, recorder


async def bulk(running: Running, **body: Any) -> list[dict[str, Any]]:
    answer = await running.client.post("/sandbox/api/chats/bulk", json=body)
    assert answer.status_code == 201, answer.text
    chats: list[dict[str, Any]] = answer.json()["chats"]
    return chats


async def fetch_all(client: RestClient, kind: ChatEntity, ids: list[int]) -> list[ChatRecords]:
    return list(await asyncio.gather(*(dialogs.for_entity(client, kind, i) for i in ids)))


def assert_own_dialogs(found: list[ChatRecords], chats: list[dict[str, Any]], kind: str) -> None:
    for records, chat in zip(found, chats, strict=True):
        assert records.entity.id == chat[f"{kind}_id"]
        assert records.history is not None
        assert records.history.session_id == chat["session_id"]
        assert records.activity is not None and records.activity.id == chat["activity_id"]


async def test_fifty_concurrent_leads_take_two_lists_and_fifty_histories(
    make_sandbox: Factory,
) -> None:
    running = await make_sandbox()
    chats = await bulk(running, count=50, lines=[1], seed=14)
    client, recorder = await rest_client(running)
    found = await fetch_all(client, "lead", [c["lead_id"] for c in chats])
    assert_own_dialogs(found, chats, "lead")
    assert recorder.methods() == {
        "crm.lead.list": 1,
        "crm.activity.list": 1,
        "imopenlines.session.history.get": 50,
    }
    assert client.requests == len(recorder.batches) == 2  # the lists, then the histories
    [leads] = recorder.commands("crm.lead.list")
    assert leads.count("filter[@ID]") == 50  # the documented IN, one array of 50 ids
    [acts] = recorder.commands("crm.activity.list")
    assert acts.count("[OWNER_TYPE_ID]=1") == 50  # BINDINGS: one object per lead


async def test_more_ids_than_a_list_takes_make_one_list_command_per_fifty(
    make_sandbox: Factory,
) -> None:
    running = await make_sandbox()
    chats = await bulk(running, count=70, lines=[1], seed=15)
    client, recorder = await rest_client(running)
    found = await fetch_all(client, "lead", [c["lead_id"] for c in chats])
    assert_own_dialogs(found, chats, "lead")
    assert recorder.methods()["crm.lead.list"] == 2
    assert recorder.methods()["crm.activity.list"] == 2


async def test_a_dialog_list_longer_than_a_page_is_followed(make_sandbox: Factory) -> None:
    """A lead with 55 dialogs newer than another lead's only one: the second is on page 2."""
    running = await make_sandbox()
    busy, quiet = await bulk(running, count=2, lines=[1], seed=16)
    portal = running.sandbox.portal
    first = portal.activities[busy["activity_id"]]
    for _ in range(55):
        again = portal.next_id("activity")
        portal.activities[again] = dataclasses.replace(first, id=again)
    client, recorder = await rest_client(running)
    found = await fetch_all(client, "lead", [busy["lead_id"], quiet["lead_id"]])
    assert found[1].activity is not None and found[1].activity.id == quiet["activity_id"]
    assert found[0].activity is not None and found[0].activity.id == max(portal.activities)
    pages = recorder.commands("crm.activity.list")
    assert len(pages) == 2 and "start=50" in pages[1]


async def test_a_portal_ignoring_bindings_gives_no_lead_another_chat(
    make_sandbox: Factory,
) -> None:
    """Such a portal answers every dialog it has for the BINDINGS list: each lead still gets
    its own dialog (asked again by owner), never the newest visitor's."""
    running = await make_sandbox()
    chats = await bulk(running, count=8, lines=[1], seed=17)
    ignoring: list[IgnoresBindings] = []

    def wrap(portal: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
        ignoring.append(IgnoresBindings(portal))
        return ignoring[0]

    client, recorder = await rest_client(running, wrap)
    asked = chats[:3]  # the oldest: the portal's newest dialogs are other leads'
    found = await fetch_all(client, "lead", [c["lead_id"] for c in asked])
    assert ignoring[0].ignored > 0
    assert_own_dialogs(found, asked, "lead")
    [_, by_owner] = recorder.commands("crm.activity.list")
    assert "filter[@OWNER_ID]" in by_owner


async def test_a_portal_refusing_bindings_is_asked_by_owner_for_every_entity(
    make_sandbox: Factory,
) -> None:
    running = await make_sandbox()
    chats = await bulk(running, count=5, lines=[1], seed=18)
    answer = await running.client.post(
        "/sandbox/api/faults",
        json={
            "method": "crm.activity.list",
            "error": "",
            "error_description": "Failed to get list. General error.",
            "status": 400,
        },
    )
    assert answer.status_code == 201, answer.text
    client, recorder = await rest_client(running)
    found = await fetch_all(client, "lead", [c["lead_id"] for c in chats])
    assert_own_dialogs(found, chats, "lead")
    by_binding, by_owner = recorder.commands("crm.activity.list")
    assert "BINDINGS" in by_binding and by_owner.count("filter[@OWNER_ID]") == 5


async def test_deals_get_their_contacts_from_one_contact_list(make_sandbox: Factory) -> None:
    running = await make_sandbox()
    chats = await bulk(running, count=12, lines=[2], with_contacts=True, seed=19)
    client, recorder = await rest_client(running)
    found = await fetch_all(client, "deal", [c["deal_id"] for c in chats])
    assert_own_dialogs(found, chats, "deal")
    for records, chat in zip(found, chats, strict=True):
        assert records.contact is not None and records.contact.id == chat["contact_id"]
    assert recorder.methods()["crm.contact.list"] == 1
    assert recorder.methods()["crm.deal.list"] == 1


async def test_a_contact_owned_dialog_is_its_deals_through_its_bindings(
    make_sandbox: Factory,
) -> None:
    running = await make_sandbox()
    returning = min(running.sandbox.portal.contacts)  # the portal's seeded customer
    started = [
        await running.chat(
            connector=connector,
            line_id=2,
            returning_contact_id=returning,
            activity_owner="contact",
            messages=[{"author": "visitor", "text": "Нужен счёт"}],
        )
        for connector in ("telegrambot", "viber")
    ]
    client, recorder = await rest_client(running)
    found = await fetch_all(client, "deal", [s["deal_id"] for s in started])
    assert_own_dialogs(found, started, "deal")
    assert len(recorder.commands("crm.activity.binding.list")) >= 1


async def test_a_failing_command_fails_only_its_callers(make_sandbox: Factory) -> None:
    """The portal answers the deal list with an error (busy): the deals' appeals wait for a
    retry, the leads fetched in the same batches do not notice."""
    running = await make_sandbox()
    leads = await bulk(running, count=3, lines=[1], seed=20)
    deals = await bulk(running, count=3, lines=[2], with_contacts=True, seed=21)

    def busy_deals(commands: dict[str, str], payload: dict[str, Any]) -> None:
        outer = payload["result"]
        for key, command in commands.items():
            if command.startswith("crm.deal.list"):
                outer["result"].pop(key, None)
                errors = outer["result_error"] or {}
                errors[key] = {"error": "OPERATION_TIME_LIMIT", "error_description": "busy"}
                outer["result_error"] = errors

    client, recorder = await rest_client(running)
    recorder.answer = busy_deals
    outcomes = await asyncio.gather(
        *(dialogs.for_entity(client, "lead", c["lead_id"]) for c in leads),
        *(dialogs.for_entity(client, "deal", c["deal_id"]) for c in deals),
        return_exceptions=True,
    )
    assert_own_dialogs(list(outcomes[:3]), leads, "lead")  # type: ignore[arg-type]
    assert all(isinstance(o, RetryLater) for o in outcomes[3:])
    assert len(recorder.batches[0]) == 4  # one batch: both entity lists, both dialog lists


async def test_activity_events_are_read_by_one_list_of_ids(make_sandbox: Factory) -> None:
    running = await make_sandbox()
    chats = await bulk(running, count=20, lines=[1], seed=22)
    client, recorder = await rest_client(running)
    found = await asyncio.gather(*(dialogs.activity(client, c["activity_id"]) for c in chats))
    assert [a.id if a else None for a in found] == [c["activity_id"] for c in chats]
    records = await asyncio.gather(*(dialogs.for_activity(client, a) for a in found if a))
    assert_own_dialogs([r for r in records if r], chats, "lead")
    methods = recorder.methods()
    assert methods["crm.activity.list"] == 1 and methods["crm.lead.list"] == 1
    assert methods["crm.activity.binding.list"] == 0  # owned by their leads: nothing to read
    assert await dialogs.activity(client, 10**6) is None
