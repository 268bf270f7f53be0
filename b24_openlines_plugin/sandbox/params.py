"""PHP's way with parameters: ``filter[>ID]=5`` nests, ``select[]=ID`` appends, both directions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest flat ``a[b][c]`` pairs as PHP's ``parse_str`` does; later values win."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            root[key] = value
            continue
        parts = [match.group(1), *_PART.findall(match.group(2))]
        node = root
        for index, part in enumerate(parts):
            if part == "":
                part = str(_next_index(node))
            if index == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return {key: _listify(value) for key, value in root.items()}


def parse_query(query: str) -> dict[str, Any]:
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def _next_index(node: dict[str, Any]) -> int:
    numbers = [int(k) for k in node if k.isdigit()]
    return max(numbers) + 1 if numbers else 0


def _listify(node: Any) -> Any:
    """Arrays with keys 0..n-1 are lists in PHP's JSON; keep that shape after parsing."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v) for k, v in node.items()}
    if converted and list(converted) == [str(i) for i in range(len(converted))]:
        return list(converted.values())
    return converted


def flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """The inverse of ``parse_pairs``, in key order: ``{"data": {"FIELDS": {"ID": 1}}}`` →
    ``[("data[FIELDS][ID]", "1")]``."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, Mapping):
            pairs.extend(flatten(value, name))
        elif isinstance(value, list | tuple):
            pairs.extend(flatten({str(i): v for i, v in enumerate(value)}, name))
        else:
            pairs.append((name, scalar_text(value)))
    return pairs


def encode_form(data: Mapping[str, Any]) -> str:
    return urlencode(flatten(data))


def scalar_text(value: Any) -> str:
    """How PHP turns a scalar into a string: true is "1", false and null are ""."""
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    return str(value)


def as_list(value: Any) -> list[Any]:
    """A PHP array given either as a JSON list or as an object keyed 0..n (or any keys)."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    if value is None or value == "":
        return []
    return [value]


def get_param(params: Mapping[str, Any], name: str) -> Any:
    """Bitrix24 reads parameter names without regard to case (``id`` and ``ID`` both work)."""
    if name in params:
        return params[name]
    lowered = name.lower()
    for key, value in params.items():
        if key.lower() == lowered:
            return value
    return None


def truthy(value: Any) -> bool:
    """Y/N flags, 1/0, true/false, as Bitrix24 accepts them."""
    if isinstance(value, str):
        return value.strip().lower() in {"1", "y", "true", "yes"}
    return bool(value)
