"""Random faults for soak tests: failing and hanging REST calls, expiring tokens, lost events.

A real portal fails in these ways now and then; a soak test turns them up so that a client's
retries, token refresh and reconciliation are exercised a thousand times in a minute. Every
decision comes from a seeded RNG (one stream for REST, one for deliveries, so turning up one
knob does not reshuffle the other) and every fault injected is counted, so a test can check
that the client survived exactly what was thrown at it.

Offline event records are never touched: they are Bitrix24's lossless path.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from b24_openlines_plugin.sandbox import errors
from b24_openlines_plugin.sandbox.errors import RestError

T = TypeVar("T")
Fate = Literal["send", "drop", "duplicate"]
INJECTED = (
    "rest_error",
    "rest_timeout",
    "token_expiry",
    "webhook_dropped",
    "webhook_duplicated",
    "webhook_reordered",
)
RATES = ("rest_error_rate", "rest_timeout_rate", "webhook_drop_rate", "webhook_duplicate_rate")
# nginx's own page: what a client gets when the portal's PHP did not answer in time.
GATEWAY_TIMEOUT_HTML = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass
class FaultSettings:
    """The soak knobs; all off by default. Rates are shares of requests (or deliveries)."""

    seed: int | None = None
    # A REST request answered at once with 503 QUERY_LIMIT_EXCEEDED, 500 INTERNAL_SERVER_ERROR
    # or 429 OPERATION_TIME_LIMIT (which then blocks that method for operating_block_seconds).
    rest_error_rate: float = 0.0
    operating_block_seconds: float = 5.0
    # A REST request that hangs (real seconds) and then answers nginx's 504: longer than a
    # client's timeout, it lets that timeout fire; the cloud's own limit is 60 s per request.
    rest_timeout_rate: float = 0.0
    rest_timeout_seconds: float = 65.0
    # Every N-th REST request finds every access token expired, as when the hour ends.
    expire_tokens_every: int = 0
    # An event delivery not sent at all (Bitrix24 never resends), or sent twice.
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    # Deliveries waiting together are shuffled in windows of this many (0 or 1: in order).
    webhook_reorder: int = 0

    def check(self) -> None:
        """Raise ValueError for a rate outside 0..1 or a negative count or duration."""
        for name in RATES:
            _share(name, getattr(self, name))
        for name in (
            "operating_block_seconds",
            "rest_timeout_seconds",
            "expire_tokens_every",
            "webhook_reorder",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1")


@dataclass(frozen=True)
class Hang:
    """Hold the request this long (real seconds), then answer 504."""

    seconds: float


class Chaos:
    """Decides, from its seeded streams, which requests and deliveries a fault befalls."""

    def __init__(self, settings: FaultSettings, clock: Callable[[], float]) -> None:
        settings.check()
        self.settings = dataclasses.replace(settings)
        self.clock = clock
        self.injected: dict[str, int] = dict.fromkeys(INJECTED, 0)
        self._requests = 0
        self._blocked: dict[str, float] = {}
        self._reseed()

    def _reseed(self) -> None:
        seed = self.settings.seed
        self._rest = random.Random(None if seed is None else f"rest:{seed}")
        self._hooks = random.Random(None if seed is None else f"webhooks:{seed}")

    def update(self, changes: dict[str, Any]) -> None:
        """Change some knobs; a new ``seed`` restarts both streams (counters are kept)."""
        updated = dataclasses.replace(self.settings, **changes)
        updated.check()
        self.settings = updated
        if "seed" in changes:
            self._reseed()

    def turn_off(self) -> None:
        """Every knob back to off; what was injected stays counted."""
        self.settings = FaultSettings(seed=self.settings.seed)
        self._blocked.clear()

    def to_json(self) -> dict[str, Any]:
        return {"injected": dict(self.injected), **self.settings.to_json()}

    # --- REST -----------------------------------------------------------------------------

    def tokens_expire_now(self) -> bool:
        """Count one REST request; True on every N-th, when all access tokens must expire."""
        every = self.settings.expire_tokens_every
        self._requests += 1
        if every <= 0 or self._requests % every:
            return False
        self.injected["token_expiry"] += 1
        return True

    def rest_fault(self, method: str, is_batch: bool) -> Hang | RestError | None:
        """A hang, an error or nothing for this request. A batch is never answered
        OPERATION_TIME_LIMIT: the outer batch is not counted against the operating limit."""
        settings = self.settings
        if settings.rest_timeout_rate and self._rest.random() < settings.rest_timeout_rate:
            self.injected["rest_timeout"] += 1
            return Hang(settings.rest_timeout_seconds)
        if not settings.rest_error_rate or self._rest.random() >= settings.rest_error_rate:
            return None
        self.injected["rest_error"] += 1
        kinds = ["QUERY_LIMIT_EXCEEDED", "INTERNAL_SERVER_ERROR"]
        if not is_batch:
            kinds.append("OPERATION_TIME_LIMIT")
        kind = self._rest.choice(kinds)
        if kind == "QUERY_LIMIT_EXCEEDED":
            return errors.query_limit()
        if kind == "INTERNAL_SERVER_ERROR":
            status, text = errors.KNOWN[kind]
            return RestError(kind, text, status)
        self._blocked[method.lower()] = self.clock() + settings.operating_block_seconds
        return errors.operation_time_limit()

    def blocked(self, method: str) -> bool:
        """Whether an injected OPERATION_TIME_LIMIT still blocks this method."""
        until = self._blocked.get(method.lower())
        if until is None:
            return False
        if self.clock() >= until:
            del self._blocked[method.lower()]
            return False
        return True

    # --- deliveries -----------------------------------------------------------------------

    def delivery_fate(self) -> Fate:
        settings = self.settings
        if settings.webhook_drop_rate and self._hooks.random() < settings.webhook_drop_rate:
            self.injected["webhook_dropped"] += 1
            return "drop"
        rate = settings.webhook_duplicate_rate
        if rate and self._hooks.random() < rate:
            self.injected["webhook_duplicated"] += 1
            return "duplicate"
        return "send"

    @property
    def reorder_window(self) -> int:
        return max(1, self.settings.webhook_reorder)

    def shuffle(self, batch: list[T]) -> list[T]:
        """Shuffle one window; every delivery that leaves its place counts as reordered."""
        if len(batch) < 2:
            return batch
        shuffled = list(batch)
        self._hooks.shuffle(shuffled)
        self.injected["webhook_reordered"] += sum(
            1 for before, after in zip(batch, shuffled, strict=True) if before is not after
        )
        return shuffled
