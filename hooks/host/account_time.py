"""The account's time zone: the pages show times in it and count days by it.

One zone for the whole account, as an analytics platform has, rather than each appeal's own
offset: the inbox's times (kept in UTC) and the appeals' (kept with the portal's offset) read
alike, and a day of the date filter or the chart is the same day for every appeal.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Europe/Moscow"


def account_zone(name: str) -> ZoneInfo:
    """The zone named ``name``; ``ValueError`` (argparse's type error) for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def local(value: datetime, zone: ZoneInfo) -> datetime:
    return value.astimezone(zone)


def shown(value: datetime, zone: ZoneInfo) -> str:
    """``2026-11-02 12:00 +0300``: the time in the account's zone, the offset written out."""
    return local(value, zone).strftime("%Y-%m-%d %H:%M %z")


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in the account's zone (aware, whatever the DST shift)."""
    return datetime.combine(day, time(), tzinfo=zone)


def day_after(day: date, zone: ZoneInfo) -> datetime:
    return day_start(day + timedelta(days=1), zone)
