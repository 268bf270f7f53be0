"""Bitrix24's request-rate limit, kept on our side so the portal never has to refuse us.

Bitrix24 counts requests in a leaky bucket per portal: each request adds one, the counter drains
by ``rate`` per second, and a request over ``burst`` is refused with ``QUERY_LIMIT_EXCEEDED``.
The same bucket here makes callers wait instead. Its level is kept by the host
(``host.rate_limits``, in its database), not in this process: the host's web processes and
workers, on any machine, call the same portal and count in the same bucket, so a drain that
runs in another worker than the last one starts where that one left off.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from hooks.services import RateLimits

Plan = Literal["standard", "enterprise"]
PLAN_LIMITS: dict[Plan, tuple[float, int]] = {"standard": (2.0, 50), "enterprise": (5.0, 250)}


@dataclass
class LeakyBucket:
    """One portal's bucket: ``limits`` keeps its level under ``key``."""

    limits: RateLimits
    key: str
    rate: float
    burst: int
    level: float = 0.0  # as last seen here: including the request counted then

    async def acquire(self) -> float:
        """Count one request now and wait until it fits under the burst; return the seconds
        waited (the host's monitoring shows how long the portal's limit holds us up).

        Counting before waiting is a reservation: concurrent callers, in this process or any
        other, queue up in order without a lock, each sleeping until the bucket has drained
        down to its place.
        """
        self.level = await self.limits.take(self.key, rate=self.rate, burst=self.burst)
        # One below the burst: the portal's counter and ours never tick at quite the same time.
        wait = (self.level - (self.burst - 1)) / self.rate
        if wait <= 0:
            return 0.0
        await asyncio.sleep(wait)
        return wait

    async def saturate(self) -> None:
        """The portal said we are over the limit: believe it (another client may share the IP)."""
        await self.limits.fill(self.key, rate=self.rate, burst=self.burst)
        self.level = max(self.level, float(self.burst))


def portal_key(endpoint: str) -> str:
    """The bucket's name: the portal, by its address (Bitrix24 counts per portal, whichever
    application or integration calls it)."""
    return f"bitrix24:{urlsplit(endpoint).netloc.lower() or endpoint}"


def bucket_for(limits: RateLimits, endpoint: str, plan: Plan = "standard") -> LeakyBucket:
    """The bucket of the portal whose REST address is ``endpoint``, on the plan's limits."""
    rate, burst = PLAN_LIMITS[plan]
    return LeakyBucket(limits, portal_key(endpoint), rate, burst)
