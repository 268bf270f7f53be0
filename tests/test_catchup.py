"""Nothing lost when Bitrix24's pushes are: the plugin's own bindings, offline events, the
activity cursor, whole transcripts and every dialog (issue 5, items 2 and 3)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from b24_openlines_plugin.state import connection_of
from tests.client_settings import sandbox_settings
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["offline events", "activity cursor"])
async def stack(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    offline = request.param == "offline events"
    async with running_stack(tmp_path / "host.sqlite3", offline_events=offline) as running:
        yield running


async def ready(stack: Stack) -> dict[str, Any]:
    """Configured, connected, and one periodic run done (handlers bound, cursor set)."""
    integration = await stack.configure()
    answer = await stack.connect(integration["id"])
    assert answer.status_code == 303
    await catch_up(stack, integration["id"])
    return integration


async def catch_up(stack: Stack, integration_id: int) -> None:
    await stack.catch_up(integration_id)


async def faults(stack: Stack, **knobs: Any) -> None:
    answer = await stack.browser.post(f"{PORTAL_URL}/sandbox/api/faults", json=knobs)
    assert answer.status_code in (200, 201), answer.text


async def test_the_plugin_binds_its_own_handlers_once(stack: Stack) -> None:
    integration = await ready(stack)
    bound = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/event-handlers")).json()
    names = {(h["event"].upper(), int(h["offline"])) for h in bound}
    assert {("ONCRMLEADADD", 0), ("ONCRMACTIVITYADD", 0), ("ONCRMACTIVITYUPDATE", 0)} <= names
    assert all(
        h["handler"].startswith(integration["webhook_url"]) for h in bound if not h["offline"]
    )
    await catch_up(stack, integration["id"])
    assert (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/event-handlers")).json() == bound


async def test_the_catch_up_goes_on_after_the_handlers_are_bound_again(stack: Stack) -> None:
    """Switching leads to deals binds the handlers again while the first binding's are there,
    offline ones included, whose ``event.get`` rows name no handler: the periodic work must
    read them and go on catching up (it failed at every run, and lost what pushes lost)."""
    integration = await ready(stack)
    hooks = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/outgoing-webhooks")).json()
    body = sandbox_settings(
        await stack.app_credentials(), PORTAL_URL, hooks[0]["application_token"], entity="deal"
    )
    saved = await stack.browser.put(
        f"{HOST_URL}/api/integrations/{integration['id']}/settings", json=body
    )
    assert saved.status_code == 200, saved.text
    await catch_up(stack, integration["id"])  # binds again: its event.get holds every row
    bound = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/event-handlers")).json()
    assert "ONCRMDEALADD" in {h["event"].upper() for h in bound}
    await faults(stack, webhook_drop_rate=1.0, seed=3)
    started = await stack.chat(
        connector="livechat", visitor={"name": "V"}, messages=[{"author": "visitor", "text": "m"}]
    )
    await catch_up(stack, integration["id"])
    keys = [a["key"].rsplit(":", 1)[1] for a in await stack.appeals()]
    assert str(started["session_id"]) in keys


async def test_chats_whose_events_were_all_lost_arrive_anyway(stack: Stack) -> None:
    integration = await ready(stack)
    await faults(stack, webhook_drop_rate=1.0, seed=7)
    started = [
        await stack.chat(
            connector=c,
            visitor={"name": f"V{n}"},
            messages=[{"author": "visitor", "text": f"m{n}"}],
        )
        for n, c in enumerate(["livechat", "telegrambot", "whatsappbyedna"])
    ]
    assert await stack.appeals() == []  # every push was lost
    await catch_up(stack, integration["id"])
    appeals = await stack.appeals()
    assert sorted(a["key"].rsplit(":", 1)[1] for a in appeals) == sorted(
        str(s["session_id"]) for s in started
    )
    await catch_up(stack, integration["id"])
    assert len(await stack.appeals()) == 3  # a second run duplicates nothing


async def test_a_closed_dialog_completes_the_transcript(stack: Stack) -> None:
    integration = await ready(stack)
    started = await stack.chat(
        connector="livechat",
        visitor={"name": "Анна"},
        messages=[{"author": "visitor", "text": "Первое сообщение"}],
    )
    [early] = await stack.appeals()
    assert "Первое сообщение" in early["text"] and "Спасибо" not in early["text"]
    await faults(stack, webhook_drop_rate=1.0, seed=1)  # even if the close's events are lost
    chat = started["chat_id"]
    more = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/{chat}/messages",
        json={
            "messages": [
                {"author": "operator", "text": "Чем помочь?"},
                {"author": "visitor", "text": "Спасибо, уже всё"},
            ],
            "close": True,
        },
    )
    assert more.status_code in (200, 201), more.text
    await catch_up(stack, integration["id"])
    [complete] = await stack.appeals()
    assert complete["key"] == early["key"]
    assert (
        "Оператор: Чем помочь?" in complete["text"]
        and "Клиент: Спасибо, уже всё" in complete["text"]
    )


async def test_a_returning_customer_without_a_new_lead_gets_a_new_appeal(stack: Stack) -> None:
    integration = await ready(stack)
    first = await stack.chat(
        connector="telegrambot",
        visitor={"name": "Пётр"},
        close=True,
        messages=[{"author": "visitor", "text": "Заказ 1"}],
    )
    again = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/{first['chat_id']}/sessions",
        json={
            "messages": [{"author": "visitor", "text": "Снова я, заказ 2"}],
            "new_lead": False,
        },
    )
    assert again.status_code in (200, 201), again.text
    await stack.settled()
    await catch_up(stack, integration["id"])
    appeals = await stack.appeals()
    assert len(appeals) == 2
    second = next(a for a in appeals if "заказ 2" in a["text"])
    assert second["key"].endswith(f":session:{again.json()['session_id']}")
    assert second["channel"] == "telegrambot" and second["contact"]["name"] == "Пётр"
    assert f"{HOST_URL}" not in second["text"]


class PortalGoesAway(httpx.AsyncBaseTransport):
    """The portal as the network shows it: once armed, every REST call after the first
    ``event.offline.get`` fails to connect, as when a run loses the portal half-way."""

    def __init__(self, portal: httpx.AsyncBaseTransport) -> None:
        self.portal = portal
        self.armed = False
        self.reserved = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.armed and request.url.path.startswith("/rest/"):
            if self.reserved:
                raise httpx.ConnectError("the portal is unreachable", request=request)
            # On its own or as a command of a batch.
            self.reserved = b"event.offline.get" in request.url.path.encode() + request.content
        return await self.portal.handle_async_request(request)


async def test_a_run_cut_off_after_reserving_offline_records_loses_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records read with clear=0 stay reserved for that read's process id, out of any other
    read's sight: a run that reserved a page and then lost the portal (or was killed) leaves
    the next run to read the same page again by that id."""
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", offline_events=True) as stack:
        integration = await ready(stack)
        await faults(stack, webhook_drop_rate=1.0, seed=7)
        started = [
            await stack.chat(connector=c, messages=[{"author": "visitor", "text": f"m{n}"}])
            for n, c in enumerate(["livechat", "telegrambot", "viber"])
        ]
        netloc = httpx.URL(PORTAL_URL).netloc.decode()
        cut = PortalGoesAway(stack.network.apps[netloc])
        stack.network.apps[netloc] = cut  # type: ignore[assignment]
        cut.armed = True
        await catch_up(stack, integration["id"])
        assert cut.reserved and await stack.appeals() == []
        cut.armed = False  # the portal is back
        await catch_up(stack, integration["id"])
        appeals = await stack.appeals()
        assert sorted(a["key"].rsplit(":", 1)[1] for a in appeals) == sorted(
            str(s["session_id"]) for s in started
        )


async def lost_bulk(stack: Stack, count: int, *, close: bool = False) -> set[int]:
    """``count`` chats whose every push is lost; their Open Lines sessions."""
    await faults(stack, webhook_drop_rate=1.0, seed=3)
    bulk = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/bulk",
        json={"count": count, "mix": ["livechat", "telegrambot"], "close": close, "seed": 4},
        timeout=120,
    )
    assert bulk.status_code == 201, bulk.text
    await stack.settled()
    return {c["session_id"] for c in bulk.json()["chats"]}


async def sessions_with_appeals(stack: Stack) -> set[int]:
    return {int(a["key"].rsplit(":", 1)[1]) for a in await stack.all_appeals()}


async def test_more_dialogs_in_one_second_than_a_run_reads_never_freeze_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mass change (an import, a mass close) puts more activities into one second of
    LAST_UPDATED than one run reads (10 pages of 50): the walk crosses the second run by run,
    and what changes after it is found too."""
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", offline_events=False) as stack:
        integration = await ready(stack)
        with stack.clock.stopped():
            burst = await lost_bulk(stack, 560)
        stack.clock.advance(2)
        later = await lost_bulk(stack, 3)
        for _ in range(4):
            await catch_up(stack, integration["id"])
        assert await sessions_with_appeals(stack) == burst | later


class ClosesAChatMidWalk(httpx.AsyncBaseTransport):
    """The portal, where a dialog the walk has already read is closed (so it moves to the end
    of the list) just after the walk's first page of activities."""

    def __init__(self, portal: httpx.AsyncBaseTransport, clock: Any, chat_id: int) -> None:
        self.portal, self.clock, self.chat_id = portal, clock, chat_id
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.portal.handle_async_request(request)
        if not self.closed and b"crm.activity.list" in request.content:
            await answer.aread()
            self.closed = True
            self.clock.advance(2)
            close = httpx.Request("POST", f"{PORTAL_URL}/sandbox/api/chats/{self.chat_id}/close")
            done = await self.portal.handle_async_request(close)
            assert done.status_code == 200
        return answer


async def test_a_dialog_changed_while_the_walk_pages_on_makes_it_skip_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", offline_events=False) as stack:
        integration = await ready(stack)
        with stack.clock.stopped():
            sessions = await lost_bulk(stack, 120)
        chats = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/chats")).json()
        first = min((c for c in chats if c["session_id"] in sessions), key=lambda c: c["chat_id"])
        netloc = httpx.URL(PORTAL_URL).netloc.decode()
        portal = stack.network.apps[netloc]
        changing = ClosesAChatMidWalk(portal, stack.clock, first["chat_id"])
        stack.network.apps[netloc] = changing  # type: ignore[assignment]
        await catch_up(stack, integration["id"])
        stack.network.apps[netloc] = portal
        assert changing.closed
        await catch_up(stack, integration["id"])
        assert await sessions_with_appeals(stack) == sessions


class OfflineRecordsWithoutData(httpx.AsyncBaseTransport):
    """The portal, answering ``event.offline.get`` with records whose ``EVENT_DATA`` is
    ``false`` or ``null``, as the documentation shows for events that carry no data."""

    def __init__(self, portal: httpx.AsyncBaseTransport, data: Any) -> None:
        self.portal, self.data = portal, data
        self.stripped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.portal.handle_async_request(request)
        if b"event.offline.get" not in request.url.path.encode() + request.content:
            return answer
        body = json.loads(await answer.aread())
        self._strip(body)
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-length"}
        return httpx.Response(answer.status_code, headers=headers, json=body)

    def _strip(self, value: Any) -> None:
        if isinstance(value, dict):
            if "EVENT_DATA" in value:
                value["EVENT_DATA"] = self.data
                self.stripped += 1
            for inner in value.values():
                self._strip(inner)
        elif isinstance(value, list):
            for inner in value:
                self._strip(inner)


@pytest.mark.parametrize("data", [False, None], ids=["false", "null"])
async def test_offline_records_without_data_are_never_cleared_unseen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: Any
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", offline_events=True) as stack:
        integration = await ready(stack)
        netloc = httpx.URL(PORTAL_URL).netloc.decode()
        dataless = OfflineRecordsWithoutData(stack.network.apps[netloc], data)
        stack.network.apps[netloc] = dataless  # type: ignore[assignment]
        sessions = await lost_bulk(stack, 3)
        await catch_up(stack, integration["id"])
        await catch_up(stack, integration["id"])
        assert dataless.stripped >= 3
        assert await sessions_with_appeals(stack) == sessions
        queue = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/offline-events")).json()
        assert queue == []  # cleared, once their time was walked


class ReconnectsMidRun(httpx.AsyncBaseTransport):
    """The portal, where the client presses "Reconnect" (a whole OAuth round) while a catch-up
    run is reading its activities."""

    def __init__(self, portal: httpx.AsyncBaseTransport, stack: Stack, integration_id: int) -> None:
        self.portal, self.stack, self.integration_id = portal, stack, integration_id
        self.reconnected = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        answer = await self.portal.handle_async_request(request)
        if not self.reconnected and b"crm.activity.list" in request.content:
            self.reconnected = True
            await answer.aread()
            self.stack.clock.advance(2)
            assert (await self.stack.connect(self.integration_id)).status_code == 303
        return answer


async def test_a_reconnect_during_a_run_is_not_undone_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a run learned of the portal (its handlers, cursor, offline queue) is not written
    back over a reconnect that happened meanwhile: the next run binds and starts afresh."""
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(
        tmp_path / "host.sqlite3", offline_events=False, schedule_seconds=0
    ) as stack:
        integration = await ready(stack)
        await lost_bulk(stack, 3)
        netloc = httpx.URL(PORTAL_URL).netloc.decode()
        portal = stack.network.apps[netloc]
        reconnecting = ReconnectsMidRun(portal, stack, integration["id"])
        stack.network.apps[netloc] = reconnecting  # type: ignore[assignment]
        await stack.catch_up(integration["id"])
        stack.network.apps[netloc] = portal
        assert reconnecting.reconnected
        stored = await stack.host.repo.get_integration(integration["id"])
        assert stored is not None
        now = connection_of(stored)
        # As connecting left it, or as a run after the reconnect made it: never the old run's.
        assert now.catchup is None or (
            now.catchup.history is not None and now.catchup.history.until == now.connected_at
        )
