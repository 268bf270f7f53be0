"""Slow clients are let go: a request head that never completes, or never starts, closes its
connection within the header timeout, on a real server over a real socket."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hooks.host.app import create_app
from hooks.host.server import (
    HEADER_TIMEOUT_SECONDS,
    KEEP_ALIVE_SECONDS,
    MAX_HEAD_BYTES,
    server_options,
)
from hooks.host.state import HostConfig
from tests.servers import free_port
from tests.uvicorn_server import seconds_until_closed, send_raw, serving

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[1] / "README.md"
PARTIAL_HEAD = b"GET /api/catalog HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
WHOLE_REQUEST = b"GET /api/catalog HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SLACK = 3.0  # a slow machine's scheduling, on top of the timeout


def test_the_readme_states_the_timeouts() -> None:
    readme = README.read_text(encoding="utf-8")
    assert f"--header-timeout SECONDS` (default {HEADER_TIMEOUT_SECONDS:g})" in readme
    assert f"after {KEEP_ALIVE_SECONDS} s idle" in readme
    assert f"incomplete past {MAX_HEAD_BYTES // 1024} KiB gets `400`" in readme


async def test_a_slow_loris_is_disconnected_within_the_default_header_timeout(
    host_config: HostConfig,
) -> None:
    async with serving(create_app(host_config), **server_options()) as address:
        waited = await seconds_until_closed(
            address, PARTIAL_HEAD, limit=HEADER_TIMEOUT_SECONDS + SLACK
        )
    assert HEADER_TIMEOUT_SECONDS - 0.5 <= waited <= HEADER_TIMEOUT_SECONDS + SLACK


@pytest.fixture
def host_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``python -m hooks.host --header-timeout 1``: the command line's own server."""
    port = free_port()
    command = [sys.executable, "-m", "hooks.host", "--demo", "--db", str(tmp_path / "h.db")]
    command += ["--port", str(port), "--worker", "none", "--header-timeout", "1"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None and time.monotonic() < deadline, "the host did not start"
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/catalog", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("sent", "then"),
    [
        pytest.param(PARTIAL_HEAD, b"", id="a partial head"),
        pytest.param(b"", b"", id="nothing at all"),
        pytest.param(b"G", b"", id="one byte"),
        pytest.param(WHOLE_REQUEST, PARTIAL_HEAD, id="a partial second head"),
    ],
)
async def test_the_command_line_server_closes_a_connection_without_a_whole_head(
    host_process: tuple[str, int], sent: bytes, then: bytes
) -> None:
    waited = await seconds_until_closed(host_process, sent, then=then, limit=1 + SLACK)
    assert waited <= 1 + SLACK


async def test_a_kept_alive_connection_serves_its_next_request(
    host_process: tuple[str, int],
) -> None:
    """The deadline starts again after each answer: a client that reuses its connection within
    it is served."""
    url = f"http://127.0.0.1:{host_process[1]}"
    async with httpx.AsyncClient(base_url=url) as client:
        first = await client.get("/api/catalog")
        await asyncio.sleep(0.5)  # kept alive, idle, within both timeouts
        second = await client.get("/api/catalog")
    assert first.status_code == second.status_code == 200


async def test_a_request_head_still_incomplete_past_the_documented_size_is_refused(
    host_process: tuple[str, int],
) -> None:
    filler = b"X-Filler: " + b"a" * MAX_HEAD_BYTES + b"\r\n"
    answer = await send_raw(host_process, WHOLE_REQUEST[:-2] + filler)
    assert answer.startswith(b"HTTP/1.1 400 ")
