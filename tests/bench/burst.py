"""One burst of chats through the running system, and the figures it leaves behind.

The integration is set up the way a client does it (over HTTP: settings, outgoing webhook,
OAuth consent), except that the sandbox delivers to the timing relay in front of the host. The
chats start in one ``POST /sandbox/api/chats/bulk``; the sandbox then delivers their
``ONCRMLEADADD`` events one by one and the host drains them. When the last appeal is written,
the host's database says when each webhook arrived and each appeal was first written, the
sandbox's log which REST requests it answered, and the relay how long each delivery waited.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from b24_openlines_plugin.bitrix.client import MAX_BATCH
from tests.bench.systems import Endpoints, System
from tests.client_settings import sandbox_settings

# Mixed channels: the site's live chat and the messengers clients connect most.
MIX = ["livechat", "telegrambot", "whatsappbyedna", "vkgroup", "viber", "avito", "facebook"]
BULK_MAX = 5000  # the sandbox's cap per bulk call
PLANS = {"standard": "standard", "enterprise": "enterprise", "off": "enterprise"}
LIMITS: dict[str, tuple[float, int]] = {"standard": (2.0, 50), "enterprise": (5.0, 250)}
POLL_SECONDS = 0.2
STALL_SECONDS = 90.0


@dataclass
class Setup:
    integration_id: int
    plan: str
    # The sandbox application's own credentials and access token, for the peers.
    client_id: str
    client_secret: str
    app_token: str


@dataclass
class BurstFigures:
    chats: int
    limit: str
    rate: float  # the limit the floor is computed from (the plugin's plan when "off")
    burst: int
    appeals: int
    inbox: dict[str, int]
    rest_requests: int
    limit_refusals: int  # 503 QUERY_LIMIT_EXCEEDED answers
    requests_per_appeal: float
    delivery_span_s: float  # the first webhook received → the last one
    drain_s: float  # the first webhook received → the last appeal first written
    catch_up_s: float  # the last webhook received → the last delivery's outcome written
    floor_s: float  # max(0, requests - burst) / rate
    appeals_per_s: float
    acks: int
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    host_cpu_ms_per_appeal: float
    host_peak_rss_mb: float
    sandbox_cpu_s: float  # the sandbox's CPU during the burst: it shares this machine's cores
    # Where the bucket's burst went: appeals written by the time the first ``burst`` requests
    # were spent (None: the burst was never used up), and how long that took.
    appeals_in_burst: int | None = None
    burst_spent_s: float | None = None
    lead_ids: list[int] = field(repr=False, default_factory=list)
    rest_commands: int = 0  # the commands those requests carried (a batch takes 50)

    @property
    def drain_over_floor(self) -> float | None:
        return self.drain_s / self.floor_s if self.floor_s > 0 else None

    @property
    def command_floor(self) -> int:
        """The fewest requests that carry the commands actually sent: full batches."""
        return -(-self.rest_commands // MAX_BATCH)


def effective_limit(limit: str) -> tuple[float, int]:
    """The limit that binds: the sandbox's, or with it off, the plugin's own (its plan's)."""
    return LIMITS[PLANS[limit]]


def floor_seconds(requests: int, limit: tuple[float, int] | None) -> float:
    """The leaky bucket's best case: the first ``burst`` go at once, the rest at ``rate``/s."""
    if limit is None:
        return 0.0
    rate, burst = limit
    return max(0, requests - burst) / rate


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile (0.5, 0.99) of ``values``, interpolated; NaN for none."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(share * 1000) - 1]


def bulk_chats_body(chats: int, *, seed: int) -> list[dict[str, Any]]:
    """Bulk requests for ``chats`` lead-making chats of mixed channels (line 1 makes leads)."""
    bodies = []
    for start in range(0, chats, BULK_MAX):
        bodies.append(
            {
                "count": min(BULK_MAX, chats - start),
                "mix": MIX,
                "lines": [1],
                "close": True,
                "returning_share": 0.0,
                "seed": seed + start,
            }
        )
    return bodies


def _ok(answer: httpx.Response, *statuses: int) -> httpx.Response:
    if answer.status_code not in statuses:
        raise RuntimeError(f"{answer.request.method} {answer.request.url}: {answer.text[:300]}")
    return answer


async def set_up(client: httpx.AsyncClient, system: Endpoints, limit: str) -> Setup:
    """An integration as a client makes it, connected with OAuth; plus a token for the peers."""
    host, portal = system.host_url, system.portal_url
    callback = f"{host}/oauth2/callback"
    app = (
        _ok(await client.put(f"{portal}/sandbox/api/app", json={"redirect_uri": callback}), 200)
    ).json()
    created = (
        _ok(
            await client.post(
                f"{host}/api/integrations", json={"plugin": "b24_openlines", "name": "Bench"}
            ),
            201,
        )
    ).json()
    handler = system.webhook_base + created["webhook_url"].removeprefix(host)
    hook = (
        _ok(
            await client.post(
                f"{portal}/sandbox/api/outgoing-webhooks",
                json={"handler": handler, "event": "ONCRMLEADADD"},
            ),
            200,
            201,
        )
    ).json()
    plan = PLANS[limit]
    settings = sandbox_settings(app, portal, hook["application_token"], plan=plan)
    _ok(await client.put(f"{host}/api/integrations/{created['id']}/settings", json=settings), 200)
    start = _ok(await client.get(f"{host}/integrations/{created['id']}/connect"), 303)
    authorize = start.headers["location"]
    _ok(await client.get(authorize), 200)
    allowed = _ok(
        await client.post(
            f"{portal}/oauth/authorize/",
            data={**dict(parse_qsl(urlsplit(authorize).query)), "user_id": "1"},
        ),
        302,
    )
    back = _ok(await client.get(allowed.headers["location"]), 303)
    if "connected=1" not in back.headers["location"]:
        raise RuntimeError(f"connecting the portal failed: {back.headers['location']}")
    token = await app_token(client, portal, app)
    return Setup(created["id"], plan, app["client_id"], app["client_secret"], token)


async def app_token(client: httpx.AsyncClient, portal: str, app: dict[str, Any]) -> str:
    """The sandbox application's own access token (consent, then the code for a token)."""
    allowed = _ok(
        await client.post(
            f"{portal}/oauth/authorize/", data={"client_id": app["client_id"], "user_id": "1"}
        ),
        302,
    )
    code = dict(parse_qsl(urlsplit(allowed.headers["location"]).query))["code"]
    grant = _ok(
        await client.get(
            f"{portal}/oauth/token/",
            params={
                "grant_type": "authorization_code",
                "client_id": app["client_id"],
                "client_secret": app["client_secret"],
                "code": code,
            },
        ),
        200,
    )
    token: str = grant.json()["access_token"]
    return token


def sandbox_bucket_wait(
    log: list[tuple[float, str, int]], limit: tuple[float, int] | None
) -> float:
    """Seconds until the sandbox's bucket is empty again, replaying its log of accepted requests."""
    if limit is None or not log:
        return 0.0
    rate, _ = limit
    level, last = 0.0, log[0][0]
    for at, _method, status in sorted(log):
        if status == 503:
            continue  # refused requests do not fill the bucket
        level = max(0.0, level - (at - last) * rate) + 1
        last = at
    return max(0.0, level / rate - (time.time() - last)) + 0.5


QUIET_SECONDS = 1.5
FIRST_REQUEST_SECONDS = 10.0


async def portal_quiet(system: System, quiet: float = QUIET_SECONDS) -> None:
    """Wait for the run that connecting starts (binding handlers, the import of past days) to
    make its requests and be over: the host has asked the portal something and then nothing
    for ``quiet`` seconds. Without this, that run's walk meets the burst's dialogs and reads
    them a second time beside their webhooks; the burst's figures are the burst's alone."""
    began = time.time()
    while True:
        log = await system.rest_log()
        now = time.time()
        if not log:
            if now - began >= FIRST_REQUEST_SECONDS:
                return  # no periodic work in this system
            await asyncio.sleep(0.1)
            continue
        idle = now - max(at for at, _, _ in log)
        if idle >= quiet:
            return
        await asyncio.sleep(quiet - idle)


class HostDb:
    """A read-only look at the host's database: its SQLite file (WAL: reading never blocks
    the host) or, opened by the caller, a PostgreSQL connection in autocommit."""

    def __init__(self, db: Any) -> None:
        self.db = db  # a DB-API connection with ``execute`` (sqlite3, psycopg)

    @classmethod
    def sqlite(cls, path: Path) -> HostDb:
        return cls(sqlite3.connect(f"file:{path}?mode=ro", uri=True))

    def close(self) -> None:
        self.db.close()

    def progress(self) -> tuple[int, dict[str, int]]:
        appeals = self.db.execute("SELECT count(*) FROM appeals").fetchone()[0]
        statuses = dict(
            self.db.execute("SELECT status, count(*) FROM webhook_inbox GROUP BY status").fetchall()
        )
        return int(appeals), {str(k): int(v) for k, v in statuses.items()}

    def times(self) -> tuple[float, float, float]:
        """First and last webhook received, last appeal first written (epoch seconds)."""
        first, last = self.db.execute(
            "SELECT min(created_at), max(created_at) FROM webhook_inbox"
        ).fetchone()
        (written,) = self.db.execute("SELECT max(first_seen_at) FROM appeals").fetchone()
        return _epoch(first), _epoch(last), _epoch(written)

    def last_processed(self) -> float:
        """When the last delivery's outcome (with its appeal, new or rewritten) was written."""
        (done,) = self.db.execute(
            "SELECT max(updated_at) FROM webhook_inbox WHERE status <> 'pending'"
        ).fetchone()
        return _epoch(done)

    def appeals_written_by(self, moment: float) -> int:
        rows = self.db.execute("SELECT first_seen_at FROM appeals").fetchall()
        return sum(1 for (seen,) in rows if _epoch(seen) <= moment)


def _epoch(stored: str | datetime) -> float:
    """SQLite keeps aware ISO times (UTC, microseconds); PostgreSQL hands back datetimes."""
    if isinstance(stored, datetime):
        return stored.timestamp()
    return datetime.fromisoformat(stored).timestamp()


async def wait_for_appeals(
    reader: HostDb,
    expected: int,
    on_poll: Callable[[int, dict[str, int]], None] | None = None,
    *,
    timeout: float | None = None,
) -> None:
    """Until ``expected`` appeals are written and nothing waits in the inbox, or until no new
    appeal came for ``STALL_SECONDS`` or ``timeout`` seconds have passed (the caller then
    reports fewer appeals than chats)."""
    began = best_at = time.monotonic()
    best = -1
    while True:
        appeals, inbox = reader.progress()
        if on_poll is not None:
            on_poll(appeals, inbox)
        if appeals >= expected and not inbox.get("pending"):
            return
        now = time.monotonic()
        if appeals > best:
            best, best_at = appeals, now
        elif now - best_at > STALL_SECONDS:
            return
        if timeout is not None and now - began > timeout:
            return
        await asyncio.sleep(POLL_SECONDS)


async def start_chats(
    client: httpx.AsyncClient, portal: str, chats: int, *, seed: int = 1
) -> list[int]:
    """All the chats at once; the lead ids they made, in order."""
    lead_ids: list[int] = []
    for body in bulk_chats_body(chats, seed=seed):
        started = _ok(await client.post(f"{portal}/sandbox/api/chats/bulk", json=body), 201)
        lead_ids += [c["lead_id"] for c in started.json()["chats"] if c["lead_id"]]
    return lead_ids


async def run_burst(
    client: httpx.AsyncClient, system: System, setup: Setup, db: Path, chats: int, limit: str
) -> BurstFigures:
    """A burst of ``chats`` chats, until each has its appeal (or the drain stalls)."""
    rate_burst = effective_limit(limit)
    await portal_quiet(system)
    await asyncio.sleep(sandbox_bucket_wait(await system.rest_log(), rate_burst))
    acks_before = len(system.ack_latencies())
    log_before = len(await system.rest_log())
    cpu_before = system.host_cpu_seconds()
    sandbox_cpu_before = system.sandbox_cpu_seconds()
    lead_ids = await start_chats(client, system.portal_url, chats)
    reader = HostDb.sqlite(db)
    try:
        await wait_for_appeals(reader, len(lead_ids))
        cpu = system.host_cpu_seconds() - cpu_before
        sandbox_cpu = system.sandbox_cpu_seconds() - sandbox_cpu_before
        first, last, written = reader.times()
        processed = reader.last_processed()
        appeals, inbox = reader.progress()
        rest = (await system.rest_log())[log_before:]
        commands = sum((await system.rest_commands())[log_before:])
        accepted = sorted(at for at, _, status in rest if status != 503)
        spent = accepted[rate_burst[1]] if len(accepted) > rate_burst[1] else None
        in_burst = None if spent is None else reader.appeals_written_by(spent)
    finally:
        reader.close()
    acks = system.ack_latencies()[acks_before:]
    requests = len(rest)
    refusals = sum(1 for _, _, status in rest if status == 503)
    drain = written - first
    return BurstFigures(
        chats=chats,
        limit=limit,
        rate=rate_burst[0],
        burst=rate_burst[1],
        appeals=appeals,
        inbox=inbox,
        rest_requests=requests,
        limit_refusals=refusals,
        requests_per_appeal=requests / max(appeals, 1),
        delivery_span_s=last - first,
        drain_s=drain,
        catch_up_s=processed - last,
        # Refused requests do not fill the portal's bucket, so they do not count for the floor.
        floor_s=floor_seconds(requests - refusals, rate_burst),
        appeals_per_s=appeals / drain if drain > 0 else float("inf"),
        acks=len(acks),
        ack_p50_ms=percentile(acks, 0.50) * 1000,
        ack_p99_ms=percentile(acks, 0.99) * 1000,
        ack_max_ms=max(acks, default=float("nan")) * 1000,
        host_cpu_ms_per_appeal=cpu * 1000 / max(appeals, 1),
        host_peak_rss_mb=system.host_peak_rss_mb(),
        sandbox_cpu_s=sandbox_cpu,
        appeals_in_burst=in_burst,
        burst_spent_s=None if spent is None else spent - first,
        rest_commands=commands,
        lead_ids=lead_ids,
    )
