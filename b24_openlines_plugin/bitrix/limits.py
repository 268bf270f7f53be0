"""Bitrix24's request-rate limit, kept on our side so the portal never has to refuse us.

Bitrix24 counts requests in a leaky bucket per portal: each request adds one, the counter drains
by ``rate`` per second, and a request over ``burst`` is refused with ``QUERY_LIMIT_EXCEEDED``.
The same bucket here makes callers wait instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Plan = Literal["standard", "enterprise"]
PLAN_LIMITS: dict[Plan, tuple[float, int]] = {"standard": (2.0, 50), "enterprise": (5.0, 250)}


@dataclass
class LeakyBucket:
    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    level: float = 0.0
    _updated: float | None = None

    def _drain(self) -> float:
        now = self.clock()
        if self._updated is not None:
            self.level = max(0.0, self.level - (now - self._updated) * self.rate)
        self._updated = now
        return now

    async def acquire(self) -> None:
        """Count one request now and wait until it fits under the burst.

        Counting before waiting is a reservation: concurrent callers queue up in order without
        a lock, each sleeping until the bucket has drained down to its place.
        """
        self._drain()
        self.level += 1
        # One below the burst: the portal's counter and ours never tick at quite the same time.
        wait = (self.level - (self.burst - 1)) / self.rate
        if wait > 0:
            await asyncio.sleep(wait)

    def saturate(self) -> None:
        """The portal said we are over the limit: believe it (another client may share the IP)."""
        self._drain()
        self.level = max(self.level, float(self.burst))


_buckets: dict[str, LeakyBucket] = {}


def bucket_for(portal: str, plan: Plan = "standard") -> LeakyBucket:
    """The one bucket of a portal in this process (a portal's drains run one at a time)."""
    rate, burst = PLAN_LIMITS[plan]
    bucket = _buckets.get(portal)
    if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
        bucket = _buckets[portal] = LeakyBucket(rate, burst)
    return bucket
