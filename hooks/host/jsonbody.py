"""JSON request bodies with bounds on size and nesting, for every JSON endpoint.

``json.loads`` recurses once per level, so a few kilobytes of ``[`` raise ``RecursionError``
(a 500), and whatever walks the parsed value afterwards recurses too. The nesting is therefore
measured on the bytes, before anything parses them. ``NaN``, ``Infinity`` and numbers too
large for a float are refused as well: an answer that echoes one cannot be written as JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request

from hooks.errors import BadRequest
from hooks.host.state import read_capped_body

MAX_DEPTH = 16  # the settings need 3 (messenger_map.<channel>.source_id)
# A JSON string (unrolled, so that no input makes the expression backtrack), then a bracket.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting(body: bytes) -> int:
    """How deep the arrays and objects of ``body`` nest (brackets inside strings aside).

    Works on any bytes, JSON or not: an unterminated string only makes it count more."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", body)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)  # a stray closer never hides the openers after it
    return deepest


def check_nesting(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """``BadRequest`` when ``body`` nests deeper than ``max_depth``."""
    if nesting(body) > max_depth:
        raise BadRequest(f"The JSON body nests deeper than {max_depth} levels")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("the number is out of range")
    return number


def parse_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``body`` as strict JSON (UTF-8, finite numbers); ``BadRequest`` otherwise."""
    check_nesting(body, max_depth)
    try:
        return json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite
        )
    except ValueError as exc:  # also UnicodeDecodeError, and ints of more than 4,300 digits
        raise BadRequest("The body is not valid JSON") from exc


async def read_json(request: Request, limit: int) -> Any:
    """The request's body as JSON, refused with 413 past ``limit`` bytes."""
    return parse_json(await read_capped_body(request, limit))


async def read_bounded(request: Request, limit: int) -> bytes:
    """The raw body, for a plugin to parse, once it is known to be within both bounds."""
    body = await read_capped_body(request, limit)
    check_nesting(body)
    return body
