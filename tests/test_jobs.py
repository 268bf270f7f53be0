"""The job queue contract, on both backends (SQLite's jobs table, procrastinate on PostgreSQL):
coalescing, one running job per integration across workers, delays, failures, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from hooks.host.database import open_repository
from hooks.host.jobs import JobQueue, WorkerTimings, open_job_queue
from hooks.host.pg_jobs import ProcrastinateJobQueue
from hooks.host.sqlite_jobs import SqliteJobQueue
from tests.conftest import HOST_KEY

pytestmark = pytest.mark.anyio

HANG = 20.0  # only guards against a hang
LOCKED = frozenset({"drain", "schedule"})
FAST = WorkerTimings(poll=0.05, heartbeat=0.2, stalled_after=1.0, failed_delay=0.3)

OpenQueue = Callable[[], Awaitable[JobQueue]]


@pytest.fixture(params=["sqlite", "postgres"])
async def open_queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenQueue]:
    """Opens queues (workers) on one fresh database; closes them all at the end."""
    if request.param == "sqlite":
        url = str(tmp_path / "host.sqlite3")
    else:
        url = request.getfixturevalue("postgres_url")
    repo = await open_repository(url, key=HOST_KEY)  # its migrations make the jobs' schema
    await repo.close()
    opened: list[JobQueue] = []

    async def open_one() -> JobQueue:
        queue: JobQueue
        if request.param == "sqlite":
            queue = SqliteJobQueue.open(url, locked=LOCKED, timings=FAST)
        else:
            queue = await ProcrastinateJobQueue.open(url, locked=LOCKED, timings=FAST)
        opened.append(queue)
        return queue

    yield open_one
    for queue in opened:
        await queue.close()


class Recorder:
    """A handler that records its runs and can be held inside a run until released."""

    def __init__(self, log: list[tuple[str, str]] | None = None, name: str = "") -> None:
        self.calls: list[str] = []
        self.log = log if log is not None else []
        self.name = name
        self.active: Counter[str] = Counter()
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str) -> None:
        self.calls.append(key)
        self.log.append((self.name, key))
        self.active[key] += 1
        self.started.set()
        try:
            await self.release.wait()
        finally:
            self.active[key] -= 1


@contextlib.asynccontextmanager
async def working(queue: JobQueue, **options: Any) -> AsyncIterator[asyncio.Event]:
    """``queue`` runs a worker for the block; leaving it stops the worker."""
    stop = asyncio.Event()
    task = asyncio.create_task(queue.run_worker(stop, **options))
    try:
        yield stop
    finally:
        stop.set()
        with anyio.fail_after(HANG):
            await task


async def test_asking_again_for_a_waiting_job_coalesces(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    recorder = Recorder()
    queue.register("drain", recorder)
    for _ in range(5):
        await queue.enqueue("drain", "1")
    await queue.enqueue("drain", "2")
    async with working(queue):
        with anyio.fail_after(HANG):
            await queue.idle()
    assert sorted(recorder.calls) == ["1", "2"]


async def test_asked_for_while_running_runs_once_more_afterwards(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    recorder = Recorder()
    recorder.release.clear()
    queue.register("drain", recorder)
    await queue.enqueue("drain", "1")
    async with working(queue):
        with anyio.fail_after(HANG):
            await recorder.started.wait()
        for _ in range(3):
            await queue.enqueue("drain", "1")
        await asyncio.sleep(0.3)
        assert recorder.calls == ["1"]  # not beside the running one
        recorder.release.set()
        with anyio.fail_after(HANG):
            await queue.idle()
    assert recorder.calls == ["1", "1"]


async def test_an_integrations_locked_jobs_never_overlap_across_workers(
    open_queue: OpenQueue,
) -> None:
    """Three workers, drains and periodic work of two integrations asked for again and again:
    never two at once for one integration, and the two integrations do run side by side."""
    workers = [await open_queue() for _ in range(3)]
    overlap: list[str] = []
    running: Counter[str] = Counter()
    concurrent_integrations = 0

    def handler(name: str) -> Callable[[str], Awaitable[None]]:
        async def run(key: str) -> None:
            nonlocal concurrent_integrations
            integration = key.partition("@")[0]
            running[integration] += 1
            if running[integration] > 1:
                overlap.append(f"{name}({key})")
            concurrent_integrations = max(
                concurrent_integrations, sum(1 for v in running.values() if v)
            )
            await asyncio.sleep(0.05)
            running[integration] -= 1

        return run

    for queue in workers:
        queue.register("drain", handler("drain"))
        queue.register("schedule", handler("schedule"))
    async with contextlib.AsyncExitStack() as stack:
        for queue in workers:
            await stack.enter_async_context(working(queue))
        for round_ in range(8):
            for integration in ("1", "2"):
                await workers[round_ % 3].enqueue("drain", integration)
                await workers[(round_ + 1) % 3].enqueue("schedule", integration)
            await asyncio.sleep(0.03)
        with anyio.fail_after(HANG):
            await workers[0].idle()
    assert overlap == []
    assert concurrent_integrations == 2  # shared nothing but the database, still in parallel


async def test_a_delayed_job_waits_and_idle_does_not_wait_for_it(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    recorder = Recorder()
    queue.register("wake", recorder)
    await queue.enqueue("wake", "1@later", delay=1.5)
    async with working(queue):
        with anyio.fail_after(HANG):
            await queue.idle()
        assert recorder.calls == []
        await asyncio.sleep(2.0)
        with anyio.fail_after(HANG):
            await queue.idle()
    assert recorder.calls == ["1@later"]


async def test_a_failing_job_is_logged_and_runs_again(
    open_queue: OpenQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = await open_queue()
    attempts: list[str] = []

    async def flaky(key: str) -> None:
        attempts.append(key)
        if len(attempts) == 1:
            raise RuntimeError("the first attempt breaks")

    queue.register("drain", flaky)
    await queue.enqueue("drain", "1")
    with caplog.at_level(logging.ERROR, logger="hooks.host.jobs"):
        async with working(queue):
            with anyio.fail_after(HANG):
                while len(attempts) < 2:
                    await asyncio.sleep(0.05)
    assert attempts == ["1", "1"]
    assert "job drain(1) failed" in caplog.text


async def test_stopping_lets_running_jobs_finish_within_the_grace(open_queue: OpenQueue) -> None:
    queue = await open_queue()
    finished: list[str] = []

    async def slow(key: str) -> None:
        await asyncio.sleep(0.3)
        finished.append(key)

    queue.register("drain", slow)
    await queue.enqueue("drain", "1")
    async with working(queue, grace=5.0):
        await asyncio.sleep(0.15)  # taken, running
    assert finished == ["1"]


async def test_a_job_cut_short_by_stopping_waits_for_the_next_worker(
    open_queue: OpenQueue,
) -> None:
    first = await open_queue()
    held = Recorder()
    held.release.clear()
    first.register("drain", held)
    await first.enqueue("drain", "1")
    async with working(first, grace=0.1):
        with anyio.fail_after(HANG):
            await held.started.wait()
    second = await open_queue()
    recorder = Recorder()
    second.register("drain", recorder)
    async with working(second):
        with anyio.fail_after(HANG):
            while not recorder.calls:
                await asyncio.sleep(0.05)
            await second.idle()
    assert recorder.calls == ["1"]


async def test_open_job_queue_picks_the_backend_from_the_url(tmp_path: Path) -> None:
    path = str(tmp_path / "host.sqlite3")
    repo = await open_repository(path, key=HOST_KEY)
    await repo.close()
    queue = await open_job_queue(path, locked=LOCKED)
    try:
        assert isinstance(queue, SqliteJobQueue)
    finally:
        await queue.close()
    with pytest.raises(ValueError, match="in-memory"):
        await open_job_queue(":memory:", locked=LOCKED)
