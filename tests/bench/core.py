"""The whole benchmark: a burst through the system, the peers on the same sandbox, plugin CPU.

``run_bench`` is what ``python -m tests.bench`` and the smoke test call; the smoke test runs it
in one process on a few chats, the command on real server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from tests.bench.burst import (
    BurstFigures,
    Setup,
    effective_limit,
    floor_seconds,
    run_burst,
    sandbox_bucket_wait,
    set_up,
)
from tests.bench.cpu import CpuFigures, plugin_cpu
from tests.bench.peers import PEERS, version_of
from tests.bench.systems import System, in_process_servers, server_processes

Mode = Literal["processes", "in-process"]
GROWTH_SIZES = (1_000, 10_000)
CPU_CHATS_MAX = 1_000


@dataclass
class PeerFigures:
    name: str
    version: str | None
    requests: int = 0
    limit_refusals: int = 0
    wall_s: float = 0.0
    floor_s: float = 0.0
    leads: int = 0
    activities: int = 0
    histories: int = 0
    error: str | None = None


@dataclass
class GrowthFigures:
    chats: int
    host_peak_rss_mb: float
    drain_s: float
    appeals: int
    rest_requests: int
    sandbox_cpu_s: float


@dataclass
class Report:
    mode: Mode
    limit: str
    burst: BurstFigures
    peers: list[PeerFigures]
    cpu: CpuFigures
    growth: list[GrowthFigures] = field(default_factory=list)
    seconds: float = 0.0


def say(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def _system(
    mode: Mode, workdir: Path, limit: str
) -> contextlib.AbstractAsyncContextManager[System]:
    if mode == "processes":
        return server_processes(workdir, limit)
    return in_process_servers(workdir, limit)


@contextlib.asynccontextmanager
async def _connected(
    mode: Mode, workdir: Path, limit: str
) -> AsyncIterator[tuple[System, httpx.AsyncClient, Setup]]:
    workdir.mkdir(parents=True, exist_ok=True)
    async with (
        _system(mode, workdir, limit) as system,
        httpx.AsyncClient(timeout=300.0) as client,
    ):
        setup = await set_up(client, system, limit)
        yield system, client, setup


async def _peer(
    name: str,
    system: System,
    setup: Setup,
    lead_ids: list[int],
    limit: str,
    progress: Callable[[str], None],
) -> PeerFigures:
    """One peer fetching the burst's records, from an empty bucket as the plugin started."""
    figures = PeerFigures(name, version_of(name))
    if figures.version is None:
        figures.error = "not installed (pip install -e '.[bench]')"
        return figures
    sandbox_limit = None if limit == "off" else effective_limit(limit)
    wait = sandbox_bucket_wait(await system.rest_log(), sandbox_limit)
    if wait > 0:
        progress(f"waiting {wait:.0f} s for the sandbox's bucket to empty")
        await asyncio.sleep(wait)
    before = len(await system.rest_log())
    started = time.perf_counter()
    try:
        fetched = await PEERS[name](
            system.portal_url,
            setup,
            lead_ids,
            *(sandbox_limit or (None, None)),
        )
    except Exception as exc:  # a peer's failure is a result to report, not a crash
        figures.error = f"{type(exc).__name__}: {str(exc)[:200]}"
        return figures
    figures.wall_s = time.perf_counter() - started
    rest = (await system.rest_log())[before:]
    figures.requests = len(rest)
    figures.limit_refusals = sum(1 for _, _, status in rest if status == 503)
    figures.floor_s = floor_seconds(figures.requests - figures.limit_refusals, sandbox_limit)
    figures.leads, figures.activities, figures.histories = (
        fetched.leads,
        fetched.activities,
        fetched.histories,
    )
    return figures


async def run_bench(
    chats: int = 1_000,
    limit: str = "standard",
    *,
    mode: Mode = "processes",
    compare_growth: bool = False,
    peers: bool = True,
    cpu_chats: int | None = None,
    progress: Callable[[str], None] = say,
) -> Report:
    """The burst (and the peers) on ``limit``, plugin CPU in one process, memory growth."""
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="b24-bench-") as tmp:
        workdir = Path(tmp)
        progress(f"{mode}: host, sandbox (limit {limit}) and timing relay starting")
        async with _connected(mode, workdir / "main", limit) as (system, client, setup):
            progress(f"burst of {chats} chats")
            burst = await run_burst(
                client, system, setup, workdir / "main" / "host.sqlite3", chats, limit
            )
            progress(
                f"{burst.appeals} appeals, {burst.rest_requests} REST requests, "
                f"drain {burst.drain_s:.1f} s"
            )
            peer_figures = []
            if peers:
                for name in PEERS:
                    progress(f"{name}: the same records for {len(burst.lead_ids)} leads")
                    peer_figures.append(
                        await _peer(name, system, setup, burst.lead_ids, limit, progress)
                    )
        n = min(cpu_chats or chats, CPU_CHATS_MAX)
        progress(f"plugin CPU in one process: {n} chats, recorded then replayed")
        (workdir / "cpu").mkdir()
        cpu = await plugin_cpu(n, workdir / "cpu")
        growth = []
        if compare_growth:
            for size in GROWTH_SIZES:
                progress(f"memory growth: {size} chats with the sandbox's limit off")
                run = workdir / f"growth-{size}"
                async with _connected(mode, run, "off") as (system, client, setup):
                    figures = await run_burst(
                        client, system, setup, run / "host.sqlite3", size, "off"
                    )
                growth.append(
                    GrowthFigures(
                        size,
                        figures.host_peak_rss_mb,
                        figures.drain_s,
                        figures.appeals,
                        figures.rest_requests,
                        figures.sandbox_cpu_s,
                    )
                )
    return Report(
        mode, limit, burst, peer_figures, cpu, growth, seconds=time.perf_counter() - began
    )
