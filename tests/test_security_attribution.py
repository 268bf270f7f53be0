"""Attribution nobody can forge (issue 12): the attacks, as black-box HTTP requests to the host.

The host and the sandbox portal talk over HTTP as in production; the attacker has what anyone
has: ``POST /api/visits``, ``POST /api/sessions/{id}`` with any header, and a chat of their
own on any channel. Open Lines session ids are sequential, so the attacker knows them.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hooks.models import Utm, VisitorSession
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack

pytestmark = pytest.mark.anyio

ATTACKER = "https://evil.example/?utm_source=yandex&utm_campaign=attacker_campaign"
LANDING = f"{PORTAL_URL}/site/landing?utm_source=yandex&utm_medium=cpc&utm_campaign=spring_sale"
HELLO = [{"author": "visitor", "text": "Здравствуйте"}]


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3") as running:
        # The portal's clock on the host's (both keep time by NTP): dialogs start now.
        running.clock.advance(time.time() - running.clock())
        yield running


async def connected(stack: Stack) -> int:
    integration = await stack.configure()
    answer = await stack.connect(integration["id"])
    assert answer.status_code == 303, answer.text
    integration_id: int = integration["id"]
    return integration_id


async def visit(stack: Stack, url: str) -> str:
    answer = await stack.browser.post(f"{HOST_URL}/api/visits", json={"url": url})
    assert answer.status_code == 201, answer.text
    session_id: str = answer.json()["session_id"]
    return session_id


async def report(
    stack: Stack, integration_id: int, visit_id: str, dialog: int, origin: str | None = PORTAL_URL
) -> httpx.Response:
    """What the site script posts; outside a browser, any ``Origin`` can be written."""
    headers = {"content-type": "text/plain"} | ({"origin": origin} if origin else {})
    body = json.dumps({"session_id": visit_id, "openlines_session_id": dialog})
    return await stack.browser.post(
        f"{HOST_URL}/api/sessions/{integration_id}", content=body, headers=headers
    )


def marked(visit_id: str) -> list[dict[str, str]]:
    """The custom data the site script gives the widget (a Russian host)."""
    return [{"MESSAGE": f"Сессия аналитики: {visit_id}"}]


async def chat_at(stack: Stack, minutes_ago: float, **body: Any) -> dict[str, Any]:
    """A chat whose dialog began ``minutes_ago`` by the portal's clock."""
    stack.clock.advance(-minutes_ago * 60)
    try:
        return await stack.chat(**body)
    finally:
        stack.clock.advance(minutes_ago * 60)


async def appeal_of(stack: Stack, dialog: int) -> dict[str, Any]:
    [appeal] = [a for a in await stack.appeals() if a["key"].endswith(f":session:{dialog}")]
    return appeal


async def test_a_report_cannot_rewrite_an_appeal(stack: Stack) -> None:
    """Attack 1: a visit with the attacker's campaign, then a report naming an existing dialog
    (appeal 301 went from ``default`` to ``session`` with the attacker's campaign)."""
    integration_id = await connected(stack)
    earlier = await chat_at(stack, 60, connector="livechat", messages=HELLO)
    before = await appeal_of(stack, earlier["session_id"])
    assert before["attribution"]["method"] == "default"
    attacker = await visit(stack, ATTACKER)

    no_origin = await report(stack, integration_id, attacker, earlier["session_id"], origin=None)
    assert no_origin.status_code == 403 and no_origin.json()["error"] == "origin_not_allowed"
    preflight = await stack.browser.options(f"{HOST_URL}/api/sessions/{integration_id}")
    assert preflight.status_code == 403
    elsewhere = await report(stack, integration_id, attacker, earlier["session_id"], ATTACKER)
    assert elsewhere.status_code == 403
    # The site's own Origin, written by hand: the dialog began an hour ago, so it is not taken.
    forged = await report(stack, integration_id, attacker, earlier["session_id"])
    assert forged.status_code == 200 and forged.json() == {"bound": False}
    assert await stack.host.repo.get_binding(integration_id, str(earlier["session_id"])) is None

    # A dialog that has just begun can be claimed; the claim still attributes nothing, not
    # even when the dialog's appeal is written again (an operator answers).
    fresh = await stack.chat(connector="livechat", messages=HELLO)
    claimed = await report(stack, integration_id, attacker, fresh["session_id"])
    assert claimed.json() == {"bound": True}
    answered = await stack.browser.post(
        f"{PORTAL_URL}/sandbox/api/chats/{fresh['chat_id']}/messages",
        json={"messages": [{"author": "operator", "text": "Добрый день!"}]},
    )
    assert answered.status_code == 200, answered.text
    await stack.settled()
    for dialog in (earlier, fresh):
        attribution = (await appeal_of(stack, dialog["session_id"]))["attribution"]
        assert attribution["method"] == "default" and attribution["session_id"] is None
    assert await appeal_of(stack, earlier["session_id"]) == before


async def test_dialogs_claimed_before_they_start_are_not_taken(stack: Stack) -> None:
    """Attack 2: sequential ids claimed in advance (the next Telegram chat took the attacker's
    campaign, and the real site's report got ``bound: false``)."""
    integration_id = await connected(stack)
    attacker = await visit(stack, ATTACKER)
    own = await stack.chat(connector="telegrambot", visitor={"name": "Mallory"}, messages=HELLO)
    claimed = [own["session_id"] + n for n in (1, 2, 3)]
    for dialog in claimed:  # dialogs nobody has seen yet: the claims are kept, as claims
        assert (await report(stack, integration_id, attacker, dialog)).json() == {"bound": True}

    telegram = await stack.chat(connector="telegrambot", visitor={"name": "Олег"}, messages=HELLO)
    real_visit = await visit(stack, LANDING)
    site = await stack.chat(connector="livechat", custom_data=marked(real_visit), messages=HELLO)
    assert [telegram["session_id"], site["session_id"]] == claimed[:2]
    late = await report(stack, integration_id, real_visit, site["session_id"])
    assert late.json() == {"bound": False}  # a binding never replaces another

    taken = (await appeal_of(stack, telegram["session_id"]))["attribution"]
    assert taken["method"] != "session" and taken["utm"]["utm_campaign"] != "attacker_campaign"
    real = (await appeal_of(stack, site["session_id"]))["attribution"]
    assert (real["method"], real["session_id"], real["campaign_id"]) == ("session", real_visit, 1)


@pytest.mark.parametrize("connector", ["telegrambot", "whatsappbyedna", "livechat"])
async def test_a_marker_typed_into_a_chat_is_not_believed(stack: Stack, connector: str) -> None:
    """Attack 3: ``Analytics session: <visit id>`` written by a visitor on any channel."""
    await connected(stack)
    attacker = await visit(stack, ATTACKER)
    typed = [
        {"author": "visitor", "text": f"Analytics session: {attacker}"},
        {"author": "visitor", "text": f"Сессия аналитики: {attacker}"},
        {"author": "operator", "text": f"Analytics session: {attacker}"},
    ]
    started = await stack.chat(connector=connector, visitor={"name": "Mallory"}, messages=typed)
    attribution = (await appeal_of(stack, started["session_id"]))["attribution"]
    assert attribution["method"] != "session" and attribution["session_id"] is None


async def test_only_visit_ids_the_host_signed_are_believed(stack: Stack) -> None:
    integration_id = await connected(stack)
    signed = await visit(stack, LANDING)
    tampered = signed[:-1] + ("A" if signed[-1] != "A" else "B")
    # A visit the database holds under an id the host did not sign (made before ids were
    # signed, or written by anyone with the database): never believed either.
    unsigned = VisitorSession(
        id="made-up-visit-0001",
        created_at=datetime.now(UTC),
        landing_url=ATTACKER,
        campaign_id=1,
        utm=Utm(utm_campaign="attacker_campaign"),
    )
    await stack.host.repo.add_visitor_session(unsigned)
    for made_up in (tampered, unsigned.id):
        fresh = await stack.chat(connector="livechat", custom_data=marked(made_up), messages=HELLO)
        refused = await report(stack, integration_id, made_up, fresh["session_id"])
        assert refused.status_code == 404 and refused.json()["error"] == "unknown_session"
        attribution = (await appeal_of(stack, fresh["session_id"]))["attribution"]
        assert attribution["method"] == "default", made_up
    good = await stack.chat(connector="livechat", custom_data=marked(signed), messages=HELLO)
    assert (await report(stack, integration_id, signed, good["session_id"])).json() == {
        "bound": True
    }
    assert (await appeal_of(stack, good["session_id"]))["attribution"]["session_id"] == signed


@pytest.mark.parametrize(
    ("minutes_ago", "bound"),
    [(0, True), (9, True), (11, False), (-1, True), (-3, False), (24 * 60, False)],
)
async def test_a_dialog_is_bound_only_by_a_report_soon_after_it_began(
    stack: Stack, minutes_ago: float, bound: bool
) -> None:
    """The script reports as the dialog begins: 10 minutes after it, 2 of clock skew before."""
    integration_id = await connected(stack)
    visit_id = await visit(stack, LANDING)
    started = await chat_at(
        stack, minutes_ago, connector="livechat", custom_data=marked(visit_id), messages=HELLO
    )
    answer = await report(stack, integration_id, visit_id, started["session_id"])
    assert answer.status_code == 200 and answer.json() == {"bound": bound}
    binding = await stack.host.repo.get_binding(integration_id, str(started["session_id"]))
    assert (binding is not None) == bound
