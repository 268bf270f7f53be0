"""The ``JobQueue`` on PostgreSQL: procrastinate holds the jobs, any number of workers run them.

The model of ``hooks.host.jobs`` maps onto procrastinate's two locks: a job's
``queueing_lock`` is ``<name>:<key>`` (one waiting job per name and key; a second defer raises
``AlreadyEnqueued``, which is the coalescing), and a locked job's ``lock`` is its integration's
(one running job per integration, cluster-wide).

Two procrastinate pitfalls shape what is *not* used (``shared/design/SCALE-OUT.md``):
procrastinate's own retry on a task with a queueing lock can wedge a job in ``doing`` while it
holds the lock (its issues #1446, #1543), so a job that fails is deferred anew with a delay
(``hooks.host.jobs.QueueBase``); and a job scheduled for later blocks every job with the same
lock (#1599), so the host defers locked jobs for *now* only and waits with unlocked ones (the
inbox's ``wake``). Stalled jobs (a worker killed while running them: its heartbeat stops) are
marked failed and deferred anew by whichever worker sees them first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection
from typing import Any

import procrastinate
from procrastinate import exceptions as procrastinate_errors
from procrastinate.jobs import Status
from psycopg import AsyncConnection

from hooks.host.jobs import JobHandler, QueueBase, QueueStatus, WorkerTimings
from hooks.host.pg_pool import pool_checking_quietly

log = logging.getLogger("hooks.host.jobs")

TASK_ARG = "key"


async def _autocommit(conn: AsyncConnection[Any]) -> None:
    """Each of procrastinate's queries is one statement (a call of one of its functions, or a
    read), so it needs no transaction of its own: without autocommit, psycopg sends ``BEGIN``
    before it and the pool ``COMMIT`` after it, three round trips for every defer, fetch and
    finish. (Not a connection keyword: procrastinate adds ``autocommit`` itself to the one
    connection it opens for LISTEN, and would pass it twice.)"""
    await conn.set_autocommit(True)


class ProcrastinateJobQueue(QueueBase):
    """``hooks.host.jobs.JobQueue`` on procrastinate. Create with ``open``."""

    def __init__(
        self, app: procrastinate.App, *, locked: frozenset[str], timings: WorkerTimings
    ) -> None:
        super().__init__(locked=locked, timings=timings)
        self._app = app

    @classmethod
    async def open(
        cls, url: str, *, locked: frozenset[str], timings: WorkerTimings | None = None
    ) -> ProcrastinateJobQueue:
        """Connect to the database ``url`` names, whose schema the repository's migrations made
        (procrastinate's own schema is one of them)."""
        # The pool checks a connection when it is taken (``hooks.host.pg_pool``), so a restart
        # of PostgreSQL costs no failed defer. Workers hear of new jobs by LISTEN/NOTIFY;
        # ``poll`` is only their fallback.
        connector = procrastinate.PsycopgConnector(
            conninfo=url,
            min_size=1,
            max_size=10,
            pool_factory=pool_checking_quietly,
            configure=_autocommit,
        )
        app = procrastinate.App(connector=connector)
        await app.open_async()
        return cls(app, locked=locked, timings=timings or WorkerTimings(poll=1.0, heartbeat=2.0))

    async def close(self) -> None:
        await self._app.close_async()

    def register(self, name: str, handler: JobHandler) -> None:
        super().register(name, handler)

        async def run(key: str) -> None:
            try:
                await self._run_handler(name, key)
            except asyncio.CancelledError:  # the worker is stopping: the job waits again
                await self.enqueue(name, key)
                raise

        # No ``retry=``: see the module's docstring.
        self._app.task(name=name)(run)

    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        """See ``JobQueue.enqueue``; a waiting job keeps its own time."""
        await self._enqueue(name, [key], delay=delay)

    async def enqueue_many(self, name: str, keys: Collection[str]) -> None:
        """See ``JobQueue.enqueue_many``: one read for all, then a defer for each missing."""
        await self._enqueue(name, list(dict.fromkeys(keys)))

    async def _enqueue(self, name: str, keys: list[str], *, delay: float = 0.0) -> None:
        if not keys:
            return
        locks = {f"{name}:{key}": key for key in keys}
        # Most asks find their job already waiting (a burst of one portal's webhooks): a read
        # says so without a failed insert, which PostgreSQL would log as an error each time.
        # Safe: a job waiting now runs after what the caller committed before asking.
        waiting = await self._app.connector.execute_query_all_async(
            "SELECT DISTINCT queueing_lock FROM procrastinate_jobs"
            " WHERE queueing_lock = ANY(%(locks)s::text[]) AND status = 'todo'",
            locks=list(locks),
        )
        found = {row["queueing_lock"] for row in waiting}
        missing = [key for lock, key in locks.items() if lock not in found]
        await asyncio.gather(*(self._defer(name, key, delay) for key in missing))

    async def _defer(self, name: str, key: str, delay: float) -> None:
        options: dict[str, Any] = {"queueing_lock": f"{name}:{key}"}
        if (lock := self._lock(name, key)) is not None:
            options["lock"] = lock
        if delay > 0:
            options["schedule_in"] = {"seconds": delay}
        with contextlib.suppress(procrastinate_errors.AlreadyEnqueued):
            await self._app.configure_task(name, **options).defer_async(**{TASK_ARG: key})

    async def idle(self) -> None:
        while True:
            row = await self._app.connector.execute_query_one_async(
                """
                SELECT count(*) AS busy FROM procrastinate_jobs
                WHERE status = 'doing'
                   OR (status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now()))
                """
            )
            if not row["busy"]:
                return
            await asyncio.sleep(0.05)

    async def status(self) -> QueueStatus:
        """Jobs from ``procrastinate_jobs``; workers from ``procrastinate_workers``, whose
        heartbeat procrastinate's workers keep whether they run jobs or not."""
        jobs = await self._app.connector.execute_query_one_async(
            """
            SELECT count(*) FILTER (WHERE status = 'todo'
                                    AND (scheduled_at IS NULL OR scheduled_at <= now())) AS due,
                   count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
                   count(*) FILTER (WHERE status = 'doing') AS running
            FROM procrastinate_jobs
            """
        )
        workers = await self._app.connector.execute_query_one_async(
            """
            SELECT count(*) FILTER (
                       WHERE last_heartbeat >= now() - make_interval(secs => %(stall)s)
                   ) AS alive,
                   extract(epoch FROM max(last_heartbeat))::float8 AS seen
            FROM procrastinate_workers
            """,
            stall=self._timings.stalled_after,
        )
        return QueueStatus(
            due=jobs["due"],
            scheduled=jobs["scheduled"],
            running=jobs["running"],
            workers=workers["alive"],
            last_worker_seen=workers["seen"],
        )

    async def run_worker(
        self, stop: asyncio.Event, *, concurrency: int = 8, grace: float = 10.0
    ) -> None:
        """procrastinate's worker until ``stop`` is set, beside the recovery of stalled jobs."""
        worker = asyncio.create_task(
            self._app.run_worker_async(
                concurrency=concurrency,
                install_signal_handlers=False,
                update_heartbeat_interval=self._timings.heartbeat,
                stalled_worker_timeout=self._timings.stalled_after,
                shutdown_graceful_timeout=grace,
                fetch_job_polling_interval=self._timings.poll,
                delete_jobs="successful",
            ),
            name="procrastinate worker",
        )
        recovery = asyncio.create_task(self._recover_stalled(), name="stalled jobs")
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({worker, stopping}, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            recovery.cancel()
            worker.cancel()  # procrastinate stops gracefully on cancellation
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            with contextlib.suppress(asyncio.CancelledError):
                await recovery

    async def _recover_stalled(self) -> None:
        """Jobs of workers whose heartbeat stopped: failed, and deferred anew (not retried:
        a retry could collide with a waiting job's queueing lock, #1446)."""
        manager = self._app.job_manager
        while True:
            await asyncio.sleep(self._timings.heartbeat)
            try:
                stalled = await manager.get_stalled_jobs(
                    seconds_since_heartbeat=self._timings.stalled_after
                )
                for job in stalled:
                    key = str(job.task_kwargs.get(TASK_ARG, ""))
                    log.warning("job %s(%s) of a stopped worker runs again", job.task_name, key)
                    with contextlib.suppress(procrastinate_errors.ProcrastinateException):
                        await manager.finish_job(job, status=Status.FAILED, delete_job=False)
                    await self.enqueue(job.task_name, key)
            except Exception:  # the database is away: try again on the next beat
                log.exception("could not recover stalled jobs")
