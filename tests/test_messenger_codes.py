"""Messenger codes (issue 15): a visit carried into a Telegram or WhatsApp chat by a short code,
as black-box HTTP requests to the host and the sandbox portal."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from b24_openlines_plugin.connectors import link_channel
from hooks.host import messenger_codes
from hooks.host.account_time import day_start
from hooks.host.database import open_repository
from hooks.services import MESSENGER_CODE_ALPHABET
from tests.conftest import HOST_KEY
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack
from tests.test_security_attribution import LANDING, appeal_of, visit

pytestmark = pytest.mark.anyio

CODE = re.compile(f"[{MESSENGER_CODE_ALPHABET}]{{8}}")
TELEGRAM_SOURCE = 4  # the demo catalog's "Telegram": the settings' row for Telegram chats
T_ANY = datetime(2000, 1, 1, tzinfo=UTC)  # a bound before anything the tests do


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3") as running:
        yield running


async def connected(stack: Stack, **settings: Any) -> int:
    """An integration whose Telegram chats map to ``TELEGRAM_SOURCE`` (WhatsApp: the default),
    with Telegram links switched on (WhatsApp and Viber are on by default)."""
    integration = await stack.configure(
        messenger_map={"telegrambot": {"source_id": TELEGRAM_SOURCE}},
        **{"links_telegram": True, "links_telegram_bot": "@sandbox_shop_bot", **settings},
    )
    answer = await stack.connect(integration["id"])
    assert answer.status_code == 303, answer.text
    integration_id: int = integration["id"]
    return integration_id


async def ask(
    stack: Stack, integration_id: int, body: Any, origin: str | None = PORTAL_URL
) -> httpx.Response:
    """What the site script posts when a messenger link is clicked."""
    headers = {"content-type": "text/plain"} | ({"origin": origin} if origin else {})
    return await stack.browser.post(
        f"{HOST_URL}/api/messenger-codes/{integration_id}",
        content=json.dumps(body),
        headers=headers,
    )


async def code_for(
    stack: Stack, integration_id: int, visit_id: str, channel: str | None = None
) -> str:
    body = {"session_id": visit_id} | ({"channel": channel} if channel else {})
    answer = await ask(stack, integration_id, body)
    assert answer.status_code == 201, answer.text
    assert answer.headers["access-control-allow-origin"] == PORTAL_URL
    code: str = answer.json()["code"]
    return code


async def attribution_of(stack: Stack, connector: str, *texts: str | tuple[str, str]) -> Any:
    """The attribution of a new chat whose messages are ``texts`` (the visitor's, or
    ``(author, text)``)."""
    messages = [
        {"author": "visitor", "text": t} if isinstance(t, str) else {"author": t[0], "text": t[1]}
        for t in texts
    ]
    started = await stack.chat(connector=connector, visitor={"name": "Олег"}, messages=messages)
    return (await appeal_of(stack, started["session_id"]))["attribution"]


async def test_a_code_is_minted_for_a_signed_visit_from_the_clients_site(stack: Stack) -> None:
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    # The script asks on page load, then on each click: one code for the visit meanwhile.
    codes = {await code_for(stack, integration_id, visit_id) for _ in range(3)}
    codes |= {await code_for(stack, integration_id, visit_id, c) for c in ("telegram", "viber")}
    [code] = codes
    assert CODE.fullmatch(code)
    assert await code_for(stack, integration_id, await visit(stack, LANDING)) != code

    preflight = await stack.browser.options(
        f"{HOST_URL}/api/messenger-codes/{integration_id}", headers={"origin": PORTAL_URL}
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == PORTAL_URL
    for origin in (None, "https://evil.example"):
        refused = await ask(stack, integration_id, {"session_id": visit_id}, origin)
        assert refused.status_code == 403 and refused.json()["error"] == "origin_not_allowed"
    tampered = visit_id[:-1] + ("A" if visit_id[-1] != "A" else "B")
    for unknown in (tampered, "made-up-visit-0001"):
        answer = await ask(stack, integration_id, {"session_id": unknown})
        assert answer.status_code == 404 and answer.json()["error"] == "unknown_session"
    assert (await ask(stack, integration_id, {"visit": visit_id})).status_code == 400
    assert (await ask(stack, integration_id + 1, {"session_id": visit_id})).status_code == 404


def test_a_code_never_starts_like_bitrix24s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bitrix24 hides Telegram start codes beginning with ``btrx``: such a draw is drawn again."""
    drawn = iter("BTRXK7PM" + "BTRK7PMQ")
    monkeypatch.setattr(messenger_codes.secrets, "choice", lambda _: next(drawn))
    assert messenger_codes.draw() == "BTRK7PMQ"


async def test_a_telegram_start_code_gives_the_first_chat_the_visit(stack: Stack) -> None:
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id)

    first = await attribution_of(stack, "telegrambot", f"/start {code}", "Здравствуйте")
    assert (first["method"], first["session_id"]) == ("session", visit_id)
    assert (first["campaign_id"], first["source_id"]) == (1, 1)
    assert first["utm"]["utm_campaign"] == "spring_sale" and first["utm"]["utm_medium"] == "cpc"
    # The link shared or clicked again: another chat with the same code keeps its mapping.
    second = await attribution_of(stack, "telegrambot", f"/start {code}")
    assert (second["method"], second["source_id"]) == ("messenger", TELEGRAM_SOURCE)
    assert second["session_id"] is None


async def test_a_prefilled_whatsapp_text_carries_the_code(stack: Stack) -> None:
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id)
    # The visitor said hello first, and the text may arrive in any case.
    found = await attribution_of(
        stack, "whatsappbyedna", "Добрый день", f"Здравствуйте! Вопрос по заказу [#{code.lower()}]"
    )
    assert (found["method"], found["session_id"], found["campaign_id"]) == ("session", visit_id, 1)


async def test_only_a_valid_code_in_the_first_visitor_messages_counts(stack: Stack) -> None:
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id)
    late = await attribution_of(
        stack, "telegrambot", "Здравствуйте", ("operator", "Добрый день!"), f"/start {code}"
    )
    fourth = await attribution_of(stack, "whatsappbyedna", "1", "2", "3", f"[#{code}]")
    unknown = await attribution_of(stack, "telegrambot", "/start K7PM2QXA")
    assert [a["method"] for a in (late, fourth, unknown)] == ["messenger", "default", "messenger"]
    # None of them took the code: the chat that starts from the link still gets the visit.
    taken = await attribution_of(stack, "telegrambot", f"/start {code}")
    assert (taken["method"], taken["session_id"]) == ("session", visit_id)


@pytest.mark.parametrize(
    ("connector", "channel"),
    [
        ("telegrambot", "telegram"),
        ("whatsappbyedna", "whatsapp"),
        ("whatsappbytwilio", "whatsapp"),
        ("wz_whatsapp_cd25", "whatsapp"),  # Wazzup's REST connector (the sandbox has none)
        ("viber", "viber"),
        ("livechat", None),
        ("vkgroup", None),
        ("notifications", None),  # Bitrix24's own virtual WhatsApp: not the client's links
    ],
)
def test_the_channel_of_a_connector(connector: str, channel: str | None) -> None:
    assert link_channel(connector) == channel


async def settings_page(stack: Stack, integration_id: int) -> str:
    page = await stack.browser.get(f"{HOST_URL}/integrations/{integration_id}/settings")
    assert page.status_code == 200, page.text
    return page.text


async def test_a_code_taken_by_a_dialog_is_not_handed_out_again(stack: Stack) -> None:
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id, "telegram")
    taken = await attribution_of(stack, "telegrambot", f"/start {code}")
    assert taken["session_id"] == visit_id
    # The same visitor comes back and clicks again: a new code, which a new chat takes.
    again = await code_for(stack, integration_id, visit_id, "whatsapp")
    assert again != code
    second = await attribution_of(stack, "whatsappbyedna", f"Здравствуйте! [#{again}]")
    assert (second["method"], second["session_id"]) == ("session", visit_id)


async def test_an_unknown_channel_is_refused_and_counts_nothing(stack: Stack) -> None:
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    for channel in ("vk", "Telegram", 7, ""):
        answer = await ask(stack, integration_id, {"session_id": visit_id, "channel": channel})
        assert answer.status_code == 400, channel
        assert answer.json()["error"] in ("unknown_channel", "malformed_request")
    refused = await ask(stack, integration_id, {"session_id": visit_id, "channel": "vk"})
    assert "telegram, whatsapp, viber" in refused.text
    health = await stack.host.repo.integration_health(
        integration_id, today=T_ANY, week=T_ANY, failures_since=T_ANY
    )
    assert health.messenger_links == {}
    # Nothing was stored for the visit either: its first code comes now.
    assert (
        await stack.host.repo.unused_messenger_code(integration_id, visit_id, valid_after=T_ANY)
        is None
    )


async def test_the_settings_page_shows_the_weeks_clicks_and_chats_per_channel(
    stack: Stack,
) -> None:
    integration_id = await connected(stack, links_viber=False)
    visit_id = await visit(stack, LANDING)
    for channel in ("telegram", "telegram", "whatsapp", "viber"):
        code = await code_for(stack, integration_id, visit_id, channel)
    found = await attribution_of(stack, "telegrambot", f"/start {code}")
    assert found["session_id"] == visit_id
    other = await code_for(stack, integration_id, await visit(stack, LANDING), "whatsapp")
    await attribution_of(stack, "whatsappbyedna", f"Добрый день [#{other}]")
    page = await settings_page(stack, integration_id)
    assert "Telegram — 2 клика, 1 чат с кодом" in page
    assert "WhatsApp — 2 клика, 1 чат с кодом" in page
    assert "Viber —" not in page  # switched off: its click is counted, not shown


@pytest.mark.parametrize(
    ("connector", "switch", "text"),
    [
        ("telegrambot", "links_telegram", "/start {code}"),
        ("whatsappbyedna", "links_whatsapp", "Здравствуйте! [#{code}]"),
        ("viber", "links_viber", "Здравствуйте! [#{code}]"),
    ],
)
async def test_a_code_counts_only_in_a_channel_whose_links_are_on(
    stack: Stack, connector: str, switch: str, text: str
) -> None:
    integration_id = await connected(stack, **{switch: False})
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id)
    off = await attribution_of(stack, connector, text.format(code=code))
    assert off["method"] != "session" and off["session_id"] is None
    # Switched on, the next chat of that channel with the code takes the visit (the first
    # did not use it up).
    patched = await stack.browser.patch(
        f"{HOST_URL}/api/integrations/{integration_id}/settings", json={switch: True}
    )
    assert patched.status_code == 200, patched.text
    on = await attribution_of(stack, connector, text.format(code=code))
    assert (on["method"], on["session_id"]) == ("session", visit_id)


async def test_telegram_links_are_off_until_switched_on(stack: Stack) -> None:
    integration = await stack.configure(
        messenger_map={"telegrambot": {"source_id": TELEGRAM_SOURCE}}
    )
    assert integration["settings"]["links_telegram"] is False
    assert (await stack.connect(integration["id"])).status_code == 303
    code = await code_for(stack, integration["id"], await visit(stack, LANDING))
    found = await attribution_of(stack, "telegrambot", f"/start {code}")
    assert (found["method"], found["source_id"]) == ("messenger", TELEGRAM_SOURCE)
    switched = await stack.browser.patch(
        f"{HOST_URL}/api/integrations/{integration['id']}/settings", json={"links_telegram": True}
    )
    assert switched.status_code == 422  # the bot is needed to recognise the client's links
    assert "links_telegram_bot" in switched.text


# --- the late correction: a dialog processed again reads its code then -------------------


async def test_a_code_in_a_later_message_gives_the_visit_when_the_dialog_is_processed_again(
    stack: Stack,
) -> None:
    """As for the site widget, whose custom data is read whenever the appeal is written: the
    dialog's appeal was written at its first message, the code came with the second, and the
    operator's answer (an activity update) writes the appeal again, now with the visit."""
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id, "whatsapp")
    started = await stack.chat(
        connector="whatsappbyedna",
        visitor={"name": "Олег"},
        messages=[{"author": "visitor", "text": "Добрый день"}],
    )
    first = (await appeal_of(stack, started["session_id"]))["attribution"]
    assert first["method"] == "default"
    await add_messages(
        stack, started["chat_id"], ("visitor", f"Здравствуйте! Пишу с сайта [#{code}]")
    )
    await add_messages(stack, started["chat_id"], ("operator", "Здравствуйте, слушаю"))
    found = (await appeal_of(stack, started["session_id"]))["attribution"]
    assert (found["method"], found["session_id"], found["campaign_id"]) == ("session", visit_id, 1)
    assert found["utm"]["utm_campaign"] == "spring_sale"

    # Never lost: WhatsApp links switched off (codes no longer read), the dialog closed and
    # written again, it keeps its visit.
    patched = await stack.browser.patch(
        f"{HOST_URL}/api/integrations/{integration_id}/settings", json={"links_whatsapp": False}
    )
    assert patched.status_code == 200, patched.text
    stack.clock.advance(60)  # the activity's next change, a minute later
    closed = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/{started['chat_id']}/messages",
        json={"messages": [{"author": "visitor", "text": "Спасибо"}], "close": True},
    )
    assert closed.status_code == 200, closed.text
    await stack.settled()
    kept = await appeal_of(stack, started["session_id"])
    assert kept["attribution"] == found and "Спасибо" in kept["text"]


async def test_the_catch_up_reads_a_code_that_came_after_the_first_processing(
    stack: Stack,
) -> None:
    """The code came in the visitor's second message and the events of the dialog's later
    changes were lost: the periodic catch-up, which reads the dialogs changed since, gives
    the appeal its visit."""
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    code = await code_for(stack, integration_id, visit_id, "telegram")
    started = await stack.chat(
        connector="telegrambot",
        visitor={"name": "Олег"},
        messages=[{"author": "visitor", "text": "Здравствуйте"}],
    )
    assert (await appeal_of(stack, started["session_id"]))["attribution"]["method"] == "messenger"
    faults = f"{PORTAL_URL}/sandbox/api/faults"
    dropped = await stack.browser.post(faults, json={"webhook_drop_rate": 1.0, "seed": 1})
    assert dropped.status_code == 200, dropped.text
    stack.clock.advance(60)
    await add_messages(
        stack, started["chat_id"], ("visitor", f"/start {code}"), ("operator", "Слушаю вас")
    )
    assert (await appeal_of(stack, started["session_id"]))["attribution"]["method"] == "messenger"
    assert (await stack.browser.delete(faults)).status_code in (200, 204)
    await stack.catch_up(integration_id)
    found = (await appeal_of(stack, started["session_id"]))["attribution"]
    assert (found["method"], found["session_id"]) == ("session", visit_id)


async def add_messages(stack: Stack, chat_id: int, *messages: tuple[str, str]) -> None:
    answer = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/{chat_id}/messages",
        json={"messages": [{"author": a, "text": t} for a, t in messages]},
    )
    assert answer.status_code == 200, answer.text
    await stack.settled()


async def test_clicks_count_by_the_accounts_day(tmp_path: Path) -> None:
    """A click at 20:00 UTC on 1 January is on 2 January in Vladivostok (UTC+10): it counts
    in a week that starts on 2 January there, and is the visit's one code all along."""
    vladivostok = ZoneInfo("Asia/Vladivostok")
    repo = await open_repository(str(tmp_path / "host.sqlite3"), key=HOST_KEY)
    try:
        shop = await repo.create_integration("b24_openlines", "Shop")
        at = datetime(2026, 1, 1, 20, 0, tzinfo=UTC)
        codes = {
            await messenger_codes.code_for_visit(
                repo, shop.id, "vs-1", channel=channel, zone=vladivostok, now=at
            )
            for channel in (None, "whatsapp", "whatsapp")
        }
        assert len(codes) == 1
        with pytest.raises(ValueError, match="vk"):
            await messenger_codes.code_for_visit(
                repo, shop.id, "vs-1", channel="vk", zone=vladivostok, now=at
            )

        async def clicks_from(day: date) -> dict[str, Any]:
            start = day_start(day, vladivostok)
            health = await repo.integration_health(
                shop.id, today=start, week=start, failures_since=start
            )
            return health.model_dump()["messenger_links"]

        assert await clicks_from(date(2026, 1, 2)) == {"whatsapp": {"clicks": 2, "chats": 0}}
        assert await clicks_from(date(2026, 1, 3)) == {}
    finally:
        await repo.close()
