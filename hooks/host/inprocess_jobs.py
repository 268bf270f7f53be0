"""The embedded ``JobQueue``: jobs run as tasks on the host's event loop.

A job is ``(name, key)``. At most one run of a job exists at a time, which is what gives a
portal a single drain; different keys run side by side. The queue keeps nothing on disk: the
work itself is persisted elsewhere (the webhook inbox) and the host asks for it again at start.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Literal

from hooks.host.jobs import JobHandler

log = logging.getLogger("hooks.host.jobs")

JobId = tuple[str, str]


class InProcessJobQueue:
    """``hooks.host.jobs.JobQueue`` on asyncio.

    ``stop_grace`` is how long ``stop()`` lets running jobs finish before cancelling them:
    a drain that completes its batch saves the Bitrix24 calls it already made.
    """

    def __init__(self, *, stop_grace: float = 5.0) -> None:
        self._stop_grace = stop_grace
        self._handlers: dict[str, JobHandler] = {}
        # A job waiting to run, with the loop time it is due. A job may be waiting and running
        # at once: it was asked for again while running and runs again once it has finished.
        self._due: dict[JobId, float] = {}
        self._timers: dict[JobId, asyncio.TimerHandle] = {}
        self._running: dict[JobId, asyncio.Task[None]] = {}
        self._state: Literal["new", "started", "stopped"] = "new"
        # Replaced on every change, so a waiter in ``idle()`` sees each change exactly once.
        self._changed = asyncio.Event()

    def register(self, name: str, handler: JobHandler) -> None:
        if name in self._handlers:
            raise ValueError(f"a handler for job {name!r} is already registered")
        self._handlers[name] = handler

    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        """Run ``handler(key)`` once after ``delay`` seconds; see ``JobQueue.enqueue``.

        After ``stop()`` the request is dropped: the queue is going away, and the work it
        stands for is found again when the host starts.
        """
        if name not in self._handlers:
            raise LookupError(f"no handler registered for job {name!r}")
        if self._state == "stopped":
            log.debug("queue stopped, not running job %s(%s)", name, key)
            return
        job = (name, key)
        due = asyncio.get_running_loop().time() + max(delay, 0.0)
        if job in self._due and self._due[job] <= due:
            return  # already waiting with an earlier (or the same) due time
        self._due[job] = due
        self._schedule(job)

    async def start(self) -> None:
        """Start running jobs, including those asked for before."""
        if self._state == "stopped":
            raise RuntimeError("a stopped job queue cannot be started again")
        if self._state == "started":
            return
        self._state = "started"
        for job in list(self._due):
            self._schedule(job)

    async def stop(self, *, grace: float | None = None) -> None:
        """Drop waiting jobs, give running ones ``grace`` seconds (``stop_grace`` unless
        given), then cancel them and wait until they have ended."""
        self._state = "stopped"
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._due.clear()
        running = set(self._running.values())
        if running:
            _, late = await asyncio.wait(
                running, timeout=self._stop_grace if grace is None else grace
            )
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        self._notify()

    async def idle(self) -> None:
        """Wait until no job is running or due now. Delayed jobs don't count; a job asked for
        before ``start()`` does, so waiting for idle before starting waits for the start."""
        while True:
            changed = self._changed
            if self._is_idle():
                return
            await changed.wait()

    def _is_idle(self) -> bool:
        if self._running:
            return False
        now = asyncio.get_running_loop().time()
        return all(due > now for due in self._due.values())

    def _schedule(self, job: JobId) -> None:
        """Start a waiting job if it is due and not running, else time it for when it is due.

        A running job needs no timer: ``_finished`` schedules it again.
        """
        if self._state != "started" or job not in self._due or job in self._running:
            return
        timer = self._timers.pop(job, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        due = self._due[job]
        if due <= loop.time():
            self._start(job)
        else:
            self._timers[job] = loop.call_at(due, self._on_timer, job)

    def _on_timer(self, job: JobId) -> None:
        # A timer always matches the job's current due time: due times only move earlier, and
        # moving one replaces the timer. So firing means due (the loop may fire a hair early).
        self._timers.pop(job, None)
        if self._state == "started" and job in self._due and job not in self._running:
            self._start(job)

    def _start(self, job: JobId) -> None:
        del self._due[job]
        name, key = job
        task = asyncio.create_task(self._run(job), name=f"job {name}({key})")
        self._running[job] = task
        task.add_done_callback(partial(self._finished, job))
        self._notify()

    async def _run(self, job: JobId) -> None:
        name, key = job
        try:
            await self._handlers[name](key)
        except Exception:
            # One failing job must not take the queue (or the other jobs) down with it.
            log.exception("job %s(%s) failed", name, key)

    def _finished(self, job: JobId, task: asyncio.Task[None]) -> None:
        del self._running[job]
        self._schedule(job)  # asked for again while it ran
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
