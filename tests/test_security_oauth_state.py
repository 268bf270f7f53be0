"""An OAuth ``state`` is accepted once: a replayed callback is refused, after a restart too."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from hooks.host.app import create_app
from hooks.host.oauth_state import sign_state
from hooks.host.state import HostConfig
from tests.conftest import PUBLIC_URL
from tests.stack import PORTAL_URL, Stack, running_stack

pytestmark = pytest.mark.anyio


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("B24_OAUTH_SERVERS", PORTAL_URL)
    async with running_stack(tmp_path / "host.sqlite3") as running:
        yield running


async def test_a_replayed_callback_is_refused_and_changes_nothing(stack: Stack) -> None:
    integration = await stack.configure()
    callback = await stack.authorized_callback(integration["id"])
    first = await stack.browser.get(callback)
    assert first.status_code == 303 and first.headers["location"].endswith("connected=1")
    connected = await stack.host.repo.get_integration(integration["id"])
    replay = await stack.browser.get(callback)
    assert replay.headers["location"].endswith("/settings?oauth_error=used_state")
    assert "Эта ссылка авторизации уже использована" in (await stack.followed(replay)).text
    assert await stack.host.repo.get_integration(integration["id"]) == connected


async def test_a_spent_state_stays_spent_after_a_restart(host_config: HostConfig) -> None:
    state = ""
    answers = []
    for _ in range(2):  # two lives of the host on one database
        app = create_app(host_config)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                if not state:
                    await client.post(
                        "/api/integrations", json={"plugin": "b24_openlines", "name": "x"}
                    )
                    state = sign_state(await app.state.host.repo.host_secret_key(), 1)
                answers.append(await client.get(f"/oauth2/callback?code=c&state={state}"))
    first, after_restart = answers
    # The state passed, and the plugin refused the callback (it has no domain): back to the
    # settings; the second time the state is spent.
    assert first.status_code == 303 and first.headers["location"].endswith("oauth_error=failed")
    assert after_restart.headers["location"].endswith("oauth_error=used_state")


async def test_spent_states_are_kept_until_they_expire_then_pruned(host_config: HostConfig) -> None:
    app = create_app(host_config)
    t0 = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    async with app.router.lifespan_context(app):
        repo = app.state.host.repo
        expires = t0 + timedelta(minutes=10)
        assert await repo.use_nonce("a", expires_at=expires, now=t0)
        assert not await repo.use_nonce("a", expires_at=expires, now=t0 + timedelta(minutes=9))
        assert await repo.use_nonce(
            "b", expires_at=t0 + timedelta(hours=1), now=t0 + timedelta(minutes=11)
        )
    with closing(sqlite3.connect(host_config.db)) as db:
        assert [row[0] for row in db.execute("SELECT nonce FROM used_nonces")] == ["b"]
