"""The running host's parts, and the services it lends to hooks."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr
from starlette.requests import Request

from hooks.errors import PayloadTooLarge
from hooks.host import messenger_codes, visit_ids
from hooks.host.account_time import DEFAULT_ZONE
from hooks.host.batching import Batcher
from hooks.host.jobs import JobQueue
from hooks.host.logs import LogFormat
from hooks.host.metrics import HostMetrics
from hooks.host.params import whole_number
from hooks.host.plugins import PluginHost
from hooks.host.ratelimit import SESSION_RATE, VISIT_RATE, Rate, RateLimiter
from hooks.host.repository import InboxItem, NewInboxItem, Repository
from hooks.host.urls import PublicUrls
from hooks.models import (
    Appeal,
    Catalog,
    HookRequest,
    Integration,
    Language,
    SessionBinding,
    StoredAppeal,
    VisitorSession,
)
from hooks.services import AppealSink, HostServices

# Headers that carry a browser's or a proxy's credentials: never stored or handed to plugins.
PRIVATE_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
# How long a process reuses the account catalog it read. Every webhook's verification gets the
# services, catalog included, and reading it each time was one more query per delivery; the
# catalog only changes when a host starts with a new catalog file.
CATALOG_FRESH_SECONDS = 5.0


@dataclass(frozen=True)
class HostConfig:
    db: str
    public_url: str = "http://127.0.0.1:8000"
    language: Language = "ru"
    # The account's time zone (IANA name): the pages show times in it and count days by it.
    timezone: str = DEFAULT_ZONE
    catalog_path: Path | None = None
    seed_demo_catalog: bool = True
    http_transport: httpx.AsyncBaseTransport | None = None
    schedule_seconds: float = 60.0  # 0: no periodic work
    # Who runs the jobs (drains, periodic work), which live in the database: a worker on this
    # process's loop (``inline``), a local worker process the host starts and restarts
    # (``process``: jobs never delay a webhook's answer), or only workers started apart
    # (``none``: ``python -m hooks.host worker``), on this machine or others.
    worker: Literal["inline", "process", "none"] = "inline"
    concurrency: int = 8  # jobs one worker runs at once (different integrations in parallel)
    log_format: LogFormat = "text"  # the local worker's too
    # (address, port) where the local worker serves its Prometheus metrics; None: it does not.
    worker_metrics: tuple[str, int] | None = None
    webhook_max_bytes: int = 64 * 1024
    session_max_bytes: int = 4 * 1024
    # Encrypts the secrets at rest; ``python -m hooks.host`` fills it from ANALYTICS_HOST_KEY.
    host_key: SecretStr | None = None
    # Per client IP; None: no limit.
    session_rate: Rate | None = SESSION_RATE
    visit_rate: Rate | None = VISIT_RATE


class _Sessions:
    def __init__(self, repo: Repository, zone: ZoneInfo | None = None) -> None:
        self._repo = repo
        self._zone = zone or ZoneInfo(DEFAULT_ZONE)  # the account's: clicks count by its days

    async def get(self, session_id: str) -> VisitorSession | None:
        """``None`` for an id the host did not sign, whatever the database holds under it."""
        if not visit_ids.issued(await self._repo.host_secret_key(), session_id):
            return None
        return await self._repo.get_visitor_session(session_id)

    async def bind(self, integration_id: int, external_id: str, session_id: str) -> SessionBinding:
        return await self._repo.bind_session(integration_id, external_id, session_id)

    async def binding(self, integration_id: int, external_id: str) -> SessionBinding | None:
        return await self._repo.get_binding(integration_id, external_id)

    async def mint_code(
        self, integration_id: int, session_id: str, channel: str | None = None
    ) -> str | None:
        if await self.get(session_id) is None:
            return None
        return await messenger_codes.code_for_visit(
            self._repo,
            integration_id,
            session_id,
            channel=channel,
            zone=self._zone,
            now=datetime.now(UTC),
        )

    async def redeem_code(
        self, integration_id: int, code: str, external_id: str, channel: str | None = None
    ) -> VisitorSession | None:
        code = code.upper()
        if not messenger_codes.is_code(code):
            return None
        session_id = await self._repo.redeem_messenger_code(
            integration_id, code, external_id, now=datetime.now(UTC), channel=channel
        )
        return None if session_id is None else await self.get(session_id)


class _Appeals:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def upsert(self, appeal: Appeal) -> StoredAppeal:
        return await self._repo.upsert_appeal(appeal)

    async def get(self, key: str) -> Appeal | None:
        stored = await self._repo.get_appeal(key)
        return stored.appeal if stored is not None else None


class _Integrations:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo

    async def get(self, integration_id: int) -> Integration | None:
        return await self._repo.get_integration(integration_id)

    async def update(
        self,
        integration_id: int,
        *,
        expected_version: int,
        settings: Mapping[str, Any] | None = None,
        secrets: Mapping[str, SecretStr | None] | None = None,
        connection: Mapping[str, Any] | None = None,
    ) -> Integration:
        return await self._repo.update_integration(
            integration_id,
            expected_version=expected_version,
            settings=settings,
            secrets=secrets,
            connection=connection,
        )


class _RateLimits:
    """Leaky buckets in the host's database, shared by the web processes and every worker;
    times are this machine's wall clock (as the others', kept in step by NTP)."""

    def __init__(self, repo: Repository, clock: Callable[[], float] = time.time) -> None:
        self._repo = repo
        self._clock = clock

    async def take(self, key: str, *, rate: float, burst: float) -> float:
        return await self._repo.take_rate(key, rate=rate, now=self._clock())

    async def fill(self, key: str, *, rate: float, burst: float) -> None:
        await self._repo.take_rate(key, rate=rate, now=self._clock(), count=0.0, at_least=burst)


@dataclass
class Host:
    config: HostConfig
    repo: Repository
    plugins: PluginHost
    queue: JobQueue
    http: httpx.AsyncClient
    session_limiter: RateLimiter = field(init=False)
    visit_limiter: RateLimiter = field(init=False)
    # This process's figures (``hooks.host.metrics``); a worker keeps one across reconnections.
    metrics: HostMetrics = field(default_factory=HostMetrics)
    _catalog_read: tuple[float, Catalog] | None = field(default=None, init=False, repr=False)
    # The webhooks in flight share their queries (``hooks.host.batching``): the integrations
    # they are for (``None``: no such integration), their inbox rows, and the jobs they ask for
    # (name, key). A worker's drains share their reads of stored appeals by key.
    integration_reads: Batcher[int, Integration | None] = field(
        init=False, repr=False, compare=False
    )
    inbox_writes: Batcher[NewInboxItem, InboxItem] = field(init=False, repr=False, compare=False)
    job_asks: Batcher[tuple[str, str], None] = field(init=False, repr=False, compare=False)
    appeal_reads: Batcher[str, StoredAppeal | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.session_limiter = RateLimiter(self.config.session_rate)
        self.visit_limiter = RateLimiter(self.config.visit_rate)
        self.integration_reads = Batcher(self._read_integrations)
        self.inbox_writes = Batcher(self.repo.add_inbox_items)
        self.job_asks = Batcher(self._ask_jobs)
        self.appeal_reads = Batcher(self._read_appeals)

    async def _read_integrations(self, ids: list[int]) -> list[Integration | None]:
        found = await self.repo.get_integrations(ids)
        return [found.get(integration_id) for integration_id in ids]

    async def _read_appeals(self, keys: list[str]) -> list[StoredAppeal | None]:
        found = await self.repo.get_appeals(keys)
        return [found.get(key) for key in keys]

    async def _ask_jobs(self, asks: list[tuple[str, str]]) -> list[None]:
        by_name: dict[str, list[str]] = {}
        for name, key in asks:
            by_name.setdefault(name, []).append(key)
        for name, keys in by_name.items():
            await self.queue.enqueue_many(name, keys)
        return [None] * len(asks)

    async def services(self, *, appeals: AppealSink | None = None) -> HostServices:
        """The services lent to a hook; ``appeals`` replaces the sink (a drain keeps its
        appeals to write them with its items' outcomes)."""
        return HostServices(
            urls=PublicUrls(self.config.public_url),
            language=self.config.language,
            http=self.http,
            sessions=_Sessions(self.repo, ZoneInfo(self.config.timezone)),
            appeals=appeals or _Appeals(self.repo),
            integrations=_Integrations(self.repo),
            rate_limits=_RateLimits(self.repo),
            catalog=await self.catalog(),
            metrics=self.metrics,
        )

    async def catalog(self) -> Catalog:
        """The account catalog, read again when the last read is ``CATALOG_FRESH_SECONDS``
        old."""
        now = time.monotonic()
        if self._catalog_read is None or now - self._catalog_read[0] >= CATALOG_FRESH_SECONDS:
            self._catalog_read = (now, await self.repo.get_catalog())
        return self._catalog_read[1]


def hook_request(request: Request, body: bytes, *, path: str | None = None) -> HookRequest:
    """The framework-free request handed to plugins (``path`` overrides, to leave out tokens)."""
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    return HookRequest(
        method=request.method,
        path=path or request.url.path,
        query=query,
        headers={k: v for k, v in request.headers.items() if k not in PRIVATE_HEADERS},
        body=body,
        client_ip=request.client.host if request.client else None,
        received_at=datetime.now(UTC),
    )


async def read_capped_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (never buffered whole)."""
    declared = whole_number(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
