"""Messenger codes (issue 15): a visit carried into a Telegram or WhatsApp chat by a short code,
as black-box HTTP requests to the host and the sandbox portal."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hooks.host import messenger_codes
from hooks.services import MESSENGER_CODE_ALPHABET
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack
from tests.test_security_attribution import LANDING, appeal_of, visit

pytestmark = pytest.mark.anyio

CODE = re.compile(f"[{MESSENGER_CODE_ALPHABET}]{{8}}")
TELEGRAM_SOURCE = 4  # the demo catalog's "Telegram": the settings' row for Telegram chats


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3") as running:
        yield running


async def connected(stack: Stack) -> int:
    """An integration whose Telegram chats map to ``TELEGRAM_SOURCE`` (WhatsApp: the default)."""
    integration = await stack.configure(
        messenger_map={"telegrambot": {"source_id": TELEGRAM_SOURCE}}
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


async def code_for(stack: Stack, integration_id: int, visit_id: str) -> str:
    answer = await ask(stack, integration_id, {"session_id": visit_id})
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
    codes = {await code_for(stack, integration_id, visit_id) for _ in range(5)}
    assert len(codes) == 5 and all(CODE.fullmatch(code) for code in codes)

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
