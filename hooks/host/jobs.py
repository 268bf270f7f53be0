"""The host's work seam: background work is asked for and run through ``JobQueue`` only.

Jobs live in the database, never only in a process: SQLite's ``jobs`` table
(``hooks.host.sqlite_jobs``) or procrastinate on PostgreSQL (``hooks.host.pg_jobs``), chosen by
the database URL (``open_job_queue``). Any process may ask for a job; any number of workers,
on any machine that reaches the database, take them.

A job is a name and a key. Two rules, the same on both backends, make the whole model:

- **one waiting job per (name, key)**: asking for a job that is already waiting coalesces with
  it (so a thousand webhooks of one portal make one waiting drain);
- **one running job per lock**: jobs of a *locked* name hold the lock of their key's
  integration (``integration:<id>``), shared by every locked name, so an integration's drain
  and its periodic work never overlap, on any worker.

A job that raises is asked for again after ``FAILED_JOB_DELAY``; a worker that dies while
running one leaves it to be recovered (its heartbeat stops) and run again by another worker.
What a job does is keyed (appeal key, inbox item id), so running it twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("hooks.host.jobs")

JobHandler = Callable[[str], Awaitable[None]]
FAILED_JOB_DELAY = 10.0


def lock_of(key: str) -> str:
    """The lock a locked job holds: its integration's (a key is ``<id>`` or ``<id>@…``)."""
    return "integration:" + key.partition("@")[0]


class JobQueue(Protocol):
    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        """Ask for ``(name, key)`` to run once, ``delay`` seconds from now (or with the job of
        that name and key already waiting)."""
        ...

    async def enqueue_many(self, name: str, keys: Collection[str]) -> None:
        """``enqueue(name, key)`` for each of ``keys``, due now, in as few round trips as the
        database allows (the web process asks for many drains at once under a burst)."""
        ...

    def register(self, name: str, handler: JobHandler) -> None:
        """What a worker runs for jobs of ``name`` (only workers need handlers)."""
        ...

    async def run_worker(self, stop: asyncio.Event, *, concurrency: int = 8) -> None:
        """Take and run jobs, up to ``concurrency`` at once, until ``stop`` is set; then let
        the running ones finish."""
        ...

    async def idle(self) -> None:
        """Wait until no job is running or waiting to run now (later ones don't count)."""
        ...

    async def status(self) -> QueueStatus:
        """The queue as the database holds it, for every worker on every machine."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class QueueStatus:
    """How much work waits and who is there to do it (``/readyz``, ``/metrics``)."""

    due: int  # waiting, and due now
    scheduled: int  # waiting for a later time
    running: int
    workers: int  # workers that proved alive within ``stalled_after``
    last_worker_seen: float | None  # Unix seconds of the latest proof of life, if any


@dataclass(frozen=True)
class WorkerTimings:
    """How often a worker looks for jobs and proves it is alive, when a silent one's jobs are
    taken back (and it no longer counts as alive), and how long a failed job waits (tests
    shorten them all)."""

    poll: float = 0.05
    heartbeat: float = 1.0
    stalled_after: float = 10.0
    failed_delay: float = FAILED_JOB_DELAY


class QueueBase:
    """What both queues share: which names are locked, the handlers, and running one job."""

    def __init__(self, *, locked: frozenset[str], timings: WorkerTimings) -> None:
        self._locked = locked
        self._timings = timings
        self._handlers: dict[str, JobHandler] = {}

    def register(self, name: str, handler: JobHandler) -> None:
        if name in self._handlers:
            raise ValueError(f"a handler for job {name!r} is already registered")
        self._handlers[name] = handler

    def _lock(self, name: str, key: str) -> str | None:
        return lock_of(key) if name in self._locked else None

    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        raise NotImplementedError

    async def enqueue_many(self, name: str, keys: Collection[str]) -> None:
        """One ``enqueue`` after the other (a queue with cheaper ways overrides this)."""
        for key in dict.fromkeys(keys):
            await self.enqueue(name, key)

    async def _run_handler(self, name: str, key: str) -> None:
        """Run one job; one that fails is logged and asked for again ``failed_delay`` seconds
        later, never lost, and never takes the worker (or the other jobs) down with it."""
        delay = self._timings.failed_delay
        try:
            await self._handlers[name](key)
        except Exception:
            log.exception("job %s(%s) failed; it runs again in %s s", name, key, delay)
            await self.enqueue(name, key, delay=delay)


async def open_job_queue(url: str, *, locked: frozenset[str]) -> JobQueue:
    """The job queue of the database ``url`` names; ``locked``: the job names that hold their
    integration's lock."""
    from hooks.host.database import is_postgres, sqlite_path

    if is_postgres(url):
        from hooks.host.pg_jobs import ProcrastinateJobQueue

        return await ProcrastinateJobQueue.open(url, locked=locked)
    from hooks.host.sqlite_jobs import SqliteJobQueue

    return SqliteJobQueue.open(sqlite_path(url), locked=locked)
