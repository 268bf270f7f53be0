"""The whole system in one process: the reference host with the plugin, and the sandbox portal,
each reaching the other over HTTP (httpx ASGI transports standing in for the loopback network)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from starlette.applications import Starlette

from b24_openlines_plugin.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from hooks.host.app import create_app
from hooks.host.inbox import SCHEDULE
from hooks.host.state import Host, HostConfig
from tests.client_settings import sandbox_settings
from tests.conftest import HOST_KEY

HOST_URL = "http://127.0.0.1:8000"
PORTAL_URL = "http://127.0.0.1:8100"


class Network(httpx.AsyncBaseTransport):
    """Routes each request to the app serving its ``host:port``; anything else is unreachable."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.contacted: list[str] = []  # every host:port anyone tried to reach

    def serve(self, url: str, app: Any) -> None:
        self.apps[urlsplit(url).netloc] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.contacted.append(request.url.netloc.decode())
        transport = self.apps.get(request.url.netloc.decode())
        if transport is None:
            raise httpx.ConnectError(
                f"{request.url.netloc.decode()} is unreachable", request=request
            )
        return await transport.handle_async_request(request)


class Clock:
    """The portal's time: real time passing from a fixed start, plus what a test jumps over.

    It must pass, or the portal's leaky bucket would never drain."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.began = time.monotonic()
        self.jumped = 0.0
        self.frozen: float | None = None

    def __call__(self) -> float:
        if self.frozen is not None:
            return self.frozen
        return self.start + (time.monotonic() - self.began) + self.jumped

    def advance(self, seconds: float) -> None:
        self.jumped += seconds

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """Time stands still for the block (everything in it happens in one second); then it
        goes on from where it stood."""
        self.frozen = self()
        try:
            yield
        finally:
            stood, self.frozen = self.frozen, None
            self.jumped += stood - self()


@dataclass
class Stack:
    host_app: Starlette
    sandbox_app: Starlette
    browser: httpx.AsyncClient  # a person's browser: reaches both, follows no redirects itself
    clock: Clock
    network: Network
    host_config: HostConfig
    _host_running: contextlib.AbstractAsyncContextManager[None] | None = None

    async def start_host(self) -> None:
        self.host_app = create_app(self.host_config)
        self.network.serve(HOST_URL, self.host_app)
        self._host_running = self.host_app.router.lifespan_context(self.host_app)
        await self._host_running.__aenter__()

    async def stop_host(self) -> None:
        running, self._host_running = self._host_running, None
        if running is not None:
            await running.__aexit__(None, None, None)

    async def restart_host(self) -> None:
        """A new host process on the same database: what was accepted must survive it."""
        await self.stop_host()
        await self.start_host()

    @property
    def host(self) -> Host:
        host: Host = self.host_app.state.host
        return host

    @property
    def sandbox(self) -> Sandbox:
        sandbox: Sandbox = self.sandbox_app.state.sandbox
        return sandbox

    async def catch_up(self, integration_id: int) -> None:
        """One periodic run now, through the host's queue as its scheduler does it (so it never
        overlaps another run of the same integration), then until everything has settled."""
        await self.host.queue.enqueue(SCHEDULE, str(integration_id))
        await self.settled()

    async def settled(self) -> None:
        """Until the portal has delivered its events and the host has processed them."""
        for _ in range(3):
            await self.sandbox.deliveries_settled()
            await self.host.queue.idle()

    async def app_credentials(self) -> dict[str, Any]:
        answer = await self.browser.put(
            f"{PORTAL_URL}/sandbox/api/app", json={"redirect_uri": f"{HOST_URL}/oauth2/callback"}
        )
        assert answer.status_code == 200, answer.text
        data: dict[str, Any] = answer.json()
        return data

    async def configure(self, **settings: Any) -> dict[str, Any]:
        """An integration set up as a client would: credentials, portal, active, defaults."""
        app = await self.app_credentials()
        created = await self.browser.post(
            f"{HOST_URL}/api/integrations", json={"plugin": "b24_openlines", "name": "Sandbox"}
        )
        assert created.status_code == 201, created.text
        integration = created.json()
        hook = await self.browser.post(
            f"{PORTAL_URL}/sandbox/api/outgoing-webhooks",
            json={
                "handler": integration["webhook_url"],
                "events": ["ONCRMLEADADD", "ONCRMDEALADD"],
            },
        )
        assert hook.status_code in (200, 201), hook.text
        body = sandbox_settings(app, PORTAL_URL, hook.json()["application_token"], **settings)
        saved = await self.browser.put(
            f"{HOST_URL}/api/integrations/{integration['id']}/settings", json=body
        )
        assert saved.status_code == 200, saved.text
        result: dict[str, Any] = saved.json()
        return result

    async def connect(self, integration_id: int) -> httpx.Response:
        """Connect Bitrix24 → the portal's consent page → Allow → back to the host's callback."""
        return await self.browser.get(await self.authorized_callback(integration_id))

    async def authorized_callback(self, integration_id: int) -> str:
        """The callback URL the portal sends the browser back to, not yet visited."""
        start = await self.browser.get(f"{HOST_URL}/integrations/{integration_id}/connect")
        assert start.status_code == 303, start.text
        authorize = start.headers["location"]
        assert authorize.startswith(f"{PORTAL_URL}/oauth/authorize/")
        consent = await self.browser.get(authorize)
        assert consent.status_code == 200, consent.text
        query = dict(parse_qsl(urlsplit(authorize).query))
        allowed = await self.browser.post(
            f"{PORTAL_URL}/oauth/authorize/", data={**query, "user_id": "1"}
        )
        assert allowed.status_code == 302, allowed.text
        callback: str = allowed.headers["location"]
        return callback

    async def followed(self, answer: httpx.Response) -> httpx.Response:
        """The host's page a redirect sends the browser to (a host's ``Location`` is a path)."""
        assert answer.status_code == 303, answer.text
        return await self.browser.get(HOST_URL + answer.headers["location"])

    async def chat(self, **body: Any) -> dict[str, Any]:
        answer = await self.browser.post(f"{PORTAL_URL}/sandbox/api/chats", json=body)
        assert answer.status_code == 201, answer.text
        started: dict[str, Any] = answer.json()
        await self.settled()
        return started

    async def all_appeals(self) -> list[dict[str, Any]]:
        """Every appeal, page by page."""
        found: list[dict[str, Any]] = []
        while True:
            answer = await self.browser.get(f"{HOST_URL}/api/appeals?limit=500&offset={len(found)}")
            page: list[dict[str, Any]] = answer.json()["appeals"]
            found += page
            if len(page) < 500:
                return found

    async def appeals(self) -> list[dict[str, Any]]:
        answer = await self.browser.get(f"{HOST_URL}/api/appeals")
        appeals: list[dict[str, Any]] = answer.json()["appeals"]
        return appeals


@contextlib.asynccontextmanager
async def running_stack(
    db: Path, *, schedule_seconds: int | None = None, **sandbox: Any
) -> AsyncIterator[Stack]:
    """The host and the sandbox portal; ``schedule_seconds=0``: no periodic runs but the
    ones a test asks for (``Stack.catch_up``) and the one connecting starts."""
    network = Network()
    clock = Clock(1_795_000_000.0)  # 2026-11-18
    sandbox_app = create_sandbox_app(
        SandboxConfig(public_url=PORTAL_URL, http_transport=network, clock=clock, **sandbox)
    )
    network.serve(PORTAL_URL, sandbox_app)
    host_config = HostConfig(
        db=str(db), public_url=HOST_URL, http_transport=network, host_key=HOST_KEY
    )
    if schedule_seconds is not None:
        host_config = dataclasses.replace(host_config, schedule_seconds=schedule_seconds)
    async with contextlib.AsyncExitStack() as exits:
        await exits.enter_async_context(sandbox_app.router.lifespan_context(sandbox_app))
        browser = await exits.enter_async_context(httpx.AsyncClient(transport=network))
        stack = Stack(create_app(host_config), sandbox_app, browser, clock, network, host_config)
        await stack.start_host()
        try:
            yield stack
        finally:
            await stack.stop_host()  # before the portal: the host's last work may still call it
