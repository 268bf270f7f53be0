"""Every messenger row of the settings meets a real chat: for each Open Lines connector the
sandbox portal offers, a client maps the row, a visitor writes from that messenger, and the
appeal arrives with that channel and the row's source and site (host + plugin + sandbox)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import escape
from pathlib import Path

import pytest

from b24_openlines_plugin.connectors import CONNECTORS, connector_label
from b24_openlines_plugin.sandbox import ENTERPRISE_RATE
from tests.stack import HOST_URL, PORTAL_URL, Stack, running_stack

pytestmark = pytest.mark.anyio
# A settings row that is no Open Lines connector: Bitrix24's e-mail channel belongs to the CRM.
NOT_A_CONNECTOR = {"email"}
BUILT_IN = [c.id for c in CONNECTORS if c.id not in NOT_A_CONNECTOR]


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3", rate_limit=ENTERPRISE_RATE) as running:
        yield running


async def custom_connectors(stack: Stack) -> list[str]:
    """The connectors apps registered on the portal: those without a row of their own."""
    portal = (await stack.browser.get(f"{PORTAL_URL}/sandbox/api/portal")).json()
    return [c for c in portal["connectors"] if c not in BUILT_IN]


async def test_the_portal_has_custom_connectors_to_map(stack: Stack) -> None:
    custom = await custom_connectors(stack)
    assert custom and all(re.fullmatch(r"wz_[a-z]+_[0-9a-f]{33}", c) for c in custom)


async def test_every_row_maps_its_own_messenger(stack: Stack) -> None:
    connectors = BUILT_IN + await custom_connectors(stack)
    # Sources 1-4 on sites 1-2, never the default (source 6 on site 1), neighbours apart.
    rows = {
        connector: {"source_id": 1 + i % 4, "site_id": 1 + i // 4 % 2}
        for i, connector in enumerate(connectors)
    }
    # Twenty chats in a row are about connectors, not about waiting for the rate limit.
    integration = await stack.configure(plan="enterprise", messenger_map=rows)
    connected = await stack.connect(integration["id"])
    assert connected.status_code == 303, connected.text
    page = await stack.browser.get(f"{HOST_URL}/integrations/{integration['id']}/settings")
    for connector in connectors:  # the built-in rows, and the custom ones once mapped
        assert f"messenger_map.{connector}.source_id" in page.text

    for connector in connectors:
        await stack.chat(
            connector=connector,
            visitor={"name": "Guest", "phone": "+79990001122"},
            messages=[{"author": "visitor", "text": f"hello from {connector}"}],
        )
    appeals = await stack.all_appeals()
    assert sorted(a["channel"] for a in appeals) == sorted(connectors)
    for appeal in appeals:
        attribution = appeal["attribution"]
        assert attribution["method"] == "messenger", appeal["channel"]
        mapped = (attribution["source_id"], attribution["site_id"])
        assert mapped == tuple(rows[appeal["channel"]].values()), appeal["channel"]
        assert f"hello from {appeal['channel']}" in appeal["text"]

    # Each appeal names its channel as the settings' row does, and the appeals page shows that.
    raw = (await stack.browser.get(f"{HOST_URL}/raw/appeals")).text
    for appeal in appeals:
        name = escape(connector_label(appeal["channel"]).ru)
        assert appeal["channel_title"]["ru"] == connector_label(appeal["channel"]).ru
        assert name in page.text, appeal["channel"]
        assert f'title="{appeal["channel"]}">{name}</td>' in raw, appeal["channel"]
