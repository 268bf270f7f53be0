"""The appeals page's chart, drawn by Chart.js in a real Chromium: the numbers it draws are the
appeals there are, per day of the account's zone, by channel and by campaign or source."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from hooks.host.database import open_repository
from hooks.host.host_key import resolve_host_key
from hooks.models import Appeal, LocalizedText
from tests.browser.conftest import PageErrors
from tests.servers import Servers
from tests.test_host_api import appeal

DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # 12:00 in Moscow, the account's zone
TELEGRAM = LocalizedText(ru="Telegram", en="Telegram")
LIVE_CHAT = LocalizedText(ru="Онлайн-чат на сайте", en="Website live chat")


def written(integration_id: int) -> list[Appeal]:
    """Three days: 2 live chats + 1 Telegram, nothing, 3 Telegram (one of them a campaign's)."""
    plan = [(0, LIVE_CHAT, None), (0, LIVE_CHAT, None), (0, TELEGRAM, None)]
    plan += [(2, TELEGRAM, None), (2, TELEGRAM, None), (2, TELEGRAM, 1)]
    appeals = []
    for number, (day, channel, campaign) in enumerate(plan):
        made = appeal(integration_id, number, DAY + timedelta(days=day, minutes=number))
        attribution = made.attribution.model_copy(
            update={"campaign_id": campaign, "source_id": None if campaign else 5}
        )
        appeals.append(
            made.model_copy(update={"channel_title": channel, "attribution": attribution})
        )
    return appeals


async def store(db: Path, appeals: list[Appeal]) -> None:
    """Beside the running host, on its database with its demo key, as its worker writes."""
    repo = await open_repository(str(db), key=resolve_host_key(str(db), demo=True))
    try:
        for item in appeals:
            await repo.upsert_appeal(item)
    finally:
        await repo.close()


def drawn(page: Page, canvas: str) -> dict[str, Any]:
    """What the chart on ``canvas`` holds: its day labels and each dataset's numbers."""
    result: dict[str, Any] = page.evaluate(
        """(id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return {
                days: chart.data.labels,
                series: Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data])),
                bars: chart.getDatasetMeta(0).data.length,
            };
        }""",
        canvas,
    )
    return result


def test_the_chart_draws_appeals_per_day_by_channel_and_by_campaign(
    servers: Servers, page: Page, tmp_path: Path
) -> None:
    integration = servers.integration()
    # On a thread of its own: Playwright's sync API keeps an event loop on this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(
            asyncio.run, store(tmp_path / "host.sqlite3", written(integration["id"]))
        ).result()
    errors = PageErrors(page)

    page.goto(f"{servers.host_url}/raw/appeals")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-campaign')")
    by_channel = drawn(page, "chart-channel")
    assert by_channel["days"] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert by_channel["series"] == {"Telegram": [1, 0, 3], "Онлайн-чат на сайте": [2, 0, 0]}
    assert by_channel["bars"] == 3  # drawn, one bar per day
    by_campaign = drawn(page, "chart-campaign")
    assert by_campaign["series"] == {"Мессенджеры": [3, 0, 2], "Весенняя распродажа": [0, 0, 1]}

    # The date filter narrows what is drawn, as it narrows the list.
    page.fill("input[name=from]", "2026-11-04")
    page.click("form.inline button[type=submit]")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-channel')")
    assert drawn(page, "chart-channel")["series"] == {"Telegram": [3]}
    assert page.locator("table.appeals tbody tr").count() == 3
    assert errors.errors == []  # no CSP refusal, no script error
