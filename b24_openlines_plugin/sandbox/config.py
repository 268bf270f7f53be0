"""What a sandbox portal is configured with: its address, identity, limits and seams for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from urllib.parse import urlsplit

import httpx

from b24_openlines_plugin.sandbox.chaos import FaultSettings

MOSCOW = timezone(timedelta(hours=3))
DEFAULT_MEMBER_ID = "5d0b3f7a9c2e4b61a8f0c3d2e1b4a697"
DEFAULT_CLIENT_ID = "local.6a1f0c3e9b2d47.58213096"
DEFAULT_CLIENT_SECRET = "Qm3xT8vR2kL9pW4nZ7cY1bH6jF5dS0gA8eU3iO2yK7tN4rV9wX"
DEFAULT_APPLICATION_TOKEN = "7c1e4a9f2b8d3e6a0f5c9b2d8e1a4f7c"
DEFAULT_SCOPES = ("crm", "imopenlines", "im", "contact_center")


@dataclass(frozen=True)
class RateLimit:
    """Bitrix24's leaky bucket: each request adds 1, the level drains by ``drain_per_second``."""

    drain_per_second: float
    burst: int


STANDARD_RATE = RateLimit(2.0, 50)
ENTERPRISE_RATE = RateLimit(5.0, 250)


@dataclass
class SandboxConfig:
    """One sandbox portal. ``clock`` and ``http_transport`` are the seams tests replace."""

    public_url: str = "http://127.0.0.1:8100"
    member_id: str = DEFAULT_MEMBER_ID
    rate_limit: RateLimit | None = STANDARD_RATE
    clock: Callable[[], float] = time.time
    http_transport: httpx.AsyncBaseTransport | None = None
    timezone: tzinfo = MOSCOW
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    application_token: str = DEFAULT_APPLICATION_TOKEN
    redirect_uri: str = ""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    # Off, event.bind deliveries carry no OAuth tokens, as for actions not made by a user.
    event_auth_tokens: bool = True
    # The per-method `operating` budget: seconds of execution per 10 minutes, and one call's cost.
    operating_limit: float = 480.0
    operating_cost: float = 0.0
    # A few leads and a deal that did not come from a chat, so lists are not only chats.
    seed_crm: bool = True
    # The plan's `rest_offline_extended` feature (feature.get): off, offline events still
    # queue and `event.offline.get` still reads-and-deletes, but reserving a batch with
    # clear=0 answers WRONG_LICENSE, so a client cannot confirm what it processed.
    offline_events: bool = True
    # Soak-test faults (all off by default); the JSON API changes them while running.
    faults: FaultSettings = field(default_factory=FaultSettings)

    def __post_init__(self) -> None:
        self.public_url = self.public_url.rstrip("/")

    @property
    def domain(self) -> str:
        """The portal's domain as Bitrix24 reports it: ``host[:port]``."""
        return urlsplit(self.public_url).netloc

    @property
    def client_endpoint(self) -> str:
        return self.public_url + "/rest/"

    @property
    def server_endpoint(self) -> str:
        """The sandbox is its own OAuth server, so its REST root stands for oauth.bitrix.info's."""
        return self.public_url + "/rest/"
