"""The sandbox portal driven over HTTP, with a movable clock and a recording handler site."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from b24_openlines_plugin.sandbox import Sandbox, SandboxConfig, create_sandbox_app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bitrix24"
PORTAL = "http://127.0.0.1:8100"
REDIRECT = "https://analytics.example.test/oauth2/callback"
HOOKS = "https://analytics.example.test"
START = 1_790_000_000.0  # 2026-09-21, a Monday


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_form_keys(name: str) -> list[str]:
    """The keys of the encoded body line of a ``*.form.txt`` example, in order."""
    for line in (FIXTURES / name).read_text().splitlines():
        if line.startswith("event=") and "%5B" in line:
            return [k for k, _ in parse_qsl(line, keep_blank_values=True)]
    raise AssertionError(f"no encoded body in {name}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class HandlerSite:
    """The analytics host's side: records every POST; answers what ``status`` says per path."""

    received: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)

    async def endpoint(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.received.append((request.url.path, body, dict(request.headers)))
        return PlainTextResponse("ok", status_code=self.status.get(request.url.path, 200))

    def forms(self, path: str | None = None) -> list[dict[str, str]]:
        return [
            dict(parse_qsl(body, keep_blank_values=True))
            for p, body, _ in self.received
            if path is None or p == path
        ]


class DownHostTransport(httpx.AsyncBaseTransport):
    """Routes to the handler site, except ``down.test`` which refuses connections."""

    def __init__(self, site: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=site)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            raise httpx.ConnectError("connection refused", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Running:
    app: Starlette
    client: httpx.AsyncClient
    clock: FakeClock
    site: HandlerSite

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = self.app.state.sandbox
        return sandbox

    async def rest(self, method: str, token: str | None, **params: Any) -> httpx.Response:
        body = dict(params)
        if token is not None:
            body["auth"] = token
        return await self.client.post(f"/rest/{method}", json=body)

    async def ok(self, method: str, token: str, **params: Any) -> Any:
        response = await self.rest(method, token, **params)
        assert response.status_code == 200, response.text
        return response.json()

    async def authorize(self, user_id: int = 1) -> dict[str, Any]:
        """The whole dance: authorize page → Allow → redirect → token exchange."""
        config = self.sandbox.config
        page = await self.client.get(
            "/oauth/authorize/", params={"client_id": config.client_id, "state": "s1"}
        )
        assert page.status_code == 200 and "Allow" in page.text
        allowed = await self.client.post(
            "/oauth/authorize/",
            data={"client_id": config.client_id, "state": "s1", "user_id": str(user_id)},
        )
        assert allowed.status_code == 302
        query = dict(parse_qsl(urlsplit(allowed.headers["location"]).query))
        token = await self.client.get(
            "/oauth/token/",
            params={
                "grant_type": "authorization_code",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
                "code": query["code"],
            },
        )
        assert token.status_code == 200, token.text
        tokens: dict[str, Any] = token.json()
        return tokens

    async def chat(self, **body: Any) -> dict[str, Any]:
        response = await self.client.post("/sandbox/api/chats", json=body)
        assert response.status_code == 201, response.text
        started: dict[str, Any] = response.json()
        return started

    async def settled(self) -> None:
        await self.sandbox.deliveries_settled()


Factory = Callable[..., Awaitable[Running]]


@pytest.fixture
async def make_sandbox() -> AsyncIterator[Factory]:
    """Build a sandbox with config overrides; rate limit off unless a test asks for it."""
    async with contextlib.AsyncExitStack() as stack:

        async def build(**overrides: Any) -> Running:
            clock = FakeClock()
            site = HandlerSite()
            site_app = Starlette(routes=[Route("/{path:path}", site.endpoint, methods=["POST"])])
            settings: dict[str, Any] = {
                "public_url": PORTAL,
                "clock": clock,
                "rate_limit": None,
                "redirect_uri": REDIRECT,
                "http_transport": DownHostTransport(site_app),
                **overrides,
            }
            app = create_sandbox_app(SandboxConfig(**settings))
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PORTAL)
            )
            return Running(app, client, clock, site)

        yield build


@pytest.fixture
async def running(make_sandbox: Factory) -> Running:
    return await make_sandbox()


@pytest.fixture
async def token(running: Running) -> str:
    tokens = await running.authorize()
    access: str = tokens["access_token"]
    return access
