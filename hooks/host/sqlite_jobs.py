"""The embedded ``JobQueue``: the host's jobs as rows of the SQLite file's ``jobs`` table.

The table (migration ``m008_job_queue``) has two partial unique indexes that carry the model of
``hooks.host.jobs``: one ``todo`` row per (name, key) and one ``doing`` row per lock. A worker
takes a job by turning its row into ``doing`` with its own name in one ``BEGIN IMMEDIATE``
transaction, so two workers on the same file never take the same job, and deletes the row when
the job is done. While it runs, the worker refreshes the row's heartbeat; a ``doing`` row whose
heartbeat has stopped belonged to a worker that died, and the next worker to look puts the job
back as waiting. SQLite has no notifications: workers poll (every ``poll`` seconds, and at once
for jobs asked for in their own process). Busy or idle, a worker also keeps a row of
``job_workers`` fresh, a few times per ``stalled_after``, so that the host can tell whether any
worker is there (``/readyz``); it removes the row when it stops.

Writes here skip the wait for the disk (``synchronous=NORMAL``): a job row lost to a power cut
stands for work that is still in the database (pending inbox items), which the scheduler's tick
finds and asks for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Collection, Iterator

from hooks.host.jobs import QueueBase, QueueStatus, WorkerTimings

log = logging.getLogger("hooks.host.jobs")

MEMORY = ":memory:"
# A job waits: a new row, or the waiting one of its name and key, which keeps the earlier time.
_WAIT = """
    INSERT INTO jobs (name, key, lock, status, scheduled_at) VALUES (?, ?, ?, 'todo', ?)
    ON CONFLICT (name, key) WHERE status = 'todo'
    DO UPDATE SET scheduled_at = MIN(scheduled_at, excluded.scheduled_at)
"""
# The next job to run: due, and its lock (if it has one) held by no running job.
_NEXT = """
    SELECT id, name, key FROM jobs AS waiting
    WHERE status = 'todo' AND scheduled_at <= ?
      AND (lock IS NULL OR NOT EXISTS (
          SELECT 1 FROM jobs AS busy WHERE busy.status = 'doing' AND busy.lock = waiting.lock))
    ORDER BY scheduled_at, id LIMIT 1
"""
# A worker's row outlives it only if it was killed; after a day it is not worth keeping.
FORGET_WORKERS_AFTER = 86_400.0


class SqliteJobQueue(QueueBase):
    """``hooks.host.jobs.JobQueue`` on the host's SQLite file. Create with ``open``."""

    def __init__(
        self, db: sqlite3.Connection, *, locked: frozenset[str], timings: WorkerTimings
    ) -> None:
        super().__init__(locked=locked, timings=timings)
        self._db = db
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._last_recovery = 0.0
        self._last_presence = 0.0

    @classmethod
    def open(
        cls, path: str, *, locked: frozenset[str], timings: WorkerTimings | None = None
    ) -> SqliteJobQueue:
        """Open the queue of the database at ``path``, whose schema the repository made."""
        if path == MEMORY:
            raise ValueError("an in-memory database cannot hold the host's jobs: give --db a file")
        db = sqlite3.connect(path, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        return cls(db, locked=locked, timings=timings or WorkerTimings())

    async def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        """See ``JobQueue.enqueue``; a waiting job keeps the earlier of the two times."""
        lock = self._lock(name, key)
        with self._write() as db:
            db.execute(_WAIT, (name, key, lock, time.time() + max(delay, 0.0)))
        self._wake.set()

    async def enqueue_many(self, name: str, keys: Collection[str]) -> None:
        """See ``JobQueue.enqueue_many``: one transaction."""
        now = time.time()
        with self._write() as db:
            db.executemany(_WAIT, [(name, key, self._lock(name, key), now) for key in keys])
        self._wake.set()

    async def idle(self) -> None:
        while True:
            row = self._db.execute(
                """
                SELECT 1 FROM jobs
                WHERE status = 'doing' OR (status = 'todo' AND scheduled_at <= ?) LIMIT 1
                """,
                (time.time(),),
            ).fetchone()
            if row is None:
                return
            await asyncio.sleep(self._timings.poll)

    async def status(self) -> QueueStatus:
        now = time.time()
        jobs = self._db.execute(
            """
            SELECT count(*) FILTER (WHERE status = 'todo' AND scheduled_at <= :now) AS due,
                   count(*) FILTER (WHERE status = 'todo' AND scheduled_at > :now) AS scheduled,
                   count(*) FILTER (WHERE status = 'doing') AS running
            FROM jobs
            """,
            {"now": now},
        ).fetchone()
        workers = self._db.execute(
            "SELECT count(*) FILTER (WHERE heartbeat_at >= ?) AS alive, max(heartbeat_at) AS seen"
            " FROM job_workers",
            (now - self._timings.stalled_after,),
        ).fetchone()
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
        """Take jobs until ``stop`` is set; then give the running ones ``grace`` seconds and
        cancel the rest, whose jobs wait again for the next worker."""
        running: set[asyncio.Task[None]] = set()
        self._prove_alive(time.time())
        beating = asyncio.create_task(self._beat(), name="job heartbeat")
        stopping = asyncio.create_task(stop.wait(), name="job worker stop")
        try:
            while not stop.is_set():
                job = self._take() if len(running) < concurrency else None
                if job is not None:
                    task = asyncio.create_task(self._run(*job), name=f"job {job[1]}({job[2]})")
                    running.add(task)
                    task.add_done_callback(running.discard)
                    task.add_done_callback(lambda _: self._wake.set())
                    continue
                self._wake.clear()
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {woken, stopping}, timeout=self._timings.poll, return_when="FIRST_COMPLETED"
                )
                woken.cancel()
            if running:
                _, late = await asyncio.wait(running, timeout=grace)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late)
        finally:
            stopping.cancel()
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            with contextlib.suppress(sqlite3.Error), self._write() as db:
                db.execute("DELETE FROM job_workers WHERE name = ?", (self.worker_name,))

    def _take(self) -> tuple[int, str, str] | None:
        """The next due job whose lock is free, now ours; ``None`` when there is none.

        A plain read looks first: the write lock (which the web process's webhook commits
        need too) is taken only when there is a job to take or stalled ones to look for.
        """
        now = time.time()
        recover = now - self._last_recovery >= self._timings.heartbeat and self._any_stalled(now)
        if not recover and self._db.execute(_NEXT, (now,)).fetchone() is None:
            return None
        with self._write() as db:
            if recover:
                self._recover_stalled(db, now)
            row = db.execute(_NEXT, (now,)).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'doing', worker = ?, heartbeat_at = ? WHERE id = ?",
                (self.worker_name, now, row["id"]),
            )
        return int(row["id"]), str(row["name"]), str(row["key"])

    def _any_stalled(self, now: float) -> bool:
        self._last_recovery = now
        row = self._db.execute(
            "SELECT 1 FROM jobs WHERE status = 'doing' AND heartbeat_at < ? LIMIT 1",
            (now - self._timings.stalled_after,),
        ).fetchone()
        return row is not None

    def _recover_stalled(self, db: sqlite3.Connection, now: float) -> None:
        """Jobs of workers whose heartbeat stopped wait again, to run on a live worker."""
        stalled = db.execute(
            "SELECT id, name, key, lock FROM jobs WHERE status = 'doing' AND heartbeat_at < ?",
            (now - self._timings.stalled_after,),
        ).fetchall()
        for row in stalled:
            log.warning("job %s(%s) of a stopped worker runs again", row["name"], row["key"])
            self._wait_again(db, row, now)

    @staticmethod
    def _wait_again(db: sqlite3.Connection, row: sqlite3.Row, now: float) -> None:
        """A taken job back to waiting (coalescing with a waiting one of its name and key)."""
        db.execute("DELETE FROM jobs WHERE id = ?", (row["id"],))
        db.execute(_WAIT, (row["name"], row["key"], row["lock"], now))

    async def _run(self, job_id: int, name: str, key: str) -> None:
        if name not in self._handlers:
            log.error("no handler for job %s(%s) in this worker", name, key)
            self._release(job_id)
            return
        try:
            await self._run_handler(name, key)
        except BaseException:  # cancelled: the worker is stopping; the job waits again
            self._release(job_id)
            raise
        with self._write() as db:
            db.execute("DELETE FROM jobs WHERE id = ? AND worker = ?", (job_id, self.worker_name))

    def _release(self, job_id: int) -> None:
        """Give a job we took back to the queue, due now."""
        with self._write() as db:
            row = db.execute(
                "SELECT id, name, key, lock FROM jobs WHERE id = ? AND worker = ?",
                (job_id, self.worker_name),
            ).fetchone()
            if row is not None:
                self._wait_again(db, row, time.time())

    def _prove_alive(self, now: float) -> None:
        """This worker's row in ``job_workers``, fresh (and rows of long-dead ones gone)."""
        self._last_presence = now
        with self._write() as db:
            db.execute(
                "INSERT INTO job_workers (name, heartbeat_at) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                (self.worker_name, now),
            )
            db.execute(
                "DELETE FROM job_workers WHERE heartbeat_at < ?", (now - FORGET_WORKERS_AFTER,)
            )

    async def _beat(self) -> None:
        """Keep this worker's running jobs marked alive, and the worker itself."""
        while True:
            await asyncio.sleep(self._timings.heartbeat)
            now = time.time()
            if now - self._last_presence >= self._timings.stalled_after / 3:
                self._prove_alive(now)
            mine = self._db.execute(
                "SELECT 1 FROM jobs WHERE status = 'doing' AND worker = ? LIMIT 1",
                (self.worker_name,),
            ).fetchone()
            if mine is None:
                continue
            with self._write() as db:
                db.execute(
                    "UPDATE jobs SET heartbeat_at = ? WHERE status = 'doing' AND worker = ?",
                    (time.time(), self.worker_name),
                )
