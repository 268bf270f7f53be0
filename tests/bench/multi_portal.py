"""``python -m tests.bench --multi-portal``: many portals at once, through 1 and then 2 workers.

The scaled-out host (``tests.cluster``: PostgreSQL, the web process with ``--worker none``,
workers that share only the database) takes a burst from ``--portals`` sandbox portals of
``--chats-per-portal`` chats each, twice on fresh processes and a fresh database with the same
chats: once with one worker, once with two. Each portal is a sandbox app of its own (its own
address, ``member_id``, application and rate limit) and an integration of its own in the host
(its own OAuth connection and outgoing webhook), so its drains run one at a time cluster-wide
while different portals drain in parallel. Fifty sandbox processes would not fit two cores
beside the host, so one process serves every portal app on its own port in one event loop
(``python -m tests.bench.multi_portal --ports P1,P2,…``), each app in the bench's request log.

The figures are the single-portal bench's, read the same way (``docs/benchmarks.md``): appeals
per second from the database, acknowledgement latency from the timing relay, REST requests and
``QUERY_LIMIT_EXCEEDED`` refusals from the portals' logs; plus the CPU each part used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
import psycopg
import uvloop

from tests.bench.burst import (
    HostDb,
    Setup,
    effective_limit,
    floor_seconds,
    percentile,
    sandbox_bucket_wait,
    set_up,
    start_chats,
    wait_for_appeals,
)
from tests.bench.core import say
from tests.bench.report import MAX_ACK_P99_MS, MAX_FAIRNESS_S, Target, num, target_lines
from tests.bench.sandbox_server import LIMITS, logged_sandbox, official_answer_seconds
from tests.bench.systems import (
    ROOT,
    bench_env,
    fetch_rest_log,
    proc_cpu,
    read_latencies,
    relay_command,
    relay_up,
    served,
    wait_until_up,
)
from tests.cluster import Cluster, ClusterConfig, Part
from tests.servers import child_pids

PORTALS = 50
CHATS_PER_PORTAL = 40
WORKER_COUNTS = (1, 2)
CONCURRENCY = ClusterConfig.concurrency  # jobs one worker runs at once (the host's default)
MIN_SCALING = 1.6  # appeals per second, 2 workers / 1 worker
FAIRNESS_FLOOD_CHATS = 1_000  # the flooding portal's chats
FAIRNESS_AFTER_S = 3.0  # when the other portal's single chat starts, into the flood
SETUP_AT_ONCE = 5  # integrations set up concurrently
# The steady flows: chats a second over all portals, each portal starting its share one by one
# over ``STEADY_SECONDS`` (1 worker, portals in Bitrix24's time): the acknowledgement latency of
# a load the host keeps up with, beside the bursts' closed loop.
STEADY_RATES = (25.0, 50.0)
STEADY_SECONDS = 40.0
STORED_QUIET_SECONDS = 2.0  # a backlog is all stored once no webhook came for this long
PROGRESS_SECONDS = 3.0
TIMEOUT_SECONDS = 600.0  # one burst at the most, however slowly appeals still trickle in
LOGS = ROOT / "var" / "bench-multi-portal"
HOST_PARTS = ("web process", "workers", "PostgreSQL")
COLUMN = 26  # characters per run in the report's table


@dataclass
class RunFigures:
    workers: int
    answer_after_s: float  # how long each portal took to answer a REST request
    chats: int
    appeals: int
    inbox: dict[str, int]
    portals_complete: int  # portals whose every chat has its appeal
    delivery_span_s: float  # first webhook stored → last one
    drain_s: float  # first webhook stored → last appeal first written
    appeals_per_s: float
    acks: int
    ack_p50_ms: float
    ack_p99_ms: float
    ack_max_ms: float
    rest_requests: int
    limit_refusals: int  # 503 QUERY_LIMIT_EXCEEDED, all portals together
    requests_per_appeal: float
    busiest_portal_requests: int
    busiest_portal_floor_s: float  # the rate limit's floor for the busiest portal alone
    cpu_window_s: float  # from the chats' start to the last appeal seen
    cpu_s: dict[str, float] = field(default_factory=dict)  # per part, during that window
    spread_s: float = 0.0  # 0: a burst; else each portal's chats one by one over this time
    lag_s: float = float("nan")  # the last chat started → the last appeal written

    @property
    def chats_per_s(self) -> float:
        """A steady flow's rate over all portals (NaN for a burst)."""
        return self.chats / self.spread_s if self.spread_s > 0 else float("nan")

    @property
    def host_cpu_s(self) -> dict[str, float]:
        """The host's own parts: what a deployment runs (the portals and the relay are the
        bench's)."""
        return {part: self.cpu_s[part] for part in HOST_PARTS if part in self.cpu_s}

    @property
    def cpu_share(self) -> float:
        return _cpu_share(self.cpu_s, self.cpu_window_s)


@dataclass
class BacklogFigures:
    """A stored backlog drained by workers started after it: what the workers alone do."""

    workers: int
    answer_after_s: float
    chats: int
    appeals: int
    stored: int  # webhooks stored while no worker ran
    up_s: float  # the workers started → all of them registered (their start-up)
    first_appeal_s: float  # the workers started → the first appeal written
    drain_s: float  # the workers registered → the last appeal written
    appeals_per_s: float  # over ``drain_s``: the running workers' rate
    rest_requests: int
    limit_refusals: int
    cpu_window_s: float
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_share(self) -> float:
        return _cpu_share(self.cpu_s, self.cpu_window_s)


def _cpu_share(cpu_s: dict[str, float], window_s: float) -> float:
    """The parts' CPU over what the machine's cores could give in the window."""
    return sum(cpu_s.values()) / (window_s * (os.cpu_count() or 1))


@dataclass
class MultiPortalReport:
    portals: int
    chats_per_portal: int
    limit: str
    seed: int
    concurrency: int
    runs: list[RunFigures]
    backlogs: list[BacklogFigures] = field(default_factory=list)
    steady: list[RunFigures] = field(default_factory=list)
    fairness: FairnessFigures | None = None
    commit: str = ""
    python: str = platform.python_version()
    cores: int = os.cpu_count() or 1
    seconds: float = 0.0

    @property
    def answer_times(self) -> list[float]:
        """The portals' answer times the runs had, in the order they ran."""
        return list(dict.fromkeys(run.answer_after_s for run in self.runs))

    def scaling(self, answer_after_s: float) -> tuple[RunFigures, RunFigures] | None:
        """The bursts with the fewest and the most workers at that answer time, if they
        differ."""
        return _fewest_and_most(self.runs, answer_after_s)

    def backlog_scaling(
        self, answer_after_s: float
    ) -> tuple[BacklogFigures, BacklogFigures] | None:
        """The same for the backlogs."""
        return _fewest_and_most(self.backlogs, answer_after_s)


_Run = TypeVar("_Run", RunFigures, BacklogFigures)


def _fewest_and_most(runs: list[_Run], answer_after_s: float) -> tuple[_Run, _Run] | None:
    same = [run for run in runs if run.answer_after_s == answer_after_s]
    if len(same) < 2 or not same[0].appeals_per_s:
        return None
    return same[0], same[-1]


# --- the portals: one process, one event loop, an app per port ------------------------------


def listening_ports(count: int) -> list[int]:
    """``count`` free ports below the kernel's ephemeral range: a port taken from that range
    (``free_port``) may be handed to an outgoing connection (the host's to PostgreSQL, the
    portals') before its server binds it, which with 50 portals happens."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    top = int(ephemeral[0]) if ephemeral else 32768
    found: list[int] = []
    for port in range(random.randrange(10_000, top - 2 * count), top):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == count:
            return found
    raise RuntimeError(f"no {count} free ports below {top}")


def portal_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def portal_identity(number: int) -> dict[str, str]:
    """Portal ``number``'s own ``member_id`` and application, as distinct as real portals'
    (the appeal key holds the ``member_id``: two portals sharing one would share appeals)."""

    def digest(kind: str) -> str:
        return hashlib.sha256(f"bench-portal-{number}-{kind}".encode()).hexdigest()

    return {
        "member_id": digest("member")[:32],
        "client_id": f"local.{digest('app')[:14]}.{number:08d}",
        "client_secret": digest("secret")[:50],
        "application_token": digest("token")[:32],
    }


async def serve_portals(ports: list[int], limit: str, answer_after: float = 0.0) -> None:
    """Every portal's app on its port in this loop, until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        for number, port in enumerate(ports, 1):
            identity = portal_identity(number)
            app = logged_sandbox(portal_url(port), limit, "", answer_after, **identity)
            await stack.enter_async_context(served(app, port))
        # After every server has started: uvicorn takes the signals for each as it starts.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"{len(ports)} sandbox portals up", flush=True)
        await stop.wait()


class _BenchCluster(Cluster):
    """``tests.cluster``'s cluster with every portal in one sandbox process, all of them
    allowed as OAuth servers, periodic work off (as in the single-portal bench), and the host
    reached at the timing relay's address: its public URL is the relay's, so every delivery,
    the outgoing webhooks' and those of the handlers the plugin binds itself, is timed."""

    def __init__(
        self,
        config: ClusterConfig,
        ports: list[int],
        limit: str,
        relay_port: int,
        answer_after: float = 0.0,
    ) -> None:
        super().__init__(config)
        self.ports = ports
        self.limit = limit
        self.relay_port = relay_port
        self.answer_after = answer_after
        self.env: dict[str, str] = {}

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.relay_port}"

    def _sandbox_command(self) -> list[str]:
        ports = ",".join(map(str, self.ports))
        command = [sys.executable, "-m", "tests.bench.multi_portal", "--ports", ports]
        return [*command, "--rate-limit", self.limit, "--answer-after", str(self.answer_after)]

    def _environment(self) -> dict[str, str]:
        self.env = {**super()._environment(), **bench_env(list(map(portal_url, self.ports)))}
        return self.env

    def postmaster_pid(self) -> int:
        return int((self.pg.data / "postmaster.pid").read_text().split()[0])


# --- one run ----------------------------------------------------------------------------------


@dataclass
class _Portal:
    host_url: str
    webhook_base: str
    portal_url: str


def _cpu(cluster: _BenchCluster, relay: Part) -> dict[str, float]:
    """CPU seconds so far of each part; PostgreSQL's are its server's with every backend's."""
    postmaster = cluster.postmaster_pid()
    backends = 0.0
    for pid in child_pids(postmaster):
        with contextlib.suppress(OSError):  # a backend that ended meanwhile is in cutime
            backends += proc_cpu(pid)
    assert cluster.web is not None and cluster.sandbox is not None
    return {
        "web process": proc_cpu(cluster.web.pid or 0),
        # A stopped worker counts nothing: a backlog's workers start from 0 after it.
        "workers": sum(proc_cpu(worker.pid or 0) for worker in cluster.workers if worker.alive),
        "PostgreSQL": proc_cpu(postmaster, reaped=True) + backends,
        "sandbox portals (one process)": proc_cpu(cluster.sandbox.pid or 0),
        "timing relay": proc_cpu(relay.pid or 0),
        "bench (polling)": time.process_time(),
    }


async def _until_workers_ready(db: psycopg.Connection, workers: int) -> None:
    """Every worker has registered with procrastinate and no job is waiting or running."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        (ready,) = db.execute("SELECT count(*) FROM procrastinate_workers").fetchone() or (0,)
        (busy,) = db.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone() or (0,)
        if ready >= workers and not busy:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{workers} workers were not ready and idle within 60 s")


async def _set_up_portals(
    client: httpx.AsyncClient, portals: list[_Portal], limit: str
) -> list[Setup]:
    at_once = asyncio.Semaphore(SETUP_AT_ONCE)

    async def one(portal: _Portal) -> Setup:
        async with at_once:
            return await set_up(client, portal, limit)

    return list(await asyncio.gather(*map(one, portals)))


def _progress_printer(
    progress: Callable[[str], None], expected: int, started: float
) -> Callable[[int, dict[str, int]], None]:
    last = [0.0]

    def on_poll(appeals: int, inbox: dict[str, int]) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            waiting = dict(sorted(inbox.items()))
            progress(f"{appeals}/{expected} appeals, inbox {waiting}, {now - started:.0f} s")

    return on_poll


@dataclass
class _Running:
    """A started cluster whose portals are set up, with what a measurement reads."""

    client: httpx.AsyncClient
    db: psycopg.Connection
    cluster: _BenchCluster
    relay: Part
    relay_log: Path
    portals: list[_Portal]
    setups: list[Setup]


@contextlib.asynccontextmanager
async def _cluster(
    label: str,
    workers: int,
    portals: int,
    limit: str,
    concurrency: int,
    progress: Callable[[str], None],
    logs: Path,
    answer_after: float = 0.0,
) -> AsyncIterator[_Running]:
    """Fresh PostgreSQL, portals, web process, relay and ``workers`` workers, every portal's
    integration set up; the processes' logs stay in ``logs`` until the next run."""
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    web_port, relay_port, *ports = listening_ports(portals + 2)
    config = ClusterConfig(
        directory=logs,
        pg_dir=None,  # a throwaway server: a fresh database for every run
        pg_port=0,
        durable=True,  # fsync on, as a server that keeps data runs
        web_port=web_port,
        sandbox_port=ports[0],
        workers=workers,
        concurrency=concurrency,
        schedule_seconds=0,
        log_dir=logs,
    )
    relay_log = logs / "ack-latencies.txt"
    cluster = _BenchCluster(config, ports, limit, relay_port, answer_after)
    relay_cmd = relay_command(relay_port, cluster.web_port, relay_log)
    relay = Part("relay", relay_cmd, logs / "relay.log")
    progress(f"{label}: PostgreSQL, {portals} portals, the web process and {_workers(workers)}")
    try:
        relay.start(bench_env([]))  # first: the cluster waits for the web process through it
        await relay_up(relay_log)
        await asyncio.to_thread(cluster.start)
        assert cluster.sandbox is not None
        for port in ports:
            await wait_until_up(
                f"{portal_url(port)}/sandbox/api/portal", cluster.sandbox.process, 60
            )
        endpoints = [_Portal(cluster.web_url, cluster.web_url, portal_url(port)) for port in ports]
        with psycopg.connect(cluster.db_url, autocommit=True) as db:
            async with httpx.AsyncClient(timeout=120.0) as client:
                progress(f"{label}: {portals} integrations set up (settings, webhook, OAuth)")
                setups = await _set_up_portals(client, endpoints, limit)
                await _until_workers_ready(db, workers)
                yield _Running(client, db, cluster, relay, relay_log, endpoints, setups)
    finally:
        relay.stop()
        await asyncio.to_thread(cluster.stop)


async def run_once(
    workers: int,
    portals: int,
    chats_per_portal: int,
    limit: str,
    seed: int,
    concurrency: int = CONCURRENCY,
    progress: Callable[[str], None] = say,
    logs: Path = LOGS,
    spread_s: float = 0.0,
    answer_after: float = 0.0,
) -> RunFigures:
    """Fresh PostgreSQL, portals (each answering a REST request after ``answer_after``
    seconds), web process, relay and ``workers`` workers; one burst (or, with ``spread_s``,
    each portal's chats one by one over that time). The processes' logs stay in
    ``logs/<N>-workers-<answer_after>s/`` until the next run."""
    label = _run_label(workers, answer_after)
    folder = logs / f"{workers}-workers-{answer_after:g}s"
    if spread_s > 0:
        rate = portals * chats_per_portal / spread_s
        label = f"steady {rate:g} chats/s, {label}"
        folder = folder.with_name(f"steady-{rate:g}-{folder.name}")
    async with _bursts(
        label, workers, portals, limit, concurrency, progress, folder, answer_after
    ) as run:
        return await run.figures(chats_per_portal, seed, spread_s)


async def run_backlog(
    workers: int,
    portals: int,
    chats_per_portal: int,
    limit: str,
    seed: int,
    concurrency: int = CONCURRENCY,
    progress: Callable[[str], None] = say,
    logs: Path = LOGS,
    answer_after: float = 0.0,
) -> BacklogFigures:
    """Fresh processes as ``run_once``; the workers are stopped once the portals are set up,
    the burst is stored with none running, and ``workers`` workers are started on it."""
    label = f"backlog, {_run_label(workers, answer_after)}"
    folder = logs / f"backlog-{workers}-workers-{answer_after:g}s"
    async with _bursts(
        label, workers, portals, limit, concurrency, progress, folder, answer_after
    ) as run:
        return await run.backlog(chats_per_portal, seed)


@contextlib.asynccontextmanager
async def _bursts(
    label: str,
    workers: int,
    portals: int,
    limit: str,
    concurrency: int,
    progress: Callable[[str], None],
    logs: Path,
    answer_after: float,
) -> AsyncIterator[_Burst]:
    """A ``_Burst`` on a fresh cluster (``_cluster``), its progress lines labelled."""
    async with _cluster(
        label, workers, portals, limit, concurrency, progress, logs, answer_after
    ) as up:
        yield _Burst(
            up.client, up.db, up.cluster, up.relay, up.relay_log, up.portals, limit,
            lambda text: progress(f"{label}: {text}"),
        )  # fmt: skip


# --- fairness: one portal floods, another starts a single chat ------------------------------


@dataclass
class FairnessFigures:
    """One portal floods ``flood_chats`` chats; ``started_after_s`` later another portal starts
    one chat. Its delay: its first webhook stored → its appeal first written (the database's
    times); the flood's figures show it was still going on then."""

    workers: int
    flood_chats: int
    flood_appeals: int
    started_after_s: float  # the flood's first webhook stored → the single chat's first one
    delay_s: float  # the single chat: its first webhook stored → its appeal first written
    flood_appeals_written_before: int  # the flood's appeals written before the single one's
    flood_webhooks_stored_after: int  # the flood's webhooks stored after the single one's
    flood_drain_s: float  # the flood's first webhook stored → its last appeal first written


async def run_fairness(
    flood_chats: int = FAIRNESS_FLOOD_CHATS,
    limit: str = "standard",
    seed: int = 1,
    *,
    workers: int = 1,
    concurrency: int = CONCURRENCY,
    after_s: float = FAIRNESS_AFTER_S,
    progress: Callable[[str], None] = say,
    logs: Path = LOGS,
) -> FairnessFigures:
    """Two portals on a fresh cluster: the first floods, the second starts one chat
    ``after_s`` seconds into the flood."""
    label = "fairness"
    logs = logs / "fairness"
    async with _cluster(label, workers, 2, limit, concurrency, progress, logs) as up:
        flood, single = up.portals
        flood_id, single_id = (setup.integration_id for setup in up.setups)
        progress(f"{label}: {flood_chats} chats on one portal, one chat {after_s:g} s later")
        flood_leads = await start_chats(up.client, flood.portal_url, flood_chats, seed=seed)
        await asyncio.sleep(after_s)
        single_leads = await start_chats(up.client, single.portal_url, 1, seed=seed + 1)
        expected = len(flood_leads) + len(single_leads)
        on_poll = _progress_printer(
            lambda text: progress(f"{label}: {text}"), expected, time.monotonic()
        )
        await wait_for_appeals(HostDb(up.db), expected, on_poll, timeout=TIMEOUT_SECONDS)

        def one(query: str, *params: object) -> object:
            row = up.db.execute(query, params).fetchone()
            return None if row is None else row[0]

        stored = "SELECT min(created_at) FROM webhook_inbox WHERE integration_id = %s"
        written = "SELECT min(first_seen_at) FROM appeals WHERE integration_id = %s"
        single_in = _seconds(one(stored, single_id))
        single_out = _seconds(one(written, single_id))
        flood_in = _seconds(one(stored, flood_id))
        flood_last = _seconds(
            one("SELECT max(first_seen_at) FROM appeals WHERE integration_id = %s", flood_id)
        )
        before = one(
            "SELECT count(*) FROM appeals WHERE integration_id = %s AND first_seen_at < %s",
            flood_id,
            datetime.fromtimestamp(single_out, UTC),
        )
        after = one(
            "SELECT count(*) FROM webhook_inbox WHERE integration_id = %s AND created_at > %s",
            flood_id,
            datetime.fromtimestamp(single_in, UTC),
        )
        flood_appeals = one("SELECT count(*) FROM appeals WHERE integration_id = %s", flood_id)
        return FairnessFigures(
            workers=workers,
            flood_chats=len(flood_leads),
            flood_appeals=int(str(flood_appeals)),
            started_after_s=single_in - flood_in,
            delay_s=single_out - single_in,
            flood_appeals_written_before=int(str(before)),
            flood_webhooks_stored_after=int(str(after)),
            flood_drain_s=flood_last - flood_in,
        )


def _seconds(stored: object) -> float:
    """A time from the database as Unix seconds; NaN when there is none."""
    return stored.timestamp() if isinstance(stored, datetime) else float("nan")


@dataclass
class _Burst:
    """One burst against a running cluster whose portals are set up."""

    client: httpx.AsyncClient
    db: psycopg.Connection
    cluster: _BenchCluster
    relay: Part
    relay_log: Path
    portals: list[_Portal]
    limit: str
    progress: Callable[[str], None]

    async def _start(
        self, portal_url: str, chats: int, seed: int, spread_s: float, phase: float = 0.0
    ) -> list[int]:
        """The portal's chats, all at once, or one by one over ``spread_s`` seconds (a steady
        flow of chats: many small drains, each on whichever worker takes it). ``phase`` (0 to
        1) shifts this portal's schedule by that part of its interval, so that the portals
        together start chats evenly rather than all in the same instant."""
        if spread_s <= 0:
            return await start_chats(self.client, portal_url, chats, seed=seed)
        interval = spread_s / chats
        began = time.monotonic()
        lead_ids: list[int] = []
        for number in range(chats):
            await asyncio.sleep(max(0.0, began + (number + phase) * interval - time.monotonic()))
            lead_ids += await start_chats(self.client, portal_url, 1, seed=seed * 1000 + number)
        return lead_ids

    async def rest_logs(self) -> list[list[tuple[float, str, int]]]:
        return [await fetch_rest_log(self.client, p.portal_url) for p in self.portals]

    async def _buckets_empty(self) -> list[int]:
        """Wait until every portal's bucket is empty again; each one's REST log length."""
        rate_burst = effective_limit(self.limit)
        wait = max(sandbox_bucket_wait(log, rate_burst) for log in await self.rest_logs())
        self.progress(f"waiting {wait:.1f} s for the portals' buckets to empty")
        await asyncio.sleep(wait)
        return list(map(len, await self.rest_logs()))

    async def _burst(self, chats_per_portal: int, seed: int, spread_s: float = 0.0) -> int:
        """Every portal starts its chats (portal ``i``'s seeded ``seed * 1000 + i``); how many."""
        how = f"one by one over {spread_s:g} s" if spread_s > 0 else "at once"
        self.progress(f"{chats_per_portal} chats on each of {len(self.portals)} portals, {how}")
        count = len(self.portals)
        lead_ids = await asyncio.gather(
            *(
                self._start(
                    p.portal_url, chats_per_portal, seed * 1000 + number, spread_s, number / count
                )
                for number, p in enumerate(self.portals, 1)
            )
        )
        return sum(map(len, lead_ids))

    async def backlog(self, chats_per_portal: int, seed: int) -> BacklogFigures:
        """Stop the workers, store a burst, start the workers and time them on it."""
        logged_before = await self._buckets_empty()
        for worker in self.cluster.workers:
            worker.stop()
        expected = await self._burst(chats_per_portal, seed)
        stored = await self._until_stored()
        self.progress(f"{stored} webhooks stored; starting {_workers(len(self.cluster.workers))}")
        cpu_before = _cpu(self.cluster, self.relay)
        started, started_at = time.monotonic(), time.time()
        for index in range(len(self.cluster.workers)):
            self.cluster.restart_worker(index)
        up_at = await self._until_registered(len(self.cluster.workers))
        reader = HostDb(self.db)
        on_poll = _progress_printer(self.progress, expected, started)
        await wait_for_appeals(reader, expected, on_poll, timeout=TIMEOUT_SECONDS)
        cpu_window = time.monotonic() - started
        cpu_after = _cpu(self.cluster, self.relay)
        appeals, _ = reader.progress()
        (first,) = self.db.execute("SELECT min(first_seen_at) FROM appeals").fetchone() or (None,)
        _, _, written = reader.times()
        rest = [
            log[before:] for log, before in zip(await self.rest_logs(), logged_before, strict=True)
        ]
        drain = written - up_at
        return BacklogFigures(
            workers=len(self.cluster.workers),
            answer_after_s=self.cluster.answer_after,
            chats=expected,
            appeals=appeals,
            stored=stored,
            up_s=up_at - started_at,
            first_appeal_s=_seconds(first) - started_at,
            drain_s=drain,
            appeals_per_s=appeals / drain if drain > 0 else float("inf"),
            rest_requests=sum(map(len, rest)),
            limit_refusals=sum(1 for log in rest for _, _, status in log if status == 503),
            cpu_window_s=cpu_window,
            cpu_s={part: cpu_after[part] - cpu_before[part] for part in cpu_before},
        )

    async def _until_registered(self, workers: int) -> float:
        """When all ``workers`` are registered with procrastinate (a worker stopping
        unregisters), which they are just before they take their first job."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (ready,) = self.db.execute("SELECT count(*) FROM procrastinate_workers").fetchone()
            if ready >= workers:
                return time.time()
            await asyncio.sleep(0.02)
        raise RuntimeError(f"{workers} workers did not register within 60 s")

    async def _until_stored(self) -> int:
        """The webhooks stored, once no new one has come for ``STORED_QUIET_SECONDS`` (the
        portals deliver each event as soon as the last is answered: no gap while any waits)."""
        count, since = -1, time.monotonic()
        while True:
            (now_count,) = self.db.execute("SELECT count(*) FROM webhook_inbox").fetchone()
            if now_count != count:
                count, since = now_count, time.monotonic()
            elif count and time.monotonic() - since >= STORED_QUIET_SECONDS:
                return int(count)
            await asyncio.sleep(0.1)

    async def figures(self, chats_per_portal: int, seed: int, spread_s: float = 0.0) -> RunFigures:
        rate_burst = effective_limit(self.limit)
        logged_before = await self._buckets_empty()
        acks_before = len(read_latencies(self.relay_log))
        cpu_before = _cpu(self.cluster, self.relay)
        started = time.monotonic()
        expected = await self._burst(chats_per_portal, seed, spread_s)
        last_started = time.time()
        reader = HostDb(self.db)
        on_poll = _progress_printer(self.progress, expected, started)
        await wait_for_appeals(reader, expected, on_poll, timeout=TIMEOUT_SECONDS)
        cpu_window = time.monotonic() - started
        cpu_after = _cpu(self.cluster, self.relay)
        appeals, inbox = reader.progress()
        first, last, written = reader.times()
        per_portal = self.db.execute(
            "SELECT integration_id, count(*) FROM appeals GROUP BY integration_id"
        ).fetchall()
        rest = [
            log[before:] for log, before in zip(await self.rest_logs(), logged_before, strict=True)
        ]
        acks = read_latencies(self.relay_log)[acks_before:]
        refused = [sum(1 for _, _, status in log if status == 503) for log in rest]
        busiest = max(range(len(rest)), key=lambda i: len(rest[i]))
        drain = written - first
        return RunFigures(
            workers=len(self.cluster.workers),
            answer_after_s=self.cluster.answer_after,
            chats=expected,
            appeals=appeals,
            inbox=inbox,
            portals_complete=sum(1 for _, n in per_portal if n >= chats_per_portal),
            delivery_span_s=last - first,
            drain_s=drain,
            appeals_per_s=appeals / drain if drain > 0 else float("inf"),
            acks=len(acks),
            ack_p50_ms=percentile(acks, 0.50) * 1000,
            ack_p99_ms=percentile(acks, 0.99) * 1000,
            ack_max_ms=max(acks, default=float("nan")) * 1000,
            rest_requests=sum(map(len, rest)),
            limit_refusals=sum(refused),
            requests_per_appeal=sum(map(len, rest)) / max(appeals, 1),
            busiest_portal_requests=len(rest[busiest]),
            busiest_portal_floor_s=floor_seconds(len(rest[busiest]) - refused[busiest], rate_burst),
            cpu_window_s=cpu_window,
            cpu_s={part: cpu_after[part] - cpu_before[part] for part in cpu_before},
            spread_s=spread_s,
            lag_s=written - last_started,
        )


def _commit() -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


async def run_multi_portal(
    portals: int = PORTALS,
    chats_per_portal: int = CHATS_PER_PORTAL,
    limit: str = "standard",
    seed: int = 1,
    *,
    concurrency: int = CONCURRENCY,
    worker_counts: tuple[int, ...] = WORKER_COUNTS,
    answer_times: tuple[float, ...] | None = None,
    backlog: bool = True,
    steady_rates: tuple[float, ...] = STEADY_RATES,
    steady_seconds: float = STEADY_SECONDS,
    fairness_chats: int = FAIRNESS_FLOOD_CHATS,
    progress: Callable[[str], None] = say,
    logs: Path = LOGS,
) -> MultiPortalReport:
    """Each worker count with the portals answering at once, then with them answering in
    Bitrix24's own time (``official_answer_seconds``), unless ``answer_times`` says; the
    steady flows with one worker and the last of those answer times."""
    began = time.perf_counter()
    report = MultiPortalReport(
        portals, chats_per_portal, limit, seed, concurrency, [], commit=_commit()
    )
    times = answer_times or (0.0, round(official_answer_seconds(), 2))
    for answer_after in times:
        for workers in worker_counts:
            run = await run_once(
                workers, portals, chats_per_portal, limit, seed, concurrency, progress, logs,
                answer_after=answer_after,
            )  # fmt: skip
            progress(
                f"{_run_label(workers, answer_after)}: {run.appeals} appeals in"
                f" {run.drain_s:.2f} s, {run.appeals_per_s:.1f}/s,"
                f" ack p99 {run.ack_p99_ms:.1f} ms, {run.limit_refusals} refused"
            )
            report.runs.append(run)
    if backlog:
        for answer_after in times:
            for workers in worker_counts:
                backlog_run = await run_backlog(
                    workers, portals, chats_per_portal, limit, seed, concurrency, progress,
                    logs, answer_after=answer_after,
                )  # fmt: skip
                progress(
                    f"backlog, {_run_label(workers, answer_after)}: {backlog_run.appeals}"
                    f" appeals in {backlog_run.drain_s:.2f} s, {backlog_run.appeals_per_s:.1f}/s"
                )
                report.backlogs.append(backlog_run)
    for rate in steady_rates:
        per_portal = max(1, round(rate * steady_seconds / portals))
        steady = await run_once(
            1, portals, per_portal, limit, seed, concurrency, progress, logs,
            spread_s=steady_seconds, answer_after=times[-1],
        )  # fmt: skip
        progress(
            f"steady {steady.chats_per_s:g} chats/s: ack p99 {steady.ack_p99_ms:.1f} ms,"
            f" the last appeal {steady.lag_s:.1f} s after the last chat"
        )
        report.steady.append(steady)
    if fairness_chats > 0:
        fair = await run_fairness(
            fairness_chats, limit, seed, concurrency=concurrency, progress=progress, logs=logs
        )
        progress(
            f"fairness: the single chat's appeal {fair.delay_s:.2f} s after its webhook,"
            f" beside a flood of {fair.flood_chats}"
        )
        report.fairness = fair
    report.seconds = time.perf_counter() - began
    return report


# --- the report ----------------------------------------------------------------------------


def multi_targets(report: MultiPortalReport) -> list[Target]:
    found = []
    for kind, scaled in (("burst", report.scaling), ("backlog", report.backlog_scaling)):
        for answer_after in report.answer_times:
            pair = scaled(answer_after)
            if pair is not None:
                found.append(_scaling_target(kind, answer_after, *pair))
    every = report.runs + report.steady
    for run in every:
        steady = f"steady {run.chats_per_s:g} chats/s, " if run.spread_s > 0 else ""
        found.append(
            Target(
                f"webhook ack p99, {steady}{_run_label(run.workers, run.answer_after_s)}",
                f"< {MAX_ACK_P99_MS:g} ms",
                f"{num(run.ack_p99_ms)} ms",
                run.ack_p99_ms < MAX_ACK_P99_MS,
            )
        )
    refused = [run.limit_refusals for run in every]
    found.append(
        Target(
            "QUERY_LIMIT_EXCEEDED, all portals",
            "0",
            " / ".join(map(str, refused)),
            not any(refused),
        )
    )
    fair = report.fairness
    if fair is not None:
        found.append(
            Target(
                f"fairness: 1 chat beside a flood of {fair.flood_chats}",
                f"<= {MAX_FAIRNESS_S:g} s",
                f"{num(fair.delay_s, 2)} s",
                fair.delay_s <= MAX_FAIRNESS_S,
            )
        )
    found.append(
        Target(
            "every chat an appeal",
            "all",
            f"{sum(run.appeals for run in every)} of {sum(run.chats for run in every)}"
            f" in {len(every)} runs",
            all(run.appeals == run.chats for run in every),
        )
    )
    return found


def _scaling_target(
    kind: str,
    answer_after: float,
    first: RunFigures | BacklogFigures,
    last: RunFigures | BacklogFigures,
) -> Target:
    scaling = last.appeals_per_s / first.appeals_per_s
    return Target(
        f"appeals/s, {kind}, {_answers(answer_after)}: {last.workers} / {first.workers} workers",
        f">= {MIN_SCALING:g}",
        f"{scaling:.2f} ({last.appeals_per_s:.1f} / {first.appeals_per_s:.1f})",
        scaling >= MIN_SCALING,
    )


def _ms_per_appeal(run: RunFigures, cpu_s: dict[str, float]) -> str:
    return f"{sum(cpu_s.values()) * 1000 / max(run.appeals, 1):.1f}"


def _table(
    runs: Sequence[_Run],
) -> Callable[[str, Callable[[_Run], str]], str]:
    """A table of ``runs``, a column each: makes a row from its name and a cell per run."""

    def row(name: str, cell: Callable[[_Run], str]) -> str:
        return f"  {name:<42}" + "".join(f"{cell(run):<{COLUMN}}" for run in runs).rstrip()

    return row


def _ack_cell(run: RunFigures) -> str:
    return f"{num(run.ack_p50_ms, 2)} / {num(run.ack_p99_ms)} / {num(run.ack_max_ms)} ms"


def _requests_cell(run: RunFigures | BacklogFigures) -> str:
    return f"{run.rest_requests} ({run.limit_refusals})"


def _part_cell(part: str) -> Callable[[RunFigures | BacklogFigures], str]:
    return lambda run: f"{run.cpu_s.get(part, 0.0):.1f}"


def _cpu_lines(
    runs: Sequence[_Run], row: Callable[[str, Callable[[_Run], str]], str], cores: int
) -> list[str]:
    """Each part's CPU seconds in the runs' windows, then their sum and share of the cores."""
    lines = [row(f"  {part}", _part_cell(part)) for part in (runs[0].cpu_s if runs else {})]
    lines.append(
        row(
            f"  all parts / ({cores} cores x window)",
            lambda run: f"{sum(run.cpu_s.values()):.1f} ({run.cpu_share:.0%})",
        )
    )
    return lines


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def _answers(answer_after: float) -> str:
    return f"REST in {answer_after:g} s" if answer_after else "REST at once"


def _run_label(workers: int, answer_after: float) -> str:
    return f"{_workers(workers)}, {answer_after:g} s"


def format_multi_report(report: MultiPortalReport) -> str:
    rate, burst = effective_limit(report.limit)
    runs = report.runs
    total = report.portals * report.chats_per_portal

    row = _table(runs)
    lines = [
        f"b24-openlines multi-portal benchmark (processes, PostgreSQL), {report.portals} portals"
        f" x {report.chats_per_portal} chats, each portal's limit {report.limit}"
        f" ({rate:g}/s, burst {burst}), seed {report.seed}",
        f"commit {report.commit}, Python {report.python}, {report.cores} cores;"
        f" each worker runs {report.concurrency} jobs at once, periodic work off",
        "",
        f"A burst of {total} chats, each run on fresh processes and a fresh database; a portal"
        " answers a REST request at once, or after the median time of Bitrix24's official"
        " answers (their time.duration)",
        row("", lambda r: _workers(r.workers)),
        row("portals answer REST after", lambda r: f"{r.answer_after_s:g} s"),
        row("appeals", lambda r: f"{r.appeals} of {r.chats}"),
        row("inbox", lambda r: " ".join(f"{k} {v}" for k, v in sorted(r.inbox.items()))),
        row("portals with every appeal", lambda r: f"{r.portals_complete} of {report.portals}"),
        row("first webhook in → last appeal written", lambda r: f"{r.drain_s:.2f} s"),
        row("appeals per second", lambda r: f"{r.appeals_per_s:.1f}"),
        row("webhooks stored in (first → last)", lambda r: f"{r.delivery_span_s:.2f} s"),
        row("webhook ack p50 / p99 / max", _ack_cell),
        row("deliveries timed / webhooks stored", lambda r: f"{r.acks} / {sum(r.inbox.values())}"),
        row("REST requests (refused, 503)", _requests_cell),
        row("REST requests per appeal", lambda r: f"{r.requests_per_appeal:.3f}"),
        row(
            "busiest portal: requests, its floor",
            lambda r: f"{r.busiest_portal_requests}, {r.busiest_portal_floor_s:.1f} s",
        ),
        "",
        row("CPU seconds in the burst's window", lambda r: f"{r.cpu_window_s:.1f} s window"),
        *_cpu_lines(runs, row, report.cores),
        row(
            "  CPU ms per appeal: all parts / host's",
            lambda r: f"{_ms_per_appeal(r, r.cpu_s)} / {_ms_per_appeal(r, r.host_cpu_s)}",
        ),
        *_backlog_lines(report),
        *_steady_lines(report),
        *_fairness_lines(report.fairness),
        "",
        "Targets",
        *target_lines(multi_targets(report)),
        f"\n(the bench took {report.seconds:.0f} s)",
    ]
    return "\n".join(lines)


def _backlog_lines(report: MultiPortalReport) -> list[str]:
    backlogs = report.backlogs
    if not backlogs:
        return []

    row = _table(backlogs)
    return [
        "",
        "A stored backlog: the same burst stored while no worker runs, then the workers started",
        row("", lambda b: _workers(b.workers)),
        row("portals answer REST after", lambda b: f"{b.answer_after_s:g} s"),
        row("appeals", lambda b: f"{b.appeals} of {b.chats}"),
        row("webhooks stored before", lambda b: str(b.stored)),
        row("workers started → registered", lambda b: f"{b.up_s:.2f} s"),
        row("workers started → first appeal written", lambda b: f"{b.first_appeal_s:.2f} s"),
        row("workers registered → last appeal written", lambda b: f"{b.drain_s:.2f} s"),
        row("appeals per second (registered → last)", lambda b: f"{b.appeals_per_s:.1f}"),
        row("REST requests (refused, 503)", _requests_cell),
        row("CPU seconds in that window", lambda b: f"{b.cpu_window_s:.1f} s window"),
        *_cpu_lines(backlogs, row, report.cores),
    ]


def _steady_lines(report: MultiPortalReport) -> list[str]:
    flows = report.steady
    if not flows:
        return []

    row = _table(flows)
    first = flows[0]
    return [
        "",
        f"A steady flow: each portal starts its chats one by one over {first.spread_s:g} s, the"
        f" portals' turns spread evenly ({_workers(first.workers)}, fresh processes)",
        row("chats a second, all portals", lambda r: f"{r.chats_per_s:g}"),
        row("portals answer REST after", lambda r: f"{r.answer_after_s:g} s"),
        row("appeals", lambda r: f"{r.appeals} of {r.chats}"),
        row("deliveries timed, a second", lambda r: f"{r.acks}, {r.acks / r.spread_s:.0f}/s"),
        row("webhook ack p50 / p99 / max", _ack_cell),
        row("appeals per second (first webhook → last)", lambda r: f"{r.appeals_per_s:.1f}"),
        row("last chat started → last appeal written", lambda r: f"{num(r.lag_s, 2)} s"),
        row("REST requests (refused, 503)", _requests_cell),
        row("REST requests per appeal", lambda r: f"{r.requests_per_appeal:.3f}"),
        row("CPU seconds in the flow's window", lambda r: f"{r.cpu_window_s:.1f} s window"),
        *_cpu_lines(flows, row, report.cores),
    ]


def _fairness_lines(fair: FairnessFigures | None) -> list[str]:
    if fair is None:
        return []
    return [
        "",
        f"Fairness: one portal floods {fair.flood_chats} chats, another starts one chat"
        f" {fair.started_after_s:.1f} s later ({_workers(fair.workers)}, fresh processes)",
        f"  the single chat: webhook stored → appeal written   {num(fair.delay_s, 2)} s",
        f"  the flood then: {fair.flood_appeals_written_before} of {fair.flood_chats} appeals"
        f" written, {fair.flood_webhooks_stored_after} webhooks still to come",
        f"  the flood: {fair.flood_appeals} appeals, first webhook → last appeal"
        f" {num(fair.flood_drain_s, 2)} s",
    ]


def main(argv: list[str] | None = None) -> None:
    """``--ports P1,P2,… [--rate-limit L] [--answer-after S]``: the portals' process (see
    ``serve_portals``)."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.multi_portal")
    parser.add_argument("--ports", required=True, help="comma-separated: a portal on each")
    parser.add_argument("--rate-limit", choices=sorted(LIMITS), default="standard")
    parser.add_argument("--answer-after", type=float, default=0.0, help="seconds per REST answer")
    args = parser.parse_args(argv)
    ports = [int(port) for port in args.ports.split(",")]
    uvloop.run(serve_portals(ports, args.rate_limit, args.answer_after))


if __name__ == "__main__":
    main()
