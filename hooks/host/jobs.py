"""The host's work seam: background work is asked for through ``JobQueue`` only.

The in-process implementation runs jobs on the event loop; a PostgreSQL queue can replace it.
A job is a name and a key (``drain``, integration id): asking again for a job that is waiting
or running coalesces, so one integration never has two drains at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

JobHandler = Callable[[str], Awaitable[None]]


class JobQueue(Protocol):
    def register(self, name: str, handler: JobHandler) -> None: ...

    async def enqueue(self, name: str, key: str, *, delay: float = 0.0) -> None:
        """Run ``handler(key)`` once after ``delay`` seconds. While the same job is waiting it
        coalesces to the earlier run time; while it is running it runs once more afterwards."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stop taking jobs and wait for running ones to finish (or be cancelled)."""
        ...

    async def idle(self) -> None:
        """Wait until no job is waiting to run now or running (delayed jobs don't count)."""
        ...
