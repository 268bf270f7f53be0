"""The offline event queue (``b_rest_event_offline``), as the rest module keeps it.

Why it exists: online deliveries are tried once and lost on failure; offline records wait
until the application reads them. Semantics follow ``Bitrix\\Rest\\EventOfflineTable`` and
``Bitrix\\Rest\\Api\\Event`` (rest module source) and the docs (offline-events.md,
event-offline-get/clear/error/list.md):

* ``MESSAGE_ID`` is md5 of ``EVENT_NAME|json(EVENT_DATA)``; a repeated event merges into the
  record with the same MESSAGE_ID, connector and an empty PROCESS_ID (new TIMESTAMP_X, same
  ID): "if the same deal changed 1000 times, one record remains". A reserved record is not
  merged into; the repeat makes a new one. The merge ignores ERROR, so a repeat of an event
  whose record was marked erroneous updates that record, which stays erroneous.
* ``get`` reserves up to ``limit`` unreserved records under a new process id, returns them,
  and with ``clear`` deletes the whole reserved batch.
* ``mark_error`` turns a batch's records erroneous and unreserved, and deletes other
  unerroneous records with the same MESSAGE_IDs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from b24_openlines_plugin.sandbox.errors import RestError
from b24_openlines_plugin.sandbox.listing import parse_when
from b24_openlines_plugin.sandbox.oauth import random_token
from b24_openlines_plugin.sandbox.records import atom

GET_FIELDS = ("ID", "TIMESTAMP_X", "EVENT_NAME", "MESSAGE_ID")
LIST_FIELDS = (*GET_FIELDS, "PROCESS_ID", "ERROR")
_OPERATIONS = ("=", ">=", "<=", ">", "<")
_PREFIX = re.compile(r"^(\W{1,2})(.+)$")
PAGE_SIZE = 50


def message_id(event: str, data: Any) -> str:
    """``md5(EVENT_NAME|Json::encode(EVENT_DATA))``: what makes repeats of one change merge."""
    encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return hashlib.md5(f"{event}|{encoded}".encode()).hexdigest()


def argument_error(description: str) -> RestError:
    return RestError("ERROR_ARGUMENT", description)


@dataclass
class OfflineRecord:
    id: int
    timestamp: float
    event: str
    data: Any
    additional: Any
    message_id: str
    connector_id: str = ""
    process_id: str = ""
    error: bool = False

    def value(self, field: str) -> Any:
        return {
            "ID": self.id,
            "TIMESTAMP_X": int(self.timestamp),  # the table keeps whole seconds
            "EVENT_NAME": self.event.casefold(),  # MySQL compares without regard to case
            "MESSAGE_ID": self.message_id.casefold(),
            "PROCESS_ID": self.process_id.casefold(),
            "ERROR": int(self.error),
        }[field]

    def to_json(self, tz: tzinfo, listing: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {
            "ID": str(self.id),
            "TIMESTAMP_X": atom(self.timestamp, tz),
            "EVENT_NAME": self.event,
            "EVENT_DATA": self.data,
            "EVENT_ADDITIONAL": self.additional,
            "MESSAGE_ID": self.message_id,
        }
        if listing:
            row["PROCESS_ID"] = self.process_id
            row["ERROR"] = str(int(self.error))
        return row


@dataclass(frozen=True)
class Condition:
    op: str
    field: str
    value: Any

    def holds(self, record: OfflineRecord, tz: tzinfo) -> bool:
        actual = record.value(self.field)
        wanted = self._wanted(tz)
        if wanted is None:
            return False
        return bool(
            {
                "=": actual == wanted,
                ">": actual > wanted,
                "<": actual < wanted,
                ">=": actual >= wanted,
                "<=": actual <= wanted,
            }[self.op]
        )

    def _wanted(self, tz: tzinfo) -> Any:
        if self.field == "TIMESTAMP_X":
            when = parse_when(str(self.value), tz)
            return int(when.timestamp()) if when else None
        if self.field in ("ID", "ERROR"):
            try:
                return int(float(str(self.value)))
            except ValueError:
                return 0
        return str(self.value).casefold()


def sanitize_filter(raw: Any, fields: tuple[str, ...]) -> list[Condition]:
    """event.offline.get's filter: known fields, ``= > < >= <=``, scalar values only."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, dict):
        raise argument_error("The filter is not an array.")
    conditions = []
    for key, value in raw.items():
        match = _PREFIX.match(str(key))
        op, field = (match.group(1), match.group(2)) if match else ("=", str(key))
        if op not in _OPERATIONS:
            raise argument_error(f"Filter operation not allowed: {op}")
        if field.upper() not in fields:
            raise argument_error(f"Filter field not allowed: {field}")
        if isinstance(value, list | dict):
            raise argument_error(f"The value of an argument '{key}' has an invalid type")
        conditions.append(Condition(op, field.upper(), value))
    return conditions


def sanitize_order(raw: Any, fields: tuple[str, ...], default: str) -> list[tuple[str, bool]]:
    if raw in (None, "", []):
        return [(default, False)]
    if not isinstance(raw, dict):
        raise argument_error("The order is not an array.")
    order = []
    for field, direction in raw.items():
        if str(field).upper() not in fields:
            raise argument_error(f"Order field not allowed: {field}")
        if str(direction).upper() not in ("ASC", "DESC"):
            raise argument_error("Order direction should be one of {ASC|DESC}")
        order.append((str(field).upper(), str(direction).upper() == "DESC"))
    return order


def ordered(records: Iterable[OfflineRecord], order: list[tuple[str, bool]]) -> list[OfflineRecord]:
    """Sorted by ``order``; rows equal on it come in ID order, as the table returns them."""
    rows = sorted(records, key=lambda r: r.id)
    for field, descending in reversed(order):
        rows.sort(key=lambda r: r.value(field), reverse=descending)
    return rows


@dataclass
class Selection:
    """What ``event.offline.get`` asks for, already checked."""

    conditions: list[Condition]
    order: list[tuple[str, bool]]
    limit: int
    clear: bool
    process_id: str | None
    errors: bool
    connector_id: str


class OfflineQueue:
    """The application's offline records (the sandbox has one application)."""

    def __init__(self, clock: Callable[[], float], tz: tzinfo) -> None:
        self.clock = clock
        self.tz = tz
        self.records: list[OfflineRecord] = []
        self._last_id = 0

    def record(self, event: str, data: Any, additional: Any, connector_id: str = "") -> None:
        """EventOfflineTable::callEvent: merge into the unreserved twin, or add a record."""
        key = message_id(event, data)
        now = self.clock()
        for existing in self.records:
            if (existing.message_id, existing.connector_id, existing.process_id) == (
                key,
                connector_id,
                "",
            ):
                existing.timestamp, existing.data, existing.additional = now, data, additional
                return
        self._last_id += 1
        self.records.append(
            OfflineRecord(self._last_id, now, event, data, additional, key, connector_id)
        )

    def _matching(self, conditions: list[Condition], **exact: Any) -> list[OfflineRecord]:
        return [
            r
            for r in self.records
            if all(getattr(r, name) == value for name, value in exact.items())
            and all(c.holds(r, self.tz) for c in conditions)
        ]

    def get(self, query: Selection) -> dict[str, Any]:
        """Reserve (unless a process id is given), read the batch, and delete it on ``clear``."""
        scope = {"connector_id": query.connector_id, "error": query.errors}
        process_id = query.process_id
        if process_id is None:
            process_id = random_token(32)
            free = self._matching(query.conditions, process_id="", **scope)
            for record in ordered(free, query.order)[: query.limit]:
                record.process_id = process_id
        batch = self._matching(query.conditions, process_id=process_id, **scope)
        events = [r.to_json(self.tz) for r in ordered(batch, query.order)[: query.limit]]
        if query.clear and events:
            self.clear(process_id, query.connector_id)
        shown = process_id if (not query.clear or query.process_id is not None) else None
        return {"process_id": shown, "events": events}

    def clear(
        self,
        process_id: str,
        connector_id: str,
        ids: list[int] | None = None,
        message_ids: list[str] | None = None,
    ) -> None:
        """Delete a batch's records, or only those with these IDs or MESSAGE_IDs."""

        def doomed(r: OfflineRecord) -> bool:
            if (r.process_id, r.connector_id) != (process_id, connector_id):
                return False
            if message_ids is not None:
                return r.message_id in message_ids
            return ids is None or r.id in ids

        self.records = [r for r in self.records if not doomed(r)]

    def mark_error(self, process_id: str, connector_id: str, message_ids: list[str]) -> None:
        """EventOfflineTable::markError's three statements, in order."""
        wanted = set(message_ids)

        def ours(r: OfflineRecord) -> bool:
            return r.connector_id == connector_id and r.message_id in wanted

        self.records = [
            r for r in self.records if not (ours(r) and not r.error and r.process_id != process_id)
        ]
        for record in [r for r in self.records if ours(r) and not r.error]:
            # The unique key (MESSAGE_ID, connector, PROCESS_ID) leaves room for one
            # unreserved erroneous record per message: the older one gives way (a guess).
            self.records = [
                r
                for r in self.records
                if not (r.error and not r.process_id and ours(r))
                or r.message_id != record.message_id
            ]
            record.error, record.process_id = True, ""

    def page(
        self,
        conditions: list[Condition],
        order: list[tuple[str, bool]],
        start: int,
        connector_id: str,
    ) -> tuple[list[dict[str, Any]], int]:
        """event.offline.list: a read-only page of 50 and the total."""
        found = ordered(self._matching(conditions, connector_id=connector_id), order)
        rows = found[max(start, 0) : max(start, 0) + PAGE_SIZE]
        return [r.to_json(self.tz, listing=True) for r in rows], len(found)
