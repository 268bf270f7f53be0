"""Form names ↔ settings keys: ``a[b][c]`` in a form is ``a.b.c`` in the settings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hooks.errors import BadRequest

MAX_FIELDS = 1000
MAX_DEPTH = 4
_PART = re.compile(r"\[([^\[\]]*)\]")


def form_name(key: str) -> str:
    head, *rest = key.split(".")
    return head + "".join(f"[{part}]" for part in rest)


def nest_form(items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nested settings from form pairs; the last value of a repeated name wins."""
    result: dict[str, Any] = {}
    for count, (name, value) in enumerate(items, start=1):
        if count > MAX_FIELDS:
            raise BadRequest("Too many form fields")
        head, _, tail = name.partition("[")
        parts = [head, *_PART.findall("[" + tail)] if tail else [head]
        well_formed = form_name(".".join(parts)) == name and "." not in "".join(parts)
        if not well_formed or len(parts) > MAX_DEPTH or any(not p for p in parts):
            raise BadRequest(f"Unexpected form field {name[:80]!r}")
        node = result
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise BadRequest(f"Form field {name[:80]!r} conflicts with another")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise BadRequest(f"Form field {name[:80]!r} conflicts with another")
        node[parts[-1]] = value
    return result
