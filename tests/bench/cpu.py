"""The plugin's own CPU per appeal, measured in one process (``tests.stack``, no rate limit).

In one process the sandbox answers REST calls on the same CPU clock as the plugin, so the
sandbox's share is taken out by record and replay: the stored webhooks are processed again
through ``on_webhook`` in groups of the drain's ``DRAIN_IN_FLIGHT`` (200) started together,
first against the live sandbox while every REST answer is recorded (``whole``: plugin + host
services + sandbox), then five times more with the answers replayed from the recording
(``plugin``, their median: the plugin's code, its REST client and batching, parsing, pydantic,
and the host services it calls: settings, SQLite upserts). A live drain tops up as items
finish, so its batches depend on timing; groups started together make the same batches every
time, so every request finds its answer (0 replay misses).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from hooks.host.inbox import DRAIN_IN_FLIGHT, DrainAppeals
from tests.bench.burst import bulk_chats_body
from tests.bench.systems import oauth_server_allowed
from tests.stack import PORTAL_URL, running_stack

REPLAYS = 5


@dataclass
class CpuFigures:
    appeals: int
    whole_ms_per_appeal: float  # plugin + host services + the in-process sandbox answering
    plugin_ms_per_appeal: float  # the same with the sandbox's answers replayed
    requests: int
    replay_misses: int


class Tape(httpx.AsyncBaseTransport):
    """Records the portal's answers by request body, and replays them when ``replaying``."""

    def __init__(self, live: httpx.AsyncBaseTransport) -> None:
        self.live = live
        self.answers: dict[tuple[str, bytes], tuple[int, list[tuple[bytes, bytes]], bytes]] = {}
        self.replaying = False
        self.requests = 0
        self.misses = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        body = await request.aread()
        key = (str(request.url), body)
        if self.replaying:
            found = self.answers.get(key)
            if found is not None:
                status, headers, content = found
                return httpx.Response(status, headers=headers, content=content)
            self.misses += 1
        answer = await self.live.handle_async_request(request)
        content = await answer.aread()
        self.answers[key] = (answer.status_code, list(answer.headers.raw), content)
        return httpx.Response(answer.status_code, headers=answer.headers.raw, content=content)


async def plugin_cpu(chats: int, workdir: Path) -> CpuFigures:
    with oauth_server_allowed(PORTAL_URL):
        return await _plugin_cpu(chats, workdir)


async def _plugin_cpu(chats: int, workdir: Path) -> CpuFigures:
    async with running_stack(workdir / "cpu.sqlite3", rate_limit=None) as stack:
        # Enterprise's bucket (burst 250) keeps the plugin's own throttle out of the way here.
        integration_id = int((await stack.configure(plan="enterprise"))["id"])
        await stack.connect(integration_id)
        netloc = urlsplit(PORTAL_URL).netloc
        tape = Tape(stack.network.apps[netloc])
        stack.network.apps[netloc] = tape  # type: ignore[assignment]
        for body in bulk_chats_body(chats, seed=7):
            started = await stack.browser.post(f"{PORTAL_URL}/sandbox/api/chats/bulk", json=body)
            assert started.status_code == 201, started.text
        await stack.settled()
        host = stack.host
        integration = await host.repo.get_integration(integration_id)
        assert integration is not None
        items = [
            item
            for item in await host.repo.list_inbox(status="done", limit=chats * 2)
            if item.integration_id == integration_id
        ]
        items.sort(key=lambda item: item.id)
        services = await host.services(appeals=DrainAppeals(host.appeal_reads))  # as the drain's

        async def drain_again() -> float:
            before = time.process_time()
            for start in range(0, len(items), DRAIN_IN_FLIGHT):
                group = items[start : start + DRAIN_IN_FLIGHT]
                outcomes: list[Any] = await asyncio.gather(
                    *(
                        host.plugins.webhook(integration, request=item.request, host=services)
                        for item in group
                    )
                )
                assert all(o.result == "processed" for o in outcomes), outcomes
            return time.process_time() - before

        requests_before = tape.requests
        whole = await drain_again()
        requests = tape.requests - requests_before
        tape.replaying = True
        # The median of several replayed passes: one pass is a second or two of CPU, and on a
        # shared machine a single one moves by ±10 % from run to run.
        plugin = statistics.median([await drain_again() for _ in range(REPLAYS)])
        appeals = len(items)
        return CpuFigures(
            appeals=appeals,
            whole_ms_per_appeal=whole * 1000 / max(appeals, 1),
            plugin_ms_per_appeal=plugin * 1000 / max(appeals, 1),
            requests=requests,
            replay_misses=tape.misses,
        )
