"""What a REST method receives and returns, and the ``time`` object every answer carries."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from b24_openlines_plugin.sandbox.oauth import Grant
from b24_openlines_plugin.sandbox.records import atom
from b24_openlines_plugin.sandbox.state import Sandbox


@dataclass
class Call:
    sandbox: Sandbox
    grant: Grant
    params: dict[str, Any]

    @property
    def tz(self) -> tzinfo:
        return self.sandbox.config.timezone


@dataclass
class Outcome:
    result: Any
    total: int | None = None
    next: int | None = None


@dataclass(frozen=True)
class Method:
    name: str
    # None: "basic", allowed to every token; several: any one of them grants the method.
    scope: str | tuple[str, ...] | None
    handler: Callable[[Call], Outcome]

    def allowed(self, granted: Collection[str]) -> bool:
        """Whether a token holding the ``granted`` scopes may call the method."""
        if self.scope is None:
            return True
        needed = (self.scope,) if isinstance(self.scope, str) else self.scope
        return any(scope in granted for scope in needed)


def time_object(
    start: float, finish: float, tz: tzinfo, operating: tuple[float, int] | None = None
) -> dict[str, Any]:
    """rest.time_object.operating.json; ``operating`` is (seconds used, reset timestamp)."""
    time: dict[str, Any] = {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": finish - start,
        "date_start": atom(start, tz),
        "date_finish": atom(finish, tz),
    }
    if operating is not None:
        time["operating_reset_at"] = operating[1]
        time["operating"] = operating[0]
    return time


def php_map(values: dict[str, Any]) -> Any:
    """How PHP's json_encode shows an array: ``[]`` when empty, a list when keyed 0..n-1."""
    if not values:
        return []
    if list(values) == [str(i) for i in range(len(values))]:
        return list(values.values())
    return values
