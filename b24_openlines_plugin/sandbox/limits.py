"""The two limits a portal enforces: the request leaky bucket and the per-method operating time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from b24_openlines_plugin.sandbox.config import RateLimit

OPERATING_WINDOW = 600  # ten one-minute baskets


class LeakyBucket:
    """Each request adds 1, the level drains continuously; over ``burst`` is refused, uncounted."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self.level = 0.0
        self.updated = clock()

    def _drain(self) -> None:
        now = self.clock()
        self.level = max(0.0, self.level - (now - self.updated) * self.limit.drain_per_second)
        self.updated = now

    def try_acquire(self) -> bool:
        self._drain()
        if self.level + 1 > self.limit.burst:
            return False
        self.level += 1
        return True


class OperatingBudget:
    """Seconds of execution per method in one-minute baskets; a method over the limit is blocked."""

    def __init__(self, limit: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self.baskets: defaultdict[str, dict[int, float]] = defaultdict(dict)

    def _live(self, method: str) -> dict[int, float]:
        now_minute = int(self.clock() // 60)
        baskets = self.baskets[method]
        for minute in [m for m in baskets if m <= now_minute - OPERATING_WINDOW // 60]:
            del baskets[minute]
        return baskets

    def used(self, method: str) -> float:
        return sum(self._live(method).values())

    def blocked(self, method: str) -> bool:
        return self.used(method) >= self.limit

    def record(self, method: str, seconds: float) -> None:
        if seconds <= 0:
            return
        minute = int(self.clock() // 60)
        baskets = self._live(method)
        baskets[minute] = baskets.get(minute, 0.0) + seconds

    def reset_at(self, method: str) -> int:
        """When the oldest basket drops out of the window (now + window when there is none)."""
        baskets = self._live(method)
        if not baskets:
            return int(self.clock()) + OPERATING_WINDOW
        return min(baskets) * 60 + OPERATING_WINDOW
