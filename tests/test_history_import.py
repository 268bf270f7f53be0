"""The chats of the days before connecting are imported once, with progress on the settings
page, and a chat the import and a push both bring arrives once (issue 11, item 5)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests import test_catchup
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack
from tests.test_catchup import catch_up, faults, lost_bulk

pytestmark = pytest.mark.anyio

DAY = 86_400
stack = test_catchup.stack  # the fixture: a stack with offline events, and one without


async def lost_chat(stack: Stack, n: int) -> int:
    """A chat whose pushes are all lost; its Open Lines session."""
    await faults(stack, webhook_drop_rate=1.0, seed=n)
    started = await stack.chat(
        connector="telegrambot",
        visitor={"name": f"V{n}"},
        messages=[{"author": "visitor", "text": f"m{n}"}],
    )
    return int(started["session_id"])


def session_counts(appeals: list[dict[str, Any]]) -> Counter[int]:
    return Counter(int(a["key"].rsplit(":", 1)[1]) for a in appeals)


async def progress(stack: Stack, integration_id: int) -> str:
    page = await stack.browser.get(f"{HOST_URL}/integrations/{integration_id}/settings")
    assert page.status_code == 200
    found = re.search(r'<p class="help" id="progress">([^<]*)</p>', page.text)
    return found.group(1) if found else ""


async def test_the_week_before_connecting_is_imported_once(stack: Stack) -> None:
    integration = await stack.configure()  # import_days: the default, 7
    old = await lost_chat(stack, 1)
    stack.clock.advance(9 * DAY)
    recent = {await lost_chat(stack, 2), await lost_chat(stack, 3)}
    await faults(stack, webhook_drop_rate=0.0)
    pushed = int(
        (await stack.chat(connector="livechat", messages=[{"author": "visitor", "text": "?"}]))[
            "session_id"
        ]
    )
    stack.clock.advance(DAY)
    assert (await stack.connect(integration["id"])).status_code == 303
    assert await stack.appeals() == []  # the pushes of an unconnected portal wait

    await catch_up(stack, integration["id"])
    live = await stack.chat(connector="viber", messages=[{"author": "visitor", "text": "hi"}])
    await catch_up(stack, integration["id"])
    await catch_up(stack, integration["id"])

    counts = session_counts(await stack.all_appeals())
    assert old not in counts  # ten days before connecting: outside the window
    assert set(counts) >= recent | {int(live["session_id"])}
    assert set(counts) <= recent | {pushed, int(live["session_id"])}
    assert max(counts.values()) == 1  # each dialog once, however it came
    assert await progress(stack, integration["id"]) == (
        "Загружены чаты за 7 дн. до подключения: " + str(len(recent | {pushed}))
    )


async def test_no_days_imports_nothing_from_before(stack: Stack) -> None:
    integration = await stack.configure(import_days=0)
    await lost_chat(stack, 1)
    stack.clock.advance(60)
    await stack.connect(integration["id"])
    await catch_up(stack, integration["id"])
    later = await lost_chat(stack, 2)
    stack.clock.advance(2)
    await catch_up(stack, integration["id"])
    await catch_up(stack, integration["id"])
    assert set(session_counts(await stack.all_appeals())) == {later}
    assert await progress(stack, integration["id"]) == ""


async def test_an_import_larger_than_a_run_shows_how_far_it_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    database = tmp_path / "host.sqlite3"
    async with running_stack(database, offline_events=False, schedule_seconds=0) as stack:
        integration = await stack.configure(import_days=3)
        with stack.clock.stopped():
            before = await lost_bulk(stack, 560)
        stack.clock.advance(DAY)
        await stack.connect(integration["id"])  # its first run starts at once
        await stack.settled()
        assert await progress(stack, integration["id"]) == (
            "Идёт загрузка чатов за 3 дн. до подключения: 500 из 560"
        )
        await catch_up(stack, integration["id"])
        assert await progress(stack, integration["id"]) == (
            "Загружены чаты за 3 дн. до подключения: 560"
        )
        assert set(session_counts(await stack.all_appeals())) == before


async def test_no_days_still_brings_a_dialog_between_connecting_and_the_first_run(
    stack: Stack,
) -> None:
    """A returning customer's dialog (no new lead, its pushes lost) that begins after the portal
    is connected but before the first run has bound anything is walked from the moment of
    connecting, not from whatever was newest when the run came."""
    integration = await stack.configure(import_days=0)
    await faults(stack, rest_error_rate=1.0, seed=1)  # the first runs get nowhere
    assert (await stack.connect(integration["id"])).status_code == 303
    await stack.settled()
    stack.clock.advance(5)
    between = await lost_chat(stack, 2)
    await faults(stack, webhook_drop_rate=0.0, rest_error_rate=0.0)
    await catch_up(stack, integration["id"])
    await catch_up(stack, integration["id"])
    assert between in session_counts(await stack.all_appeals())
