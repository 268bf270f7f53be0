"""Shared fixtures: a reference host running in-process, reached over HTTP (httpx ASGI)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.fernet import Fernet
from pydantic import SecretStr
from starlette.applications import Starlette

from hooks.host import csrf
from hooks.host.app import create_app
from hooks.host.host_key import ENV
from hooks.host.state import Host, HostConfig
from hooks.models import Catalog, Integration
from hooks.services import HostServices, HostUrls

pytest_plugins = ["tests.pg_fixtures"]

PUBLIC_URL = "https://analytics.example.test"
HOST_KEY = SecretStr(Fernet.generate_key().decode())  # what ANALYTICS_HOST_KEY holds
SHARED = Path(__file__).resolve().parents[2] / "shared" / "bitrix24" / "examples"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class RunningHost:
    app: Starlette
    client: httpx.AsyncClient
    config: HostConfig

    @property
    def host(self) -> Host:
        host: Host = self.app.state.host
        return host


@pytest.fixture
def host_config(tmp_path: Path) -> HostConfig:
    return HostConfig(
        db=str(tmp_path / "host.sqlite3"), public_url=PUBLIC_URL, language="ru", host_key=HOST_KEY
    )


def page_csrf_token(html: str) -> str:
    """The CSRF token a page's forms carry (its hidden field)."""
    found = re.search(rf'<input type="hidden" name="{csrf.FIELD}" value="([^"]+)">', html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def send_csrf_token(client: httpx.AsyncClient) -> None:
    """Make ``client`` pass the CSRF check as a page's own forms do: it keeps the session
    cookie a page sets and sends the page's token back with every request (the header scripts
    use)."""
    client.headers[csrf.HEADER] = page_csrf_token((await client.get("/")).text)


@pytest.fixture
async def running_host(host_config: HostConfig) -> AsyncIterator[RunningHost]:
    app = create_app(host_config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            await send_csrf_token(client)
            yield RunningHost(app, client, host_config)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``python -m hooks.host`` up to the point where it would serve (what it would serve)."""
    monkeypatch.delenv(ENV, raising=False)
    apps: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_: apps.append(app))
    return apps


class ElsewhereUrls:
    """``hooks.services.HostUrls`` of a host whose routes look nothing like the reference
    host's: what a plugin shows must come from its host, not from its own idea of the routes."""

    def webhook(self, integration: Integration) -> str:
        token = integration.webhook_token.get_secret_value()
        return f"https://elsewhere.example/in/b24/{integration.id}?key={token}"

    def oauth_redirect(self) -> str:
        return "https://elsewhere.example/sso/return"

    def session_report(self, integration_id: int) -> str:
        return f"https://elsewhere.example/track/{integration_id}"

    def messenger_code(self, integration_id: int) -> str:
        return f"https://elsewhere.example/codes/{integration_id}"


def services_with_urls(
    urls: HostUrls, http: httpx.AsyncClient, catalog: Catalog | None = None
) -> HostServices:
    """Host services for a plugin function that needs only the host's URLs, its HTTP client
    and catalog (the stores are absent: a call to one fails loudly)."""
    return HostServices(
        urls=urls,
        language="ru",
        http=http,
        sessions=None,  # type: ignore[arg-type]
        appeals=None,  # type: ignore[arg-type]
        integrations=None,  # type: ignore[arg-type]
        rate_limits=None,  # type: ignore[arg-type]
        catalog=catalog or Catalog(),
    )
