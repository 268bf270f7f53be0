"""The in-process job queue: coalescing, one run per key at a time, delays, failures, stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import pytest

from hooks.host.inprocess_jobs import InProcessJobQueue

pytestmark = pytest.mark.anyio

# Generous limits that only guard against a hang; no test relies on them for its result.
HANG = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def queue() -> AsyncIterator[InProcessJobQueue]:
    jobs = InProcessJobQueue(stop_grace=0.05)
    try:
        yield jobs
    finally:
        await jobs.stop()


class Recorder:
    """A handler that records its runs and can be held inside a run until released."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.active: Counter[str] = Counter()
        self.max_active: Counter[str] = Counter()
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str) -> None:
        self.calls.append(key)
        self.active[key] += 1
        self.max_active[key] = max(self.max_active[key], self.active[key])
        self.started.set()
        try:
            await self.release.wait()
        finally:
            self.active[key] -= 1


async def test_enqueue_before_start_coalesces_and_runs_after_start(
    queue: InProcessJobQueue,
) -> None:
    recorder = Recorder()
    queue.register("drain", recorder)
    for _ in range(3):
        await queue.enqueue("drain", "1")
    await queue.enqueue("drain", "2")
    await asyncio.sleep(0)
    assert recorder.calls == []

    await queue.start()
    with anyio.fail_after(HANG):
        await queue.idle()
    assert sorted(recorder.calls) == ["1", "2"]


async def test_waiting_job_keeps_the_earlier_due_time(queue: InProcessJobQueue) -> None:
    recorder = Recorder()
    queue.register("drain", recorder)
    await queue.start()
    loop = asyncio.get_running_loop()
    asked_at = loop.time()

    await queue.enqueue("drain", "1", delay=0.05)
    await queue.enqueue("drain", "1", delay=60)  # later: must not push the run back
    await queue.idle()  # delayed jobs don't count as work
    assert recorder.calls == []

    with anyio.fail_after(HANG):
        await recorder.started.wait()
    assert loop.time() - asked_at >= 0.049  # not before its delay
    await queue.idle()
    assert recorder.calls == ["1"]


async def test_earlier_request_moves_a_delayed_job_forward(queue: InProcessJobQueue) -> None:
    recorder = Recorder()
    queue.register("drain", recorder)
    await queue.start()

    await queue.enqueue("drain", "1", delay=60)
    await queue.enqueue("drain", "1")
    with anyio.fail_after(HANG):
        await queue.idle()
    assert recorder.calls == ["1"]


async def test_delays_order_runs(queue: InProcessJobQueue) -> None:
    recorder = Recorder()
    queue.register("drain", recorder)
    await queue.start()

    await queue.enqueue("drain", "late", delay=0.1)
    await queue.enqueue("drain", "soon", delay=0.05)
    await queue.enqueue("drain", "now")
    with anyio.fail_after(HANG):
        while len(recorder.calls) < 3:
            await asyncio.sleep(0.01)
    assert recorder.calls == ["now", "soon", "late"]


async def test_asked_for_while_running_runs_once_more_afterwards(
    queue: InProcessJobQueue,
) -> None:
    recorder = Recorder()
    recorder.release.clear()
    queue.register("drain", recorder)
    await queue.start()

    await queue.enqueue("drain", "1")
    with anyio.fail_after(HANG):
        await recorder.started.wait()
    for _ in range(3):
        await queue.enqueue("drain", "1")
    await asyncio.sleep(0.01)
    assert recorder.calls == ["1"]  # never beside the running one

    recorder.release.set()
    with anyio.fail_after(HANG):
        await queue.idle()
    assert recorder.calls == ["1", "1"]
    assert recorder.max_active["1"] == 1


async def test_a_job_may_ask_for_itself_again_with_a_delay(queue: InProcessJobQueue) -> None:
    """What a drain does when items remain for later: the re-run honours the delay."""
    runs: list[float] = []
    loop = asyncio.get_running_loop()

    async def drain(key: str) -> None:
        runs.append(loop.time())
        if len(runs) < 3:
            await queue.enqueue("drain", key, delay=0.05)

    queue.register("drain", drain)
    await queue.start()
    await queue.enqueue("drain", "1")
    with anyio.fail_after(HANG):
        while len(runs) < 3:
            await asyncio.sleep(0.01)
    assert all(b - a >= 0.049 for a, b in itertools.pairwise(runs))
    await queue.idle()
    assert len(runs) == 3


async def test_different_keys_run_concurrently(queue: InProcessJobQueue) -> None:
    both_running = asyncio.Event()
    running: set[str] = set()

    async def drain(key: str) -> None:
        running.add(key)
        if running == {"1", "2"}:
            both_running.set()
        await both_running.wait()  # deadlocks (and times out) unless the two overlap

    queue.register("drain", drain)
    await queue.start()
    await queue.enqueue("drain", "1")
    await queue.enqueue("drain", "2")
    with anyio.fail_after(HANG):
        await queue.idle()
    assert both_running.is_set()


async def test_same_key_under_other_job_names_is_a_different_job(
    queue: InProcessJobQueue,
) -> None:
    drains, reconciles = Recorder(), Recorder()
    queue.register("drain", drains)
    queue.register("reconcile", reconciles)
    await queue.start()
    await queue.enqueue("drain", "1")
    await queue.enqueue("reconcile", "1")
    with anyio.fail_after(HANG):
        await queue.idle()
    assert (drains.calls, reconciles.calls) == (["1"], ["1"])


async def test_a_failing_handler_is_logged_and_the_queue_goes_on(
    queue: InProcessJobQueue, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []

    async def flaky(key: str) -> None:
        calls.append(key)
        if len(calls) == 1:
            raise RuntimeError("boom")

    queue.register("drain", flaky)
    await queue.start()
    with caplog.at_level(logging.ERROR, logger="hooks.host.jobs"):
        await queue.enqueue("drain", "1")
        with anyio.fail_after(HANG):
            await queue.idle()
        await queue.enqueue("drain", "1")
        await queue.enqueue("drain", "2")
        with anyio.fail_after(HANG):
            await queue.idle()

    assert sorted(calls) == ["1", "1", "2"]
    [record] = caplog.records
    assert record.name == "hooks.host.jobs" and "drain(1) failed" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_stop_cancels_running_jobs_and_drops_waiting_ones() -> None:
    queue = InProcessJobQueue(stop_grace=0.01)
    cancelled = asyncio.Event()
    started = asyncio.Event()
    delayed: list[str] = []

    async def stuck(key: str) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def record(key: str) -> None:
        delayed.append(key)

    queue.register("stuck", stuck)
    queue.register("later", record)
    await queue.start()
    await queue.enqueue("stuck", "1")
    await queue.enqueue("later", "1", delay=30)
    with anyio.fail_after(HANG):
        await started.wait()
        await queue.stop()
    assert cancelled.is_set()

    await queue.enqueue("later", "2")  # ignored once stopped
    await asyncio.sleep(0.05)
    assert delayed == []
    with anyio.fail_after(HANG):
        await queue.idle()
    with pytest.raises(RuntimeError):
        await queue.start()


async def test_stop_lets_a_job_finish_within_the_grace_period() -> None:
    queue = InProcessJobQueue(stop_grace=HANG)
    finished: list[str] = []

    async def short(key: str) -> None:
        await asyncio.sleep(0.02)
        finished.append(key)

    queue.register("drain", short)
    await queue.start()
    await queue.enqueue("drain", "1")
    with anyio.fail_after(HANG):
        await queue.stop()
    assert finished == ["1"]


async def test_unknown_and_duplicate_job_names_are_errors(queue: InProcessJobQueue) -> None:
    queue.register("drain", Recorder())
    with pytest.raises(ValueError):
        queue.register("drain", Recorder())
    with pytest.raises(LookupError):
        await queue.enqueue("nope", "1")
