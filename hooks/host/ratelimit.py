"""Per-client-IP token buckets for the endpoints any page on the internet may call.

``POST /api/visits`` and ``POST /api/sessions/{id}`` need no credential (sites call them from
visitors' browsers), so one client could otherwise fill the database or keep the plugin busy.
The buckets are in memory: each host process limits on its own, which is enough to blunt a
flood and needs no shared store.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hooks.errors import HookError


@dataclass(frozen=True)
class Rate:
    """``per_second`` sustained, with bursts of up to ``burst`` requests."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate needs per_second > 0 and burst >= 1")

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """``"PER_SECOND,BURST"`` as the command line takes it; ``"0"`` means no limit."""
        if text.strip() == "0":
            return None
        per_second, _, burst = text.partition(",")
        try:
            return cls(float(per_second), int(burst))
        except ValueError as exc:
            raise ValueError(f"expected PER_SECOND,BURST (like 1,30) or 0, not {text!r}") from exc


# What a visitor's pages need, with room: one report per chat, one visit per landing.
SESSION_RATE = Rate(per_second=1.0, burst=30)
VISIT_RATE = Rate(per_second=2.0, burst=60)


class RateLimited(HookError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__("Too many requests: try again later")
        self.retry_after = retry_after


class RateLimiter:
    """Token buckets keyed by client; ``rate=None`` lets everything through."""

    def __init__(
        self,
        rate: Rate | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._max_clients = max_clients
        # client → (tokens, when counted); least recently seen first.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        """How many clients it remembers."""
        return len(self._buckets)

    def check(self, client: str) -> None:
        """Take a token for ``client`` or raise ``RateLimited`` saying when one will be there."""
        rate = self.rate
        if rate is None:
            return
        now = self._clock()
        tokens, then = self._buckets.pop(client, (float(rate.burst), now))
        tokens = min(float(rate.burst), tokens + (now - then) * rate.per_second)
        allowed = tokens >= 1.0
        # Re-inserted, refused or not, so the order stays "least recently seen first" and a
        # client that keeps knocking is never the one forgotten.
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > self._max_clients:
            # The client idle longest: its bucket has most likely refilled anyway.
            self._buckets.popitem(last=False)
        if not allowed:
            raise RateLimited(retry_after=(1.0 - tokens) / rate.per_second)


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up, never 0: ``Retry-After: 0`` would invite an instant retry."""
    return str(max(1, math.ceil(seconds)))
