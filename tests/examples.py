"""The official Bitrix24 examples kept in ``tests/fixtures/bitrix24`` (each with its source)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures" / "bitrix24"


def load_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def form_body(name: str) -> bytes:
    """The body line of a ``*.form.txt`` example: its header and decoded listing are comments."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    bodies = [line for line in lines if line.strip() and not line.startswith("#") and "&" in line]
    assert len(bodies) == 1, name
    return bodies[0].encode("ascii")
