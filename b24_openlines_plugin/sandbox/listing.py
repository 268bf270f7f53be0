"""List methods' ``filter`` / ``order`` / ``select`` / ``start``, as CRM list methods read them.

Filter keys may carry Bitrix24's prefixes (``>ID``, ``!STATUS_ID``, ``@ID``, ``%TITLE`` …);
values compare as numbers when both sides are numbers and as dates on date fields. Pages are
50 rows with ``next`` and ``total``; ``start=-1`` skips the count, as Bitrix24 advises for
large exports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

from b24_openlines_plugin.sandbox.errors import crm_error
from b24_openlines_plugin.sandbox.params import as_list, get_param

PAGE_SIZE = 50
_PREFIXES = ("!=%", ">=", "<=", "!=", "!@", "!%", "=%", "%=", ">", "<", "@", "!", "=", "%")
DATE_FIELDS = {
    "DATE_CREATE",
    "DATE_MODIFY",
    "DATE_CLOSED",
    "MOVED_TIME",
    "LAST_ACTIVITY_TIME",
    "BEGINDATE",
    "CLOSEDATE",
    "CREATED",
    "LAST_UPDATED",
    "START_TIME",
    "END_TIME",
    "DEADLINE",
}


@dataclass
class ListQuery:
    filter: list[tuple[str, str, Any]]  # (operator, field, value)
    order: list[tuple[str, bool]]  # (field, descending)
    select: list[str]
    start: int


def read_query(params: dict[str, Any], default_order: list[tuple[str, bool]]) -> ListQuery:
    raw_filter = get_param(params, "filter")
    if raw_filter in (None, "", []):
        raw_filter = {}
    if not isinstance(raw_filter, dict):
        raise crm_error("Parameter 'filter' must be array.")
    raw_order = get_param(params, "order")
    if raw_order in (None, "", []):
        raw_order = {}
    if not isinstance(raw_order, dict):
        raise crm_error("Parameter 'order' must be array.")
    order = [(str(k).upper(), str(v).upper() == "DESC") for k, v in raw_order.items()]
    try:
        start = int(get_param(params, "start") or 0)
    except (TypeError, ValueError):
        start = 0
    return ListQuery(
        filter=[_split(str(k), v) for k, v in raw_filter.items()],
        order=order or default_order,
        select=[str(s).upper() for s in as_list(get_param(params, "select"))],
        start=start,
    )


def _split(key: str, value: Any) -> tuple[str, str, Any]:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :].upper(), value
    return "=", key.upper(), value


def parse_when(value: Any, tz: tzinfo) -> datetime | None:
    """Filter dates: ISO 8601 with or without offset (naive means the portal's zone), or a day."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return None
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _comparable(field: str, value: Any, tz: tzinfo) -> Any:
    if value is None:
        return None
    if field in DATE_FIELDS:
        return parse_when(value, tz)
    text = str(value)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text.casefold()


def _values(record: dict[str, Any], field: str) -> list[Any]:
    """A field's values: one for scalars, each VALUE for multifields such as PHONE."""
    value = record.get(field)
    if isinstance(value, list):
        return [v.get("VALUE") if isinstance(v, dict) else v for v in value]
    return [value]


def _like(pattern: str, text: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.casefold().split("%"))
    return re.fullmatch(regex, text.casefold(), re.DOTALL) is not None


def _test(op: str, actual: Any, wanted: Any, field: str, tz: tzinfo) -> bool:
    if op in ("%", "!%", "=%", "%=", "!=%"):
        text = "" if actual is None else str(actual)
        hit = _like(str(wanted), text) if "=" in op else str(wanted).casefold() in text.casefold()
        return not hit if op.startswith("!") else hit
    if op in ("@", "!@") or (op in ("=", "!", "!=") and isinstance(wanted, list | dict)):
        options = {_comparable(field, w, tz) for w in as_list(wanted)}
        hit = _comparable(field, actual, tz) in options
        return not hit if op.startswith("!") else hit
    left, right = _comparable(field, actual, tz), _comparable(field, wanted, tz)
    if op == "=":
        return left == right or (left is None and right == "")
    if op in ("!", "!="):
        return not (left == right or (left is None and right == ""))
    if left is None or right is None or type(left) is not type(right):
        return False
    return bool(
        {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
    )


def matches(record: dict[str, Any], query: ListQuery, tz: tzinfo, skip: set[str]) -> bool:
    """Unknown fields are ignored, as CRM list filters do; ``skip`` fields are the caller's."""
    for op, field, wanted in query.filter:
        if field in skip or field not in record:
            continue
        if not any(_test(op, v, wanted, field, tz) for v in _values(record, field)):
            return False
    return True


def _sorted(records: list[dict[str, Any]], query: ListQuery, tz: tzinfo) -> list[dict[str, Any]]:
    rows = list(records)
    for field, descending in reversed(query.order):
        present = [r for r in rows if _comparable(field, r.get(field), tz) is not None]
        missing = [r for r in rows if _comparable(field, r.get(field), tz) is None]
        present.sort(key=lambda r: _comparable(field, r.get(field), tz), reverse=descending)
        rows = present + missing if descending else missing + present
    return rows


def project(record: dict[str, Any], select: list[str], extras: tuple[str, ...]) -> dict[str, Any]:
    """``*`` (or nothing) is every plain field; extras (PHONE, COMMUNICATIONS) only by name."""
    wanted = set(select)
    everything = not select or "*" in wanted
    return {
        key: value
        for key, value in record.items()
        if key == "ID" or key in wanted or (everything and key not in extras)
    }


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int | None
    next: int | None


def page(
    records: list[dict[str, Any]],
    query: ListQuery,
    tz: tzinfo,
    extras: tuple[str, ...],
    skip: set[str] | None = None,
) -> Page:
    found = _sorted([r for r in records if matches(r, query, tz, skip or set())], query, tz)
    if query.start < 0:
        return Page([project(r, query.select, extras) for r in found[:PAGE_SIZE]], None, None)
    rows = found[query.start : query.start + PAGE_SIZE]
    following = query.start + PAGE_SIZE
    return Page(
        [project(r, query.select, extras) for r in rows],
        len(found),
        following if following < len(found) else None,
    )
