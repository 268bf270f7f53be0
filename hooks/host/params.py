"""Whole numbers from paths and queries: ASCII digits, bounded, one reader for every route.

``str.isdigit`` also takes "²" (which ``int`` then refuses) and the Arabic-Indic one, U+0661
(which ``int`` reads as 1: another spelling of integration 1's URLs), and ``int`` takes any
length, which the databases' 64-bit integers cannot hold. So a number here is plain ASCII
decimal without leading zeros or a sign, and at most ``MAX_ID``; anything else is no number.
"""

from __future__ import annotations

import re

from starlette.requests import Request

from hooks.errors import BadRequest

MAX_ID = 2**63 - 1  # PostgreSQL's bigint and SQLite's INTEGER
_WHOLE = re.compile(r"0|[1-9][0-9]{0,18}")


def whole_number(text: str | None, *, maximum: int = MAX_ID) -> int | None:
    """``text`` as a whole number from 0 to ``maximum``; None when it is not exactly one."""
    if text is None or _WHOLE.fullmatch(text) is None:
        return None
    number = int(text)
    return number if number <= maximum else None


def path_id(request: Request, name: str) -> int | None:
    """The id in the path parameter ``name``; None when it is not one, which the caller
    answers as it answers an unknown id (404): no record can have it."""
    return whole_number(request.path_params[name])


def query_number(request: Request, name: str, *, maximum: int = MAX_ID) -> int | None:
    """The query parameter ``name`` as a whole number; None when absent or empty,
    ``BadRequest`` when it is anything but a number from 0 to ``maximum``."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    number = whole_number(raw, maximum=maximum)
    if number is None:
        raise BadRequest(f"{name} must be a whole number from 0 to {maximum}")
    return number
