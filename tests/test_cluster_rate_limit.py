"""Three workers on one flooded portal never go over its rate limit together.

Each worker is a real process; the portal's leaky bucket is a row in PostgreSQL that every one
of them counts in, so a drain that starts on another worker does not start with a fresh bucket.
The portal (the sandbox with Bitrix24's standard limit, 2/s burst 50) counts what it refuses.
The chats come one by one: a burst at once fits in few requests (a list command carries 50
chats), while a steady flow makes many small drains, on whichever worker takes each, and more
requests than the portal's burst allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.multi_portal import run_once

pytestmark = pytest.mark.anyio
CHATS = 80
SPREAD_SECONDS = 20.0


async def test_three_workers_on_one_flooded_portal_are_never_refused(tmp_path: Path) -> None:
    run = await run_once(
        3, 1, CHATS, "standard", seed=5, progress=lambda _: None, logs=tmp_path,
        spread_s=SPREAD_SECONDS,
    )  # fmt: skip
    assert run.appeals == CHATS
    # More requests than the burst allows at once: the limit was really in play.
    assert run.rest_requests > 50
    assert run.limit_refusals == 0
