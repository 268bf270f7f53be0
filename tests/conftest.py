"""Shared fixtures: a reference host running in-process, reached over HTTP (httpx ASGI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from hooks.host.app import create_app
from hooks.host.state import Host, HostConfig

PUBLIC_URL = "https://analytics.example.test"
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
    return HostConfig(db=str(tmp_path / "host.sqlite3"), public_url=PUBLIC_URL, language="ru")


@pytest.fixture
async def running_host(host_config: HostConfig) -> AsyncIterator[RunningHost]:
    app = create_app(host_config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            yield RunningHost(app, client, host_config)
